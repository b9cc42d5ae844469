//! An embedded chain: one JSON file holding subnets (uids, hotkeys, stakes, weights, bonds,
//! commitments, commit-reveal commits) and a block number that advances on demand, or with the
//! wall clock when the state has a [`Clock`]. Each subnet's epoch runs every `tempo` blocks
//! (subtensor's stateful scheduler) with arena's bit-exact Yuma Consensus, so a subnet owner can
//! watch weights become incentives, and the demo and the tests run a validator end to end
//! without a node.
//!
//! Several processes may share one state file (a validator, miners running `arena commit`, the
//! owner advancing blocks): every access takes an exclusive `flock` on the sidecar
//! `<state>.lock`, reloads the file, catches up with the clock, applies its change and writes
//! the file back atomically (temporary file, rename) before unlocking, so no write is lost and
//! every read sees the others' writes.
//!
//! Calls are checked as subtensor checks them (registration, permits, version key, rate limit,
//! uids, commit-reveal), but signatures are not verified: the signer is taken at its word.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Call, Chain, Commitment, Metagraph, Neuron, Receipt, SubnetParams, calls, wallet};
use arena_yuma::{self, EpochInput, Matrix};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalNeuron {
    pub hotkey: String,
    pub coldkey: String,
    /// Alpha stake, rao.
    pub stake: u64,
    pub registered_at: u64,
    #[serde(default)]
    pub last_update: u64,
    #[serde(default)]
    pub validator_permit: bool,
    #[serde(default)]
    pub consensus: u16,
    #[serde(default)]
    pub incentive: u16,
    #[serde(default)]
    pub dividends: u16,
    #[serde(default)]
    pub emission: u64,
    #[serde(default)]
    pub active: bool,
}

impl LocalNeuron {
    /// A neuron registered at `block`, with no epoch results yet.
    pub fn new(hotkey: &str, coldkey: &str, stake: u64, block: u64) -> Self {
        Self {
            hotkey: hotkey.into(),
            coldkey: coldkey.into(),
            stake,
            registered_at: block,
            last_update: block,
            validator_permit: false,
            consensus: 0,
            incentive: 0,
            dividends: 0,
            emission: 0,
            active: true,
        }
    }
}

/// A v2 commit: hash, the epoch and block it was made in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WeightCommit {
    pub hotkey: String,
    pub hash: String,
    pub epoch: u64,
    pub block: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSubnet {
    pub netuid: u16,
    /// Yuma hyperparameters (tempo, kappa, bonds, liquid alpha, Yuma3, …).
    pub yuma: arena_yuma::Hyperparameters,
    pub weights_rate_limit: u64,
    pub weights_version_key: u64,
    pub commit_reveal: bool,
    pub reveal_period_epochs: u64,
    /// Alpha emitted per epoch, rao.
    pub emission_per_epoch: u64,
    pub owner_uid: Option<u16>,
    pub neurons: Vec<LocalNeuron>,
    /// Stored weight rows by uid.
    #[serde(default)]
    pub weights: BTreeMap<u16, Vec<(u16, u16)>>,
    #[serde(default)]
    pub bonds: BTreeMap<u16, Vec<(u16, u16)>>,
    /// hotkey → (block, commitment bytes).
    #[serde(default)]
    pub commitments: BTreeMap<String, (u64, Vec<u8>)>,
    #[serde(default)]
    pub weight_commits: Vec<WeightCommit>,
    /// `LastEpochBlock`: the block of the last epoch.
    #[serde(default)]
    pub last_epoch_block: u64,
    /// `SubnetEpochIndex`: epochs run so far (commit-reveal counts in these).
    #[serde(default)]
    pub epoch_index: u64,
}

impl LocalSubnet {
    fn uid_of(&self, hotkey: &str) -> Option<u16> {
        self.neurons.iter().position(|n| n.hotkey == hotkey).map(|u| u as u16)
    }

