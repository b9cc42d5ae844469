//! Round seeds from the chain: the sync block of a block, and the seed from its hash.

use sha2::{Digest, Sha256};

use crate::config::SeedPolicy;

/// The sync block a round at `block` is seeded from (SN37: `(block - genesis) / cadence *
/// cadence + genesis`); `None` for a fixed seed, or a block before genesis.
pub fn sync_block(policy: &SeedPolicy, block: u64) -> Option<u64> {
    match *policy {
        SeedPolicy::SyncBlockHash { cadence, genesis } => {
            block.checked_sub(genesis).map(|d| d / cadence * cadence + genesis)
        }
        SeedPolicy::Fixed { .. } => None,
    }
}

/// The 256-bit seed of taoverse: `sha256(block_hash_hex_string.encode())`, as the big-endian
/// digest. `block_hash` is the hash as the chain client prints it (`0x…`).
pub fn seed_digest(block_hash: &str) -> [u8; 32] {
    Sha256::digest(block_hash.as_bytes()).into()
}

/// The u64 handed to plugins: the low 64 bits of the 256-bit seed (`int(hexdigest, 16) % 2**64`),
/// or the fixed value.
pub fn plugin_seed(policy: &SeedPolicy, block_hash: Option<&str>) -> Option<u64> {
    match *policy {
        SeedPolicy::Fixed { value } => Some(value),
        SeedPolicy::SyncBlockHash { .. } => {
            let digest = seed_digest(block_hash?);
            Some(u64::from_be_bytes(digest[24..].try_into().expect("8 bytes")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_block_follows_cadence_and_genesis() {
        let sn37 = SeedPolicy::SyncBlockHash { cadence: 360, genesis: 3_138_611 };
        assert_eq!(sync_block(&sn37, 3_138_611), Some(3_138_611));
        assert_eq!(sync_block(&sn37, 3_138_970), Some(3_138_611));
        assert_eq!(sync_block(&sn37, 3_138_971), Some(3_138_971));
        assert_eq!(sync_block(&sn37, 100), None);
        let sn9 = SeedPolicy::SyncBlockHash { cadence: 150, genesis: 0 };
        assert_eq!(sync_block(&sn9, 5_000_149), Some(5_000_100));
        assert_eq!(sync_block(&SeedPolicy::Fixed { value: 7 }, 10), None);
    }

    #[test]
    fn seed_is_sha256_of_the_hash_string() {
        // python3 -c "import hashlib;print(int(hashlib.sha256(b'0xabc').hexdigest(),16) % 2**64)"
        let policy = SeedPolicy::SyncBlockHash { cadence: 360, genesis: 0 };
        assert_eq!(plugin_seed(&policy, Some("0xabc")), Some(PY_SEED_0XABC));
        assert_eq!(plugin_seed(&SeedPolicy::Fixed { value: 7 }, None), Some(7));
    }

    const PY_SEED_0XABC: u64 = 11_902_543_835_707_918_576;
}
