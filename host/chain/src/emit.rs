//! Setting weights as a validator must: the SDK's u16 conversion, the subnet's rate limit,
//! commit-reveal when the subnet asks for it (CRv4 timelocked commits where the runtime's
//! version is 4, else v2 commit then reveal), retries with backoff when the RPC fails, and a
//! journal on disk so that a validator restarted after a crash never submits twice for one
//! epoch (and still reveals what it committed). The journal lives wherever its
//! [`JournalStore`] keeps it: a JSON file for `arena chain set-weights`, or a store's table.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{Call, Chain, calls, crv4, wallet};

/// The nominal block time the SDK predicts reveal rounds with, in seconds.
pub const BLOCK_TIME: f64 = 12.0;

/// An error worth retrying (a dropped connection, a timeout), as opposed to the chain refusing
/// the call. Chain clients wrap transport failures in it.
#[derive(Debug, thiserror::Error)]
#[error("RPC: {0}")]
pub struct Transient(pub String);

/// Retries: `attempts` tries, sleeping `base · 2^k` between them.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 5, base: Duration::from_secs(2) }
    }
}

/// Runs `f` until it succeeds, fails with a non-transient error, or runs out of attempts,
/// sleeping (without blocking the runtime) between attempts.
pub async fn with_retry<T, F, Fut>(retry: Retry, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut k = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                if !backoff(retry, &mut k, &e).await {
                    return Err(e);
                }
            }
        }
    }
}

/// After the `k`-th failed attempt: sleeps and returns true when `e` is transient and attempts
/// remain, else returns false (the caller gives up with `e`).
async fn backoff(retry: Retry, k: &mut u32, e: &anyhow::Error) -> bool {
    if e.downcast_ref::<Transient>().is_none() || *k + 1 >= retry.attempts {
        return false;
    }
    let wait = retry.base.saturating_mul(2u32.saturating_pow(*k));
    tracing::warn!("{e:#}; retrying in {wait:?}");
    tokio::time::sleep(wait).await;
    *k += 1;
    true
}

/// What the journal remembers per (netuid, epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Entry {
    /// Written before the call is sent: after a crash the epoch is not tried again.
    Sending {
        block: u64,
    },
    Set {
        block: u64,
        id: String,
    },
    /// A v2 commit, with what its reveal needs.
    Committed {
        block: u64,
        id: String,
        uids: Vec<u16>,
        weights: Vec<u16>,
        salt: Vec<u16>,
        version_key: u64,
        reveal_epoch: u64,
    },
    Revealed {
        block: u64,
        id: String,
    },
    /// A CRv4 commit: the chain reveals it by itself at the drand round.
    Timelocked {
        block: u64,
        id: String,
        reveal_round: u64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// `"netuid/epoch"` → entry.
    pub entries: BTreeMap<String, Entry>,
}

impl Journal {
    /// The journal in a JSON file (an empty one if the file does not exist).
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let bytes = super::read_file(path, "the weight journal", 256 << 20)?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("the weight journal {} is not UTF-8", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing the weight journal {}", path.display()))
    }

    /// Writes the journal to a JSON file atomically (a temporary file, then a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing the weight journal {}", path.display()))
    }
}

/// Where the emitter keeps its journal. `save` must be durable before it returns: the emitter
/// saves an epoch's mark before it sends the epoch's call.
#[async_trait::async_trait]
pub trait JournalStore: Send {
    async fn load(&mut self) -> Result<Journal>;
    async fn save(&mut self, journal: &Journal) -> Result<()>;
}

/// The journal as a JSON file (what `arena chain set-weights --journal` uses).
#[derive(Debug, Clone)]
pub struct JournalFile(pub PathBuf);

#[async_trait::async_trait]
impl JournalStore for JournalFile {
    async fn load(&mut self) -> Result<Journal> {
        Journal::load(&self.0)
    }

    async fn save(&mut self, journal: &Journal) -> Result<()> {
        journal.save(&self.0)
    }
}

