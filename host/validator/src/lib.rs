//! The validator service (`arena validator run`): one tokio process per subnet, from the
//! chain's commitments to weights, that loses nothing when it is killed.
//!
//! One loop owns the chain connection and does, each `service.poll` seconds:
//! 1. **chain**: the block (an RPC that does not answer within `rpc_timeout`, or a block that
//!    does not move for `stall` seconds, drops the connection and makes a new one, with
//!    backoff); the metagraph every `service.metagraph` seconds; the commitments whenever the
//!    block moved, each new one recorded as a submission in the store.
//! 2. **rounds** ([`rounds`]): at each round block (`round::round_block`: every sync block of a
//!    competition seeded by a block hash, every `round_blocks` blocks otherwise) a round is
//!    planned from the submissions as of that block and enqueued as jobs; missed round blocks
//!    are caught up, oldest first, at most `catch_up` of them. When every run has its result,
//!    the round is collected and scored, and its report, digest and EMA state are written in
//!    one transaction.
//! 3. **weights**: the newest scored round's u16 weights go through the `Emitter` (rate limit,
//!    commit-reveal, retries), whose journal lives in the store, once per epoch.
//!
//! Worker slots ([`slots`]), one per device in the configuration, claim the round's jobs from
//! the store under leases, run each in an isolated worker, heartbeat while it runs, and commit
//! its result fenced by the lease's token. A failure for the machine's reasons is retried
//! (`service.attempts`), a failure for the miner's is the result.
//!
//! Every decision is a function of the chain and the store, never of when the process ran:
//! killed at any point and started again, the validator re-derives the same rounds, re-runs
//! only the jobs without a result, and sends no epoch's weights twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use arena_chain::emit::{Emitter, Outcome as EmitOutcome, Retry};
use arena_chain::{Chain, Metagraph};
use arena_core::config::{Competition, ValidatorConfig};
use arena_plugin_api::Device;
use arena_store::{RoundState, Sqlite, Store};

mod journal;
pub mod metrics;
pub mod rounds;
pub mod slots;
pub mod status;
pub mod vtrust;

pub use journal::StoreJournal;

/// Where the chain is.
#[derive(Debug, Clone)]
pub enum ChainSource {
    /// The embedded chain's state file.
    Local(PathBuf),
    /// A subtensor node: `finney`, `test`, `local` or a `ws://` / `wss://` URL.
    Network(String),
}

/// Everything the service runs with, resolved by the caller (the CLI).
pub struct Settings {
    pub config: ValidatorConfig,
    /// The competitions the configuration lists, checked.
    pub competitions: Vec<Competition>,
    pub plugin_dirs: Vec<PathBuf>,
    pub devices: Vec<Device>,
    pub chain: ChainSource,
    pub signer: arena_chain::wallet::Keypair,
    pub store: PathBuf,
    /// Stop once every round up to this block is scored and its weights are set.
    pub until_block: Option<u64>,
    pub version_key: u64,
    /// This process, in lease owners (`host:pid`).
    pub instance: String,
}

/// The store document with the chain's block as last read, and when it last moved.
pub const CHAIN_KEY: &str = "chain";
/// The store document with the address `/metrics` is served on.
pub const METRICS_KEY: &str = "metrics-address";
/// The store document with the newest vtrust prediction ([`vtrust::Prediction`] as JSON), or
/// `{"netuid", "block", "reason"}` when there is none to make (no permit, not registered).
pub const PREDICTION_KEY: &str = "predicted-vtrust";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn secs(s: f64) -> Duration {
    arena_core::units::seconds(s).unwrap_or(Duration::from_secs(1))
}

/// A connection to the chain, with the RPC timeout.
pub async fn connect(source: &ChainSource, rpc_timeout: Duration) -> Result<Box<dyn Chain>> {
    match source {
        ChainSource::Local(path) => Ok(Box::new(arena_chain::local::LocalChain::open(path)?)),
        ChainSource::Network(network) => {
            let chain =
                tokio::time::timeout(rpc_timeout, arena_chain::subtensor::Subtensor::connect(network))
                    .await
                    .with_context(|| format!("no answer from {network} in {rpc_timeout:?}"))??;
            Ok(Box::new(chain.with_timeout(rpc_timeout)))
        }
    }
}

/// How one run of the service ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `--until-block` reached, every round scored and its weights set.
    UntilBlock(u64),
    /// Asked to stop (SIGTERM, Ctrl-C): running jobs went back to the queue.
    Stopped,
}