    /// subtensor's stateful scheduler (`should_run_epoch`): an epoch runs once `tempo` blocks
    /// have passed since the last one.
    fn epoch_due(&self, block: u64) -> bool {
        self.yuma.tempo > 0 && block.saturating_sub(self.last_epoch_block) >= self.yuma.tempo as u64
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalState {
    pub block: u64,
    pub subnets: BTreeMap<u16, LocalSubnet>,
    /// Blocks by the wall clock; without one, blocks advance only when asked
    /// (`arena chain local advance`) and by one per submitted call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<Clock>,
}

/// The embedded chain's block clock: block `origin_block` at Unix time `origin_unix_ms`, then
/// one block every `block_time_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    pub block_time_ms: u64,
    pub origin_unix_ms: u64,
    pub origin_block: u64,
}

/// The longest block time a clock takes: an hour.
pub const MAX_BLOCK_TIME_MS: u64 = 3_600_000;

impl Clock {
    /// A clock at `block` now, one block every `block_time_ms` (1 ms to an hour).
    pub fn starting_now(block_time_ms: u64, block: u64) -> Result<Self> {
        let clock = Self { block_time_ms, origin_unix_ms: now_ms()?, origin_block: block };
        clock.check()?;
        Ok(clock)
    }

    fn check(&self) -> Result<()> {
        ensure!(
            (1..=MAX_BLOCK_TIME_MS).contains(&self.block_time_ms),
            "the clock's block_time_ms is {}; it must be 1 ms to an hour ({MAX_BLOCK_TIME_MS})",
            self.block_time_ms
        );
        Ok(())
    }

    /// The block the clock shows at Unix time `now_ms`: `origin_block` plus the whole blocks
    /// since the origin (`origin_block` itself while the origin is in the future).
    pub fn block_at(&self, now_ms: u64) -> Result<u64> {
        self.check()?;
        let elapsed = now_ms.saturating_sub(self.origin_unix_ms);
        self.origin_block
            .checked_add(elapsed / self.block_time_ms)
            .context("the chain clock's block overflows the block number")
    }
}

/// The wall clock, in milliseconds since the Unix epoch.
pub fn now_ms() -> Result<u64> {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).context("the system clock is before 1970")?;
    u64::try_from(since.as_millis()).context("the system clock is beyond u64 milliseconds")
}

/// The most neurons a subnet of the embedded chain holds: uids are u16, and so is every count
/// of them the epoch takes; a full subnet refuses registrations instead of wrapping uids.
pub const MAX_UIDS: usize = u16::MAX as usize;

/// The most blocks one `advance` runs, and the most a clocked chain catches up in one access:
/// each block is a step of every subnet's scheduler, so a larger count is hours of work, not a
/// typo to carry out.
pub const MAX_ADVANCE: u64 = 10_000_000;

impl LocalState {
    /// A state whose subnets fit in u16 uids and whose clock is sane.
    fn check(&self) -> Result<()> {
        for (netuid, s) in &self.subnets {
            ensure!(
                s.neurons.len() <= MAX_UIDS,
                "subnet {netuid} has {} neurons; uids are u16: at most {MAX_UIDS}",
                s.neurons.len()
            );
        }
        if let Some(c) = &self.clock {
            c.check()?;
        }
        Ok(())
    }

    fn subnet(&self, netuid: u16) -> Result<&LocalSubnet> {
        self.subnets.get(&netuid).with_context(|| format!("subnet {netuid} does not exist on this chain"))
    }

    /// Advances `blocks` blocks (at most [`MAX_ADVANCE`] at a time), running each subnet's epoch
    /// at its epoch blocks. The clock, if any, is left as it is (see [`LocalChain::advance`]).
    pub fn advance(&mut self, blocks: u64) -> Result<Vec<(u16, u64)>> {
        ensure!(
            blocks <= MAX_ADVANCE,
            "cannot advance {blocks} blocks at once; the limit is {MAX_ADVANCE} (a year of 12 s blocks is 2,629,800)"
        );
        self.block
            .checked_add(blocks)
            .with_context(|| format!("block {} + {blocks} overflows the block number", self.block))?;
        let mut ran = Vec::new();
        for _ in 0..blocks {
            self.block += 1;
            ran.extend(self.begin_block()?);
        }
        Ok(ran)
    }

    /// Catches up with the clock at `now_ms` (nothing without a clock, or while the state is
    /// at or past the clock's block): the epochs that ran.
    pub fn tick(&mut self, now_ms: u64) -> Result<Vec<(u16, u64)>> {
        let Some(clock) = self.clock else { return Ok(vec![]) };
        let target = clock.block_at(now_ms)?;
        let behind = target.saturating_sub(self.block);
        ensure!(
            behind <= MAX_ADVANCE,
            "the chain's clock is at block {target}, {behind} blocks past its state (block {}): more than the {MAX_ADVANCE} blocks one access catches up; the chain sat idle too long for its {} ms blocks (create it again, or move `clock.origin_unix_ms` in the state file closer to now)",
            self.block,
            clock.block_time_ms
        );
        self.advance(behind)
    }