/// What one call of [`emit`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Set {
        block: u64,
        id: String,
    },
    Committed {
        block: u64,
        id: String,
        reveal_epoch: u64,
    },
    Revealed {
        block: u64,
        id: String,
        epoch: u64,
    },
    Timelocked {
        block: u64,
        id: String,
        reveal_round: u64,
    },
    /// Already done (or attempted before a crash) for this epoch.
    AlreadyDone {
        epoch: u64,
    },
    /// The rate limit allows the next update at this block.
    RateLimited {
        next_block: u64,
    },
    NothingToSet,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Set { block, id } => write!(f, "weights set in block {block} ({id})"),
            Outcome::Committed { block, id, reveal_epoch } => {
                write!(f, "weights committed in block {block} ({id}); revealed in epoch {reveal_epoch}")
            }
            Outcome::Revealed { block, id, epoch } => {
                write!(f, "weights of epoch {epoch} revealed in block {block} ({id})")
            }
            Outcome::Timelocked { block, id, reveal_round } => {
                write!(
                    f,
                    "weights committed timelocked in block {block} ({id}); the chain reveals them at drand round {reveal_round}"
                )
            }
            Outcome::AlreadyDone { epoch } => {
                write!(f, "nothing sent: epoch {epoch} was already handled (see the journal)")
            }
            Outcome::RateLimited { next_block } => {
                write!(f, "nothing sent: the rate limit allows the next update at block {next_block}")
            }
            Outcome::NothingToSet => write!(f, "nothing sent: no non-zero weight"),
        }
    }
}

/// A validator's weight setter for one subnet.
pub struct Emitter<'a> {
    pub chain: &'a mut dyn Chain,
    pub signer: &'a wallet::Keypair,
    pub netuid: u16,
    pub journal: &'a mut dyn JournalStore,
    pub retry: Retry,
}

