//! One competition round as data, with no I/O: [`plan`] turns the competitions, the round's
//! submissions and the block into the evaluation runs to execute; [`collect`] turns the runs'
//! outcomes into raw scores (each task's `metric` read from its run's output), scores them with
//! [`crate::dryrun`], and adds the digest two validators compare. `ops::round` does the I/O
//! between the two (models, datasets, workers).
//!
//! A run is (plugin, kind, params, dataset, sample draw, seed) for one submission. Tasks of a
//! competition that differ only in how their score is read (`metric`, `weight`, `direction`,
//! `normalization`, `gate`, `name`) share one run: SN34's MCC and Brier tasks cost one pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use arena_plugin_api::EvalOutput;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Competition, SeedPolicy};
use crate::dryrun::{self, RawScores, Report, State};
use crate::failure::{FailureKind, JobFailure};
use crate::scoring::{self, RawSubmission, Uid};

/// SUBMISSIONS.json: the submissions of one round (or a bare array of them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionsFile {
    /// The current block (overridden by `--block`, or the chain's).
    #[serde(default)]
    pub block: Option<u64>,
    /// Registered uids on the subnet (competitions whose opponents are the registry).
    #[serde(default)]
    pub registered: Option<usize>,
    pub submissions: Vec<SubmissionEntry>,
}

/// One miner's submission to one competition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionEntry {
    pub uid: Uid,
    #[serde(default)]
    pub hotkey: String,
    /// The block the submission was committed at.
    pub block: u64,
    /// The competition's `id`.
    pub competition: String,
    /// A local file or directory (relative to the submissions file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// A Hugging Face model repository `OWNER/NAME`, or `OWNER/NAME@REVISION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The repository's revision (a commit hash, or a branch or tag in the hub cache's refs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Metadata handed to the plugin (default: the submission's own `submission.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

impl SubmissionEntry {
    /// Where the submission comes from, or why the entry names none (or both).
    pub fn source(&self) -> Result<Source, String> {
        match (&self.path, &self.repo) {
            (Some(p), None) if self.revision.is_none() => Ok(Source::Path(p.clone())),
            (Some(_), None) => Err("`revision` goes with `repo`, not with `path`".into()),
            (None, Some(r)) => {
                let (repo, rev) = match r.split_once('@') {
                    Some((repo, rev)) if self.revision.is_none() => (repo.to_string(), rev.to_string()),
                    Some(_) => return Err(format!("`{r}` already names a revision; drop `revision`")),
                    None => match &self.revision {
                        Some(rev) => (r.clone(), rev.clone()),
                        None => return Err(format!("`{r}` needs a revision: `repo@revision` or `revision`")),
                    },
                };
                let valid = |s: &str| {
                    !s.is_empty()
                        && s != "."
                        && s != ".."
                        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                };
                match repo.split_once('/') {
                    Some((o, n)) if valid(o) && valid(n) => {}
                    _ => return Err(format!("`{repo}` is not a Hugging Face repository `OWNER/NAME`")),
                }
                if !valid(&rev) {
                    return Err(format!("`{rev}` is not a revision"));
                }
                Ok(Source::Hub { repo, revision: rev })
            }
            (Some(_), Some(_)) => Err("give `path` or `repo`, not both".into()),
            (None, None) => Err("give the submission's `path`, or its `repo` and `revision`".into()),
        }
    }
}

/// Where a submission's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(PathBuf),
    Hub { repo: String, revision: String },
}