    /// Opens the block a call submitted at `now_ms` lands in: the next block (on a clocked
    /// chain, the one after the clock's block, shared by the calls submitted before it is due).
    fn include(&mut self, now_ms: u64) -> Result<()> {
        let next = match self.clock {
            None => self.block.checked_add(1).context("the block number overflows")?,
            Some(c) => c.block_at(now_ms)?.checked_add(1).context("the block number overflows")?,
        };
        if next > self.block {
            self.advance(next - self.block)?;
        }
        Ok(())
    }

    /// What the chain does at the start of a block (`on_initialize`): run due epochs, then
    /// drop v2 commits whose reveal epoch has passed.
    fn begin_block(&mut self) -> Result<Vec<(u16, u64)>> {
        let block = self.block;
        let mut ran = Vec::new();
        for subnet in self.subnets.values_mut() {
            if subnet.epoch_due(block) {
                run_epoch(subnet, block)?;
                ran.push((subnet.netuid, block));
            }
            let (epoch, period) = (subnet.epoch_index, subnet.reveal_period_epochs);
            subnet.weight_commits.retain(|c| epoch <= c.epoch.saturating_add(period));
        }
        Ok(ran)
    }

    /// Registers a hotkey under the next uid at the current block (the local chain has no uid
    /// limit and prunes nobody).
    pub fn register(&mut self, netuid: u16, hotkey: &str, coldkey: &str, stake: u64) -> Result<u16> {
        let block = self.block;
        let subnet =
            self.subnets.get_mut(&netuid).with_context(|| format!("subnet {netuid} does not exist"))?;
        ensure!(subnet.neurons.len() < MAX_UIDS, "subnet {netuid} is full: {MAX_UIDS} uids");
        ensure!(subnet.uid_of(hotkey).is_none(), "{hotkey} is already registered on subnet {netuid}");
        super::ss58::decode(hotkey).context("hotkey")?;
        super::ss58::decode(coldkey).context("coldkey")?;
        subnet.neurons.push(LocalNeuron::new(hotkey, coldkey, stake, block));
        Ok((subnet.neurons.len() - 1) as u16)
    }

    fn apply(&mut self, hotkey: &str, call: &Call) -> Result<()> {
        let block = self.block;
        ensure!(call.mechanism() == 0, "the local chain has one mechanism per subnet");
        let netuid = call.netuid();
        let subnet =
            self.subnets.get_mut(&netuid).with_context(|| format!("subnet {netuid} does not exist"))?;
        match call {
            Call::SetCommitment { data, .. } => {
                ensure!(
                    subnet.uid_of(hotkey).is_some(),
                    "AccountNotAllowedCommit: {hotkey} is not registered on subnet {netuid}"
                );
                calls::raw_data(data)?;
                subnet.commitments.insert(hotkey.into(), (block, data.clone()));
            }
            Call::SetWeights { uids, weights, version_key, .. } => {
                ensure!(
                    !subnet.commit_reveal,
                    "CommitRevealEnabled: subnet {netuid} takes weights by commit and reveal"
                );
                set_weights(subnet, hotkey, uids, weights, *version_key, block)?;
            }
            Call::CommitWeights { hash, .. } => {
                ensure!(
                    subnet.commit_reveal,
                    "CommitRevealDisabled: subnet {netuid} takes weights with set_weights"
                );
                let uid = subnet
                    .uid_of(hotkey)
                    .with_context(|| format!("HotKeyNotRegisteredInSubNet: {hotkey}"))?;
                let me = &subnet.neurons[uid as usize];
                let since = block.saturating_sub(me.last_update);
                ensure!(
                    since >= subnet.weights_rate_limit || me.last_update == me.registered_at,
                    "CommittingWeightsTooFast: {since} blocks since the last update; the limit is {}",
                    subnet.weights_rate_limit
                );
                ensure!(
                    subnet.weight_commits.iter().filter(|c| c.hotkey == hotkey).count() < 10,
                    "TooManyUnrevealedCommits"
                );
                let epoch = subnet.epoch_index;
                subnet.weight_commits.push(WeightCommit {
                    hotkey: hotkey.into(),
                    hash: hex::encode(hash),
                    epoch,
                    block,
                });
                subnet.neurons[uid as usize].last_update = block;
            }
            Call::RevealWeights { uids, weights, salt, version_key, .. } => {
                let account = super::ss58::decode(hotkey)?;
                let hash =
                    hex::encode(calls::commit_hash(&account, netuid, 0, uids, weights, salt, *version_key));
                let epoch = subnet.epoch_index;
                let pos = subnet
                    .weight_commits
                    .iter()
                    .position(|c| c.hotkey == hotkey && c.hash == hash)
                    .context("InvalidRevealCommitHashNotMatch: no commit of this hotkey has that hash")?;
                let due = subnet.weight_commits[pos].epoch.saturating_add(subnet.reveal_period_epochs);
                ensure!(epoch == due, "RevealTooEarly: revealable in epoch {due}, now {epoch}");
                subnet.weight_commits.remove(pos);
                set_weights(subnet, hotkey, uids, weights, *version_key, block)?;
            }
            Call::CommitTimelockedWeights { .. } => {
                bail!(
                    "the local chain has no drand beacon to reveal timelocked (CRv4) commits; use commit-reveal v2 (commit_weights and reveal_weights) locally"
                )
            }
        }
        Ok(())
    }