impl Emitter<'_> {
    /// Reveals a due commit if there is one, else sets (or commits) `weights` once per epoch.
    pub async fn emit(&mut self, weights: &[(u16, u16)], version_key: u64) -> Result<Outcome> {
        let mut journal = self.journal.load().await?;
        let chain = &*self.chain;
        let netuid = self.netuid;
        let params = with_retry(self.retry, move || chain.params(netuid)).await?;
        let block = with_retry(self.retry, move || chain.current_block()).await?;
        let epoch = params.epoch_index;
        if let Some(out) = self.reveal_due(&mut journal, epoch).await? {
            return Ok(out);
        }
        let key = format!("{}/{epoch}", self.netuid);
        if journal.entries.contains_key(&key) {
            return Ok(Outcome::AlreadyDone { epoch });
        }
        if weights.is_empty() {
            return Ok(Outcome::NothingToSet);
        }
        let me = self.signer.ss58();
        let chain = &*self.chain;
        let meta = with_retry(self.retry, move || chain.metagraph(netuid)).await?;
        let neuron = meta
            .neurons
            .iter()
            .find(|n| n.hotkey == me)
            .with_context(|| format!("hotkey {me} is not registered on subnet {}", self.netuid))?;
        let next = neuron.last_update + params.weights_rate_limit;
        if block < next && neuron.last_update != neuron.block_at_registration {
            return Ok(Outcome::RateLimited { next_block: next });
        }
        let (uids, values): (Vec<u16>, Vec<u16>) = weights.iter().copied().unzip();
        let version_key = version_key.max(params.weights_version_key);
        journal.entries.insert(key.clone(), Entry::Sending { block });
        self.journal.save(&journal).await?;
        if params.commit_reveal && params.commit_reveal_version >= crv4::COMMIT_REVEAL_VERSION {
            let account = super::ss58::decode(&me)?;
            let now = crv4::now()?;
            let round = match &params.schedule {
                Some(s) => crv4::reveal_round(s, params.reveal_period_epochs, BLOCK_TIME, now)?,
                None => crv4::reveal_round_legacy(
                    block,
                    self.netuid,
                    params.tempo,
                    params.reveal_period_epochs,
                    BLOCK_TIME,
                    now,
                )?,
            };
            let commit = crv4::commit(&account, &uids, &values, version_key, round)?;
            let call = Call::CommitTimelockedWeights {
                netuid: self.netuid,
                mechanism: 0,
                commit,
                reveal_round: round,
                commit_reveal_version: params.commit_reveal_version,
            };
            let r = self.send(&mut journal, &key, &call).await?;
            journal
                .entries
                .insert(key, Entry::Timelocked { block: r.block, id: r.id.clone(), reveal_round: round });
            self.journal.save(&journal).await?;
            Ok(Outcome::Timelocked { block: r.block, id: r.id, reveal_round: round })
        } else if params.commit_reveal {
            let salt = random_salt()?;
            let account = super::ss58::decode(&me)?;
            let hash = calls::commit_hash(&account, self.netuid, 0, &uids, &values, &salt, version_key);
            let call = Call::CommitWeights { netuid: self.netuid, mechanism: 0, hash };
            let r = self.send(&mut journal, &key, &call).await?;
            // The commit counts in the epoch its block sees (one more if an epoch ran at it).
            let chain = &*self.chain;
            let at = with_retry(self.retry, move || chain.params(netuid)).await?.epoch_index;
            let reveal_epoch = at + params.reveal_period_epochs;
            journal.entries.insert(
                key,
                Entry::Committed {
                    block: r.block,
                    id: r.id.clone(),
                    uids,
                    weights: values,
                    salt,
                    version_key,
                    reveal_epoch,
                },
            );
            self.journal.save(&journal).await?;
            Ok(Outcome::Committed { block: r.block, id: r.id, reveal_epoch })
        } else {
            let call =
                Call::SetWeights { netuid: self.netuid, mechanism: 0, uids, weights: values, version_key };
            let r = self.send(&mut journal, &key, &call).await?;
            journal.entries.insert(key, Entry::Set { block: r.block, id: r.id.clone() });
            self.journal.save(&journal).await?;
            Ok(Outcome::Set { block: r.block, id: r.id })
        }
    }

    /// Settles the epochs a crash left in [`Entry::Sending`] (the process died between
    /// journaling an epoch and learning whether its call was included): if this hotkey's
    /// `last_update` has reached the journaled block, the call landed and the epoch is marked
    /// set; otherwise it did not, and the mark is removed so the epoch can be sent again. Returns
    /// one sentence per epoch settled. Call it once at start-up, before the first [`emit`].
    ///
    /// [`emit`]: Emitter::emit
    pub async fn reconcile(&mut self) -> Result<Vec<String>> {
        let mut journal = self.journal.load().await?;
        let prefix = format!("{}/", self.netuid);
        let sending: Vec<(String, u64)> = journal
            .entries
            .iter()
            .filter_map(|(k, e)| match e {
                Entry::Sending { block } if k.starts_with(&prefix) => Some((k.clone(), *block)),
                _ => None,
            })
            .collect();
        if sending.is_empty() {
            return Ok(vec![]);
        }
        let (chain, netuid) = (&*self.chain, self.netuid);
        let meta = with_retry(self.retry, move || chain.metagraph(netuid)).await?;
        let me = self.signer.ss58();
        let last_update = meta.neurons.iter().find(|n| n.hotkey == me).map(|n| n.last_update);
        let mut settled = Vec::new();
        for (key, block) in sending {
            let epoch = &key[prefix.len()..];
            match last_update {
                Some(last) if last >= block => {
                    journal.entries.insert(key.clone(), Entry::Set { block: last, id: "reconciled".into() });
                    settled.push(format!(
                        "epoch {epoch}: weights sent at block {block} landed (last update {last})"
                    ));
                }
                _ => {
                    journal.entries.remove(&key);
                    settled.push(format!(
                        "epoch {epoch}: weights sent at block {block} did not land; the epoch will be sent again"
                    ));
                }
            }
        }
        self.journal.save(&journal).await?;
        Ok(settled)
    }

    /// Submits with retries. When the chain refuses the call (not a transport failure), the
    /// call surely did not go in: the epoch's mark is removed so a later attempt may try again.
    /// After a transport failure the mark stays: the call may have been included.
    async fn send(&mut self, journal: &mut Journal, key: &str, call: &Call) -> Result<super::Receipt> {
        match self.submit(call).await {
            Ok(r) => Ok(r),
            Err(e) => {
                if e.downcast_ref::<Transient>().is_none() {
                    journal.entries.remove(key);
                    self.journal.save(journal).await?;
                }
                Err(e)
            }
        }
    }

    /// [`Chain::submit`] under the retry policy (as [`with_retry`], which cannot lend the
    /// chain mutably to each attempt).
    async fn submit(&mut self, call: &Call) -> Result<super::Receipt> {
        let mut k = 0;
        loop {
            match self.chain.submit(self.signer, call).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    if !backoff(self.retry, &mut k, &e).await {
                        return Err(e);
                    }
                }
            }
        }
    }

    async fn reveal_due(&mut self, journal: &mut Journal, epoch: u64) -> Result<Option<Outcome>> {
        let due = journal.entries.iter().find_map(|(k, e)| match e {
            Entry::Committed { reveal_epoch, .. }
                if *reveal_epoch == epoch && k.starts_with(&format!("{}/", self.netuid)) =>
            {
                Some((k.clone(), e.clone()))
            }
            _ => None,
        });
        let Some((key, Entry::Committed { uids, weights, salt, version_key, .. })) = due else {
            return Ok(None);
        };
        let call =
            Call::RevealWeights { netuid: self.netuid, mechanism: 0, uids, weights, salt, version_key };
        let r = self.submit(&call).await?;
        journal.entries.insert(key, Entry::Revealed { block: r.block, id: r.id.clone() });
        self.journal.save(journal).await?;
        Ok(Some(Outcome::Revealed { block: r.block, id: r.id, epoch }))
    }
}

/// Eight random u16s, as the SDK's salt.
fn random_salt() -> Result<Vec<u16>> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no randomness for the salt: {e}"))?;
    Ok(b.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
}
