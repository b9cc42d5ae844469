//! SS58 addresses (Substrate's base58 with a blake2b-512 checksum), format 42 as bittensor
//! uses for every key.

use anyhow::{Result, bail, ensure};
use blake2::{Blake2b512, Digest};

/// bittensor's (and generic Substrate's) address format.
pub const FORMAT: u16 = 42;

fn checksum(payload: &[u8]) -> [u8; 2] {
    let mut h = Blake2b512::new();
    h.update(b"SS58PRE");
    h.update(payload);
    let d = h.finalize();
    [d[0], d[1]]
}

/// The address of a 32-byte public key.
pub fn encode(public: &[u8; 32]) -> String {
    encode_with(public, FORMAT)
}

pub fn encode_with(public: &[u8; 32], format: u16) -> String {
    let mut payload = if format < 64 {
        vec![format as u8]
    } else {
        // Two-byte form for formats 64..16383.
        let first = (((format & 0b0000_0000_1111_1100) as u8) >> 2) | 0b0100_0000;
        let second = ((format >> 8) as u8) | (((format & 0b0000_0000_0000_0011) as u8) << 6);
        vec![first, second]
    };
    payload.extend_from_slice(public);
    let c = checksum(&payload);
    payload.extend_from_slice(&c);
    bs58::encode(payload).into_string()
}

/// The public key of a format-42 address (the SDK's `is_valid_ss58_address`); the checksum is
/// verified.
pub fn decode(address: &str) -> Result<[u8; 32]> {
    let (format, key) = decode_any(address)?;
    ensure!(format == FORMAT, "{address:?} is an SS58 address of format {format}; bittensor uses {FORMAT}");
    Ok(key)
}

/// The format and public key of an address of any format.
pub fn decode_any(address: &str) -> Result<(u16, [u8; 32])> {
    let bytes =
        bs58::decode(address).into_vec().map_err(|e| anyhow::anyhow!("{address:?} is not base58: {e}"))?;
    let prefix_len = match bytes.first() {
        Some(b) if *b < 64 => 1,
        Some(b) if *b < 128 => 2,
        _ => bail!("{address:?} is not an SS58 address"),
    };
    ensure!(bytes.len() == prefix_len + 32 + 2, "{address:?} is not an SS58 address of a 32-byte key");
    let (payload, sum) = bytes.split_at(prefix_len + 32);
    ensure!(checksum(payload) == sum, "{address:?}: bad SS58 checksum");
    let format = if prefix_len == 1 {
        payload[0] as u16
    } else {
        (((payload[0] & 0b0011_1111) as u16) << 2)
            | ((payload[1] >> 6) as u16)
            | (((payload[1] & 0b0011_1111) as u16) << 8)
    };
    Ok((format, payload[prefix_len..].try_into().expect("32 bytes")))
}