    /// A deterministic hash per block: `sha256("arena-local-chain" ‖ block as u64 LE)`.
    pub fn block_hash(&self, block: u64) -> Result<String> {
        ensure!(block <= self.block, "block {block} is in the future (the chain is at {})", self.block);
        let mut h = Sha256::new();
        h.update(b"arena-local-chain");
        h.update(block.to_le_bytes());
        Ok(format!("0x{}", hex::encode(h.finalize())))
    }

    pub fn metagraph(&self, netuid: u16) -> Result<Metagraph> {
        let s = self.subnet(netuid)?;
        Ok(Metagraph {
            netuid,
            block: self.block,
            neurons: s
                .neurons
                .iter()
                .enumerate()
                .map(|(uid, x)| Neuron {
                    uid: uid as u16,
                    hotkey: x.hotkey.clone(),
                    coldkey: x.coldkey.clone(),
                    stake: x.stake,
                    validator_permit: x.validator_permit,
                    active: x.active,
                    last_update: x.last_update,
                    block_at_registration: x.registered_at,
                    consensus: x.consensus,
                    incentive: x.incentive,
                    dividends: x.dividends,
                    emission: x.emission,
                })
                .collect(),
        })
    }

    pub fn params(&self, netuid: u16) -> Result<SubnetParams> {
        let s = self.subnet(netuid)?;
        Ok(SubnetParams {
            tempo: s.yuma.tempo,
            weights_rate_limit: s.weights_rate_limit,
            weights_version_key: s.weights_version_key,
            commit_reveal: s.commit_reveal,
            reveal_period_epochs: s.reveal_period_epochs,
            epoch_index: s.epoch_index,
            // No drand beacon here: commit-reveal is v2.
            commit_reveal_version: 2,
            schedule: None,
            max_allowed_validators: s.yuma.max_allowed_validators,
        })
    }

    pub fn commitments(&self, netuid: u16) -> Result<Vec<Commitment>> {
        let s = self.subnet(netuid)?;
        Ok(s.commitments
            .iter()
            .map(|(hotkey, (block, data))| Commitment {
                uid: s.uid_of(hotkey),
                hotkey: hotkey.clone(),
                block: *block,
                data: String::from_utf8(data.clone()).map_err(|_| "not UTF-8".to_string()),
            })
            .collect())
    }

    pub fn weights(&self, netuid: u16) -> Result<super::WeightRows> {
        Ok(self.subnet(netuid)?.weights.iter().map(|(u, w)| (*u, w.clone())).collect())
    }
}

/// The embedded chain, backed by its file. Every access locks the file, reloads it and
/// catches up with the clock; every change is written back atomically before the lock is
/// released.
#[derive(Debug)]
pub struct LocalChain {
    pub path: PathBuf,
    /// The state as this handle last saw it: at `open`/`create` and after each change made
    /// through it ([`update`](Self::update), `advance`, `register`, `submit`). Other processes
    /// may have moved on since; the [`Chain`] reads and [`snapshot`](Self::snapshot) reload it.
    pub state: LocalState,
}

