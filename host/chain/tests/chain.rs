//! The chain layer against the bittensor SDK's own outputs (`tests/reference/chain_vectors.py`
//! → `tests/fixtures/chain/sdk_vectors.json`, bittensor 10.5.0 and bittensor-wallet 4.1.1),
//! golden SCALE call data, commitment formats, and the embedded chain end to end.

use std::collections::BTreeMap;

use arena_chain::emit::{
    Emitter, Entry, Journal, JournalFile, JournalStore, Outcome, Retry, Transient, with_retry,
};
use arena_chain::local::{self, LocalChain};
use arena_chain::wallet::{self, KeyfileData, Keypair, Wallet};
use arena_chain::{Call, Chain, calls, ss58};
use arena_core::commitment::{self, Format, ModelCommitment};
use base64::Engine;
use serde_json::Value;

fn vectors() -> Value {
    let path = format!("{}/../../tests/fixtures/chain/sdk_vectors.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

#[test]
fn golden_call_data() {
    // The vectors (subxt over finney metadata, and scalecodec over BitGo's V14 metadata,
    // produce the same bytes).
    let set = Call::SetWeights {
        netuid: 1,
        mechanism: 0,
        uids: vec![0, 5],
        weights: vec![65535, 32768],
        version_key: 2000,
    };
    assert_eq!(hex::encode(set.encode().unwrap()), "07000100080000050008ffff0080d007000000000000");
    let commit = Call::SetCommitment { netuid: 1, data: b"hello".to_vec() };
    assert_eq!(hex::encode(commit.encode().unwrap()), "12000100040668656c6c6f");
    // commit_weights(netuid 3, H256 0x11…) = 7/96, u16, 32 bytes.
    let c = Call::CommitWeights { netuid: 3, mechanism: 0, hash: [0x11; 32] };
    assert_eq!(hex::encode(c.encode().unwrap()), format!("0760{}{}", "0300", "11".repeat(32)));
    // reveal_weights: 7/97, netuid, uids, values, salt, version_key.
    let r = Call::RevealWeights {
        netuid: 2,
        mechanism: 0,
        uids: vec![1],
        weights: vec![7],
        salt: vec![9, 10],
        version_key: 1,
    };
    assert_eq!(
        hex::encode(r.encode().unwrap()),
        ["0761", "0200", "040100", "040700", "0809000a00", "0100000000000000"].concat()
    );
    // A mechanism other than 0 uses the mechanism calls with the MechId byte after the netuid.
    let m = Call::SetWeights { netuid: 1, mechanism: 1, uids: vec![0], weights: vec![1], version_key: 0 };
    assert_eq!(
        hex::encode(m.encode().unwrap()),
        ["0777", "0100", "01", "040000", "040100", "0000000000000000"].concat()
    );
    // Bounded sizes are refused before anything is sent.
    assert!(Call::SetCommitment { netuid: 1, data: vec![b'a'; 129] }.encode().is_err());
    assert!(
        Call::SetWeights { netuid: 1, mechanism: 0, uids: vec![0, 1], weights: vec![1], version_key: 0 }
            .encode()
            .is_err()
    );
    assert_eq!(calls::decode_data(&calls::raw_data(b"abc").unwrap()).unwrap(), (b"abc".to_vec(), 4));
    assert!(calls::decode_data(&[134, 0]).unwrap_err().contains("timelock"));
}

#[test]
fn commit_hash_matches_the_sdk() {
    let v = vectors();
    let cases = v["commit_hash_v2"]["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let account = ss58::decode(c["address"].as_str().unwrap()).unwrap();
        let u16s = |k: &str| serde_json::from_value::<Vec<u16>>(c[k].clone()).unwrap();
        let got = calls::commit_hash(
            &account,
            c["netuid"].as_u64().unwrap() as u16,
            c["mechid"].as_u64().unwrap() as u8,
            &u16s("uids"),
            &u16s("values"),
            &u16s("salt"),
            c["version_key"].as_u64().unwrap(),
        );
        assert_eq!(format!("0x{}", hex::encode(got)), c["hash"].as_str().unwrap(), "{}", c["name"]);
    }
}

#[test]
fn weight_conversion_matches_the_sdk() {
    let v = vectors();
    let mut checked = 0;
    for c in v["weights"]["convert_weights_and_uids_for_emit"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let uids: Vec<i64> = serde_json::from_value(c["uids"]["values"].clone()).unwrap();
        let weights: Vec<f64> = if c["weights"]["dtype"] == "float32" {
            c["weights"]["f32_bits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| f32::from_bits(b.as_u64().unwrap() as u32) as f64)
                .collect()
        } else {
            c["weights"]["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN))
                .collect()
        };
        if uids.len() != weights.len() || uids.iter().any(|u| *u < 0) || uids.is_empty() {
            assert!(c.get("error").is_some(), "{name}: the SDK accepted it");
            continue;
        }
        // Unsorted uids keep their order in the SDK; arena keys weights by uid.
        let map: BTreeMap<u16, f64> = uids.iter().map(|u| *u as u16).zip(weights.iter().copied()).collect();
        let got = arena_core::scoring::to_u16(&map);
        match c.get("error") {
            Some(e) => assert!(got.is_err(), "{name}: SDK error {e}, arena gave {got:?}"),
            None => {
                let mut want: Vec<(u16, u16)> = serde_json::from_value::<Vec<u16>>(c["out_uids"].clone())
                    .unwrap()
                    .into_iter()
                    .zip(serde_json::from_value::<Vec<u16>>(c["out_values"].clone()).unwrap())
                    .collect();
                want.sort();
                assert_eq!(got.unwrap(), want, "{name}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "{checked}");
}

#[test]
fn keys_addresses_and_signatures_match_the_sdk() {
    let v = vectors();
    for enc in v["ss58"]["encode"].as_array().unwrap() {
        let pk: [u8; 32] = unhex(enc["public_key_hex"].as_str().unwrap()).try_into().unwrap();
        assert_eq!(ss58::encode(&pk), enc["address"].as_str().unwrap());
        assert_eq!(ss58::decode(enc["address"].as_str().unwrap()).unwrap(), pk);
    }
    for (addr, valid) in v["ss58"]["is_valid_ss58_address"].as_object().unwrap() {
        assert_eq!(ss58::decode(addr).is_ok(), valid.as_bool().unwrap(), "{addr}");
    }
    let mut sr = 0;
    for k in v["keypairs"].as_array().unwrap() {
        if k["crypto_type"] != 1 {
            continue; // ed25519 keys are not used by validators or miners
        }
        sr += 1;
        let name = k["name"].as_str().unwrap();
        let data: KeyfileData = serde_json::from_value(k["keyfile_json"].clone()).unwrap();
        let pair = data.keypair().unwrap();
        assert_eq!(hex::encode(pair.public()), k["public_key_hex"].as_str().unwrap(), "{name}");
        assert_eq!(pair.ss58(), k["ss58_address"].as_str().unwrap(), "{name}");
        // Each secret on its own gives the same key.
        let seed: [u8; 32] = unhex(k["secret_seed"].as_str().unwrap()).try_into().unwrap();
        assert_eq!(Keypair::from_seed(&seed).unwrap().public(), pair.public());
        assert_eq!(
            Keypair::from_secret(&unhex(k["private_key_hex"].as_str().unwrap())).unwrap().public(),
            pair.public()
        );
        if let Some(phrase) = k["keyfile_json"]["secretPhrase"].as_str() {
            assert_eq!(Keypair::from_phrase(phrase, "").unwrap().public(), pair.public());
        }
        // The SDK's signature verifies here, ours verifies and a tampered message does not.
        let msg = unhex(k["signature"]["message_hex"].as_str().unwrap());
        let sig = unhex(k["signature"]["signature_hex"].as_str().unwrap());
        assert!(wallet::verify(&pair.public(), &msg, &sig), "{name}: SDK signature");
        let ours = pair.sign(&msg);
        assert!(wallet::verify(&pair.public(), &msg, &ours));
        assert!(!wallet::verify(&pair.public(), b"tampered", &ours));
    }
    assert_eq!(sr, 3);
    // Which secret wins when a keyfile holds several, as the SDK loads them.
    for q in ["field_priority_phrase_over_seed", "field_priority_seed_over_private_key", "private_key_only"] {
        let case = &v["keyfile_quirks"][q];
        let data: KeyfileData = serde_json::from_value(case["keyfile_json"].clone()).unwrap();
        assert_eq!(data.keypair().unwrap().ss58(), case["sdk_loads_ss58"].as_str().unwrap(), "{q}");
    }
    // A btcli 6 coldkeypub.txt (spaces after separators, nulls) reads as the SDK reads it.
    let old: KeyfileData = serde_json::from_str(
        v["keyfile_quirks"]["bittensor_v6_coldkeypub_layout"]["bytes_utf8"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(
        ss58::encode(&old.public().unwrap()),
        v["keyfile_quirks"]["bittensor_v6_coldkeypub_layout"]["sdk_loads_ss58"].as_str().unwrap()
    );
    assert!(old.keypair().unwrap_err().to_string().contains("public key file"));
}

#[test]
fn encrypted_keyfiles_from_the_sdk_decrypt() {
    let v = vectors();
    let nacl = v["encrypted"]["nacl"].as_array().unwrap();
    for case in nacl {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(case["encrypted_b64"].as_str().unwrap())
            .unwrap();
        assert!(wallet::is_encrypted(&bytes));
        let password = case["password"].as_str().unwrap();
        let plain = wallet::decrypt(&bytes, password).unwrap();
        assert_eq!(std::str::from_utf8(&plain).unwrap(), case["decrypted_plaintext_utf8"].as_str().unwrap());
        let data: KeyfileData = serde_json::from_slice(&plain).unwrap();
        assert_eq!(data.keypair().unwrap().ss58(), case["decrypted_ss58"].as_str().unwrap());
        // A wrong password fails with a message that holds neither password nor key.
        let err = wallet::decrypt(&bytes, "wrong").unwrap_err().to_string();
        assert!(err.contains("wrong password") && !err.contains(password), "{err}");
    }
    // Our encryption round-trips (the SDK's format: $NACL, nonce, secretbox).
    let sealed = wallet::encrypt(b"{\"x\":1}", "pw").unwrap();
    assert!(sealed.starts_with(b"$NACL") && sealed.len() == 5 + 24 + 16 + 7);
    assert_eq!(&wallet::decrypt(&sealed, "pw").unwrap()[..], b"{\"x\":1}");
    // Legacy formats are named, not misread.
    let vault = v["encrypted"]["ansible_vault"]["encrypted_utf8"].as_str().unwrap();
    assert!(wallet::decrypt(vault.as_bytes(), "x").unwrap_err().to_string().contains("legacy"));
}

#[test]
fn wallet_layout_and_password_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let w = Wallet::new(Some(tmp.path().to_path_buf()), "val", "hot1");
    let pair = Keypair::from_seed(&[7; 32]).unwrap();
    w.create_hotkey(&pair, Some(&[7; 32]), None).unwrap();
    assert!(w.create_hotkey(&pair, None, None).unwrap_err().to_string().contains("not overwriting"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(w.hotkey_path()).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(w.hotkey().unwrap().ss58(), pair.ss58());
    // An encrypted hotkey takes its password from the SDK's variable for that file.
    let w2 = Wallet::new(Some(tmp.path().to_path_buf()), "enc", "h");
    std::fs::create_dir_all(w2.hotkey_path().parent().unwrap()).unwrap();
    let plain = wallet::keyfile_json(&pair, Some(&[7; 32]), None);
    std::fs::write(w2.hotkey_path(), wallet::encrypt(plain.as_bytes(), "s3cret").unwrap()).unwrap();
    // bittensor-wallet 4.1.1: Keyfile("/tmp/arena-wallets/enc/hotkeys/h").env_var_name() and
    // .save_password_to_env("s3cret-Ω") (read back with libc getenv).
    let sdk_name = "BT_PW__TMP_ARENA-WALLETS_ENC_HOTKEYS_H";
    assert_eq!(wallet::env_var_name(std::path::Path::new("/tmp/arena-wallets/enc/hotkeys/h")), sdk_name);
    assert_eq!(wallet::encode_env_password(sdk_name, "s3cret-Ω"), "MWc8IjIrcprk");
    assert_eq!(wallet::decode_env_password(sdk_name, "MWc8IjIrcprk").unwrap().as_str(), "s3cret-Ω");
    let var = wallet::env_var_name(&w2.hotkey_path());
    assert!(var.starts_with("BT_PW__TMP_") && var.ends_with("_ENC_HOTKEYS_H"), "{var}");
    // SAFETY of set_var: this test is the only one touching this variable.
    unsafe { std::env::set_var(&var, wallet::encode_env_password(&var, "s3cret")) };
    assert_eq!(w2.hotkey().unwrap().ss58(), pair.ss58());
    unsafe { std::env::set_var(&var, wallet::encode_env_password(&var, "nope")) };
    let err = format!("{:#}", w2.hotkey().unwrap_err());
    assert!(err.contains("wrong password") && !err.contains("s3cret") && !err.contains("nope"), "{err}");
    // Not a keyfile at all.
    std::fs::write(w.dir().join("hotkeys/junk"), "not json").unwrap();
    let junk = Wallet::new(Some(tmp.path().to_path_buf()), "val", "junk");
    assert!(junk.hotkey().unwrap_err().to_string().contains("not a bittensor keyfile"));
}

#[test]
fn commitment_formats_round_trip_and_verify() {
    let v = vectors();
    for c in v["taoverse_secure_hash"]["cases"].as_array().unwrap() {
        assert_eq!(
            commitment::secure_hash(c["hash"].as_str().unwrap(), c["hotkey"].as_str().unwrap()),
            c["secure_hash"].as_str().unwrap()
        );
    }
    let hotkey = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
    // taoverse, 5 fields.
    let m = ModelCommitment {
        namespace: "alice".into(),
        name: "m1".into(),
        commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        hash: None,
        secure_hash: Some(commitment::secure_hash("HASH=", hotkey)),
        chat_template: None,
        hotkey: None,
        competition_id: Some("2".into()),
    };
    let s = commitment::produce(Format::Taoverse, &m).unwrap();
    assert_eq!(
        s,
        format!(
            "alice:m1:0123456789abcdef0123456789abcdef01234567:{}:2",
            commitment::secure_hash("HASH=", hotkey)
        )
    );
    let back = commitment::parse(Format::Taoverse, &s).unwrap();
    assert_eq!(back, m);
    commitment::verify(Format::Taoverse, &back, hotkey, Some("HASH=")).unwrap();
    assert!(commitment::verify(Format::Taoverse, &back, hotkey, Some("OTHER=")).is_err());
    assert!(
        commitment::verify(
            Format::Taoverse,
            &back,
            "5GpWcExE8LCvYux1oYUP46U9VP6CfrDwH4HpuaGEjgwPFWf4",
            Some("HASH=")
        )
        .is_err(),
        "copied by another hotkey"
    );
    // The legacy 4-token form: default competition, token 3 is the hash.
    let legacy = commitment::parse(Format::TaoverseLegacy, "bob:m:None:abc=").unwrap();
    assert_eq!(
        (legacy.commit.as_deref(), legacy.hash.as_deref(), legacy.competition_id.as_deref()),
        (None, Some("abc="), None)
    );
    assert_eq!(commitment::produce(Format::TaoverseLegacy, &legacy).unwrap(), "bob:m:None:abc=");
    // SN11: the hash is the first 64 bits of sha256 of the space-joined fields, in decimal.
    let h = commitment::dippy_hash("ns", "model", "chatml", hotkey);
    let d = ModelCommitment {
        namespace: "ns".into(),
        name: "model".into(),
        commit: None,
        hash: Some(h.clone()),
        secure_hash: None,
        chat_template: Some("chatml".into()),
        hotkey: Some(hotkey.into()),
        competition_id: Some("d1".into()),
    };
    let s = commitment::produce(Format::Dippy, &d).unwrap();
    assert_eq!(s, format!("ns:model:chatml:{hotkey}:{h}:d1"));
    commitment::verify(Format::Dippy, &commitment::parse(Format::Dippy, &s).unwrap(), hotkey, None).unwrap();
    assert!(
        commitment::verify(
            Format::Dippy,
            &commitment::parse(Format::Dippy, &s).unwrap(),
            "5GpWcExE8LCvYux1oYUP46U9VP6CfrDwH4HpuaGEjgwPFWf4",
            None
        )
        .is_err()
    );
    // Limits and malformed strings.
    let long = ModelCommitment { name: "x".repeat(120), ..m.clone() };
    assert!(commitment::produce(Format::Taoverse, &long).unwrap_err().to_string().contains("128"));
    assert!(
        commitment::produce(Format::Taoverse, &ModelCommitment { name: "a:b".into(), ..m.clone() }).is_err()
    );
    assert!(commitment::parse(Format::Taoverse, "a:b:c").is_err());
    assert!(
        commitment::parse(Format::Taoverse, "a:b:c:d:x").unwrap_err().to_string().contains("not a number")
    );
}

#[test]
fn dippy_hash_and_directory_hash_by_hand() {
    // sha256("ns model chatml HOTKEY")[:16 hex] as an integer, computed independently with Python:
    // python3 -c 'import hashlib;print(int(hashlib.sha256(b"ns model chatml 5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV").hexdigest()[:16],16))'
    assert_eq!(
        commitment::dippy_hash("ns", "model", "chatml", "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV"),
        DIPPY_EXPECTED
    );
    // taoverse's get_hash_of_directory over os.walk (files sorted, then subdirectories), with
    // the same tree built in Python (see the constant's comment).
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("b/inner")).unwrap();
    std::fs::create_dir_all(d.join("a")).unwrap();
    std::fs::write(d.join("z.txt"), "zed").unwrap();
    std::fs::write(d.join("config.json"), "{}").unwrap();
    std::fs::write(d.join("a/w.bin"), [0u8, 1, 2]).unwrap();
    std::fs::write(d.join("b/inner/deep.txt"), "deep").unwrap();
    std::fs::write(d.join("b/x.txt"), "x").unwrap();
    assert_eq!(arena_runtime::inputs::directory_hash(d).unwrap(), DIR_EXPECTED);
}

const DIPPY_EXPECTED: &str = include_str!("../../../tests/fixtures/chain/dippy_hash.txt").trim_ascii();
const DIR_EXPECTED: &str = include_str!("../../../tests/fixtures/chain/directory_hash.txt").trim_ascii();

fn emitter<'a>(chain: &'a mut dyn Chain, signer: &'a Keypair, journal: &'a mut JournalFile) -> Emitter<'a> {
    Emitter { chain, signer, netuid: 1, journal, retry: Retry::default() }
}

fn pair(i: u8) -> Keypair {
    Keypair::from_seed(&[i; 32]).unwrap()
}

/// A fresh [`subnet`] advanced to block 10, and a journal file beside it (the directory lives as
/// long as the returned guard).
fn subnet_at_block_10(commit_reveal: bool) -> (tempfile::TempDir, LocalChain, JournalFile) {
    let tmp = tempfile::tempdir().unwrap();
    let mut chain = subnet(tmp.path(), commit_reveal);
    chain.advance(10).unwrap();
    let journal = JournalFile(tmp.path().join("journal.json"));
    (tmp, chain, journal)
}

/// Validators 0 (stake 6) and 1 (stake 4), miners 2 and 3, tempo 10, rate limit 3.
fn subnet(dir: &std::path::Path, commit_reveal: bool) -> LocalChain {
    let neurons: Vec<(String, String, u64)> = (0..4)
        .map(|i| (pair(i).ss58(), pair(100 + i).ss58(), [6_000_000_000, 4_000_000_000, 0, 0][i as usize]))
        .collect();
    let mut st = local::new_subnet(1, 10, &neurons);
    let s = st.subnets.get_mut(&1).unwrap();
    s.weights_rate_limit = 3;
    s.commit_reveal = commit_reveal;
    LocalChain::create(&dir.join("chain.json"), st).unwrap()
}

#[tokio::test]
async fn local_chain_checks_calls_like_subtensor_and_runs_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut chain = subnet(tmp.path(), false);
    // Before the first epoch nobody holds a permit.
    let set = |w: Vec<u16>| Call::SetWeights {
        netuid: 1,
        mechanism: 0,
        uids: vec![2, 3],
        weights: w,
        version_key: 0,
    };
    let err = chain.submit(&pair(0), &set(vec![65535, 1])).await.unwrap_err().to_string();
    assert!(err.contains("NeuronNoValidatorPermit"), "{err}");
    assert_eq!(chain.current_block().await.unwrap(), 0, "a refused call changes nothing");
    assert_eq!(chain.advance(10).unwrap(), vec![(1, 10)]);
    assert!(chain.metagraph(1).await.unwrap().neurons[0].validator_permit);
    chain.submit(&pair(0), &set(vec![3, 1])).await.unwrap();
    assert_eq!(
        chain.weights(1).await.unwrap(),
        vec![(0, vec![(2, 65535), (3, 21845)])],
        "stored max-upscaled"
    );
    let err = chain.submit(&pair(0), &set(vec![1, 1])).await.unwrap_err().to_string();
    assert!(err.contains("SettingWeightsTooFast"), "{err}");
    for (call, want) in [
        (
            Call::SetWeights {
                netuid: 1,
                mechanism: 0,
                uids: vec![2, 2],
                weights: vec![1, 1],
                version_key: 0,
            },
            "DuplicateUids",
        ),
        (
            Call::SetWeights { netuid: 1, mechanism: 0, uids: vec![9], weights: vec![1], version_key: 0 },
            "UidVecContainInvalidOne",
        ),
        (
            Call::SetWeights { netuid: 7, mechanism: 0, uids: vec![], weights: vec![], version_key: 0 },
            "subnet 7",
        ),
        (
            Call::CommitTimelockedWeights {
                netuid: 1,
                mechanism: 0,
                commit: vec![1],
                reveal_round: 5,
                commit_reveal_version: 4,
            },
            "drand",
        ),
    ] {
        let err = chain.submit(&pair(1), &call).await.unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
    let err = chain.submit(&pair(50), &set(vec![1, 1])).await.unwrap_err().to_string();
    assert!(err.contains("HotKeyNotRegisteredInSubNet"), "{err}");
    chain.submit(&pair(1), &set(vec![1, 1])).await.unwrap();
    // The next epoch turns the weights into incentive; the state survives a reopen.
    chain.advance(10).unwrap();
    let again = LocalChain::open(&chain.path).unwrap();
    let m = again.metagraph(1).await.unwrap();
    assert!(m.neurons[2].incentive > m.neurons[3].incentive && m.neurons[3].incentive > 0);
    assert!(m.neurons[0].dividends > m.neurons[1].dividends);
    // Commitments: a registered hotkey only.
    chain.submit(&pair(2), &Call::SetCommitment { netuid: 1, data: b"a:b:c:d:0".to_vec() }).await.unwrap();
    assert!(chain.submit(&pair(60), &Call::SetCommitment { netuid: 1, data: b"x".to_vec() }).await.is_err());
    let cs = chain.commitments(1).await.unwrap();
    assert_eq!((cs.len(), cs[0].uid, cs[0].data.clone()), (1, Some(2), Ok("a:b:c:d:0".to_string())));
    assert_eq!(chain.block_hash(3).await.unwrap(), again.block_hash(3).await.unwrap());
    assert_ne!(chain.block_hash(3).await.unwrap(), chain.block_hash(4).await.unwrap());
    assert!(chain.block_hash(10_000).await.is_err());
}

#[tokio::test]
async fn emitter_sets_once_per_epoch_and_survives_a_crash() {
    let (tmp, mut chain, mut journal) = subnet_at_block_10(false);
    let signer = pair(0);
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert!(matches!(e.emit(&[(2, 65535), (3, 100)], 0).await.unwrap(), Outcome::Set { .. }));
    assert!(matches!(e.emit(&[(2, 65535)], 0).await.unwrap(), Outcome::AlreadyDone { epoch: 1 }));
    // A crash between writing the journal and sending: the epoch is not tried twice.
    chain.advance(10).unwrap();
    let mut j = journal.load().await.unwrap();
    j.entries.insert("1/2".into(), Entry::Sending { block: 20 });
    std::fs::write(&journal.0, serde_json::to_string(&j).unwrap()).unwrap();
    let before = chain.weights(1).await.unwrap();
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert!(matches!(e.emit(&[(3, 65535)], 0).await.unwrap(), Outcome::AlreadyDone { epoch: 2 }));
    assert_eq!(chain.weights(1).await.unwrap(), before);
    // The rate limit is respected across epochs.
    let mut other = JournalFile(tmp.path().join("other.json"));
    let mut e = emitter(&mut chain, &signer, &mut other);
    assert!(matches!(e.emit(&[(3, 65535)], 0).await.unwrap(), Outcome::Set { .. }));
}

/// A crash after journaling an epoch leaves it `Sending`; `reconcile` settles it from the
/// metagraph: a call that landed is marked set, one that did not is sent again.
#[tokio::test]
async fn reconcile_settles_epochs_a_crash_left_sending() {
    let (_tmp, mut chain, mut journal) = subnet_at_block_10(false);
    let signer = pair(0);
    // Landed: the call went in at block 11 (journaled at 10), the process died before the mark.
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert!(e.reconcile().await.unwrap().is_empty(), "nothing to settle");
    let Outcome::Set { block, .. } = e.emit(&[(2, 65535)], 0).await.unwrap() else { panic!() };
    assert_eq!(block, 11);
    let mut j = journal.load().await.unwrap();
    j.entries.insert("1/1".into(), Entry::Sending { block: 10 });
    // Another subnet's entry is not this emitter's to settle.
    j.entries.insert("2/1".into(), Entry::Sending { block: 10 });
    journal.save(&j).await.unwrap();
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert_eq!(
        e.reconcile().await.unwrap(),
        vec!["epoch 1: weights sent at block 10 landed (last update 11)".to_string()]
    );
    let j = journal.load().await.unwrap();
    assert_eq!(j.entries["1/1"], Entry::Set { block: 11, id: "reconciled".into() });
    assert_eq!(j.entries["2/1"], Entry::Sending { block: 10 });
    // Did not land: journaled at block 20 of epoch 2, nothing sent since block 11.
    chain.advance(9).unwrap();
    let mut j = journal.load().await.unwrap();
    j.entries.insert("1/2".into(), Entry::Sending { block: 20 });
    journal.save(&j).await.unwrap();
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert_eq!(
        e.reconcile().await.unwrap(),
        vec!["epoch 2: weights sent at block 20 did not land; the epoch will be sent again".to_string()]
    );
    assert!(!e.journal.load().await.unwrap().entries.contains_key("1/2"));
    assert!(e.reconcile().await.unwrap().is_empty(), "settled once");
    assert!(matches!(e.emit(&[(3, 65535)], 0).await.unwrap(), Outcome::Set { .. }));
}

#[tokio::test]
async fn emitter_commits_and_reveals_with_commit_reveal_on() {
    let (_tmp, mut chain, mut journal) = subnet_at_block_10(true);
    let signer = pair(0);
    let err = chain
        .submit(
            &signer,
            &Call::SetWeights { netuid: 1, mechanism: 0, uids: vec![2], weights: vec![1], version_key: 0 },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CommitRevealEnabled"));
    let mut e = emitter(&mut chain, &signer, &mut journal);
    let Outcome::Committed { reveal_epoch, .. } = e.emit(&[(2, 65535), (3, 30000)], 0).await.unwrap() else {
        panic!()
    };
    assert_eq!(reveal_epoch, 2);
    assert!(chain.weights(1).await.unwrap().is_empty(), "nothing set before the reveal");
    chain.advance(10).unwrap();
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert!(matches!(e.emit(&[(2, 1)], 0).await.unwrap(), Outcome::Revealed { epoch: 2, .. }));
    assert_eq!(chain.weights(1).await.unwrap(), vec![(0, vec![(2, 65535), (3, 30000)])]);
    // A reveal with other values than committed is refused by the chain.
    let bad = Call::RevealWeights {
        netuid: 1,
        mechanism: 0,
        uids: vec![2],
        weights: vec![5],
        salt: vec![1],
        version_key: 0,
    };
    assert!(
        chain
            .submit(&signer, &bad)
            .await
            .unwrap_err()
            .to_string()
            .contains("InvalidRevealCommitHashNotMatch")
    );
}

#[tokio::test]
async fn transient_errors_are_retried_and_others_are_not() {
    let quick = Retry { attempts: 4, base: std::time::Duration::from_millis(1) };
    let mut n = 0;
    let r = with_retry(quick, || {
        n += 1;
        let n = n;
        async move { if n < 3 { Err(Transient("connection reset".into()).into()) } else { Ok(n) } }
    })
    .await;
    assert_eq!(r.unwrap(), 3);
    let mut m = 0;
    let r: anyhow::Result<()> = with_retry(quick, || {
        m += 1;
        async { anyhow::bail!("SettingWeightsTooFast") }
    })
    .await;
    assert!(r.is_err());
    assert_eq!(m, 1);
    let mut k = 0;
    let r: anyhow::Result<()> = with_retry(Retry { attempts: 3, ..quick }, || {
        k += 1;
        async { Err(Transient("down".into()).into()) }
    })
    .await;
    assert!(r.is_err());
    assert_eq!(k, 3);
}

#[test]
#[cfg(feature = "subtensor")]
fn finney_metadata_encodes_the_same_call_data() {
    // finney's runtime metadata, spec 393 (a public data file: CortexLM/bittensor-rs
    // metadata/finney.scale), through subxt's offline client: the runtime's own encoding of each
    // call must equal arena's hand-written one.
    let md = std::fs::read(format!(
        "{}/../../tests/fixtures/chain/finney-spec393.scale",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let calls = [
        Call::SetWeights {
            netuid: 1,
            mechanism: 0,
            uids: vec![0, 5],
            weights: vec![65535, 32768],
            version_key: 2000,
        },
        Call::SetWeights { netuid: 9, mechanism: 1, uids: vec![3], weights: vec![7], version_key: 10005000 },
        Call::CommitWeights { netuid: 37, mechanism: 0, hash: [0xab; 32] },
        Call::CommitWeights { netuid: 37, mechanism: 2, hash: [0x01; 32] },
        Call::RevealWeights {
            netuid: 37,
            mechanism: 0,
            uids: vec![1, 2],
            weights: vec![65535, 9],
            salt: vec![1, 2, 3, 4, 5, 6, 7, 8],
            version_key: 4,
        },
        Call::RevealWeights {
            netuid: 37,
            mechanism: 1,
            uids: vec![],
            weights: vec![],
            salt: vec![9],
            version_key: 0,
        },
        Call::CommitTimelockedWeights {
            netuid: 11,
            mechanism: 0,
            commit: vec![5; 300],
            reveal_round: 123456789,
            commit_reveal_version: 4,
        },
        Call::CommitTimelockedWeights {
            netuid: 11,
            mechanism: 1,
            commit: vec![1, 2, 3],
            reveal_round: 1,
            commit_reveal_version: 4,
        },
        Call::SetCommitment { netuid: 1, data: b"hello".to_vec() },
        Call::SetCommitment { netuid: 9, data: vec![b'x'; 128] },
        Call::SetCommitment { netuid: 9, data: vec![] },
    ];
    for call in &calls {
        let theirs = arena_chain::subtensor::call_data_from_metadata(&md, 393, call).unwrap();
        assert_eq!(hex::encode(theirs), hex::encode(call.encode().unwrap()), "{call:?}");
    }
}

/// A chain that says CRv4 and records what it is sent.
struct Crv4Chain {
    me: String,
    sent: Vec<Call>,
}

#[async_trait::async_trait]
impl Chain for Crv4Chain {
    async fn current_block(&self) -> anyhow::Result<u64> {
        Ok(5_000_100)
    }
    async fn block_hash(&self, _: u64) -> anyhow::Result<String> {
        Ok("0x00".into())
    }
    async fn metagraph(&self, netuid: u16) -> anyhow::Result<arena_chain::Metagraph> {
        let n = arena_chain::Neuron {
            uid: 0,
            hotkey: self.me.clone(),
            coldkey: self.me.clone(),
            stake: 1,
            validator_permit: true,
            active: true,
            last_update: 4_000_000,
            block_at_registration: 1,
            consensus: 0,
            incentive: 0,
            dividends: 0,
            emission: 0,
        };
        Ok(arena_chain::Metagraph { netuid, block: 5_000_100, neurons: vec![n] })
    }
    async fn params(&self, _: u16) -> anyhow::Result<arena_chain::SubnetParams> {
        Ok(arena_chain::SubnetParams {
            tempo: 360,
            weights_rate_limit: 100,
            weights_version_key: 0,
            commit_reveal: true,
            reveal_period_epochs: 1,
            epoch_index: 13_000,
            commit_reveal_version: 4,
            schedule: Some(arena_chain::crv4::EpochSchedule {
                last_epoch_block: 5_000_000,
                pending_epoch_at: 0,
                subnet_epoch_index: 13_000,
                tempo: 360,
                blocks_since_last_step: 100,
                current_block: 5_000_100,
            }),
            max_allowed_validators: 64,
        })
    }
    async fn commitments(&self, _: u16) -> anyhow::Result<Vec<arena_chain::Commitment>> {
        Ok(vec![])
    }
    async fn weights(&self, _: u16) -> anyhow::Result<arena_chain::WeightRows> {
        Ok(vec![])
    }
    async fn submit(&mut self, _: &Keypair, call: &Call) -> anyhow::Result<arena_chain::Receipt> {
        self.sent.push(call.clone());
        Ok(arena_chain::Receipt { block: 5_000_101, id: "0x01".into() })
    }
}

#[tokio::test]
async fn emitter_sends_timelocked_commits_where_the_runtime_is_crv4() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = pair(9);
    let mut chain = Crv4Chain { me: signer.ss58(), sent: vec![] };
    let before = arena_chain::crv4::now().unwrap();
    let mut journal = JournalFile(tmp.path().join("j.json"));
    let mut e = emitter(&mut chain, &signer, &mut journal);
    let Outcome::Timelocked { reveal_round, .. } = e.emit(&[(3, 65535), (7, 100)], 5).await.unwrap() else {
        panic!()
    };
    // The round bittensor-drand 2.0 computes for this scheduler state (first reveal block
    // 5_000_360, +3, 263 blocks of 12 s from now).
    let want =
        arena_chain::crv4::reveal_round(&chain.params(1).await.unwrap().schedule.unwrap(), 1, 12.0, before)
            .unwrap();
    assert!(reveal_round == want || reveal_round == want + 1, "{reveal_round} vs {want}");
    let [
        Call::CommitTimelockedWeights {
            netuid: 1, commit, reveal_round: r, commit_reveal_version: 4, ..
        },
    ] = &chain.sent[..]
    else {
        panic!("{:?}", chain.sent)
    };
    assert_eq!(*r, reveal_round);
    let payload = arena_chain::crv4::payload(&signer.public(), &[3, 7], &[65535, 100], 5);
    assert_eq!(commit.len(), payload.len() + 244);
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert!(matches!(e.emit(&[(3, 1)], 5).await.unwrap(), Outcome::AlreadyDone { epoch: 13_000 }));
}

#[tokio::test]
async fn a_refused_call_leaves_the_epoch_open() {
    let (_tmp, mut chain, mut journal) = subnet_at_block_10(false);
    // uid 9 does not exist: the chain refuses, nothing was included, the epoch stays open.
    let signer = pair(0);
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert!(e.emit(&[(9, 65535)], 0).await.unwrap_err().to_string().contains("UidVecContainInvalidOne"));
    assert!(Journal::load(&journal.0).unwrap().entries.is_empty());
    let mut e = emitter(&mut chain, &signer, &mut journal);
    assert!(matches!(e.emit(&[(2, 65535)], 0).await.unwrap(), Outcome::Set { .. }));
}

/// uids are u16: a full subnet refuses a registration, and a state file with more neurons than
/// u16 uids is refused when opened, instead of wrapping uids at 65,536.
#[test]
fn the_embedded_chain_never_wraps_uids() {
    let tmp = tempfile::tempdir().unwrap();
    let pair = Keypair::from_seed(&[9; 32]).unwrap();
    let other = Keypair::from_seed(&[10; 32]).unwrap().ss58();
    let h = pair.ss58();
    let neurons: Vec<(String, String, u64)> =
        (0..local::MAX_UIDS).map(|_| (h.clone(), h.clone(), 0)).collect();
    let mut state = local::new_subnet(1, 360, &neurons);
    let full = tmp.path().join("full.json");
    let mut chain = LocalChain::create(&full, state.clone()).unwrap();
    let e = chain.register(1, &other, &other, 0).unwrap_err().to_string();
    assert!(e.contains("subnet 1 is full: 65535 uids"), "{e}");
    let subnet = state.subnets.get_mut(&1).unwrap();
    subnet.neurons.push(subnet.neurons[0].clone());
    let over = tmp.path().join("over.json");
    std::fs::write(&over, serde_json::to_string(&state).unwrap()).unwrap();
    let e = format!("{:#}", LocalChain::open(&over).unwrap_err());
    assert!(e.contains("subnet 1 has 65536 neurons; uids are u16"), "{e}");
}

fn commitment_call(data: &str) -> Call {
    Call::SetCommitment { netuid: 1, data: data.as_bytes().to_vec() }
}

fn commitment_of(cs: &[arena_chain::Commitment], hotkey: &str) -> Option<String> {
    cs.iter().find(|c| c.hotkey == hotkey).and_then(|c| c.data.clone().ok())
}

/// Two handles on one state file (a validator and a miner's `arena commit`): each sees the
/// other's writes, and neither's write overwrites the other's.
#[tokio::test]
async fn two_handles_on_one_state_file_lose_no_write() {
    let tmp = tempfile::tempdir().unwrap();
    let mut a = subnet(tmp.path(), false);
    let mut b = LocalChain::open(&a.path).unwrap();
    a.submit(&pair(2), &commitment_call("a:1")).await.unwrap();
    assert_eq!(commitment_of(&b.commitments(1).await.unwrap(), &pair(2).ss58()).as_deref(), Some("a:1"));
    // b's handle was opened before a's submit; its write keeps a's.
    let r = b.submit(&pair(3), &commitment_call("b:1")).await.unwrap();
    assert_eq!(r.block, 2, "one block per call, counted across handles");
    let cs = a.commitments(1).await.unwrap();
    assert_eq!(commitment_of(&cs, &pair(2).ss58()).as_deref(), Some("a:1"));
    assert_eq!(commitment_of(&cs, &pair(3).ss58()).as_deref(), Some("b:1"));
    assert_eq!(a.current_block().await.unwrap(), 2);
    a.advance(1).unwrap();
    assert_eq!((a.state.block, b.current_block().await.unwrap()), (3, 3));
    use std::os::unix::fs::PermissionsExt;
    let lock = local::lock_path(&a.path);
    assert_eq!(std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777, 0o600);
    // A mistyped path leaves no lock file behind.
    let missing = tmp.path().join("nope.json");
    assert!(LocalChain::open(&missing).unwrap_err().to_string().contains("reading the chain state"));
    assert!(!local::lock_path(&missing).exists());
}

/// Eight writers, each with its own handle, 20 commitments each at the same time: every
/// writer's last commitment is there and every call got its own block.
#[test]
fn concurrent_writers_on_one_state_file_lose_no_write() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("chain.json");
    let neurons: Vec<(String, String, u64)> =
        (0..8).map(|i| (pair(20 + i).ss58(), pair(20 + i).ss58(), 0)).collect();
    LocalChain::create(&path, local::new_subnet(1, 360, &neurons)).unwrap();
    std::thread::scope(|s| {
        for i in 0..8u8 {
            let path = &path;
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                let mut chain = LocalChain::open(path).unwrap();
                let signer = pair(20 + i);
                for k in 0..20 {
                    rt.block_on(chain.submit(&signer, &commitment_call(&format!("w{i}:{k}")))).unwrap();
                }
            });
        }
    });
    let chain = LocalChain::open(&path).unwrap();
    let cs = chain.state.commitments(1).unwrap();
    for i in 0..8u8 {
        assert_eq!(commitment_of(&cs, &pair(20 + i).ss58()), Some(format!("w{i}:19")), "writer {i}");
    }
    assert_eq!(chain.state.block, 160, "each of the 160 calls in its own block");
}

/// With a clock the chain makes a block every `block_time_ms` of wall time, runs its epochs at
/// their blocks, lands a call in the block after the clock's, and `advance` adds blocks on top.
#[tokio::test]
async fn a_clocked_chain_makes_blocks_with_the_wall_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("chain.json");
    let neurons: Vec<(String, String, u64)> =
        (0..4).map(|i| (pair(i).ss58(), pair(100 + i).ss58(), 1_000_000_000)).collect();
    let mut st = local::new_subnet(1, 10, &neurons);
    let origin = local::now_ms().unwrap();
    st.clock = Some(local::Clock { block_time_ms: 50, origin_unix_ms: origin, origin_block: 0 });
    let mut chain = LocalChain::create(&path, st).unwrap();
    let blocks_now = || (local::now_ms().unwrap() - origin) / 50;
    std::thread::sleep(std::time::Duration::from_millis(700));
    let lo = blocks_now();
    let block = chain.current_block().await.unwrap();
    let hi = blocks_now();
    assert!(lo <= block && block <= hi && block >= 14, "{lo} <= {block} <= {hi}");
    assert_eq!(chain.params(1).await.unwrap().epoch_index, block / 10, "an epoch every 10 blocks");
    // The catching up is written back: another handle starts from there.
    assert!(LocalChain::open(&path).unwrap().state.block >= block);
    // A call lands in the block after the clock's.
    let lo = blocks_now();
    let r = chain.submit(&pair(2), &commitment_call("x:1")).await.unwrap();
    let hi = blocks_now();
    assert!(lo < r.block && r.block <= hi + 1, "{lo} < {} <= {hi} + 1", r.block);
    // `advance` adds blocks on top of the clock, which keeps its pace after them.
    let before = chain.current_block().await.unwrap();
    chain.advance(100).unwrap();
    let after = chain.current_block().await.unwrap();
    assert!(after >= before + 100 && after <= 100 + blocks_now() + 1, "{before} + 100 <= {after}");

    // An hour-long block: calls submitted before it is due share the next block.
    let slow = tmp.path().join("slow.json");
    let mut st = local::new_subnet(1, 10, &neurons);
    st.block = 5;
    st.clock = Some(local::Clock::starting_now(3_600_000, 5).unwrap());
    let mut chain = LocalChain::create(&slow, st).unwrap();
    let r1 = chain.submit(&pair(2), &commitment_call("a:1")).await.unwrap();
    let r2 = chain.submit(&pair(3), &commitment_call("b:1")).await.unwrap();
    assert_eq!((r1.block, r2.block, chain.current_block().await.unwrap()), (6, 6, 6));

    // A clock in the future shows its origin block; one too far behind is refused, not run.
    let future = tmp.path().join("future.json");
    let mut st = local::new_subnet(1, 10, &neurons);
    st.block = 7;
    st.clock = Some(local::Clock { block_time_ms: 1, origin_unix_ms: origin + 3_600_000, origin_block: 7 });
    assert_eq!(LocalChain::create(&future, st).unwrap().current_block().await.unwrap(), 7);
    let stale = tmp.path().join("stale.json");
    let mut st = local::new_subnet(1, 10, &neurons);
    st.clock = Some(local::Clock {
        block_time_ms: 1,
        origin_unix_ms: origin - local::MAX_ADVANCE - 1_000,
        origin_block: 0,
    });
    let e = LocalChain::create(&stale, st).unwrap().current_block().await.unwrap_err().to_string();
    assert!(e.contains("blocks one access catches up"), "{e}");
    // A clock without a block time is refused when the file is read.
    let text =
        std::fs::read_to_string(&slow).unwrap().replace("\"block_time_ms\": 3600000", "\"block_time_ms\": 0");
    std::fs::write(&slow, text).unwrap();
    let e = format!("{:#}", LocalChain::open(&slow).unwrap_err());
    assert!(e.contains("block_time_ms is 0"), "{e}");
}

/// The emitter's futures can move between threads (a service spawns them).
#[test]
fn emitter_futures_are_send() {
    fn check(e: &mut Emitter<'_>) {
        fn send<T: Send>(_: T) {}
        send(e.emit(&[], 0));
        send(e.reconcile());
    }
    let _ = check;
}
