//! Commit-reveal v4: weights committed encrypted to a future drand quicknet round
//! (`commit_timelocked_weights`), which the chain decrypts and applies by itself once that
//! round's signature is on chain. Done as bittensor-drand 2.0.0 does it for the SDK:
//!
//! - the payload is `SCALE(WeightsTlockPayload { hotkey: Vec<u8>, uids, values, version_key })`;
//! - it is encrypted with the `timelock` crate (the code subtensor itself decrypts with: Boneh–
//!   Franklin IBE over BLS12-381, identity `sha256(round as u64 big-endian)`, AES-256-GCM body)
//!   under drand quicknet's public key, and ark-serialized compressed;
//! - the reveal round is the drand round due a few blocks after the first block of the reveal
//!   epoch, predicted by simulating the chain's stateful epoch scheduler (or, for runtimes
//!   without it, the older block formula), at a nominal block time.
//!
//! Facts and vectors: `tests/fixtures/chain/crv4_notes.md`, `crv4_vectors.json`.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use parity_scale_codec::Encode;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use timelock::curves::drand::TinyBLS381;
use timelock::ibe::fullident::Identity;
use timelock::stream_ciphers::AESGCMStreamCipherProvider;
use timelock::tlock::{EngineBLS, TLECiphertext, tld, tle};

/// drand quicknet (`bls-unchained-g1-rfc9380`): public key (G2, compressed), genesis, period.
pub const QUICKNET_PUBLIC_KEY: &str = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a";
pub const GENESIS_TIME: u64 = 1_692_803_367;
pub const PERIOD_SECS: u64 = 3;
/// Blocks after the first reveal block at which the round should be available.
pub const SECURITY_BLOCK_OFFSET: u64 = 3;
pub const MAX_TEMPO: u64 = 50_400;
/// The chain's bound on a timelocked commit.
pub const MAX_COMMIT_BYTES: usize = 5000;
pub const COMMIT_REVEAL_VERSION: u16 = 4;

/// The chain's epoch-scheduler state at the current block (storage `LastEpochBlock`,
/// `PendingEpochAt`, `SubnetEpochIndex`, `Tempo`, `BlocksSinceLastStep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochSchedule {
    pub last_epoch_block: u64,
    pub pending_epoch_at: u64,
    pub subnet_epoch_index: u64,
    pub tempo: u16,
    pub blocks_since_last_step: u64,
    pub current_block: u64,
}

impl EpochSchedule {
    /// subtensor's `should_run_epoch` at block `b`.
    fn epoch_fires(&self, b: u64) -> bool {
        if self.tempo == 0 {
            return false;
        }
        (self.pending_epoch_at > 0 && b >= self.pending_epoch_at)
            || self.blocks_since_last_step > MAX_TEMPO
            || b.saturating_sub(self.last_epoch_block) >= self.tempo as u64
    }

    /// `current_epoch_with_lookahead`: the epoch a call in block `b` counts in.
    fn epoch_at(&self, b: u64) -> u64 {
        self.subnet_epoch_index.saturating_add(self.epoch_fires(b) as u64)
    }

    /// The chain's block step, as far as the scheduler goes.
    fn step(&mut self, b: u64) {
        self.blocks_since_last_step = self.blocks_since_last_step.saturating_add(1);
        self.current_block = b;
        if self.epoch_fires(b) {
            self.last_epoch_block = b;
            self.pending_epoch_at = 0;
            self.subnet_epoch_index = self.subnet_epoch_index.saturating_add(1);
            self.blocks_since_last_step = 0;
        }
    }

    /// The first block of the epoch `reveal_period` after that of a commit included in the
    /// next block.
    pub fn first_reveal_block(&self, reveal_period: u64) -> Result<u64> {
        ensure!(self.tempo != 0, "the subnet's tempo is 0: it runs no epochs, so nothing is ever revealed");
        let included = self.current_block.checked_add(1).context("the block number overflows")?;
        let target = self
            .epoch_at(included)
            .checked_add(reveal_period)
            .context("the reveal epoch overflows the epoch index")?;
        let mut state = *self;
        let bound = reveal_period.saturating_mul(MAX_TEMPO).saturating_add(MAX_TEMPO);
        for b in included..=included.saturating_add(bound) {
            if state.epoch_at(b) == target {
                return Ok(b);
            }
            state.step(b);
        }
        bail!("no reveal epoch within {bound} blocks")
    }
}

/// The drand round due `blocks` blocks from now at `block_time` seconds a block.
fn round_after(blocks: u64, block_time: f64, now: Duration) -> u64 {
    let secs = blocks as f64 * block_time;
    let round = ((now.as_secs_f64() + secs - GENESIS_TIME as f64) / PERIOD_SECS as f64).floor() as u64;
    round.max(1)
}