/// `<state path>.lock`: the file every access to the state holds an exclusive `flock` on.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut p = OsString::from(state.as_os_str());
    p.push(".lock");
    PathBuf::from(p)
}

/// An exclusive `flock` on a state's lock file, released when dropped.
struct StateLock(File);

impl Drop for StateLock {
    fn drop(&mut self) {
        // SAFETY: flock on the descriptor this value owns. Closing it would release the lock
        // too; unlocking first does not wait for the close.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn lock(state: &Path) -> Result<StateLock> {
    let path = lock_path(state);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        // A state in a directory this user cannot write can still be read: its lock file, if
        // there is one, can be locked read-only.
        .or_else(|e| File::open(&path).map_err(|_| e))
        .with_context(|| format!("opening the chain state's lock file {}", path.display()))?;
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(StateLock(file));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
}

/// The state in `path`, parsed and checked (errors name the file, line and field).
fn load(path: &Path) -> Result<LocalState> {
    let bytes = super::read_file(path, "the chain state", 256 << 20)?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("the chain state {} is not UTF-8", path.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let state: LocalState = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        anyhow::anyhow!(
            "{}:{}:{}: field `{}`: {inner}",
            path.display(),
            inner.line(),
            inner.column(),
            e.path()
        )
    })?;
    state.check().with_context(|| format!("the chain state {}", path.display()))?;
    Ok(state)
}

/// Writes `state` to `path` atomically: a temporary file beside it, then a rename (under the
/// lock, so one temporary name serves every writer).
fn write(path: &Path, state: &LocalState) -> Result<()> {
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, serde_json::to_string_pretty(state)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The state file must exist before its lock file is made beside it (a mistyped path leaves
/// nothing behind, and says what `read_file` says).
fn exists(path: &Path) -> Result<()> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("reading the chain state {}: {e}", path.display()))
}

/// The state in `path` under its lock, caught up with the clock (written back if that moved it).
fn snapshot(path: &Path) -> Result<LocalState> {
    exists(path)?;
    let _lock = lock(path)?;
    let mut state = load(path)?;
    let before = state.block;
    state.tick(now_ms()?)?;
    if state.block != before {
        write(path, &state)?;
    }
    Ok(state)
}

/// What a locked access hands its change: the time it read the clock at, and the epochs that
/// ran while catching up with it.
struct Tick {
    now_ms: u64,
    ran: Vec<(u16, u64)>,
}

impl LocalChain {
    /// Opens a state file (catching up with its clock).
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self { path: path.to_path_buf(), state: snapshot(path)? })
    }

    /// Creates a state file; refuses to overwrite one.
    pub fn create(path: &Path, state: LocalState) -> Result<Self> {
        ensure!(!path.exists(), "{} exists; not overwriting a chain state", path.display());
        state.check()?;
        let _lock = lock(path)?;
        ensure!(!path.exists(), "{} exists; not overwriting a chain state", path.display());
        write(path, &state)?;
        Ok(Self { path: path.to_path_buf(), state })
    }

    /// The current state from the file, under the lock, caught up with the clock (and written
    /// back if the clock moved it). `self.state` is not changed.
    pub fn snapshot(&self) -> Result<LocalState> {
        snapshot(&self.path)
    }

    /// A read-modify-write of the state under the lock: reload, catch up with the clock, apply
    /// `f`, save, unlock. When `f` fails nothing of its change is kept (the clock's catching up
    /// is). `self.state` becomes the state as saved.
    pub fn update<T>(&mut self, f: impl FnOnce(&mut LocalState) -> Result<T>) -> Result<T> {
        self.transact(|state, _| f(state))
    }

    fn transact<T>(&mut self, f: impl FnOnce(&mut LocalState, &Tick) -> Result<T>) -> Result<T> {
        exists(&self.path)?;
        let _lock = lock(&self.path)?;
        let mut state = load(&self.path)?;
        let before = state.block;
        let now_ms = now_ms()?;
        let ran = state.tick(now_ms)?;
        let mut work = state.clone();
        let out = f(&mut work, &Tick { now_ms, ran }).and_then(|v| work.check().map(|_| v));
        match out {
            Ok(v) => {
                write(&self.path, &work)?;
                self.state = work;
                Ok(v)
            }
            Err(e) => {
                if state.block != before {
                    write(&self.path, &state)?;
                }
                self.state = state;
                Err(e)
            }
        }
    }

    /// Advances `blocks` blocks (at most [`MAX_ADVANCE`] at a time), running each subnet's epoch
    /// at its epoch blocks; on a clocked chain, after catching up with the clock, and the clock
    /// moves on by as many blocks (later blocks keep coming at its pace on top). Returns the
    /// epochs run, the clock's catching up included.
    pub fn advance(&mut self, blocks: u64) -> Result<Vec<(u16, u64)>> {
        self.transact(|state, tick| {
            let mut ran = tick.ran.clone();
            ran.extend(state.advance(blocks)?);
            if let Some(c) = &mut state.clock {
                c.origin_block = c
                    .origin_block
                    .checked_add(blocks)
                    .context("the clock's block overflows the block number")?;
            }
            Ok(ran)
        })
    }

    /// Registers a hotkey under the next uid at the current block (the local chain has no uid
    /// limit and prunes nobody).
    pub fn register(&mut self, netuid: u16, hotkey: &str, coldkey: &str, stake: u64) -> Result<u16> {
        self.update(|state| state.register(netuid, hotkey, coldkey, stake))
    }
}

