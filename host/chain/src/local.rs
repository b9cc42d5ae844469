//! An embedded chain: one JSON file holding subnets (uids, hotkeys, stakes, weights, bonds,
//! commitments, commit-reveal commits) and a block number that advances on demand. Each
//! subnet's epoch runs every `tempo` blocks (subtensor's stateful scheduler) with arena's bit-exact Yuma Consensus, so a
//! subnet owner can watch weights become incentives, and the demo and the tests run a validator
//! end to end without a node.
//!
//! Calls are checked as subtensor checks them (registration, permits, version key, rate limit,
//! uids, commit-reveal), but signatures are not verified: the signer is taken at its word.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
}

/// The most neurons a subnet of the embedded chain holds: uids are u16, and so is every count
/// of them the epoch takes; a full subnet refuses registrations instead of wrapping uids.
pub const MAX_UIDS: usize = u16::MAX as usize;

/// The most blocks one `advance` runs: each block is a step of every subnet's scheduler, so a
/// larger count is hours of work, not a typo to carry out.
pub const MAX_ADVANCE: u64 = 10_000_000;

impl LocalState {
    /// A state whose subnets fit in u16 uids.
    fn check(&self) -> Result<()> {
        for (netuid, s) in &self.subnets {
            ensure!(
                s.neurons.len() <= MAX_UIDS,
                "subnet {netuid} has {} neurons; uids are u16: at most {MAX_UIDS}",
                s.neurons.len()
            );
        }
        Ok(())
    }
}

/// The embedded chain, backed by its file; every change is written back atomically.
#[derive(Debug)]
pub struct LocalChain {
    pub path: PathBuf,
    pub state: LocalState,
}

impl LocalChain {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = super::read_file(path, "the chain state", 256 << 20)?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("the chain state {} is not UTF-8", path.display()))?;
        let de = &mut serde_json::Deserializer::from_str(&text);
        let state = serde_path_to_error::deserialize(de).map_err(|e| {
            let inner = e.inner();
            anyhow::anyhow!(
                "{}:{}:{}: field `{}`: {inner}",
                path.display(),
                inner.line(),
                inner.column(),
                e.path()
            )
        })?;
        let state: LocalState = state;
        state.check().with_context(|| format!("the chain state {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), state })
    }

    pub fn create(path: &Path, state: LocalState) -> Result<Self> {
        ensure!(!path.exists(), "{} exists; not overwriting a chain state", path.display());
        state.check()?;
        let chain = Self { path: path.to_path_buf(), state };
        chain.save()?;
        Ok(chain)
    }

    pub fn save(&self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&self.state)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path).with_context(|| format!("writing {}", self.path.display()))
    }

    fn subnet(&self, netuid: u16) -> Result<&LocalSubnet> {
        self.state
            .subnets
            .get(&netuid)
            .with_context(|| format!("subnet {netuid} does not exist on this chain"))
    }

    /// Advances `blocks` blocks (at most [`MAX_ADVANCE`] at a time), running each subnet's epoch
    /// at its epoch blocks.
    pub fn advance(&mut self, blocks: u64) -> Result<Vec<(u16, u64)>> {
        ensure!(
            blocks <= MAX_ADVANCE,
            "cannot advance {blocks} blocks at once; the limit is {MAX_ADVANCE} (a year of 12 s blocks is 2,629,800)"
        );
        self.state
            .block
            .checked_add(blocks)
            .with_context(|| format!("block {} + {blocks} overflows the block number", self.state.block))?;
        let mut ran = Vec::new();
        for _ in 0..blocks {
            self.state.block += 1;
            ran.extend(self.begin_block()?);
        }
        self.save()?;
        Ok(ran)
    }

    /// What the chain does at the start of a block (`on_initialize`): run due epochs, then
    /// drop v2 commits whose reveal epoch has passed.
    fn begin_block(&mut self) -> Result<Vec<(u16, u64)>> {
        let block = self.state.block;
        let mut ran = Vec::new();
        for subnet in self.state.subnets.values_mut() {
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
        let block = self.state.block;
        let subnet =
            self.state.subnets.get_mut(&netuid).with_context(|| format!("subnet {netuid} does not exist"))?;
        ensure!(subnet.neurons.len() < MAX_UIDS, "subnet {netuid} is full: {MAX_UIDS} uids");
        ensure!(subnet.uid_of(hotkey).is_none(), "{hotkey} is already registered on subnet {netuid}");
        super::ss58::decode(hotkey).context("hotkey")?;
        super::ss58::decode(coldkey).context("coldkey")?;
        subnet.neurons.push(LocalNeuron::new(hotkey, coldkey, stake, block));
        let uid = (subnet.neurons.len() - 1) as u16;
        self.save()?;
        Ok(uid)
    }

    fn apply(&mut self, hotkey: &str, call: &Call) -> Result<()> {
        let block = self.state.block;
        ensure!(call.mechanism() == 0, "the local chain has one mechanism per subnet");
        let netuid = call.netuid();
        let subnet =
            self.state.subnets.get_mut(&netuid).with_context(|| format!("subnet {netuid} does not exist"))?;
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

impl Chain for LocalChain {
    fn current_block(&self) -> Result<u64> {
        Ok(self.state.block)
    }

    /// A deterministic hash per block: `sha256("arena-local-chain" ‖ block as u64 LE)`.
    fn block_hash(&self, block: u64) -> Result<String> {
        ensure!(
            block <= self.state.block,
            "block {block} is in the future (the chain is at {})",
            self.state.block
        );
        let mut h = Sha256::new();
        h.update(b"arena-local-chain");
        h.update(block.to_le_bytes());
        Ok(format!("0x{}", hex::encode(h.finalize())))
    }

    fn metagraph(&self, netuid: u16) -> Result<Metagraph> {
        let s = self.subnet(netuid)?;
        Ok(Metagraph {
            netuid,
            block: self.state.block,
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

    fn params(&self, netuid: u16) -> Result<SubnetParams> {
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

    fn commitments(&self, netuid: u16) -> Result<Vec<Commitment>> {
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

    fn weights(&self, netuid: u16) -> Result<super::WeightRows> {
        Ok(self.subnet(netuid)?.weights.iter().map(|(u, w)| (*u, w.clone())).collect())
    }

    /// Applies the call in the next block (nothing changes if the chain refuses it).
    fn submit(&mut self, signer: &wallet::Keypair, call: &Call) -> Result<Receipt> {
        let bytes = call.encode()?;
        let before = self.state.clone();
        self.state.block += 1;
        let applied = self.begin_block().and_then(|_| self.apply(&signer.ss58(), call));
        if let Err(e) = applied {
            self.state = before;
            return Err(e);
        }
        self.save()?;
        let block = self.state.block;
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
    LocalState { block: 0, subnets: BTreeMap::from([(netuid, subnet)]) }
}
