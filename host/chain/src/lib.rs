//! The chain: what a validator reads (metagraph, commitments, hyperparameters, block hashes)
//! and writes (weights, commit-reveal, commitments), behind one interface with two
//! implementations: [`local::LocalChain`] (an embedded subnet state in a JSON file, for the
//! demo, the tests and subnet owners' simulations) and the subtensor client (feature
//! `subtensor`, on by default: subxt).

pub mod calls;
pub mod crv4;
pub mod emit;
pub mod local;
pub mod ss58;
#[cfg(feature = "subtensor")]
pub mod subtensor;
pub mod wallet;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use calls::Call;

/// One registered uid, as the metagraph gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neuron {
    pub uid: u16,
    /// SS58 addresses.
    pub hotkey: String,
    pub coldkey: String,
    /// Stake weight in rao (alpha stake plus TAO stake at the TAO weight).
    pub stake: u64,
    pub validator_permit: bool,
    pub active: bool,
    pub last_update: u64,
    pub block_at_registration: u64,
    /// The last epoch's results, as the chain stores them (u16 proportions, rao).
    pub consensus: u16,
    pub incentive: u16,
    pub dividends: u16,
    pub emission: u64,
}

/// The subnet hyperparameters a validator needs to set weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetParams {
    pub tempo: u16,
    pub weights_rate_limit: u64,
    pub weights_version_key: u64,
    pub commit_reveal: bool,
    /// Epochs between a commit and its reveal.
    pub reveal_period_epochs: u64,
    /// `SubnetEpochIndex`: the epochs the subnet has run (commit-reveal counts in these).
    pub epoch_index: u64,
    /// `CommitRevealWeightsVersion`: 4 is timelocked (CRv4, revealed by the chain), below is v2.
    pub commit_reveal_version: u16,
    /// The epoch scheduler's state, for predicting CRv4 reveal rounds (`None` on runtimes that
    /// count epochs by block).
    pub schedule: Option<crv4::EpochSchedule>,
    pub max_allowed_validators: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metagraph {
    pub netuid: u16,
    pub block: u64,
    pub neurons: Vec<Neuron>,
}

/// A hotkey's commitment, with the block it was published at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commitment {
    pub uid: Option<u16>,
    pub hotkey: String,
    pub block: u64,
    /// The first field as UTF-8 (as the SDK's `decode_metadata` reads it), or why not.
    pub data: Result<String, String>,
}

/// A subnet's stored weight rows: `(uid, [(dest, u16)])`.
pub type WeightRows = Vec<(u16, Vec<(u16, u16)>)>;

/// What a submitted call became.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The block that includes the call.
    pub block: u64,
    /// The extrinsic hash (`0x…`), or the local chain's id.
    pub id: String,
}

/// A chain: read paths at the current block, and signed calls. Async: the subtensor client
/// awaits its node, and the embedded chain does its (short, file-locked) work in place. The
/// caller owns the tokio runtime.
#[async_trait::async_trait]
pub trait Chain: Send + Sync {
    async fn current_block(&self) -> Result<u64>;
    /// The hash of a block, `0x…` as chain clients print it.
    async fn block_hash(&self, block: u64) -> Result<String>;
    async fn metagraph(&self, netuid: u16) -> Result<Metagraph>;
    async fn params(&self, netuid: u16) -> Result<SubnetParams>;
    /// Every commitment on the subnet.
    async fn commitments(&self, netuid: u16) -> Result<Vec<Commitment>>;
    /// Stored weight rows `(uid, [(dest, u16)])`.
    async fn weights(&self, netuid: u16) -> Result<WeightRows>;
    /// Signs `call` with the hotkey and submits it; returns once it is in a block.
    async fn submit(&mut self, signer: &wallet::Keypair, call: &Call) -> Result<Receipt>;
}

/// `finney`, `test`, `local` (a node on 127.0.0.1:9944) or a `ws://`/`wss://` URL.
pub fn endpoint(network: &str) -> Option<String> {
    match network {
        "finney" => Some("wss://entrypoint-finney.opentensor.ai:443".into()),
        "test" => Some("wss://test.finney.opentensor.ai:443".into()),
        "local" => Some("ws://127.0.0.1:9944".into()),
        url if url.starts_with("ws://") || url.starts_with("wss://") => Some(url.into()),
        _ => None,
    }
}

/// The bytes of a regular file of at most `limit` bytes: the chain state, the weight journal and
/// keyfiles are read through here, so a FIFO or a device given as one is refused with its kind
/// named instead of blocking or being read until memory runs out (arena-runtime's `files.rs`
/// does the same for the other inputs; this crate does not depend on it).
pub fn read_file(path: &std::path::Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("reading {what} {shown}: {e}"))?;
    let t = meta.file_type();
    let kind = if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else {
        None
    };
    if let Some(kind) = kind {
        anyhow::bail!("{what} {shown} is {kind}, not a regular file");
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| anyhow::anyhow!("reading {what} {shown}: {e}"))?;
    anyhow::ensure!(bytes.len() as u64 <= limit, "{what} {shown} is larger than {} MiB", limit >> 20);
    Ok(bytes)
}