/// Checks the submissions against the competitions: every competition is known and every uid
/// appears once per competition. Errors name the entry (`submissions[i].field`).
pub fn validate(subs: &SubmissionsFile, comps: &[Competition]) -> Result<(), String> {
    scoring::check_registered(subs.registered)?;
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in subs.submissions.iter().enumerate() {
        if !comps.iter().any(|c| c.id == s.competition) {
            return Err(format!(
                "submissions[{i}].competition: `{}` is not one of the competitions given ({})",
                s.competition,
                comps.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        if !seen.insert((s.competition.as_str(), s.uid)) {
            return Err(format!(
                "submissions[{i}].uid: uid {} appears twice in competition `{}`",
                s.uid, s.competition
            ));
        }
        s.source().map_err(|e| format!("submissions[{i}]: {e}"))?;
    }
    Ok(())
}

/// A round's seed for one competition, from its `[data]` policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundSeed {
    pub competition: String,
    /// `fixed` or `sync_block_hash`.
    pub policy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_block: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<String>,
    /// The u64 handed to plugins.
    pub seed: u64,
    /// The seed of the host's sample draws (Python's `random.Random`), big-endian hex: the whole
    /// sha256 digest for `sync_block_hash` (as taoverse seeds it), the fixed value otherwise.
    pub sample_seed: String,
}

/// The sync blocks whose hashes a round at `block` needs (competitions seeded by block hash).
pub fn sync_blocks(comps: &[Competition], block: u64) -> Vec<u64> {
    let mut out: Vec<u64> =
        comps.iter().filter_map(|c| scoring::seed::sync_block(&c.data.seed, block)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn round_seed(comp: &Competition, block: u64, hashes: &BTreeMap<u64, String>) -> Result<RoundSeed, String> {
    match comp.data.seed {
        SeedPolicy::Fixed { value } => Ok(RoundSeed {
            competition: comp.id.clone(),
            policy: "fixed",
            sync_block: None,
            block_hash: None,
            seed: value,
            sample_seed: hex::encode(value.to_be_bytes()),
        }),
        SeedPolicy::SyncBlockHash { genesis, .. } => {
            let sync = scoring::seed::sync_block(&comp.data.seed, block).ok_or_else(|| {
                format!(
                    "competition `{}`: block {block} is before its seed's genesis block {genesis}",
                    comp.id
                )
            })?;
            let hash = hashes.get(&sync).ok_or_else(|| {
                format!(
                    "competition `{}` is seeded by the hash of block {sync} (its sync block): pass \
                     --block-hash, or read it from a chain",
                    comp.id
                )
            })?;
            let digest = scoring::seed::seed_digest(hash);
            Ok(RoundSeed {
                competition: comp.id.clone(),
                policy: "sync_block_hash",
                sync_block: Some(sync),
                block_hash: Some(hash.clone()),
                seed: u64::from_be_bytes(digest[24..].try_into().expect("8 bytes")),
                sample_seed: hex::encode(digest),
            })
        }
    }
}

/// What several tasks of one competition evaluate once per submission.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpec {
    pub competition: String,
    pub plugin: String,
    pub kind: String,
    pub params: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Samples drawn from the dataset (the task's `samples`, else `data.samples`); absent: all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    /// Pages drawn instead (`tasks[].pages`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<crate::config::Pages>,
    /// The tasks that read this run's output, with the output each reads (`None`: `raw_score`).
    pub tasks: Vec<(String, Option<String>)>,
    pub seed: u64,
    /// Big-endian bytes, hex (see [`RoundSeed::sample_seed`]).
    pub sample_seed: String,
    pub limits: crate::config::Limits,
}

/// One evaluation: a spec for one submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Run {
    pub spec: usize,
    /// Index into the submissions file.
    pub submission: usize,
}

/// A round to execute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub block: u64,
    pub seeds: Vec<RoundSeed>,
    pub specs: Vec<RunSpec>,
    pub runs: Vec<Run>,
    /// Submissions that are not evaluated this round (competition inactive, or committed too
    /// recently), by index.
    pub skipped: Vec<usize>,
}

/// Plans a round at `block`. `hashes`: block hashes by block, for the sync blocks that
/// [`sync_blocks`] names. The submissions must have passed [`validate`].
pub fn plan(
    comps: &[Competition],
    subs: &SubmissionsFile,
    block: u64,
    hashes: &BTreeMap<u64, String>,
) -> Result<Plan, String> {
    let mut out = Plan { block, seeds: Vec::new(), specs: Vec::new(), runs: Vec::new(), skipped: Vec::new() };
    let mut first_spec = BTreeMap::new();
    for comp in comps {
        let evaluated = |s: &SubmissionEntry| {
            s.competition == comp.id
                && comp.schedule.is_active(block)
                && scoring::eligible(s.block, block, comp.constraints.eval_block_delay)
        };
        if !subs.submissions.iter().any(evaluated) {
            continue;
        }
        // Checked now, not after the runs: scoring needs it (see `dryrun::score`).
        if comp.ranking.opponents == crate::config::Opponents::Registry && subs.registered.is_none() {
            return Err(format!(
                "competition `{}` compares every registered uid (ranking.opponents = \"registry\"): give \
                 \"registered\", the number of registered uids, in the submissions file (a chain gives it)",
                comp.id
            ));
        }
        let seed = round_seed(comp, block, hashes)?;
        first_spec.insert(comp.id.as_str(), out.specs.len());
        for task in &comp.tasks {
            let params = serde_json::Value::Object(task.params.clone());
            let pages = task.pages;
            let samples = if pages.is_some() { None } else { task.samples.or(comp.data.samples) };
            let read = (task.name.clone(), task.metric.clone());
            let start = first_spec[comp.id.as_str()];
            let same = out.specs[start..].iter_mut().find(|s| {
                s.plugin == task.plugin
                    && s.kind == task.kind
                    && s.params == params
                    && s.dataset == task.dataset
                    && s.samples == samples
                    && s.pages == pages
            });
            match same {
                Some(spec) => spec.tasks.push(read),
                None => out.specs.push(RunSpec {
                    competition: comp.id.clone(),
                    plugin: task.plugin.clone(),
                    kind: task.kind.clone(),
                    params,
                    dataset: task.dataset.clone(),
                    samples,
                    pages,
                    tasks: vec![read],
                    seed: seed.seed,
                    sample_seed: seed.sample_seed.clone(),
                    limits: comp.limits.clone(),
                }),
            }
        }
        out.seeds.push(seed);
    }
    for (i, s) in subs.submissions.iter().enumerate() {
        let comp = comps.iter().find(|c| c.id == s.competition).ok_or_else(|| {
            format!("submissions[{i}].competition: `{}` is not a competition given", s.competition)
        })?;
        let evaluated = comp.schedule.is_active(block)
            && scoring::eligible(s.block, block, comp.constraints.eval_block_delay);
        if !evaluated {
            out.skipped.push(i);
            continue;
        }
        for (spec, _) in out.specs.iter().enumerate().filter(|(_, sp)| sp.competition == comp.id) {
            out.runs.push(Run { spec, submission: i });
        }
    }
    Ok(out)
}

/// What one run became: the plugin's output, or why it failed (refused by the competition's
/// constraints, a crash, a timeout, …).
pub type Outcome = Result<EvalOutput, JobFailure>;

/// One run as the round report gives it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub competition: String,
    pub uid: Uid,
    pub hotkey: String,
    pub plugin: String,
    pub kind: String,
    pub tasks: Vec<String>,
    pub status: &'static str,
    /// Wall-clock time of the run (not part of the digest).
    pub wall_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<EvalOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<JobFailure>,
    /// Tasks whose metric the output lacks, with the reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub task_failures: BTreeMap<String, String>,
}

/// ROUND.json: everything a round decided, and the digest two validators compare.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    /// sha256 of the canonical raw scores and u16 weights (see [`digest`]).
    pub digest: String,
    pub seeds: Vec<RoundSeed>,
    pub runs: Vec<RunRecord>,
    pub raw: RawScores,
    #[serde(flatten)]
    pub scores: Report,
}

