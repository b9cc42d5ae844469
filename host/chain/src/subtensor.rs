//! The subtensor client on subxt 0.51 (dynamic, metadata-driven: no generated code, so a
//! runtime upgrade that keeps names and shapes needs no rebuild).
//!
//! Reads go through the runtime API `SubnetInfoRuntimeApi::get_metagraph` (stake with child-key
//! inheritance and TAO weight is computed by the chain itself) and storage
//! (`Commitments::CommitmentOf`, `SubtensorModule::Weights`, `SubnetEpochIndex`); writes are
//! dynamic transactions signed with the wallet's sr25519 key and watched until finalized.
//! Transport failures, and a node that does not answer within the client's timeout, are
//! [`Transient`] (retried by the emitter); a call the chain refuses is not.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use scale_decode::DecodeAsType;
use scale_value::{Composite, Primitive, Value, ValueDef};
use subxt::config::SubstrateConfig;
use subxt::dynamic;
use subxt::utils::{AccountId32, MultiSignature};
use subxt::{Config, OnlineClient};

use super::emit::Transient;
use super::{Call, Chain, Commitment, Metagraph, Neuron, Receipt, SubnetParams, ss58, wallet};

/// How long one RPC may go unanswered by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a subtensor node. Its methods are async on the caller's tokio runtime (a
/// library crate never creates one of its own). Every RPC waits at most `timeout`; the wait for
/// a submitted call's finalization (a few blocks) at most ten times that.
pub struct Subtensor {
    api: OnlineClient<SubstrateConfig>,
    pub endpoint: String,
    timeout: Duration,
}

impl std::fmt::Debug for Subtensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subtensor")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn transient(what: &str, e: impl std::fmt::Display) -> anyhow::Error {
    Transient(format!("{what}: {e}")).into()
}

/// `fut` (waiting on `endpoint`) within `limit`; no answer in time is [`Transient`].
async fn within<T>(endpoint: &str, limit: Duration, what: &str, fut: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, fut).await.map_err(|_| {
        Transient(format!("{what}: no answer from {endpoint} in {} s", limit.as_secs_f64())).into()
    })
}

impl Subtensor {
    /// Connects to `finney`, `test`, `local` or a `ws://`/`wss://` URL.
    pub async fn connect(network: &str) -> Result<Self> {
        let endpoint = super::endpoint(network).with_context(|| {
            format!("unknown network {network:?}: use finney, test, local or a ws:// URL")
        })?;
        let what = format!("connecting to {endpoint}");
        let api = if endpoint.starts_with("ws://") {
            // Plain ws is refused by default (it carries the signed calls unencrypted); a local
            // node or an explicit ws:// URL is the user's choice.
            let connecting = OnlineClient::<SubstrateConfig>::from_insecure_url(&endpoint);
            within(&endpoint, DEFAULT_TIMEOUT, &what, connecting).await?
        } else {
            let connecting = OnlineClient::<SubstrateConfig>::from_url(&endpoint);
            within(&endpoint, DEFAULT_TIMEOUT, &what, connecting).await?
        };
        let api = api.map_err(|e| transient(&what, e))?;
        Ok(Self { api, endpoint, timeout: DEFAULT_TIMEOUT })
    }

    /// A client over any RPC client (tests use subxt's mock client).
    pub async fn from_rpc(rpc: subxt::rpcs::RpcClient, name: &str) -> Result<Self> {
        let connecting = OnlineClient::<SubstrateConfig>::from_rpc_client(rpc);
        let api = within(name, DEFAULT_TIMEOUT, "connecting", connecting)
            .await?
            .map_err(|e| transient("connecting", e))?;
        Ok(Self { api, endpoint: name.into(), timeout: DEFAULT_TIMEOUT })
    }

    /// The longest one RPC may go unanswered (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `fut`, an RPC to this node, within the timeout; its error is [`Transient`].
    async fn rpc<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T> {
        self.deadline(what, fut).await?.map_err(|e| transient(what, e))
    }

    /// `fut`, waiting on this node, within the timeout.
    async fn deadline<T>(&self, what: &str, fut: impl Future<Output = T>) -> Result<T> {
        within(&self.endpoint, self.timeout, what, fut).await
    }
}

/// The wallet key as subxt's signer.
struct SubxtSigner<'a>(&'a wallet::Keypair);