/// bittensor-drand 2.0.0's reveal round for a commit sent now.
pub fn reveal_round(
    schedule: &EpochSchedule,
    reveal_period: u64,
    block_time: f64,
    now: Duration,
) -> Result<u64> {
    let first = schedule.first_reveal_block(reveal_period)?;
    Ok(round_after(
        first.saturating_add(SECURITY_BLOCK_OFFSET).saturating_sub(schedule.current_block),
        block_time,
        now,
    ))
}

/// bittensor-drand ≤ 1.3's reveal round, for runtimes that count epochs by
/// `(block + netuid + 1) / (tempo + 1)`.
pub fn reveal_round_legacy(
    current_block: u64,
    netuid: u16,
    tempo: u16,
    reveal_period: u64,
    block_time: f64,
    now: Duration,
) -> Result<u64> {
    let (n, t) = (netuid as u64 + 1, tempo as u64 + 1);
    let epoch = current_block.checked_add(n).context("the block number overflows")? / t;
    let first = epoch
        .checked_add(reveal_period)
        .and_then(|e| e.checked_mul(t))
        .context("the reveal block overflows the block number")?
        .saturating_sub(n);
    Ok(round_after(
        first.saturating_add(SECURITY_BLOCK_OFFSET).saturating_sub(current_block),
        block_time,
        now,
    ))
}

/// `SCALE(WeightsTlockPayload { hotkey, uids, values, version_key })`.
pub fn payload(hotkey: &[u8; 32], uids: &[u16], values: &[u16], version_key: u64) -> Vec<u8> {
    (hotkey.to_vec(), uids.to_vec(), values.to_vec(), version_key).encode()
}

fn identity(round: u64) -> Identity {
    Identity::new(b"", vec![Sha256::digest(round.to_be_bytes()).to_vec()])
}

/// Encrypts `message` to drand quicknet `round`: a 32-byte key from `rng`, then the IBE and
/// AES-GCM draws from `rng`, as bittensor-drand does. Returns the chain's ciphertext bytes.
pub fn encrypt<R: RngCore + CryptoRng>(message: &[u8], round: u64, rng: &mut R) -> Result<Vec<u8>> {
    let pk_bytes = hex::decode(QUICKNET_PUBLIC_KEY).expect("constant hex");
    let pk = <TinyBLS381 as EngineBLS>::PublicKeyGroup::deserialize_compressed(&pk_bytes[..])
        .map_err(|e| anyhow!("drand public key: {e}"))?;
    let mut esk = [0u8; 32];
    rng.fill_bytes(&mut esk);
    let ct = tle::<TinyBLS381, AESGCMStreamCipherProvider, _>(pk, esk, message, identity(round), rng)
        .map_err(|e| anyhow!("timelock encryption: {e:?}"))?;
    let mut out = Vec::new();
    ct.serialize_compressed(&mut out).map_err(|e| anyhow!("serializing the ciphertext: {e}"))?;
    Ok(out)
}

/// Decrypts a ciphertext with a round's drand signature (G1, 48 bytes), as the chain does.
pub fn decrypt(ciphertext: &[u8], signature: &[u8]) -> Result<Vec<u8>> {
    let ct = TLECiphertext::<TinyBLS381>::deserialize_compressed(ciphertext)
        .map_err(|e| anyhow!("not a timelock ciphertext: {e}"))?;
    let sig = <TinyBLS381 as EngineBLS>::SignatureGroup::deserialize_compressed(signature)
        .map_err(|e| anyhow!("not a drand signature: {e}"))?;
    tld::<TinyBLS381, AESGCMStreamCipherProvider>(ct, sig).map_err(|e| anyhow!("decryption failed: {e:?}"))
}

/// The `commit_timelocked_weights` arguments for weights set now.
pub fn commit(
    hotkey: &[u8; 32],
    uids: &[u16],
    values: &[u16],
    version_key: u64,
    round: u64,
) -> Result<Vec<u8>> {
    let ct = encrypt(&payload(hotkey, uids, values, version_key), round, &mut rand_core::OsRng)?;
    ensure!(
        ct.len() <= MAX_COMMIT_BYTES,
        "the encrypted weights take {} bytes; the chain takes at most {MAX_COMMIT_BYTES} (about 1177 uids)",
        ct.len()
    );
    Ok(ct)
}

/// The wall clock, as the SDK reads it.
pub fn now() -> Result<Duration> {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).context("the clock is before 1970")
}