/// subtensor's `internal_set_weights` checks, in its order, then the max-upscaled row.
fn set_weights(
    subnet: &mut LocalSubnet,
    hotkey: &str,
    uids: &[u16],
    values: &[u16],
    version_key: u64,
    block: u64,
) -> Result<()> {
    let n = subnet.neurons.len();
    ensure!(
        uids.len() == values.len(),
        "WeightVecNotEqualSize: {} uids, {} values",
        uids.len(),
        values.len()
    );
    ensure!(uids.len() <= n, "UidsLengthExceedUidsInSubNet");
    let uid = subnet.uid_of(hotkey).with_context(|| format!("HotKeyNotRegisteredInSubNet: {hotkey}"))?;
    ensure!(
        version_key >= subnet.weights_version_key || subnet.weights_version_key == 0,
        "IncorrectWeightVersionKey: {version_key} is below the subnet's {}",
        subnet.weights_version_key
    );
    let me = &subnet.neurons[uid as usize];
    if !subnet.commit_reveal {
        let since = block.saturating_sub(me.last_update);
        ensure!(
            since >= subnet.weights_rate_limit || me.last_update == me.registered_at,
            "SettingWeightsTooFast: {since} blocks since the last update; the limit is {}",
            subnet.weights_rate_limit
        );
    }
    let self_only = uids.len() == 1 && uids[0] == uid;
    ensure!(
        me.validator_permit || self_only || subnet.owner_uid == Some(uid),
        "NeuronNoValidatorPermit: uid {uid} has no validator permit"
    );
    let mut seen = std::collections::BTreeSet::new();
    for u in uids {
        ensure!(seen.insert(*u), "DuplicateUids: uid {u} twice");
        ensure!((*u as usize) < n, "UidVecContainInvalidOne: uid {u} does not exist");
    }
    let stored = arena_yuma::math::u16_max_upscale(values);
    subnet.weights.insert(uid, uids.iter().copied().zip(stored).collect());
    subnet.neurons[uid as usize].last_update = block;
    Ok(())
}