impl subxt::tx::Signer<SubstrateConfig> for SubxtSigner<'_> {
    fn account_id(&self) -> <SubstrateConfig as Config>::AccountId {
        AccountId32(self.0.public())
    }

    fn sign(&self, payload: &[u8]) -> <SubstrateConfig as Config>::Signature {
        MultiSignature::Sr25519(self.0.sign(payload))
    }
}

/// The metagraph fields arena reads (the runtime type has many more; they are skipped).
#[derive(DecodeAsType)]
struct RawMetagraph {
    tempo: u16,
    weights_version: u64,
    weights_rate_limit: u64,
    max_validators: u16,
    commit_reveal_weights_enabled: bool,
    commit_reveal_period: u64,
    hotkeys: Vec<[u8; 32]>,
    coldkeys: Vec<[u8; 32]>,
    active: Vec<bool>,
    validator_permit: Vec<bool>,
    last_update: Vec<u64>,
    emission: Vec<u64>,
    dividends: Vec<u16>,
    incentives: Vec<u16>,
    consensus: Vec<u16>,
    block_at_registration: Vec<u64>,
    total_stake: Vec<u64>,
}

/// `Registration { deposit, block, info: CommitmentInfo { fields } }`.
#[derive(DecodeAsType)]
struct Registration {
    block: u64,
    info: CommitmentInfo,
}

#[derive(DecodeAsType)]
struct CommitmentInfo {
    fields: Vec<Value>,
}

/// The bytes of a `Data::RawN([u8; N])` value, or what else it is.
fn data_bytes(v: &Value) -> Result<Vec<u8>, String> {
    fn flatten(c: &Composite<()>, out: &mut Vec<u8>) -> Result<(), String> {
        for v in c.values() {
            match &v.value {
                ValueDef::Primitive(Primitive::U128(b)) if *b <= 255 => out.push(*b as u8),
                ValueDef::Composite(inner) => flatten(inner, out)?,
                _ => return Err("unexpected value in a Raw field".into()),
            }
        }
        Ok(())
    }
    match &v.value {
        ValueDef::Variant(var) if var.name.starts_with("Raw") => {
            let mut out = Vec::new();
            flatten(&var.values, &mut out)?;
            Ok(out)
        }
        ValueDef::Variant(var) => Err(format!("a {} field, not a string", var.name)),
        _ => Err("not a commitment field".into()),
    }
}

/// The call as a dynamic transaction, arguments by position as the metadata lists them.
fn payload(call: &Call) -> subxt::tx::DynamicPayload<Vec<Value>> {
    let (pallet, name) = call.name();
    let u16s = |v: &[u16]| Value::unnamed_composite(v.iter().map(|x| Value::u128(*x as u128)));
    let netuid = |n: u16| Value::u128(n as u128);
    let mut args: Vec<Value> = Vec::new();
    match call {
        Call::SetWeights { netuid: n, mechanism, uids, weights, version_key } => {
            args.push(netuid(*n));
            if *mechanism != 0 {
                args.push(Value::u128(*mechanism as u128));
            }
            args.extend([u16s(uids), u16s(weights), Value::u128(*version_key as u128)]);
        }
        Call::CommitWeights { netuid: n, mechanism, hash } => {
            args.push(netuid(*n));
            if *mechanism != 0 {
                args.push(Value::u128(*mechanism as u128));
            }
            args.push(Value::from_bytes(hash));
        }
        Call::RevealWeights { netuid: n, mechanism, uids, weights, salt, version_key } => {
            args.push(netuid(*n));
            if *mechanism != 0 {
                args.push(Value::u128(*mechanism as u128));
            }
            args.extend([u16s(uids), u16s(weights), u16s(salt), Value::u128(*version_key as u128)]);
        }
        Call::CommitTimelockedWeights {
            netuid: n,
            mechanism,
            commit,
            reveal_round,
            commit_reveal_version,
        } => {
            args.push(netuid(*n));
            if *mechanism != 0 {
                args.push(Value::u128(*mechanism as u128));
            }
            args.extend([
                Value::from_bytes(commit),
                Value::u128(*reveal_round as u128),
                Value::u128(*commit_reveal_version as u128),
            ]);
        }
        Call::SetCommitment { netuid: n, data } => {
            let field =
                Value::variant(format!("Raw{}", data.len()), Composite::unnamed([Value::from_bytes(data)]));
            args.push(netuid(*n));
            args.push(Value::named_composite([("fields", Value::unnamed_composite([field]))]));
        }
    }
    dynamic::tx(pallet, name, args)
}

