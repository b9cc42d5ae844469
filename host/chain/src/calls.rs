//! The subtensor extrinsics arena submits, and their SCALE call data.
//!
//! Pallet and call indices are those of finney's runtime (unchanged since spec 219; checked in
//! metadata of specs 365 and 393): `SubtensorModule` is pallet 7, `Commitments` pallet 18.
//! The encoding here is written by hand from the call signatures in
//! `pallets/subtensor/src/macros/dispatches.rs`, so golden bytes can be checked without a node;
//! the subxt client encodes the same calls from the chain's own metadata.

use anyhow::{Result, ensure};
use parity_scale_codec::{Compact, Encode};
use serde::Serialize;

pub const SUBTENSOR_PALLET: u8 = 7;
pub const COMMITMENTS_PALLET: u8 = 18;

/// One call, with the arguments the chain takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// `set_weights` (7/0), or `set_mechanism_weights` (7/119) for a mechanism other than 0.
    SetWeights { netuid: u16, mechanism: u8, uids: Vec<u16>, weights: Vec<u16>, version_key: u64 },
    /// `commit_weights` (7/96) / `commit_mechanism_weights` (7/115): a v2 hash.
    CommitWeights { netuid: u16, mechanism: u8, hash: [u8; 32] },
    /// `reveal_weights` (7/97) / `reveal_mechanism_weights` (7/116).
    RevealWeights {
        netuid: u16,
        mechanism: u8,
        uids: Vec<u16>,
        weights: Vec<u16>,
        salt: Vec<u16>,
        version_key: u64,
    },
    /// `commit_timelocked_weights` (7/113) / `commit_timelocked_mechanism_weights` (7/118): CRv4.
    CommitTimelockedWeights {
        netuid: u16,
        mechanism: u8,
        commit: Vec<u8>,
        reveal_round: u64,
        commit_reveal_version: u16,
    },
    /// `Commitments::set_commitment` (18/0) with one `Raw` field.
    SetCommitment { netuid: u16, data: Vec<u8> },
}

impl Call {
    /// `(pallet, call)` names as in the runtime metadata.
    pub fn name(&self) -> (&'static str, &'static str) {
        let mech = |m: u8, plain: &'static str, mech: &'static str| if m == 0 { plain } else { mech };
        match self {
            Call::SetWeights { mechanism, .. } => {
                ("SubtensorModule", mech(*mechanism, "set_weights", "set_mechanism_weights"))
            }
            Call::CommitWeights { mechanism, .. } => {
                ("SubtensorModule", mech(*mechanism, "commit_weights", "commit_mechanism_weights"))
            }
            Call::RevealWeights { mechanism, .. } => {
                ("SubtensorModule", mech(*mechanism, "reveal_weights", "reveal_mechanism_weights"))
            }
            Call::CommitTimelockedWeights { mechanism, .. } => (
                "SubtensorModule",
                mech(*mechanism, "commit_timelocked_weights", "commit_timelocked_mechanism_weights"),
            ),
            Call::SetCommitment { .. } => ("Commitments", "set_commitment"),
        }
    }

    /// The subnet the call is for.
    pub fn netuid(&self) -> u16 {
        match self {
            Call::SetWeights { netuid, .. }
            | Call::CommitWeights { netuid, .. }
            | Call::RevealWeights { netuid, .. }
            | Call::CommitTimelockedWeights { netuid, .. }
            | Call::SetCommitment { netuid, .. } => *netuid,
        }
    }

    /// The mechanism the call is for (0 for commitments).
    pub fn mechanism(&self) -> u8 {
        match self {
            Call::SetWeights { mechanism, .. }
            | Call::CommitWeights { mechanism, .. }
            | Call::RevealWeights { mechanism, .. }
            | Call::CommitTimelockedWeights { mechanism, .. } => *mechanism,
            Call::SetCommitment { .. } => 0,
        }
    }