/// The raw score a task reads from its run's output.
fn read_metric(output: &EvalOutput, metric: Option<&str>) -> Result<f64, String> {
    match metric {
        None => Ok(output.raw_score),
        Some(m) => output.metrics.get(m).copied().ok_or_else(|| {
            format!(
                "the output has no metric `{m}` (it has: {})",
                output.metrics.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            )
        }),
    }
}

/// Turns the runs' outcomes (one per run of `plan`, with its wall time) into raw scores, scores
/// the round, and computes its digest. `state`: the EMA state, updated in place.
pub fn collect(
    comps: &[Competition],
    funding: Option<&BTreeMap<String, f64>>,
    subs: &SubmissionsFile,
    plan: &Plan,
    outcomes: Vec<(Outcome, u64)>,
    state: &mut State,
) -> Result<RoundReport, String> {
    if outcomes.len() != plan.runs.len() {
        return Err(format!("{} outcomes for {} runs", outcomes.len(), plan.runs.len()));
    }
    let mut tasks: Vec<BTreeMap<String, Option<f64>>> = subs
        .submissions
        .iter()
        .map(|s| {
            let comp = comps.iter().find(|c| c.id == s.competition);
            comp.map(|c| c.tasks.iter().map(|t| (t.name.clone(), None)).collect()).unwrap_or_default()
        })
        .collect();
    let mut runs = Vec::new();
    for (run, (outcome, wall_ms)) in plan.runs.iter().zip(outcomes) {
        let spec = &plan.specs[run.spec];
        let sub = &subs.submissions[run.submission];
        let mut task_failures = BTreeMap::new();
        if let Ok(output) = &outcome {
            for (name, metric) in &spec.tasks {
                match read_metric(output, metric.as_deref()) {
                    Ok(v) => {
                        tasks[run.submission].insert(name.clone(), Some(v));
                    }
                    Err(e) => {
                        task_failures.insert(name.clone(), e);
                    }
                }
            }
        }
        let (output, failure) = match outcome {
            Ok(o) => (Some(o), None),
            Err(f) => (None, Some(f)),
        };
        runs.push(RunRecord {
            competition: spec.competition.clone(),
            uid: sub.uid,
            hotkey: sub.hotkey.clone(),
            plugin: spec.plugin.clone(),
            kind: spec.kind.clone(),
            tasks: spec.tasks.iter().map(|(n, _)| n.clone()).collect(),
            status: if failure.is_some() { "failed" } else { "ok" },
            wall_ms,
            output,
            failure,
            task_failures,
        });
    }
    let raw = RawScores {
        block: Some(plan.block),
        registered: subs.registered,
        submissions: subs
            .submissions
            .iter()
            .zip(tasks)
            .map(|(s, tasks)| RawSubmission {
                uid: s.uid,
                hotkey: s.hotkey.clone(),
                block: s.block,
                competition: s.competition.clone(),
                tasks,
            })
            .collect(),
    };
    let scores = dryrun::score(comps, funding, &raw, plan.block, state)?;
    Ok(RoundReport { digest: digest(&raw, &scores), seeds: plan.seeds.clone(), runs, raw, scores })
}

