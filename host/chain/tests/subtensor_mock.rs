//! The subtensor client's read paths against a mock node: subxt's `MockRpcClient` serves
//! finney's spec-393 metadata, storage built from typed values (SCALE-encoded through the
//! metadata's own types) and the `get_metagraph` runtime API; arena reads them back.

#![cfg(feature = "subtensor")]
use std::collections::BTreeMap;
use std::sync::Arc;

use arena_chain::emit::Transient;
use arena_chain::subtensor::Subtensor;
use arena_chain::{Chain, ss58};
use parity_scale_codec::Encode;
use scale_value::{Composite, Value, ValueDef};
use serde_json::{Value as Json, json};
use sp_crypto_hashing::{twox_64, twox_128};
use subxt_rpcs::client::{MockRpcClient, RpcClient};

const BEST: u64 = 4_000_000;

fn metadata_bytes() -> Vec<u8> {
    std::fs::read(format!("{}/../../tests/fixtures/chain/finney-spec393.scale", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
}

fn block_hash(n: u64) -> String {
    format!("0x{}", hex::encode(sp_crypto_hashing::blake2_256(&n.to_le_bytes())))
}

/// The zero value of a type (decoded from zero bytes), to fill in only the fields a test sets.
fn zero_value(types: &scale_info::PortableRegistry, ty: u32) -> Value<()> {
    let zeros = vec![0u8; 1 << 16];
    scale_value::scale::decode_as_type(&mut &zeros[..], ty, types).unwrap().remove_context()
}

fn set(v: &mut Value<()>, field: &str, new: Value<()>) {
    let ValueDef::Composite(Composite::Named(fields)) = &mut v.value else { panic!("not a struct") };
    let slot = fields.iter_mut().find(|(n, _)| n == field).unwrap_or_else(|| panic!("no field {field}"));
    slot.1 = new;
}

fn list(v: impl IntoIterator<Item = u128>) -> Value<()> {
    Value::unnamed_composite(v.into_iter().map(Value::u128))
}

fn encode(v: &Value<()>, types: &scale_info::PortableRegistry, ty: u32) -> Vec<u8> {
    let mut out = Vec::new();
    scale_value::scale::encode_as_type(v, ty, types, &mut out).unwrap();
    out
}

struct Node {
    metadata: Vec<u8>,
    storage: BTreeMap<Vec<u8>, Vec<u8>>,
    metagraph: Vec<u8>,
    /// A runtime API the node never answers.
    hang: Option<&'static str>,
}

fn keys(accounts: &[[u8; 32]]) -> Vec<String> {
    accounts.iter().map(ss58::encode).collect()
}

fn node(netuid: u16) -> (Node, Vec<[u8; 32]>) {
    let md_bytes = metadata_bytes();
    let md = subxt::metadata::Metadata::decode_from(&md_bytes).unwrap();
    let types = md.types();
    let hotkeys: Vec<[u8; 32]> = (1..=3u8).map(|i| [i; 32]).collect();
    let coldkeys: Vec<[u8; 32]> = (11..=13u8).map(|i| [i; 32]).collect();

    // get_metagraph: Option<Metagraph>; fill the fields arena reads.
    let api = md.runtime_api_trait_by_name("SubnetInfoRuntimeApi").unwrap();
    let out_ty = api.method_by_name("get_metagraph").unwrap().output_ty();
    let scale_info::TypeDef::Variant(opt) = &types.resolve(out_ty).unwrap().type_def else {
        panic!("Option expected")
    };
    let inner = opt.variants.iter().find(|v| v.name == "Some").unwrap().fields[0].ty.id;
    let mut m = zero_value(types, inner);
    let accounts = |a: &[[u8; 32]]| Value::unnamed_composite(a.iter().map(Value::from_bytes));
    set(&mut m, "tempo", Value::u128(360));
    set(&mut m, "weights_version", Value::u128(2013));
    set(&mut m, "weights_rate_limit", Value::u128(100));
    set(&mut m, "max_validators", Value::u128(64));
    set(&mut m, "commit_reveal_weights_enabled", Value::bool(true));
    set(&mut m, "commit_reveal_period", Value::u128(2));
    set(&mut m, "hotkeys", accounts(&hotkeys));
    set(&mut m, "coldkeys", accounts(&coldkeys));
    set(
        &mut m,
        "active",
        Value::unnamed_composite([Value::bool(true), Value::bool(true), Value::bool(false)]),
    );
    set(
        &mut m,
        "validator_permit",
        Value::unnamed_composite([Value::bool(true), Value::bool(false), Value::bool(false)]),
    );
    set(&mut m, "last_update", list([BEST as u128 - 5, BEST as u128 - 400, 12]));
    set(&mut m, "emission", list([1_000, 2_000, 0]));
    set(&mut m, "dividends", list([65535, 0, 0]));
    set(&mut m, "incentives", list([0, 40000, 25535]));
    set(&mut m, "consensus", list([0, 39000, 26000]));
    set(&mut m, "block_at_registration", list([100, 200, 3_999_000]));
    set(&mut m, "total_stake", list([5_000_000_000_000, 7, 0]));
    let mut metagraph = vec![1u8];
    metagraph.extend(encode(&m, types, inner));

    let mut storage = BTreeMap::new();
    let pallet_prefix = |p: &str, e: &str| [twox_128(p.as_bytes()), twox_128(e.as_bytes())].concat();
    // Commitments::CommitmentOf (Identity netuid, Twox64Concat account) → Registration.
    let entry =
        md.pallet_by_name("Commitments").unwrap().storage().unwrap().entry_by_name("CommitmentOf").unwrap();
    let reg_ty = entry.value_ty();
    for (i, (who, text)) in
        [(hotkeys[1], "alice:m1:abc:SECURE=:2"), (hotkeys[2], "bob:m2:def:HASH=:7")].into_iter().enumerate()
    {
        let mut reg = zero_value(types, reg_ty);
        set(&mut reg, "block", Value::u128(3_000_000 + i as u128));
        let raw = Value::variant(
            format!("Raw{}", text.len()),
            Composite::unnamed([Value::from_bytes(text.as_bytes())]),
        );
        set(&mut reg, "info", Value::named_composite([("fields", Value::unnamed_composite([raw]))]));
        let key = [
            pallet_prefix("Commitments", "CommitmentOf"),
            netuid.to_le_bytes().to_vec(),
            twox_64(&who).to_vec(),
            who.to_vec(),
        ]
        .concat();
        storage.insert(key, encode(&reg, types, reg_ty));
    }
    // A commitment on another subnet must not show.
    let other = [
        pallet_prefix("Commitments", "CommitmentOf"),
        (netuid + 1).to_le_bytes().to_vec(),
        twox_64(&hotkeys[0]).to_vec(),
        hotkeys[0].to_vec(),
    ]
    .concat();
    storage.insert(other, storage.values().next().unwrap().clone());
    // SubtensorModule::Weights (Identity netuid_index, Identity uid) → Vec<(u16, u16)>.
    let w = |uid: u16| {
        [
            pallet_prefix("SubtensorModule", "Weights"),
            netuid.to_le_bytes().to_vec(),
            uid.to_le_bytes().to_vec(),
        ]
        .concat()
    };
    storage.insert(w(0), vec![(1u16, 65535u16), (2, 1234)].encode());
    storage.insert(w(1), vec![(2u16, 65535u16)].encode());
    (Node { metadata: md_bytes, storage, metagraph, hang: None }, hotkeys)
}

fn params(p: &Option<Box<serde_json::value::RawValue>>) -> Vec<Json> {
    p.as_ref().map(|r| serde_json::from_str(r.get()).unwrap()).unwrap_or_default()
}

fn hexs(b: &[u8]) -> Json {
    Json::String(format!("0x{}", hex::encode(b)))
}

/// A legacy-RPC node over `Node`.
fn client(node: Node) -> RpcClient {
    let node = Arc::new(node);
    let mock = MockRpcClient::builder()
        .method_fallback(move |method: String, p| {
            let node = node.clone();
            async move {
                let p = params(&p);
                let r: Json = match method.as_str() {
                    "rpc_methods" => json!({"methods": ["chain_getBlockHash", "state_call", "state_getStorage"]}),
                    "chain_getBlockHash" => match p.first().and_then(|v| v.as_u64()) {
                        Some(n) => Json::String(block_hash(n)),
                        None => Json::String(block_hash(BEST)),
                    },
                    "chain_getFinalizedHead" => Json::String(block_hash(BEST)),
                    "chain_getHeader" => {
                        let h = p.first().and_then(|v| v.as_str()).map(String::from).unwrap_or_else(|| block_hash(BEST));
                        let n = [0, BEST - 1, BEST].into_iter().find(|n| block_hash(*n) == h).unwrap_or(BEST);
                        json!({"parentHash": block_hash(n.saturating_sub(1)), "number": format!("0x{n:x}"), "stateRoot": block_hash(1), "extrinsicsRoot": block_hash(2), "digest": {"logs": []}})
                    }
                    "state_getRuntimeVersion" => json!({"specName": "node-subtensor", "implName": "node-subtensor", "authoringVersion": 1, "specVersion": 393, "implVersion": 1, "apis": [], "transactionVersion": 1, "stateVersion": 1}),
                    "state_getMetadata" => hexs(&node.metadata),
                    "state_call" => {
                        let f = p[0].as_str().unwrap();
                        if node.hang == Some(f) {
                            std::future::pending::<()>().await;
                        }
                        match f {
                            // RuntimeVersion: spec and impl names, authoring, spec, impl versions,
                            // apis, transaction version, system version.
                            "Core_version" => hexs(&("node-subtensor", "node-subtensor", 1u32, 393u32, 1u32, Vec::<([u8; 8], u32)>::new(), 1u32, 1u8).encode()),
                            "Metadata_metadata_versions" => hexs(&vec![14u32, 15, 16].encode()),
                            "Metadata_metadata_at_version" => hexs(&Some(node.metadata.clone()).encode()),
                            "SubnetInfoRuntimeApi_get_metagraph" => hexs(&node.metagraph),
                            other => panic!("the mock node has no runtime API {other}"),
                        }
                    }
                    "state_getStorage" => {
                        let k = hex::decode(p[0].as_str().unwrap().trim_start_matches("0x")).unwrap();
                        node.storage.get(&k).map_or(Json::Null, |v| hexs(v))
                    }
                    "state_getKeysPaged" => {
                        let prefix = hex::decode(p[0].as_str().unwrap().trim_start_matches("0x")).unwrap();
                        let count = p[1].as_u64().unwrap() as usize;
                        let start = p.get(2).and_then(|v| v.as_str()).map(|s| hex::decode(s.trim_start_matches("0x")).unwrap());
                        let ks: Vec<Json> = node
                            .storage
                            .keys()
                            .filter(|k| k.starts_with(&prefix) && start.as_ref().is_none_or(|s| *k > s))
                            .take(count)
                            .map(|k| hexs(k))
                            .collect();
                        Json::Array(ks)
                    }
                    "state_queryStorageAt" => {
                        let changes: Vec<Json> = p[0]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|k| {
                                let kb = hex::decode(k.as_str().unwrap().trim_start_matches("0x")).unwrap();
                                json!([k, node.storage.get(&kb).map_or(Json::Null, |v| hexs(v))])
                            })
                            .collect();
                        json!([{"block": block_hash(BEST), "changes": changes}])
                    }
                    "system_chain" => json!("Bittensor"),
                    other => panic!("the mock node has no {other}"),
                };
                Ok(r)
            }
        })
        .build();
    RpcClient::new(mock)
}

#[tokio::test]
async fn reads_metagraph_params_commitments_and_weights_from_a_node() {
    let netuid = 9;
    let (node, hotkeys) = node(netuid);
    let chain = Subtensor::from_rpc(client(node), "mock").await.unwrap();
    assert_eq!(chain.current_block().await.unwrap(), BEST);
    assert_eq!(chain.block_hash(BEST - 1).await.unwrap(), block_hash(BEST - 1));

    let m = chain.metagraph(netuid).await.unwrap();
    assert_eq!(m.block, BEST);
    assert_eq!(m.neurons.iter().map(|n| n.hotkey.clone()).collect::<Vec<_>>(), keys(&hotkeys));
    assert_eq!(m.neurons[0].coldkey, ss58::encode(&[11; 32]));
    assert_eq!(m.neurons.iter().map(|n| n.stake).collect::<Vec<_>>(), vec![5_000_000_000_000, 7, 0]);
    assert_eq!(m.neurons.iter().map(|n| n.validator_permit).collect::<Vec<_>>(), vec![true, false, false]);
    assert_eq!(m.neurons.iter().map(|n| n.incentive).collect::<Vec<_>>(), vec![0, 40000, 25535]);
    assert_eq!(m.neurons[2].block_at_registration, 3_999_000);
    assert_eq!(m.neurons[1].last_update, BEST - 400);
    assert!(!m.neurons[2].active);

    let p = chain.params(netuid).await.unwrap();
    assert_eq!(
        (
            p.tempo,
            p.weights_rate_limit,
            p.weights_version_key,
            p.commit_reveal,
            p.reveal_period_epochs,
            p.max_allowed_validators
        ),
        (360, 100, 2013, true, 2, 64)
    );
    // Spec 393 predates SubnetEpochIndex: the epoch is counted by block as that runtime did.
    assert_eq!(p.epoch_index, (BEST + netuid as u64 + 1) / 361);
    assert_eq!(
        p.schedule, None,
        "no LastEpochBlock/PendingEpochAt in spec 393: CRv4 rounds use the block formula"
    );
    // Storage the node does not hold reads as the entry's default (CRv4, version 4).
    assert_eq!(p.commit_reveal_version, 4);

    let mut cs = chain.commitments(netuid).await.unwrap();
    cs.sort_by_key(|c| c.block);
    assert_eq!(cs.len(), 2, "{cs:?}");
    assert_eq!(
        (cs[0].uid, cs[0].block, cs[0].data.clone()),
        (Some(1), 3_000_000, Ok("alice:m1:abc:SECURE=:2".to_string()))
    );
    assert_eq!((cs[1].uid, cs[1].hotkey.clone()), (Some(2), ss58::encode(&hotkeys[2])));

    assert_eq!(
        chain.weights(netuid).await.unwrap(),
        vec![(0, vec![(1, 65535), (2, 1234)]), (1, vec![(2, 65535)])]
    );
}

#[tokio::test]
async fn a_node_that_does_not_answer_is_a_transient_error() {
    let (mut node, _) = node(9);
    node.hang = Some("SubnetInfoRuntimeApi_get_metagraph");
    let chain = Subtensor::from_rpc(client(node), "mock")
        .await
        .unwrap()
        .with_timeout(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    let e = chain.metagraph(9).await.unwrap_err();
    assert!(e.downcast_ref::<Transient>().is_some(), "{e:#}: retried by the emitter");
    assert!(e.to_string().contains("no answer from mock in 0.2 s"), "{e:#}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The node still answers what it answers.
    assert_eq!(chain.current_block().await.unwrap(), BEST);
}