/// The call data subxt encodes for `call` from a runtime's metadata (offline).
pub fn call_data_from_metadata(metadata_bytes: &[u8], spec_version: u32, call: &Call) -> Result<Vec<u8>> {
    use parity_scale_codec::Decode;
    use subxt::config::substrate::SpecVersionForRange;
    let md = subxt::metadata::Metadata::decode(&mut &metadata_bytes[..]).context("decoding the metadata")?;
    let cfg = SubstrateConfig::builder()
        .set_metadata_for_spec_versions([(spec_version, md.into())])
        .set_spec_version_for_block_ranges([SpecVersionForRange {
            block_range: 0..u64::MAX,
            spec_version,
            transaction_version: 1,
        }])
        .build();
    let at = subxt::client::OfflineClient::new_with_config(cfg).at_block(0u64).map_err(|e| anyhow!("{e}"))?;
    at.tx().call_data(&payload(call)).map_err(|e| anyhow!("{}::{}: {e}", call.name().0, call.name().1))
}

impl Subtensor {
    async fn at(
        &self,
    ) -> Result<
        subxt::client::ClientAtBlock<
            SubstrateConfig,
            subxt::client::OnlineClientAtBlockImpl<SubstrateConfig>,
        >,
    > {
        self.rpc("reading the finalized block", self.api.at_current_block()).await
    }

    async fn metagraph_raw(&self, netuid: u16) -> Result<(u64, RawMetagraph)> {
        let at = self.at().await?;
        let call = dynamic::runtime_api_call::<_, Option<RawMetagraph>>(
            "SubnetInfoRuntimeApi",
            "get_metagraph",
            (netuid,),
        );
        let m = self.rpc("SubnetInfoRuntimeApi_get_metagraph", at.runtime_apis().call(call)).await?;
        let m = m.with_context(|| format!("subnet {netuid} does not exist"))?;
        Ok((at.block_number(), m))
    }
}

#[async_trait::async_trait]
impl Chain for Subtensor {
    async fn current_block(&self) -> Result<u64> {
        Ok(self.at().await?.block_number())
    }

    async fn block_hash(&self, block: u64) -> Result<String> {
        let at = self.rpc(&format!("block {block}"), self.api.at_block(block)).await?;
        Ok(format!("0x{}", hex::encode(at.block_hash().as_bytes())))
    }

    async fn metagraph(&self, netuid: u16) -> Result<Metagraph> {
        let (block, m) = self.metagraph_raw(netuid).await?;
        let n = m.hotkeys.len();
        let at = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
        let at16 = |v: &[u16], i: usize| v.get(i).copied().unwrap_or(0);
        let neurons = (0..n)
            .map(|i| Neuron {
                uid: i as u16,
                hotkey: ss58::encode(&m.hotkeys[i]),
                coldkey: m.coldkeys.get(i).map(ss58::encode).unwrap_or_default(),
                stake: at(&m.total_stake, i),
                validator_permit: m.validator_permit.get(i).copied().unwrap_or(false),
                active: m.active.get(i).copied().unwrap_or(false),
                last_update: at(&m.last_update, i),
                block_at_registration: at(&m.block_at_registration, i),
                consensus: at16(&m.consensus, i),
                incentive: at16(&m.incentives, i),
                dividends: at16(&m.dividends, i),
                emission: at(&m.emission, i),
            })
            .collect();
        Ok(Metagraph { netuid, block, neurons })
    }

