//! Rounds: planned at their round block from the submissions as of that block, enqueued as
//! jobs, collected and scored once every run has its result.
//!
//! A round is stored with its SUBMISSIONS.json and the block hashes its seeds came from, so the
//! plan is derived again after a restart, exactly. A run's job key is a hash of what it
//! evaluates (the run spec, the plugin's sha256, the submission): a later round that evaluates
//! the same thing (a fixed seed, an unchanged model) reuses the result instead of running it.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arena_chain::{Chain, Metagraph};
use arena_core::dryrun::State;
use arena_core::evalset::{self, History};
use arena_core::failure::{FailureKind, JobFailure};
use arena_core::round::{self, Outcome, Plan, SubmissionEntry, SubmissionsFile};
use arena_runtime::fetch;
use arena_runtime::job::{Job, JobLimits};
use arena_runtime::ops::round::{self as ops, Options, Prepared};
use arena_store::{NewResult, NewRun, RoundRow, RoundState, Sqlite, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::slots::Shared;
use crate::{Settings, now_ms, rpc};

/// The store document holding the EMA state.
pub const EMA_KEY: &str = "ema-state";
/// The store document holding what was evaluated (the eval set's memory).
pub const HISTORY_KEY: &str = "eval-history";

/// What a worker slot needs to run the round's jobs.
pub struct RoundCtx {
    pub row: RoundRow,
    pub file: SubmissionsFile,
    pub plan: Plan,
    pub prepared: Prepared,
    pub options: Options,
    /// Per run: its job key.
    pub keys: Vec<String>,
    /// Where this process's time on the round went.
    pub timing: Arc<Timing>,
}

/// A round's time in this process: since it was created or resumed, in its worker slots' jobs,
/// and in the plugins' own code within them (the rest of a step is the host's overhead).
#[derive(Debug)]
pub struct Timing {
    pub started: std::time::Instant,
    pub jobs_us: std::sync::atomic::AtomicU64,
    pub plugin_us: std::sync::atomic::AtomicU64,
}

impl Timing {
    fn new() -> Arc<Self> {
        Arc::new(Self { started: std::time::Instant::now(), jobs_us: 0.into(), plugin_us: 0.into() })
    }

    /// Adds a job's time in the plugin's own code, when its worker said.
    pub fn add_plugin(&self, took: Option<std::time::Duration>) {
        if let Some(d) = took {
            self.plugin_us.fetch_add(d.as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// "step S s, jobs J s, plugins' own code P s (host overhead H%)".
    fn summary(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let step = self.started.elapsed().as_secs_f64();
        let jobs = self.jobs_us.load(Relaxed) as f64 / 1e6;
        let plugins = self.plugin_us.load(Relaxed) as f64 / 1e6;
        let overhead = if step > 0.0 { 100.0 * (step - plugins) / step } else { 0.0 };
        format!(
            "step {step:.3} s, jobs {jobs:.3} s, plugins' own code {plugins:.3} s (host overhead {overhead:.1}%)"
        )
    }
}

/// A job's payload: which run of which round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub round: u64,
    pub run: u32,
}

impl RoundCtx {
    /// The job of run `i` in worker slot `slot`, or its outcome when it does not run.
    pub fn job(&self, i: usize, slot: usize) -> Result<(Job, JobLimits), Outcome> {
        ops::job(&self.plan, &self.prepared, &self.options, i, slot)
    }

    pub fn plugin_sha256(&self, i: usize) -> &str {
        &self.prepared.plugin_sha256[self.plan.runs[i].spec]
    }
}

/// The key of run `i`: sha256 of what it evaluates.
pub fn run_key(plan: &Plan, prepared: &Prepared, file: &SubmissionsFile, i: usize) -> String {
    let run = plan.runs[i];
    let what = serde_json::json!({
        "v": 1,
        "spec": plan.specs[run.spec],
        "plugin_sha256": prepared.plugin_sha256[run.spec],
        "submission": file.submissions[run.submission],
    });
    hex::encode(Sha256::digest(what.to_string().as_bytes()))
}

/// The u16 weights of a round report (`weights[].u16`, zeros left out, as the round sends them).
pub fn report_weights(report: &serde_json::Value) -> Result<Vec<(u16, u16)>> {
    let weights = report.get("weights").and_then(|w| w.as_array()).context("the report has no weights")?;
    let mut out = Vec::new();
    for w in weights {
        let uid = w.get("uid").and_then(|v| v.as_u64()).and_then(|v| u16::try_from(v).ok());
        let value = w.get("u16").and_then(|v| v.as_u64()).and_then(|v| u16::try_from(v).ok());
        let (Some(uid), Some(value)) = (uid, value) else {
            bail!("a weight of the report is not (uid, u16): {w}")
        };
        if value != 0 {
            out.push((uid, value));
        }
    }
    Ok(out)
}

/// The round's submissions as of `block`: per competition and registered hotkey, its latest
/// commitment at or before the block, under the hotkey's current uid.
pub fn submissions_at(
    rows: &[arena_store::SubmissionRow],
    metagraph: &Metagraph,
    block: u64,
) -> Result<SubmissionsFile> {
    let uids: BTreeMap<&str, u16> = metagraph.neurons.iter().map(|n| (n.hotkey.as_str(), n.uid)).collect();
    let mut latest: BTreeMap<(&str, &str), &arena_store::SubmissionRow> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.commit_block <= block) {
        let slot = latest.entry((r.competition.as_str(), r.hotkey.as_str())).or_insert(r);
        if r.commit_block > slot.commit_block {
            *slot = r;
        }
    }
    let mut submissions = Vec::new();
    for ((_, hotkey), r) in latest {
        let Some(&uid) = uids.get(hotkey) else { continue };
        let mut entry: SubmissionEntry =
            serde_json::from_str(&r.entry).with_context(|| format!("the store's submission of {hotkey}"))?;
        entry.uid = uid;
        submissions.push(entry);
    }
    submissions.sort_by(|a, b| (&a.competition, a.uid).cmp(&(&b.competition, b.uid)));
    Ok(SubmissionsFile { block: Some(block), registered: Some(metagraph.neurons.len()), submissions })
}

pub struct Rounds {
    s: Arc<Settings>,
    store: Arc<Sqlite>,
    shared: Arc<Shared>,
}

impl Rounds {
    pub fn new(s: Arc<Settings>, store: Arc<Sqlite>, shared: Arc<Shared>) -> Self {
        Self { s, store, shared }
    }

    fn options(&self) -> Options {
        Options { isolated: true, jobs: 1, devices: self.s.devices.clone(), timeout: None, memory: None }
    }

    /// The round blocks due at `block` after the newest round in the store (all of them up to
    /// `catch_up`; the first round of an empty store is the current one).
    async fn due(&self, block: u64) -> Result<Vec<u64>> {
        // With `--until-block`, rounds past it are never due: the catch-up limit then keeps the
        // newest rounds up to it (were they counted, the ones kept could all lie past it, and
        // the rounds before it would never run).
        let block = self.s.until_block.map_or(block, |u| block.min(u));
        let service = &self.s.config.service;
        let newest = self.store.rounds(1).await?.first().map(|r| r.block);
        let Some(last) = newest else {
            return Ok(round::round_block(&self.s.competitions, block, service.round_blocks)
                .into_iter()
                .collect());
        };
        let limit = service.catch_up.max(1) as usize;
        let mut due =
            round::round_blocks_between(&self.s.competitions, last, block, service.round_blocks, limit + 1);
        if due.len() > limit {
            let dropped = due.remove(0);
            tracing::warn!(
                "more than {limit} rounds were missed since block {last}; rounds before block {} are skipped \
                 (the first skipped is {dropped})",
                due[0]
            );
        }
        Ok(due)
    }

    /// Moves the rounds on: finishes the running one when its results are in, or starts the
    /// next one that is due.
    pub async fn advance(&mut self, chain: &dyn Chain, metagraph: &Metagraph, block: u64) -> Result<()> {
        if self.shared.current().is_none()
            && let Some(row) = self.store.rounds(1).await?.into_iter().next()
            && row.state == RoundState::Running
        {
            let (id, at) = (row.id, row.block);
            match self.load(row).await? {
                Ok(ctx) => self.shared.set_current(Some(Arc::new(ctx))),
                Err(why) => {
                    tracing::warn!("round at block {at} abandoned: {why}");
                    self.shared.metrics.round("skipped");
                    self.store.abandon_round(id, &why, now_ms()).await?;
                }
            }
        }
        if let Some(ctx) = self.shared.current() {
            self.reap(&ctx).await?;
            if !self.try_finish(&ctx).await? {
                return Ok(());
            }
            self.shared.set_current(None);
        }
        // With `--until-block`, no round after it is started: the run ends at the same round
        // whenever it ends.
        let due = self.due(block).await?.into_iter().filter(|&r| self.s.until_block.is_none_or(|u| r <= u));
        if let Some(r) = due.min() {
            self.create(chain, metagraph, r).await?;
        }
        Ok(())
    }

    /// True when every round up to `until` is scored and the newest scored one's weights are
    /// on chain.
    pub async fn settled(&self, until: u64) -> Result<bool> {
        if self.shared.current().is_some() {
            return Ok(false);
        }
        let rounds = self.store.rounds(64).await?;
        if rounds.iter().any(|r| r.state == RoundState::Running) {
            return Ok(false);
        }
        if let Some(last) = rounds.first().map(|r| r.block) {
            let more = round::round_blocks_between(
                &self.s.competitions,
                last,
                until,
                self.s.config.service.round_blocks,
                1,
            );
            if !more.is_empty() {
                return Ok(false);
            }
        }
        let Some(done) = rounds.iter().find(|r| r.state == RoundState::Done && r.block <= until) else {
            return Ok(!rounds.is_empty());
        };
        let landed = done
            .weights
            .as_deref()
            .and_then(|w| serde_json::from_str::<serde_json::Value>(w).ok())
            .and_then(|w| w.get("outcome").and_then(|o| o.as_str()).map(str::to_string))
            .is_some_and(|o| matches!(o.as_str(), "set" | "committed" | "timelocked" | "nothing_to_set"));
        Ok(landed)
    }

    async fn create(&mut self, chain: &dyn Chain, metagraph: &Metagraph, block: u64) -> Result<()> {
        // A step: from here (its submissions, downloads, plan) to its weights.
        let timing = Timing::new();
        let s = &self.s;
        let rows = self.store.submissions().await?;
        let file = self.eval_set(submissions_at(&rows, metagraph, block)?, block).await?;
        let file_json = serde_json::to_string(&file)?;
        if let Err(e) = round::validate(&file, &s.competitions) {
            return self.skip(block, &file_json, format!("the submissions are invalid: {e}")).await;
        }
        let mut hashes = BTreeMap::new();
        for sync in round::sync_blocks(&s.competitions, block) {
            hashes.insert(sync, rpc(s, "block hash", chain.block_hash(sync)).await?);
        }
        let plan = match round::plan(&s.competitions, &file, block, &hashes) {
            Ok(p) => p,
            Err(e) => return self.skip(block, &file_json, e).await,
        };
        if plan.runs.is_empty() {
            let why = "no submission to evaluate (none committed, pending, or no competition active)";
            return self.skip(block, &file_json, why.into()).await;
        }
        let prepared = match self.prepare(&file, &plan).await {
            Ok(p) => p,
            // A dataset or plugin that cannot be had: never scored on partial data.
            Err(e) => return self.skip(block, &file_json, format!("{e:#}")).await,
        };
        let keys: Vec<String> = (0..plan.runs.len()).map(|i| run_key(&plan, &prepared, &file, i)).collect();
        let runs: Vec<NewRun> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| NewRun {
                run: i as u32,
                dedup_key: k.clone(),
                payload: serde_json::to_string(&Payload { round: block, run: i as u32 }).expect("a payload"),
            })
            .collect();
        let row = self
            .store
            .create_round(
                block,
                &serde_json::to_string(&file)?,
                &serde_json::to_string(&hashes)?,
                &runs,
                s.config.service.attempts.max(1),
                now_ms(),
            )
            .await?;
        tracing::info!(
            "round at block {block}: {} run(s) of {} submission(s)",
            plan.runs.len(),
            file.submissions.len()
        );
        let options = self.options();
        self.shared.set_current(Some(Arc::new(RoundCtx {
            row,
            file,
            plan,
            prepared,
            options,
            keys,
            timing,
        })));
        Ok(())
    }

    /// The submissions the round at `block` evaluates: every one, or the eval set where a
    /// competition sets `schedule.keep`.
    async fn eval_set(&self, latest: SubmissionsFile, block: u64) -> Result<SubmissionsFile> {
        if self.s.competitions.iter().all(|c| c.schedule.keep.is_none()) {
            return Ok(latest);
        }
        let history = self.history().await?;
        let rounds = self.store.rounds(64).await?;
        let last = rounds.iter().find(|r| r.state == RoundState::Done && r.block < block);
        let ranking = match last.and_then(|r| r.report.as_deref()) {
            Some(t) => evalset::ranking_of(&serde_json::from_str(t).context("the last round's report")?),
            None => BTreeMap::new(),
        };
        let file = evalset::select(&self.s.competitions, &latest, &ranking, &history);
        let left = latest.submissions.len() - file.submissions.len();
        if left > 0 {
            tracing::info!("round at block {block}: {left} submission(s) not re-evaluated (schedule.keep)");
        }
        Ok(file)
    }

    async fn history(&self) -> Result<History> {
        match self.store.get(HISTORY_KEY).await? {
            Some(t) => serde_json::from_str(&t).context("the store's evaluation history"),
            None => Ok(History::default()),
        }
    }

    async fn skip(&self, block: u64, file_json: &str, reason: String) -> Result<()> {
        tracing::warn!("round at block {block} skipped: {reason}");
        self.shared.metrics.round("skipped");
        self.store.skip_round(block, file_json, &reason, now_ms()).await.map(|_| ())
    }

    async fn prepare(&self, file: &SubmissionsFile, plan: &Plan) -> Result<Prepared> {
        let (s, file, plan) = (Arc::clone(&self.s), file.clone(), plan.clone());
        // Under the disk cap, the round's own models (fetched or found in the cache) are never
        // evicted for its others; rounds run one at a time, so those are all the models any job
        // uses.
        let hub = fetch::Hub { max_bytes: s.config.cache.max_bytes.map(|b| b.0), ..fetch::Hub::from_env() };
        tokio::task::spawn_blocking(move || {
            let base = std::path::Path::new(".");
            ops::prepare_with_hub(&s.competitions, &file, base, &plan, &s.plugin_dirs, true, &hub)
        })
        .await
        .context("preparing the round")?
    }

    /// A running round from the store, as it was planned (after a restart); `Err(why)` when it
    /// cannot be resumed (the competitions or plugins changed since it was planned). Errors
    /// that may pass (a download) are the outer error: the next loop tries again.
    async fn load(&self, row: RoundRow) -> Result<Result<RoundCtx, String>> {
        let timing = Timing::new();
        let file: SubmissionsFile =
            serde_json::from_str(&row.submissions).context("the round's submissions")?;
        let hashes: BTreeMap<u64, String> =
            serde_json::from_str(&row.hashes).context("the round's block hashes")?;
        let plan = match round::plan(&self.s.competitions, &file, row.block, &hashes) {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("it cannot be planned again: {e}"))),
        };
        let prepared = self.prepare(&file, &plan).await?;
        let keys: Vec<String> = (0..plan.runs.len()).map(|i| run_key(&plan, &prepared, &file, i)).collect();
        let stored: Vec<String> =
            self.store.round_results(row.id).await?.into_iter().map(|(k, _)| k).collect();
        if stored != keys {
            return Ok(Err("it was planned with other competitions or plugins than these".into()));
        }
        tracing::info!("round at block {}: resumed", row.block);
        Ok(Ok(RoundCtx { row, file, plan, prepared, options: self.options(), keys, timing }))
    }

    /// Jobs whose lease expired with no attempt left fail with that reason.
    async fn reap(&self, ctx: &RoundCtx) -> Result<()> {
        for e in self.store.reap(now_ms()).await? {
            let payload: Payload = serde_json::from_str(&e.claimed.payload)?;
            let failure = JobFailure::new(
                FailureKind::Crashed,
                format!("its worker slot ({}) stopped answering and no attempt is left", e.owner),
            );
            let result = NewResult {
                outcome: serde_json::to_string(&Outcome::Err(failure))?,
                wall_ms: 0,
                plugin_sha256: ctx.plugin_sha256(payload.run as usize).to_string(),
                arena_version: env!("CARGO_PKG_VERSION").into(),
            };
            self.store.complete(e.claimed.id, e.claimed.token, &result, now_ms()).await?;
        }
        Ok(())
    }

    /// Scores the round once every run has its result: report, digest and EMA state in one
    /// transaction. False while results are missing.
    async fn try_finish(&self, ctx: &RoundCtx) -> Result<bool> {
        let results = self.store.round_results(ctx.row.id).await?;
        if results.iter().any(|(_, r)| r.is_none()) {
            return Ok(false);
        }
        let mut outcomes = Vec::new();
        for (key, r) in results {
            let r = r.expect("checked above");
            let o: Outcome = serde_json::from_str(&r.outcome)
                .with_context(|| format!("the stored result of job {key}"))?;
            outcomes.push((o, r.wall_ms));
        }
        let mut state: State = match self.store.get(EMA_KEY).await? {
            Some(t) => serde_json::from_str(&t).context("the store's EMA state")?,
            None => State::default(),
        };
        let mut history = self.history().await?;
        let plain: Vec<_> = outcomes.iter().map(|(o, _)| o.clone()).collect();
        evalset::record(&mut history, &ctx.file, &ctx.plan, &plain);
        let comps = &self.s.competitions;
        let report = match round::collect(
            comps,
            Some(&self.s.config.funding),
            &ctx.file,
            &ctx.plan,
            outcomes,
            &mut state,
        ) {
            Ok(r) => r,
            // Scoring is a function of the results: trying again would fail again.
            Err(e) => {
                let why = format!("its scores cannot become weights: {e}");
                tracing::warn!("round at block {} abandoned: {why}", ctx.row.block);
                self.shared.metrics.round("skipped");
                self.store.abandon_round(ctx.row.id, &why, now_ms()).await?;
                return Ok(true);
            }
        };
        let report_json = serde_json::to_string(&report)?;
        let state_json = serde_json::to_string(&state)?;
        let history_json = serde_json::to_string(&history)?;
        let documents = [(EMA_KEY, state_json.as_str()), (HISTORY_KEY, history_json.as_str())];
        let finished =
            self.store.finish_round(ctx.row.id, &report_json, &report.digest, &documents, now_ms()).await?;
        if finished {
            self.shared.metrics.round("done");
            let pruned = self.store.prune(self.s.config.service.keep_rounds).await?;
            if pruned > 0 {
                tracing::debug!("{pruned} old round(s) pruned from the store");
            }
            let sent: Vec<String> = report
                .scores
                .weights
                .iter()
                .filter(|w| w.u16 != 0)
                .map(|w| format!("{}:{}", w.uid, w.u16))
                .collect();
            tracing::info!(
                "round at block {}: scored, digest {}, weights {}; {}",
                ctx.row.block,
                report.digest,
                if sent.is_empty() { "none".into() } else { sent.join(" ") },
                ctx.timing.summary()
            );
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arena_chain::Neuron;
    use arena_store::SubmissionRow;

    fn neuron(uid: u16, hotkey: &str) -> Neuron {
        Neuron {
            uid,
            hotkey: hotkey.into(),
            coldkey: hotkey.into(),
            stake: 0,
            validator_permit: false,
            active: true,
            last_update: 0,
            block_at_registration: 0,
            consensus: 0,
            incentive: 0,
            dividends: 0,
            emission: 0,
        }
    }

    fn row(hotkey: &str, block: u64, repo: &str) -> SubmissionRow {
        let entry = SubmissionEntry {
            uid: 999,
            hotkey: hotkey.into(),
            block,
            competition: "c".into(),
            path: None,
            repo: Some(repo.into()),
            revision: Some("0".repeat(40)),
            metadata: None,
        };
        SubmissionRow {
            competition: "c".into(),
            hotkey: hotkey.into(),
            commit_block: block,
            uid: 999,
            entry: serde_json::to_string(&entry).unwrap(),
            seen_block: block,
        }
    }

    #[test]
    fn a_rounds_submissions_are_each_hotkeys_latest_by_its_block_under_its_current_uid() {
        let metagraph = Metagraph {
            netuid: 1,
            block: 500,
            neurons: vec![neuron(0, "a"), neuron(1, "b"), neuron(2, "c")],
        };
        let rows = [
            row("b", 10, "b/old"),
            row("b", 90, "b/new"),
            row("a", 50, "a/one"),
            row("c", 200, "c/later"),
            // Deregistered since: not in the metagraph.
            row("gone", 20, "gone/x"),
        ];
        let file = submissions_at(&rows, &metagraph, 100).unwrap();
        let got: Vec<(u16, &str, u64)> =
            file.submissions.iter().map(|s| (s.uid, s.repo.as_deref().unwrap(), s.block)).collect();
        assert_eq!(got, vec![(0, "a/one", 50), (1, "b/new", 90)]);
        assert_eq!((file.block, file.registered), (Some(100), Some(3)));
        // At block 50 b's first commitment is its latest.
        let early = submissions_at(&rows, &metagraph, 50).unwrap();
        assert_eq!(
            early.submissions.iter().map(|s| s.repo.as_deref().unwrap()).collect::<Vec<_>>(),
            ["a/one", "b/old"]
        );
    }

    #[test]
    fn report_weights_leave_zeros_out_and_refuse_what_is_not_a_u16() {
        let report = serde_json::json!({"weights": [{"uid": 3, "u16": 65535}, {"uid": 1, "u16": 0}, {"uid": 2, "u16": 12}]});
        assert_eq!(report_weights(&report).unwrap(), vec![(3, 65535), (2, 12)]);
        let bad = serde_json::json!({"weights": [{"uid": 3, "u16": 70000}]});
        assert!(report_weights(&bad).is_err());
        assert!(report_weights(&serde_json::json!({})).is_err());
    }
}