struct Sync {
    block: u64,
    moved_at: Instant,
    metagraph: Option<(Metagraph, Instant)>,
    commitments_at: Option<u64>,
}

/// What the weight setter last did.
#[derive(Default)]
struct WeightsState {
    /// (round id, epoch) last handled.
    handled: Option<(i64, u64)>,
    failed_at: Option<Instant>,
    /// (round id, epoch) whose weights' vtrust was last predicted.
    predicted: Option<(i64, u64)>,
}

/// Runs the service until `--until-block` or a stop request.
pub async fn run(settings: Settings) -> Result<Exit> {
    let s = Arc::new(settings);
    let service = s.config.service.clone();
    let store = Arc::new(Sqlite::open(&s.store).await?);
    let orphans = store.requeue_orphans("the validator stopped while this job ran: ", now_ms()).await?;
    if orphans > 0 {
        tracing::info!("{orphans} job(s) left running by a previous run are queued again");
    }
    let Some(mut chain) = connect_with_backoff(&s).await else {
        store.close().await;
        return Ok(Exit::Stopped);
    };
    // A call journaled as being sent when the previous run died: did it land?
    {
        let mut journal = StoreJournal::new(store.as_ref(), s.config.netuid);
        match emitter(&s, chain.as_mut(), &mut journal).reconcile().await {
            Ok(lines) => lines.iter().for_each(|l| tracing::warn!("weight journal: {l}")),
            // The epoch stays marked as sent: it is not sent twice, at worst once less.
            Err(e) => tracing::warn!("weight journal: cannot reconcile it with the chain: {e:#}"),
        }
    }

    let metrics = metrics::Metrics::new();
    if !service.metrics.is_empty() {
        match metrics::serve(&service.metrics, Arc::clone(&metrics), Arc::clone(&store)).await {
            Ok(addr) => {
                tracing::info!("status: http://{addr}/ (metrics: /metrics)");
                store.put(METRICS_KEY, &addr.to_string(), now_ms()).await?;
            }
            Err(e) => tracing::warn!("metrics: {e:#}; the validator runs without them"),
        }
    }
    let shared = slots::Shared::new(Arc::clone(&store), Arc::clone(&metrics));
    let workers = slots::spawn(&shared, &s);
    let mut sync: Option<Sync> = None;
    let mut rounds = rounds::Rounds::new(Arc::clone(&s), Arc::clone(&store), Arc::clone(&shared));
    let mut weights = WeightsState::default();
    let exit = loop {
        if stopping() {
            break Exit::Stopped;
        }
        match step(&s, &store, &metrics, &mut chain, &mut sync, &mut rounds, &mut weights).await {
            Ok(Some(exit)) => break exit,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("{e:#}");
                if e.downcast_ref::<ChainLost>().is_some() {
                    metrics.reconnects.inc();
                    match connect_with_backoff(&s).await {
                        Some(c) => chain = c,
                        None => break Exit::Stopped,
                    }
                    sync = None;
                }
            }
        }
        // The next poll, or sooner when a job's result is in (a round may be complete).
        tokio::select! {
            _ = pause(secs(service.poll)) => {}
            _ = shared.result_in.notified() => {}
        }
    };
    shared.stop();
    for w in workers {
        let _ = w.await;
    }
    store.close().await;
    Ok(exit)
}

/// The weight emitter of this validator, its journal in the store. Its retries are short: the
/// loop tries again after `service.weights_retry` seconds.
fn emitter<'a>(s: &'a Settings, chain: &'a mut dyn Chain, journal: &'a mut StoreJournal<'_>) -> Emitter<'a> {
    let retry = Retry { attempts: 3, base: Duration::from_millis(500) };
    Emitter { chain, signer: &s.signer, netuid: s.config.netuid, journal, retry }
}

/// The chain connection must be made again.
#[derive(Debug)]
struct ChainLost(String);

impl std::fmt::Display for ChainLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chain: {}", self.0)
    }
}

impl std::error::Error for ChainLost {}