fn run_epoch(subnet: &mut LocalSubnet, block: u64) -> Result<()> {
    let n = subnet.neurons.len();
    if n == 0 {
        return Ok(());
    }
    let input = EpochInput {
        current_block: block,
        last_mechanism_step_block: subnet.last_epoch_block,
        stake: subnet.neurons.iter().map(|x| x.stake).collect(),
        tao_stake: vec![],
        tao_weight: 0,
        last_update: subnet.neurons.iter().map(|x| x.last_update).collect(),
        block_at_registration: subnet.neurons.iter().map(|x| x.registered_at).collect(),
        validator_permit: subnet.neurons.iter().map(|x| x.validator_permit).collect(),
        owner_uid: subnet.owner_uid,
        weights: Matrix::Sparse(
            (0..n as u16).map(|u| subnet.weights.get(&u).cloned().unwrap_or_default()).collect(),
        ),
        bonds: Some(Matrix::Sparse(
            (0..n as u16).map(|u| subnet.bonds.get(&u).cloned().unwrap_or_default()).collect(),
        )),
        commit_blocks: (0..n)
            .map(|u| {
                subnet
                    .weight_commits
                    .iter()
                    .filter(|c| c.hotkey == subnet.neurons[u].hotkey)
                    .map(|c| c.block)
                    .min()
            })
            .collect(),
        hyperparameters: arena_yuma::Hyperparameters {
            commit_reveal: subnet.commit_reveal,
            ..subnet.yuma.clone()
        },
        emission: subnet.emission_per_epoch,
        then: vec![],
    };
    let out = arena_yuma::epoch(&input)
        .with_context(|| format!("epoch of subnet {} at block {block}", subnet.netuid))?;
    subnet.bonds.clear();
    for r in out.uids {
        let x = &mut subnet.neurons[r.uid as usize];
        x.validator_permit = r.validator_permit;
        x.active = r.active;
        x.consensus = r.consensus_u16;
        x.incentive = r.incentive_u16;
        x.dividends = r.dividends_u16;
        x.emission = r.emission;
        // Emission is staked back to the hotkey, as on chain.
        x.stake = x.stake.saturating_add(r.server_emission).saturating_add(r.validator_emission);
        if !r.bonds.is_empty() {
            subnet.bonds.insert(r.uid, r.bonds);
        }
    }
    subnet.last_epoch_block = block;
    subnet.epoch_index = subnet.epoch_index.checked_add(1).context("the subnet's epoch index overflows")?;
    Ok(())
}

/// Each read reloads the file under its lock ([`LocalChain::snapshot`]); the work is short
/// and synchronous (a file read and, with a clock, the blocks it catches up).
#[async_trait::async_trait]
impl Chain for LocalChain {
    async fn current_block(&self) -> Result<u64> {
        Ok(self.snapshot()?.block)
    }

    /// A deterministic hash per block: `sha256("arena-local-chain" ‖ block as u64 LE)`.
    async fn block_hash(&self, block: u64) -> Result<String> {
        self.snapshot()?.block_hash(block)
    }

    async fn metagraph(&self, netuid: u16) -> Result<Metagraph> {
        self.snapshot()?.metagraph(netuid)
    }

    async fn params(&self, netuid: u16) -> Result<SubnetParams> {
        self.snapshot()?.params(netuid)
    }

    async fn commitments(&self, netuid: u16) -> Result<Vec<Commitment>> {
        self.snapshot()?.commitments(netuid)
    }

    async fn weights(&self, netuid: u16) -> Result<super::WeightRows> {
        self.snapshot()?.weights(netuid)
    }

    /// Applies the call in the next block (nothing changes if the chain refuses it). On a
    /// clocked chain that is the block after the clock's, which every call submitted before it
    /// is due shares.
    async fn submit(&mut self, signer: &wallet::Keypair, call: &Call) -> Result<Receipt> {
        let bytes = call.encode()?;
        let hotkey = signer.ss58();
        let block = self.transact(|state, tick| {
            state.include(tick.now_ms)?;
            state.apply(&hotkey, call)?;
            Ok(state.block)
        })?;
        let mut h = Sha256::new();
        h.update(&bytes);
        h.update(block.to_le_bytes());
        Ok(Receipt { block, id: format!("0x{}", hex::encode(h.finalize())) })
    }
}

/// A new chain state with one subnet and the given `(hotkey, coldkey, stake)` neurons, all
/// registered at block 0, with subtensor's default hyperparameters except those given.
pub fn new_subnet(netuid: u16, tempo: u16, neurons: &[(String, String, u64)]) -> LocalState {
    let yuma = arena_yuma::Hyperparameters { tempo, ..Default::default() };
    let subnet = LocalSubnet {
        netuid,
        yuma,
        weights_rate_limit: 100,
        weights_version_key: 0,
        commit_reveal: false,
        reveal_period_epochs: 1,
        emission_per_epoch: 1_000_000_000 * tempo as u64,
        owner_uid: None,
        neurons: neurons.iter().map(|(h, c, s)| LocalNeuron::new(h, c, *s, 0)).collect(),
        weights: BTreeMap::new(),
        bonds: BTreeMap::new(),
        commitments: BTreeMap::new(),
        weight_commits: vec![],
        last_epoch_block: 0,
        epoch_index: 0,
    };
    LocalState { block: 0, subnets: BTreeMap::from([(netuid, subnet)]), clock: None }
}