/// sha256, hex, of the round's canonical form: one line per raw submission sorted by
/// (competition, uid) — `raw COMPETITION UID HOTKEY BLOCK` then `TASK=BITS` per task, BITS being
/// the f64's IEEE-754 bits in hex or `null` — then `weight UID U16` per uid sent. Two
/// validators with the same block hash and the same models compute the same digest.
pub fn digest(raw: &RawScores, report: &Report) -> String {
    let mut subs: Vec<&RawSubmission> = raw.submissions.iter().collect();
    subs.sort_by(|a, b| (&a.competition, a.uid).cmp(&(&b.competition, b.uid)));
    let mut text = format!("arena-round-v1 block {}\n", report.block);
    for s in subs {
        let _ = write!(text, "raw {} {} {} {}", s.competition, s.uid, s.hotkey, s.block);
        for (task, v) in &s.tasks {
            match v {
                Some(x) => {
                    let _ = write!(text, " {task}={:016x}", x.to_bits());
                }
                None => {
                    let _ = write!(text, " {task}=null");
                }
            }
        }
        text.push('\n');
    }
    for w in report.weights.iter().filter(|w| w.u16 != 0) {
        let _ = writeln!(text, "weight {} {}", w.uid, w.u16);
    }
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A run refused before it ran because its submission breaks the competition's constraints.
pub fn refused(reason: String) -> Outcome {
    Err(JobFailure::new(FailureKind::InvalidSubmission, format!("model constraints: {reason}")))
}

/// The submissions a miner's commitment makes: one per competition whose format parses it and
/// which it names (a hub model at its committed revision, the commitment as its metadata).
pub fn entries_from_commitment(
    comps: &[Competition],
    uid: Uid,
    hotkey: &str,
    block: u64,
    data: &str,
) -> Vec<SubmissionEntry> {
    let mut out = Vec::new();
    for comp in comps {
        let Ok(m) = crate::commitment::parse(comp.commitment.format, data) else { continue };
        if !comp.owns(&m) {
            continue;
        }
        out.push(SubmissionEntry {
            uid,
            hotkey: hotkey.to_string(),
            block,
            competition: comp.id.clone(),
            path: None,
            repo: Some(m.repo()),
            revision: Some(m.commit.clone().unwrap_or_else(|| "main".into())),
            metadata: serde_json::to_value(&m).ok(),
        });
    }
    out
}

/// The block of the round a validator runs at `block`: the latest block at or before it where
/// some competition's round starts. A competition seeded by a sync block's hash starts one at
/// each sync block; one with a fixed seed every `cadence` blocks. Every validator computes the
/// same round blocks from the chain alone, so their rounds (and digests) line up. `None`: no
/// competition has started a round yet.
pub fn round_block(comps: &[Competition], block: u64, cadence: u64) -> Option<u64> {
    comps
        .iter()
        .filter_map(|c| match c.data.seed {
            SeedPolicy::SyncBlockHash { .. } => scoring::seed::sync_block(&c.data.seed, block),
            SeedPolicy::Fixed { .. } => Some(block / cadence.max(1) * cadence.max(1)),
        })
        .max()
}

/// The round blocks after `after` and at or before `block`, oldest first, at most `limit` of
/// them (the newest ones when there are more).
pub fn round_blocks_between(
    comps: &[Competition],
    after: u64,
    block: u64,
    cadence: u64,
    limit: usize,
) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = block;
    while out.len() < limit {
        let Some(r) = round_block(comps, at, cadence) else { break };
        if r <= after {
            break;
        }
        out.push(r);
        match r.checked_sub(1) {
            Some(prev) => at = prev,
            None => break,
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn competition(extra_task: &str, seed: &str, delay: u64) -> Competition {
        toml::from_str(&format!(
            r#"
id = "c"
competition_id = 1
name = "C"
emission_share = 1.0
constraints = {{ eval_block_delay = {delay} }}
data = {{ seed = {seed} }}
score = {{ direction = "higher" }}
ranking = {{ policy = {{ kind = "winner_take_all" }}, lone_win_rate = 1.0 }}

[[tasks]]
name = "mcc"
plugin = "detector"
kind = "image"
params = {{ batch_size = 8 }}
dataset = "bench.yaml"
metric = "binary_mcc"
weight = 0.5
direction = "higher"

[[tasks]]
name = "brier"
plugin = "detector"
kind = "image"
params = {{ batch_size = 8 }}
dataset = "bench.yaml"
metric = "binary_brier"
weight = 0.5
direction = "lower"
{extra_task}
"#
        ))
        .unwrap()
    }

    fn entry(uid: Uid, block: u64) -> SubmissionEntry {
        SubmissionEntry {
            uid,
            hotkey: format!("hk{uid}"),
            block,
            competition: "c".into(),
            path: Some(format!("m{uid}").into()),
            repo: None,
            revision: None,
            metadata: None,
        }
    }

    fn output(mcc: f64, brier: f64) -> Outcome {
        Ok(EvalOutput {
            raw_score: mcc,
            metrics: [("binary_mcc".to_string(), mcc), ("binary_brier".to_string(), brier)].into(),
            per_sample: Vec::new(),
            details: serde_json::Value::Null,
        })
    }

    const FIXED: &str = r#"{ kind = "fixed", value = 7 }"#;

    #[test]
    fn tasks_that_differ_only_in_metric_share_one_run() {
        let other = "[[tasks]]\nname = \"small\"\nplugin = \"detector\"\nkind = \"image\"\nparams = { batch_size = 4 }\ndataset = \"bench.yaml\"\nweight = 0.0\ndirection = \"higher\"\n";
        let comps = [competition(other, FIXED, 0)];
        let subs = SubmissionsFile { submissions: vec![entry(1, 10), entry(2, 20)], ..Default::default() };
        validate(&subs, &comps).unwrap();
        let plan = plan(&comps, &subs, 100, &BTreeMap::new()).unwrap();
        assert_eq!(plan.specs.len(), 2, "mcc and brier share a spec; `small` has other params");
        assert_eq!(
            plan.specs[0].tasks,
            vec![("mcc".into(), Some("binary_mcc".into())), ("brier".into(), Some("binary_brier".into()))]
        );
        assert_eq!(plan.specs[1].tasks, vec![("small".to_string(), None)]);
        assert_eq!(plan.runs.len(), 4, "two specs for each of two submissions");
        assert_eq!(plan.seeds[0].seed, 7);
        assert_eq!(plan.specs[0].sample_seed, "0000000000000007");
    }

    #[test]
    fn submissions_too_recent_are_not_run_and_stay_pending() {
        let comps = [competition("", FIXED, 50)];
        let subs = SubmissionsFile { submissions: vec![entry(1, 10), entry(2, 90)], ..Default::default() };
        let plan = plan(&comps, &subs, 100, &BTreeMap::new()).unwrap();
        assert_eq!(plan.runs, vec![Run { spec: 0, submission: 0 }]);
        assert_eq!(plan.skipped, vec![1]);
        let mut state = State::default();
        let report = collect(&comps, None, &subs, &plan, vec![(output(0.5, 0.2), 3)], &mut state).unwrap();
        let c = &report.scores.competitions[0];
        assert_eq!(c.pending.len(), 1);
        assert_eq!(c.pending[0].uid, 2);
        assert_eq!(report.scores.weights.len(), 1);
        assert_eq!(report.scores.weights[0].uid, 1);
    }

    #[test]
    fn each_task_reads_its_metric_and_a_missing_metric_fails_the_task() {
        let comps = [competition("", FIXED, 0)];
        let subs = SubmissionsFile { submissions: vec![entry(1, 10), entry(2, 20)], ..Default::default() };
        let plan = plan(&comps, &subs, 100, &BTreeMap::new()).unwrap();
        let lacking = Ok(EvalOutput {
            raw_score: 0.9,
            metrics: [("binary_mcc".to_string(), 0.9)].into(),
            per_sample: Vec::new(),
            details: serde_json::Value::Null,
        });
        let outcomes = vec![(output(0.5, 0.25), 1), (lacking, 1)];
        let report = collect(&comps, None, &subs, &plan, outcomes, &mut State::default()).unwrap();
        let raw = &report.raw.submissions;
        assert_eq!(raw[0].tasks["mcc"], Some(0.5));
        assert_eq!(raw[0].tasks["brier"], Some(0.25));
        assert_eq!(raw[1].tasks["mcc"], Some(0.9));
        assert_eq!(raw[1].tasks["brier"], None);
        assert!(report.runs[1].task_failures["brier"].contains("no metric `binary_brier`"));
        // uid 2 failed a task: uid 1 wins.
        let paid: Vec<(Uid, u16)> =
            report.scores.weights.iter().map(|w| (w.uid, w.u16)).filter(|w| w.1 != 0).collect();
        assert_eq!(paid, vec![(1, 65535)]);
    }

    #[test]
    fn a_failed_run_fails_every_task_it_serves() {
        let comps = [competition("", FIXED, 0)];
        let subs = SubmissionsFile { submissions: vec![entry(1, 10), entry(2, 20)], ..Default::default() };
        let plan = plan(&comps, &subs, 100, &BTreeMap::new()).unwrap();
        let outcomes = vec![(output(0.5, 0.25), 1), (refused("architecture `X` is not allowed".into()), 0)];
        let report = collect(&comps, None, &subs, &plan, outcomes, &mut State::default()).unwrap();
        assert_eq!(report.raw.submissions[1].tasks.values().collect::<Vec<_>>(), vec![&None, &None]);
        let f = report.runs[1].failure.as_ref().unwrap();
        assert_eq!(f.kind, FailureKind::InvalidSubmission);
        assert!(f.message.contains("model constraints: architecture"));
    }

    #[test]
    fn block_hash_seeds_follow_taoverse_and_the_digest_follows_the_scores() {
        let policy = r#"{ kind = "sync_block_hash", cadence = 100 }"#;
        let comps = [competition("", policy, 0)];
        let subs = SubmissionsFile { submissions: vec![entry(1, 10), entry(2, 20)], ..Default::default() };
        let err = plan(&comps, &subs, 250, &BTreeMap::new()).unwrap_err();
        assert!(err.contains("hash of block 200"), "{err}");
        let hashes = BTreeMap::from([(200, "0xabc".to_string())]);
        let p = plan(&comps, &subs, 250, &hashes).unwrap();
        // python3 -c "import hashlib;print(int(hashlib.sha256(b'0xabc').hexdigest(),16) % 2**64)"
        assert_eq!(p.seeds[0].seed, 11_902_543_835_707_918_576);
        assert_eq!(p.seeds[0].sync_block, Some(200));
        assert_eq!(p.seeds[0].sample_seed.len(), 64);
        let run = |a: f64| {
            let outcomes = vec![(output(a, 0.25), 1), (output(0.5, 0.25), 2)];
            collect(&comps, None, &subs, &p, outcomes, &mut State::default()).unwrap().digest
        };
        assert_eq!(run(0.75), run(0.75));
        assert_ne!(run(0.75), run(0.75 + f64::EPSILON));
    }

    #[test]
    fn a_registry_competition_needs_the_registered_count_before_anything_runs() {
        let mut comp = competition("", FIXED, 0);
        comp.ranking.opponents = crate::config::Opponents::Registry;
        let comps = [comp];
        let mut subs = SubmissionsFile { submissions: vec![entry(1, 10)], ..Default::default() };
        let err = plan(&comps, &subs, 100, &BTreeMap::new()).unwrap_err();
        assert!(err.contains("\"registered\""), "{err}");
        subs.registered = Some(256);
        assert_eq!(plan(&comps, &subs, 100, &BTreeMap::new()).unwrap().runs.len(), 1);
    }

    #[test]
    fn bad_submissions_are_named_by_entry_and_field() {
        let comps = [competition("", FIXED, 0)];
        let mut twice =
            SubmissionsFile { submissions: vec![entry(1, 10), entry(1, 20)], ..Default::default() };
        assert!(validate(&twice, &comps).unwrap_err().starts_with("submissions[1].uid: uid 1 appears twice"));
        twice.submissions[1].uid = 2;
        twice.submissions[1].competition = "nope".into();
        assert!(validate(&twice, &comps).unwrap_err().starts_with("submissions[1].competition: `nope`"));
        let mut hub = entry(3, 0);
        hub.path = None;
        hub.repo = Some("owner/model@0123abc".into());
        assert_eq!(hub.source(), Ok(Source::Hub { repo: "owner/model".into(), revision: "0123abc".into() }));
        hub.repo = Some("owner/model".into());
        assert!(hub.source().unwrap_err().contains("needs a revision"));
        hub.repo = Some("../x@main".into());
        assert!(hub.source().unwrap_err().contains("not a Hugging Face repository"));
        hub.path = Some("m".into());
        hub.repo = Some("owner/model@main".into());
        assert!(hub.source().unwrap_err().contains("not both"));
    }

    #[test]
    fn round_blocks_are_sync_blocks_or_multiples_of_the_cadence() {
        let hashed = competition("", r#"{ kind = "sync_block_hash", cadence = 100, genesis = 30 }"#, 0);
        let fixed = competition("", FIXED, 0);
        assert_eq!(round_block(std::slice::from_ref(&hashed), 29, 360), None);
        assert_eq!(round_block(std::slice::from_ref(&hashed), 229, 360), Some(130));
        assert_eq!(round_block(std::slice::from_ref(&fixed), 719, 360), Some(360));
        // Together: a round wherever either starts one.
        let both = [hashed, fixed];
        assert_eq!(round_block(&both, 365, 360), Some(360));
        assert_eq!(
            round_blocks_between(&both, 130, 735, 360, 10),
            vec![230, 330, 360, 430, 530, 630, 720, 730]
        );
        // At most `limit`, the newest.
        assert_eq!(round_blocks_between(&both, 130, 735, 360, 2), vec![720, 730]);
        assert_eq!(round_blocks_between(&both, 730, 735, 360, 10), Vec::<u64>::new());
    }

    #[test]
    fn a_commitment_becomes_a_submission_of_each_competition_it_names() {
        let comp = competition("", FIXED, 0);
        let data = "owner:model:0123456789abcdef0123456789abcdef01234567:c2VjdXJl:1";
        let entries = entries_from_commitment(std::slice::from_ref(&comp), 4, "hk", 77, data);
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].repo.as_deref(), Some("owner/model"));
        assert_eq!(entries[0].revision.as_deref(), Some("0123456789abcdef0123456789abcdef01234567"));
        assert_eq!((entries[0].uid, entries[0].block, entries[0].competition.as_str()), (4, 77, "c"));
        // Another competition id, or a string that does not parse: nothing.
        let other = data.replace(":1", ":2");
        assert!(entries_from_commitment(std::slice::from_ref(&comp), 4, "hk", 77, &other).is_empty());
        assert!(entries_from_commitment(std::slice::from_ref(&comp), 4, "hk", 77, "junk").is_empty());
    }
}