    /// The call's SCALE bytes: pallet index, call index, arguments.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Call::SetWeights { netuid, mechanism, uids, weights, version_key } => {
                ensure!(uids.len() == weights.len(), "{} uids but {} weights", uids.len(), weights.len());
                out.extend([SUBTENSOR_PALLET, if *mechanism == 0 { 0 } else { 119 }]);
                netuid.encode_to(&mut out);
                if *mechanism != 0 {
                    mechanism.encode_to(&mut out);
                }
                (uids, weights, version_key).encode_to(&mut out);
            }
            Call::CommitWeights { netuid, mechanism, hash } => {
                out.extend([SUBTENSOR_PALLET, if *mechanism == 0 { 96 } else { 115 }]);
                netuid.encode_to(&mut out);
                if *mechanism != 0 {
                    mechanism.encode_to(&mut out);
                }
                hash.encode_to(&mut out);
            }
            Call::RevealWeights { netuid, mechanism, uids, weights, salt, version_key } => {
                ensure!(uids.len() == weights.len(), "{} uids but {} weights", uids.len(), weights.len());
                out.extend([SUBTENSOR_PALLET, if *mechanism == 0 { 97 } else { 116 }]);
                netuid.encode_to(&mut out);
                if *mechanism != 0 {
                    mechanism.encode_to(&mut out);
                }
                (uids, weights, salt, version_key).encode_to(&mut out);
            }
            Call::CommitTimelockedWeights {
                netuid,
                mechanism,
                commit,
                reveal_round,
                commit_reveal_version,
            } => {
                ensure!(
                    commit.len() <= 5000,
                    "a timelocked commit holds at most 5000 bytes; this one has {}",
                    commit.len()
                );
                out.extend([SUBTENSOR_PALLET, if *mechanism == 0 { 113 } else { 118 }]);
                netuid.encode_to(&mut out);
                if *mechanism != 0 {
                    mechanism.encode_to(&mut out);
                }
                (commit, reveal_round, commit_reveal_version).encode_to(&mut out);
            }
            Call::SetCommitment { netuid, data } => {
                out.extend([COMMITMENTS_PALLET, 0]);
                netuid.encode_to(&mut out);
                // CommitmentInfo { fields: BoundedVec<Data, 3> } with one field.
                Compact(1u32).encode_to(&mut out);
                out.extend(raw_data(data)?);
            }
        }
        Ok(out)
    }
}

/// The commitments pallet's `Data::Raw` encoding: tag `1 + len`, then the bytes (≤ 128).
pub fn raw_data(bytes: &[u8]) -> Result<Vec<u8>> {
    ensure!(
        bytes.len() <= 128,
        "a Raw commitment field holds at most 128 bytes; this one has {}",
        bytes.len()
    );
    let mut out = vec![1 + bytes.len() as u8];
    out.extend_from_slice(bytes);
    Ok(out)
}

/// Reads a `Data` field back: `Raw` gives its bytes; the other variants are named.
pub fn decode_data(bytes: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let Some(&tag) = bytes.first() else { return Err("empty commitment field".into()) };
    match tag {
        0 => Ok((Vec::new(), 1)),
        1..=129 => {
            let len = (tag - 1) as usize;
            let body = bytes.get(1..1 + len).ok_or("truncated Raw field")?;
            Ok((body.to_vec(), 1 + len))
        }
        130..=133 => {
            Err("a hash commitment field (BlakeTwo256/Sha256/Keccak256/ShaThree256), not a string".into())
        }
        134 => Err("a timelock-encrypted field, not yet revealed".into()),
        135 => Err("a ResetBondsFlag field".into()),
        136 => Err("a BigRaw field".into()),
        t => Err(format!("unknown commitment field tag {t}")),
    }
}

/// The v2 commit-reveal hash, as the chain checks it (`get_commit_hash`) and the SDK computes it
/// (`generate_weight_hash`): BlakeTwo256 of `SCALE(account, netuid_index, uids, values, salt,
/// version_key)`, where `netuid_index = mechanism · 4096 + netuid`.
pub fn commit_hash(
    account: &[u8; 32],
    netuid: u16,
    mechanism: u8,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    use blake2::digest::{Update, VariableOutput};
    let index = (mechanism as u16).wrapping_mul(4096).wrapping_add(netuid);
    let bytes = (account, index, uids.to_vec(), values.to_vec(), salt.to_vec(), version_key).encode();
    let mut h = blake2::Blake2bVar::new(32).expect("32 is a valid blake2b length");
    h.update(&bytes);
    let mut out = [0u8; 32];
    h.finalize_variable(&mut out).expect("32 bytes");
    out
}