    async fn params(&self, netuid: u16) -> Result<SubnetParams> {
        let (block, m) = self.metagraph_raw(netuid).await?;
        let at = self.at().await?;
        // The stateful scheduler's storage; runtimes without it count epochs by block.
        let storage = at.storage();
        let read = |entry: &'static str| {
            let storage = &storage;
            async move {
                match storage.entry(dynamic::storage::<(u16,), u64>("SubtensorModule", entry)) {
                    Ok(e) => self
                        .rpc(entry, e.fetch((netuid,)))
                        .await?
                        .decode()
                        .map(Some)
                        .map_err(|e| anyhow!("{entry}: {e}")),
                    Err(_) => Ok(None),
                }
            }
        };
        let (index, last, pending, since) = (
            read("SubnetEpochIndex").await?,
            read("LastEpochBlock").await?,
            read("PendingEpochAt").await?,
            read("BlocksSinceLastStep").await?,
        );
        let schedule = match (index, last, pending) {
            (Some(i), Some(l), Some(p)) => Some(super::crv4::EpochSchedule {
                last_epoch_block: l,
                pending_epoch_at: p,
                subnet_epoch_index: i,
                tempo: m.tempo,
                blocks_since_last_step: since.unwrap_or(0),
                current_block: block,
            }),
            _ => None,
        };
        let epoch_index = index.unwrap_or(block.saturating_add(netuid as u64 + 1) / (m.tempo as u64 + 1));
        let version = match storage
            .entry(dynamic::storage::<(), u16>("SubtensorModule", "CommitRevealWeightsVersion"))
        {
            Ok(e) => self
                .rpc("CommitRevealWeightsVersion", e.fetch(()))
                .await?
                .decode()
                .map_err(|e| anyhow!("CommitRevealWeightsVersion: {e}"))?,
            Err(_) => 2,
        };
        Ok(SubnetParams {
            tempo: m.tempo,
            weights_rate_limit: m.weights_rate_limit,
            weights_version_key: m.weights_version,
            commit_reveal: m.commit_reveal_weights_enabled,
            reveal_period_epochs: m.commit_reveal_period,
            epoch_index,
            commit_reveal_version: version,
            schedule,
            max_allowed_validators: m.max_validators,
        })
    }

    async fn commitments(&self, netuid: u16) -> Result<Vec<Commitment>> {
        let meta = self.metagraph(netuid).await?;
        let at = self.at().await?;
        let addr = dynamic::storage::<(u16, [u8; 32]), Registration>("Commitments", "CommitmentOf");
        let what = "Commitments::CommitmentOf";
        let mut it = self.rpc(what, at.storage().iter(addr, (netuid,))).await?;
        let mut out = Vec::new();
        while let Some(kv) = self.deadline(what, it.next()).await? {
            let kv = kv.map_err(|e| transient(what, e))?;
            let key = kv.key().map_err(|e| anyhow!("CommitmentOf key: {e}"))?;
            let account: [u8; 32] = key
                .part(1)
                .and_then(|p| p.decode_as::<[u8; 32]>().ok().flatten())
                .context("CommitmentOf key without an account")?;
            let reg: Registration = kv.value().decode_as().map_err(|e| anyhow!("CommitmentOf value: {e}"))?;
            let hotkey = ss58::encode(&account);
            let data = match reg.info.fields.first() {
                Some(f) => data_bytes(f).and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8".into())),
                None => Err("no fields".into()),
            };
            out.push(Commitment {
                uid: meta.neurons.iter().find(|n| n.hotkey == hotkey).map(|n| n.uid),
                hotkey,
                block: reg.block,
                data,
            });
        }
        Ok(out)
    }

    async fn weights(&self, netuid: u16) -> Result<super::WeightRows> {
        let at = self.at().await?;
        let addr = dynamic::storage::<(u16, u16), Vec<(u16, u16)>>("SubtensorModule", "Weights");
        let what = "SubtensorModule::Weights";
        let mut it = self.rpc(what, at.storage().iter(addr, (netuid,))).await?;
        let mut out = Vec::new();
        while let Some(kv) = self.deadline(what, it.next()).await? {
            let kv = kv.map_err(|e| transient(what, e))?;
            // Both keys are Identity-hashed: the uid is the last two bytes of the key.
            let k = kv.key_bytes();
            let uid = u16::from_le_bytes([k[k.len() - 2], k[k.len() - 1]]);
            out.push((uid, kv.value().decode().map_err(|e| anyhow!("Weights value: {e}"))?));
        }
        out.sort_by_key(|(u, _)| *u);
        Ok(out)
    }

    async fn submit(&mut self, signer: &wallet::Keypair, call: &Call) -> Result<Receipt> {
        call.encode()?;
        let tx = payload(call);
        let mut at = self.at().await?.transactions();
        let progress =
            self.rpc("submitting", at.sign_and_submit_then_watch_default(&tx, &SubxtSigner(signer))).await?;
        let finality = self.timeout.saturating_mul(10);
        let waiting = progress.wait_for_finalized();
        let in_block = within(&self.endpoint, finality, "waiting for finalization", waiting)
            .await?
            .map_err(|e| transient("waiting for finalization", e))?;
        let id = format!("0x{}", hex::encode(in_block.extrinsic_hash().as_bytes()));
        // A call the runtime refused (a dispatch error) is final: not retried (no answer is).
        self.deadline("reading the call's events", in_block.wait_for_success())
            .await?
            .map_err(|e| anyhow!("{}::{} failed: {e}", call.name().0, call.name().1))?;
        let block = self
            .rpc("reading the inclusion block", self.api.at_block(in_block.block_hash()))
            .await?
            .block_number();
        Ok(Receipt { block, id })
    }
}