/// A connection, tried again with backoff (200 ms doubling to a minute) until one is made;
/// `None` when the validator is asked to stop meanwhile.
async fn connect_with_backoff(s: &Settings) -> Option<Box<dyn Chain>> {
    let timeout = secs(s.config.service.rpc_timeout);
    let mut wait = Duration::from_millis(200);
    loop {
        if stopping() {
            return None;
        }
        match connect(&s.chain, timeout).await {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::warn!("connecting to the chain: {e:#}; again in {wait:?}");
                pause(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
}

fn stopping() -> bool {
    arena_runtime::cancel::requested()
}

/// Sleeps `d`, or less when the validator is asked to stop.
async fn pause(d: Duration) {
    let end = Instant::now() + d;
    while !stopping() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
}

/// `f` within the RPC timeout; a timeout or an error means the connection is lost.
async fn rpc<T>(s: &Settings, what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let timeout = secs(s.config.service.rpc_timeout);
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ChainLost(format!("{what}: {e:#}")).into()),
        Err(_) => Err(ChainLost(format!("{what}: no answer in {timeout:?}")).into()),
    }
}

async fn step(
    s: &Arc<Settings>,
    store: &Arc<Sqlite>,
    metrics: &metrics::Metrics,
    chain: &mut Box<dyn Chain>,
    sync: &mut Option<Sync>,
    rounds: &mut rounds::Rounds,
    weights: &mut WeightsState,
) -> Result<Option<Exit>> {
    let service = &s.config.service;
    let netuid = s.config.netuid;
    let block = rpc(s, "current block", chain.current_block()).await?;
    let now = Instant::now();
    let st = sync.get_or_insert(Sync { block, moved_at: now, metagraph: None, commitments_at: None });
    metrics.block.set(block as i64);
    metrics.block_age_seconds.set(now.duration_since(st.moved_at).as_secs_f64());
    if block != st.block || st.commitments_at.is_none() {
        st.block = block;
        st.moved_at = now;
        let chain_doc = serde_json::json!({"block": block, "moved_ms": now_ms()});
        store.put(CHAIN_KEY, &chain_doc.to_string(), now_ms()).await?;
    } else if now.duration_since(st.moved_at) > secs(service.stall) {
        return Err(ChainLost(format!("no new block for {:.0} s (still {block})", service.stall)).into());
    }
    let stale = st.metagraph.as_ref().is_none_or(|(_, at)| now.duration_since(*at) > secs(service.metagraph));
    if stale {
        let m = rpc(s, "metagraph", chain.metagraph(netuid)).await?;
        st.metagraph = Some((m, now));
    }
    if st.commitments_at != Some(block) {
        let commitments = rpc(s, "commitments", chain.commitments(netuid)).await?;
        let mut new = 0;
        for c in commitments {
            let (Some(uid), Ok(data)) = (c.uid, &c.data) else { continue };
            for entry in
                arena_core::round::entries_from_commitment(&s.competitions, uid, &c.hotkey, c.block, data)
            {
                let row = arena_store::SubmissionRow {
                    competition: entry.competition.clone(),
                    hotkey: entry.hotkey.clone(),
                    commit_block: entry.block,
                    uid,
                    entry: serde_json::to_string(&entry)?,
                    seen_block: block,
                };
                if store.record_submission(&row, now_ms()).await? {
                    new += 1;
                    tracing::info!(
                        "submission: uid {uid} ({}) to `{}` at block {}: {}",
                        entry.hotkey,
                        entry.competition,
                        entry.block,
                        entry.repo.as_deref().unwrap_or("?")
                    );
                }
            }
        }
        if new > 0 {
            tracing::debug!("{new} new submission(s) at block {block}");
        }
        st.commitments_at = Some(block);
    }
    let metagraph = st.metagraph.as_ref().map(|(m, _)| m.clone()).context("no metagraph yet")?;

    rounds.advance(chain.as_ref(), &metagraph, block).await?;
    emit_weights(s, store, metrics, chain, weights).await?;
    for (state, n) in store.job_counts().await? {
        metrics.jobs.get_or_create(&metrics::StateLabel { state }).set(n as i64);
    }
    metrics.store_bytes.set(store.size_bytes().await? as i64);

    if let Some(until) = s.until_block
        && block >= until
        && rounds.settled(until).await?
    {
        return Ok(Some(Exit::UntilBlock(block)));
    }
    Ok(None)
}

/// Sets the newest scored round's weights once per epoch (the journal keeps it to once even
/// across restarts); a failure is tried again after `weights_retry` seconds.
async fn emit_weights(
    s: &Arc<Settings>,
    store: &Arc<Sqlite>,
    metrics: &metrics::Metrics,
    chain: &mut Box<dyn Chain>,
    state: &mut WeightsState,
) -> Result<()> {
    let Some(round) = store.rounds(64).await?.into_iter().find(|r| r.state == RoundState::Done) else {
        return Ok(());
    };
    let params = rpc(s, "subnet parameters", chain.params(s.config.netuid)).await?;
    if state.handled == Some((round.id, params.epoch_index)) {
        return Ok(());
    }
    if let Some(at) = state.failed_at
        && at.elapsed() < secs(s.config.service.weights_retry)
    {
        return Ok(());
    }
    let report: serde_json::Value =
        serde_json::from_str(round.report.as_deref().unwrap_or("null")).context("the round's report")?;
    let u16s = rounds::report_weights(&report)?;
    if state.predicted != Some((round.id, params.epoch_index)) {
        state.predicted = Some((round.id, params.epoch_index));
        predict_vtrust(s, store, metrics, chain.as_ref(), &params, &u16s).await;
    }
    let mut journal = StoreJournal::new(store.as_ref(), s.config.netuid);
    match emitter(s, chain.as_mut(), &mut journal).emit(&u16s, s.version_key).await {
        Ok(outcome) => {
            state.failed_at = None;
            let label = serde_json::to_value(&outcome)?["outcome"].as_str().unwrap_or("?").to_string();
            metrics.weight_set(&label);
            tracing::info!("round at block {}: {outcome}", round.block);
            let landed = matches!(
                outcome,
                EmitOutcome::Set { .. } | EmitOutcome::Committed { .. } | EmitOutcome::Timelocked { .. }
            );
            if landed || round.weights.is_none() {
                store.set_round_weights(round.id, &serde_json::to_string(&outcome)?).await?;
            }
            match outcome {
                // A reveal used this call; the weights themselves go next.
                EmitOutcome::Revealed { .. } => {}
                // The rate limit: try again at the next poll.
                EmitOutcome::RateLimited { .. } => {}
                _ => state.handled = Some((round.id, params.epoch_index)),
            }
            Ok(())
        }
        Err(e) => {
            metrics.weight_set("error");
            state.failed_at = Some(Instant::now());
            Err(e.context(format!("setting the weights of the round at block {}", round.block)))
        }
    }
}

/// The vtrust `u16s` are predicted to get ([`vtrust::predict`] on the chain's metagraph and
/// weights): logged, stored under [`PREDICTION_KEY`] for `status`, and in the metrics. Once per
/// round and epoch. It never fails: a prediction that cannot be made is a warning, and the
/// weights are set all the same.
async fn predict_vtrust(
    s: &Settings,
    store: &Sqlite,
    metrics: &metrics::Metrics,
    chain: &dyn Chain,
    params: &arena_chain::SubnetParams,
    u16s: &[(u16, u16)],
) {
    let doc = match prediction(s, chain, params, u16s).await {
        Ok(Ok(p)) => {
            tracing::info!("uid {}: {p}", p.uid);
            metrics.predicted_vtrust.set(p.validator_trust);
            metrics.consensus_distance.set(p.consensus_distance);
            serde_json::to_value(&p)
        }
        Ok(Err(none)) => {
            tracing::info!("predicted vtrust: none: {}", none["reason"].as_str().unwrap_or("?"));
            Ok(none)
        }
        Err(e) => {
            tracing::warn!("predicted vtrust: {e:#}; the weights are set without a prediction");
            return;
        }
    };
    let stored = match doc {
        Ok(doc) => store.put(PREDICTION_KEY, &doc.to_string(), now_ms()).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = stored {
        tracing::warn!("predicted vtrust: storing it: {e:#}");
    }
}

/// The prediction, or the document saying why there is none.
async fn prediction(
    s: &Settings,
    chain: &dyn Chain,
    params: &arena_chain::SubnetParams,
    u16s: &[(u16, u16)],
) -> Result<std::result::Result<vtrust::Prediction, serde_json::Value>> {
    let netuid = s.config.netuid;
    let metagraph = rpc(s, "metagraph", chain.metagraph(netuid)).await?;
    let rows = rpc(s, "weights", chain.weights(netuid)).await?;
    let me = s.signer.ss58();
    let none =
        |reason: String| serde_json::json!({"netuid": netuid, "block": metagraph.block, "reason": reason});
    let Some(uid) = metagraph.neurons.iter().find(|n| n.hotkey == me).map(|n| n.uid) else {
        return Ok(Err(none(format!("hotkey {me} is not registered on subnet {netuid}"))));
    };
    match vtrust::predict(&metagraph, &rows, params, uid, u16s, metagraph.block)? {
        Some(p) => Ok(Ok(p)),
        None => Ok(Err(none(format!(
            "uid {uid} holds no validator permit: the next epoch does not read its weights"
        )))),
    }
}
