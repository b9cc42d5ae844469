//! CRv4 (timelocked weights) against bittensor-drand 2.0.0 and 1.3.0 (the SDK's own outputs,
//! `tests/reference/crv4_vectors.py` → `tests/fixtures/chain/crv4_vectors.json`) and drand
//! quicknet's published signatures for rounds 1000 and 2000.

use std::time::Duration;

use arena_chain::crv4::{self, EpochSchedule};
use serde_json::Value;

fn vectors() -> Value {
    let path = format!("{}/../../tests/fixtures/chain/crv4_vectors.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap().trim_start_matches("0x")).unwrap()
}

fn schedule(i: &Value) -> EpochSchedule {
    EpochSchedule {
        last_epoch_block: i["last_epoch_block"].as_u64().unwrap(),
        pending_epoch_at: i["pending_epoch_at"].as_u64().unwrap(),
        subnet_epoch_index: i["subnet_epoch_index"].as_u64().unwrap(),
        tempo: i["tempo"].as_u64().unwrap() as u16,
        blocks_since_last_step: i["blocks_since_last_step"].as_u64().unwrap(),
        current_block: i["current_block"].as_u64().unwrap(),
    }
}

fn now(i: &Value) -> Duration {
    Duration::from_nanos(i["now_unix_ns"].as_u64().unwrap())
}

#[test]
fn reveal_rounds_match_bittensor_drand() {
    let v = vectors();
    let cases = v["reveal_rounds"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    for c in cases {
        let i = &c["inputs"];
        let got = crv4::reveal_round(
            &schedule(i),
            i["subnet_reveal_period_epochs"].as_u64().unwrap(),
            i["block_time"].as_f64().unwrap(),
            now(i),
        );
        match c.get("sdk_reveal_round") {
            Some(want) => {
                assert_eq!(got.unwrap(), want.as_u64().unwrap(), "{}", c["name"]);
                if let Some(first) = c["port_intermediates"].get("first_reveal_block") {
                    let p = i["subnet_reveal_period_epochs"].as_u64().unwrap();
                    assert_eq!(
                        schedule(i).first_reveal_block(p).unwrap(),
                        first.as_u64().unwrap(),
                        "{}",
                        c["name"]
                    );
                }
            }
            None => assert!(got.unwrap_err().to_string().contains("tempo is 0"), "{}", c["name"]),
        }
    }
    for c in v["legacy_v1"]["cases"].as_array().unwrap() {
        let i = &c["inputs"];
        let got = crv4::reveal_round_legacy(
            i["current_block"].as_u64().unwrap(),
            i["netuid"].as_u64().unwrap() as u16,
            i["tempo"].as_u64().unwrap() as u16,
            i["subnet_reveal_period_epochs"].as_u64().unwrap(),
            i["block_time"].as_f64().unwrap(),
            now(i),
        )
        .unwrap();
        assert_eq!(got, c["sdk_reveal_round"].as_u64().unwrap(), "{}", c["name"]);
    }
}

/// Hands out recorded bytes in order: `fill_bytes` sequentially, `next_u64` as 8 LE bytes.
struct Replay(Vec<u8>, usize);

impl rand_core::RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.copy_from_slice(&self.0[self.1..self.1 + dest.len()]);
        self.1 += dest.len();
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for Replay {}

#[test]
fn sdk_commits_decrypt_and_replayed_entropy_reproduces_them() {
    let v = vectors();
    let mut replayed = 0;
    for c in v["commits"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let i = &c["inputs"];
        let hotkey: [u8; 32] = unhex(&i["hotkey"]).try_into().unwrap();
        let uids: Vec<u16> = serde_json::from_value(i["uids"].clone()).unwrap();
        let values: Vec<u16> = serde_json::from_value(i["values"].clone()).unwrap();
        let payload = crv4::payload(&hotkey, &uids, &values, i["version_key"].as_u64().unwrap());
        assert_eq!(payload, unhex(&c["decrypted_payload_hex"]), "{name}: payload");
        // The round the SDK chose from the pinned clock, and the chain's decryption of its bytes.
        assert_eq!(
            crv4::reveal_round(
                &schedule(i),
                i["subnet_reveal_period_epochs"].as_u64().unwrap(),
                i["block_time"].as_f64().unwrap(),
                now(i)
            )
            .unwrap(),
            c["reveal_round"].as_u64().unwrap(),
            "{name}"
        );
        let commit = unhex(&c["commit_hex"]);
        assert_eq!(commit.len(), payload.len() + 244);
        assert_eq!(
            crv4::decrypt(&commit, &unhex(&c["drand_signature"])).unwrap(),
            payload,
            "{name}: decryption"
        );
        // Byte for byte, given the SDK's random bytes.
        if let Some(bytes) = c["replayed_entropy"].get("bytes_used") {
            let mut rng = Replay(unhex(bytes), 0);
            let ours = crv4::encrypt(&payload, c["reveal_round"].as_u64().unwrap(), &mut rng).unwrap();
            assert_eq!(hex::encode(&ours), hex::encode(&commit), "{name}: replayed encryption");
            replayed += 1;
        }
    }
    assert_eq!(replayed, 2);
    // A bittensor-drand 1.3.0 commit decrypts too (same format).
    let old = &v["legacy_v1"]["round1000"];
    let sig = unhex(&v["quicknet"]["known_rounds"]["1000"]["signature"]);
    assert_eq!(
        crv4::decrypt(&unhex(&old["commit_hex"]), &sig).unwrap(),
        unhex(&old["decrypted_payload_hex"])
    );
}

#[test]
fn our_commits_decrypt_with_the_round_signature_only() {
    let v = vectors();
    let sig1000 = unhex(&v["quicknet"]["known_rounds"]["1000"]["signature"]);
    let sig2000 = unhex(&v["quicknet"]["known_rounds"]["2000"]["signature"]);
    let payload = crv4::payload(&[7; 32], &[0, 3, 9], &[65535, 100, 7], 42);
    let ct = crv4::encrypt(&payload, 1000, &mut rand_core::OsRng).unwrap();
    assert_eq!(crv4::decrypt(&ct, &sig1000).unwrap(), payload);
    assert!(crv4::decrypt(&ct, &sig2000).is_err(), "another round's signature must not decrypt");
    assert!(crv4::decrypt(&ct[..ct.len() - 1], &sig1000).is_err());
    // Two encryptions differ (fresh randomness) but both decrypt.
    let again = crv4::encrypt(&payload, 1000, &mut rand_core::OsRng).unwrap();
    assert_ne!(again, ct);
    // The chain's 5000-byte bound: 1177 uids fit with a 32-byte hotkey, 1178 do not.
    let uids: Vec<u16> = (0..1178).collect();
    assert!(crv4::commit(&[1; 32], &uids[..1177], &uids[..1177], 1, 5).is_ok());
    assert!(crv4::commit(&[1; 32], &uids, &uids, 1, 5).unwrap_err().to_string().contains("5000"));
}
