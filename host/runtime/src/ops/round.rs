//! Executing a planned round ([`arena_core::round::plan`]): the I/O between plan and collect.
//!
//! [`prepare`] resolves everything before any run starts, so bad input fails the round before
//! it has cost anything: each submission's files (a local path, or a hub model in the hub cache,
//! downloaded when online, within its competition's `max_bytes`), each run's plugin library,
//! each dataset's seeded draw, and the competitions' model constraints. [`execute`] then runs
//! every run in an isolated worker (or in this process), `jobs` at a time; a run that crashes,
//! hangs or runs out of memory fails alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use arena_plugin_api::{Device, EvalRequest, Limits, Progress, Sample, Submission, TaskSpec};

use crate::datasets::Sampling;
use crate::fetch::{FetchError, FetchErrorKind, Hub, InUse};
use crate::isolate::Supervisor;
use crate::job::{FailureKind, Job, JobFailure, JobLimits, run_in_process};
use crate::{cancel, inputs, model, plugins};
use arena_core::config::Competition;
use arena_core::round::{Outcome, Plan, Source, SubmissionsFile, refused};

/// What a round needs on disk, resolved before the first run.
pub struct Prepared {
    /// Per submission of the submissions file.
    pub submissions: Vec<Submission>,
    /// Per submission: why the competition's constraints refuse it.
    pub refused: Vec<Option<String>>,
    /// Per submission: why its files could not be had (a repository missing or private, a
    /// revision that does not exist), when [`prepare_with_hub`] fails submissions, not the round,
    /// for it.
    pub unavailable: Vec<Option<String>>,
    /// Per spec of the plan.
    pub plugins: Vec<PathBuf>,
    /// Per spec: the sha256 of the library probed, which its workers are pinned to (a library
    /// replaced after the check is refused, not run).
    pub plugin_sha256: Vec<String>,
    /// Per spec: the devices its task kind runs on.
    pub devices: Vec<Vec<arena_plugin_api::DeviceKind>>,
    /// Per spec.
    pub samples: Vec<Arc<Vec<Sample>>>,
    /// Holds the submissions seen through a competition's forced tokenizer, for the round.
    pub overlays: Option<tempfile::TempDir>,
}

/// The files of a tokenizer that a forced tokenizer replaces in a submission.
const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
];

/// `dir` as its plugin sees it under a forced tokenizer: a folder of symbolic links to the
/// submission's files, except the tokenizer files, which link to the forced tokenizer's.
fn tokenizer_overlay(dir: &Path, tokenizer: &Path, into: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(into)?;
    let forced: Vec<&str> = TOKENIZER_FILES.iter().copied().filter(|f| tokenizer.join(f).is_file()).collect();
    if forced.is_empty() {
        bail!("{} holds no tokenizer file ({})", tokenizer.display(), TOKENIZER_FILES.join(", "));
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let name = e?.file_name();
        if TOKENIZER_FILES.iter().any(|f| name == *f) {
            continue;
        }
        std::os::unix::fs::symlink(dir.join(&name), into.join(&name))?;
    }
    for f in forced {
        std::os::unix::fs::symlink(tokenizer.join(f), into.join(f))?;
    }
    Ok(into.to_path_buf())
}

/// A submission that carries its chain commitment (`--chain` rounds put it in the metadata) is
/// checked against its hotkey and, for the taoverse formats, against the directory hash of the
/// files evaluated, as taoverse's validators check it: a model that is not the one committed,
/// or a commitment copied from another hotkey, is refused.
fn commitment_violation(
    comp: &Competition,
    s: &arena_core::round::SubmissionEntry,
    path: &Path,
) -> Option<String> {
    use arena_core::commitment::{self, Format, ModelCommitment};
    let c: ModelCommitment = serde_json::from_value(s.metadata.clone()?).ok()?;
    let format = comp.commitment.format;
    let hash = match format {
        Format::Taoverse | Format::TaoverseLegacy => match inputs::directory_hash(path) {
            Ok(h) => Some(h),
            Err(e) => return Some(format!("commitment: cannot hash the model: {e:#}")),
        },
        Format::Dippy => None,
    };
    commitment::verify(format, &c, &s.hotkey, hash.as_deref()).err().map(|e| format!("commitment: {e:#}"))
}

/// Resolves the round's submissions (paths relative to `base`), plugins, samples and
/// constraint checks. Errors name the submission or task they are about.
pub fn prepare(
    comps: &[Competition],
    file: &SubmissionsFile,
    base: &Path,
    plan: &Plan,
    plugin_dirs: &[PathBuf],
) -> anyhow::Result<Prepared> {
    prepare_with_hub(comps, file, base, plan, plugin_dirs, false, &Hub::from_env())
}

/// [`prepare`] with hub models fetched by `hub` (its disk cap, the models it keeps; the models
/// this round fetches are kept too while it fetches the others). With `per_submission`, a
/// submission whose files cannot be had for the miner's reasons fails that submission (its runs
/// fail as an invalid submission, with the reason) instead of the round: a validator must not
/// let one miner's missing repository stop everyone's round. A download that failed for reasons
/// that may pass (the hub's, the disk's) still fails the round.
pub fn prepare_with_hub(
    comps: &[Competition],
    file: &SubmissionsFile,
    base: &Path,
    plan: &Plan,
    plugin_dirs: &[PathBuf],
    per_submission: bool,
    hub: &Hub,
) -> anyhow::Result<Prepared> {
    let fetched: Arc<Mutex<BTreeSet<(String, String)>>> = Arc::default();
    let hub = {
        let (outer, fetched) = (Arc::clone(&hub.in_use), Arc::clone(&fetched));
        let in_use: InUse = Arc::new(move || {
            let mut set = outer();
            set.extend(fetched.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
            set
        });
        Hub { in_use, ..hub.clone() }
    };
    let fetch = |repo: &str, revision: &str, max_bytes: Option<u64>| -> anyhow::Result<PathBuf> {
        let dir = hub.fetch_model(repo, revision, max_bytes)?;
        let commit = dir.file_name().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
        fetched.lock().unwrap_or_else(|e| e.into_inner()).insert((repo.to_string(), commit));
        Ok(dir)
    };
    // Competitions that force a tokenizer (SN9: the competition's, whatever the model ships).
    let mut tokenizers = BTreeMap::new();
    for comp in comps.iter().filter(|c| plan.runs.iter().any(|r| plan.specs[r.spec].competition == c.id)) {
        if let Some(id) = &comp.constraints.tokenizer {
            let (repo, rev) = id.split_once('@').unwrap_or((id.as_str(), "main"));
            let dir = fetch(repo, rev, None)
                .with_context(|| format!("competition `{}`: constraints.tokenizer", comp.id))?;
            tokenizers.insert(comp.id.as_str(), dir);
        }
    }
    let overlays = if tokenizers.is_empty() { None } else { Some(tempfile::tempdir()?) };
    let evaluated: BTreeSet<usize> = plan.runs.iter().map(|r| r.submission).collect();
    // A download that may pass is no reason to fail the miner.
    let passing = |e: &anyhow::Error| {
        e.downcast_ref::<FetchError>().is_some_and(|f| f.kind == FetchErrorKind::Transient)
    };
    let mut submissions = Vec::new();
    let mut refused = Vec::new();
    let mut unavailable = Vec::new();
    for (i, s) in file.submissions.iter().enumerate() {
        let source = s.source().map_err(|e| anyhow::anyhow!("submissions[{i}]: {e}"))?;
        let id = format!("{}/uid{}", s.competition, s.uid);
        let comp = comps.iter().find(|c| c.id == s.competition).expect("validated submissions");
        let resolved = (|| {
            let path = match &source {
                Source::Path(p) if p.is_relative() => base.join(p),
                Source::Path(p) => p.clone(),
                Source::Hub { repo, revision } if evaluated.contains(&i) => {
                    fetch(repo, revision, comp.constraints.max_bytes.map(|b| b.0))
                        .with_context(|| format!("submissions[{i}].repo (uid {})", s.uid))?
                }
                // Not evaluated this round: its files are not needed.
                Source::Hub { .. } => PathBuf::new(),
            };
            if evaluated.contains(&i) {
                inputs::submission(&path, Some(&id), s.metadata.as_ref())
                    .with_context(|| format!("submissions[{i}].path (uid {})", s.uid))
            } else {
                Ok(Submission { id: id.clone(), path, metadata: s.metadata.clone().unwrap_or_default() })
            }
        })();
        let sub = match resolved {
            Ok(sub) => sub,
            Err(e) if per_submission && !passing(&e) => {
                unavailable.push(Some(format!("{e:#}")));
                refused.push(None);
                let metadata = s.metadata.clone().unwrap_or_default();
                submissions.push(Submission { id, path: PathBuf::new(), metadata });
                continue;
            }
            Err(e) => return Err(e),
        };
        unavailable.push(None);
        let why = evaluated.contains(&i).then(|| {
            let mut v = model::submission_violations(&sub.path, &sub.metadata, &comp.constraints);
            v.extend(commitment_violation(comp, s, &sub.path));
            v
        });
        let why = why.filter(|v| !v.is_empty()).map(|v| v.join("; "));
        let sub = match (tokenizers.get(comp.id.as_str()), &overlays, &why) {
            (Some(tok), Some(root), None) => {
                let into = root.path().join(i.to_string());
                let path = tokenizer_overlay(&sub.path, tok, &into)
                    .with_context(|| format!("submissions[{i}]: the competition's tokenizer"))?;
                Submission { path, ..sub }
            }
            _ => sub,
        };
        submissions.push(sub);
        refused.push(why);
    }

    let mut by_name: BTreeMap<&str, (PathBuf, plugins::ProbedPlugin)> = BTreeMap::new();
    let mut plugin_paths = Vec::new();
    let mut plugin_sha256 = Vec::new();
    let mut devices = Vec::new();
    // (dataset, draw, seed) → its samples: each draw is made once.
    type Draw = (Option<String>, Sampling, String);
    let mut drawn: Vec<(Draw, Arc<Vec<Sample>>)> = Vec::new();
    let mut samples = Vec::new();
    for spec in &plan.specs {
        if !by_name.contains_key(spec.plugin.as_str()) {
            let path = plugins::resolve(&spec.plugin, plugin_dirs)
                .with_context(|| format!("competition `{}`: plugin `{}`", spec.competition, spec.plugin))?;
            let loaded = plugins::probe(&path)?;
            by_name.insert(&spec.plugin, (path, loaded));
        }
        let (path, loaded) = &by_name[spec.plugin.as_str()];
        let kind = loaded.info().tasks.iter().find(|t| t.name == spec.kind).with_context(|| {
            format!(
                "competition `{}`: plugin `{}` has no task kind `{}`",
                spec.competition, spec.plugin, spec.kind
            )
        })?;
        plugin_paths.push(path.clone());
        plugin_sha256.push(loaded.sha256.clone());
        devices.push(kind.devices.clone());
        let sampling = match (spec.pages, spec.samples) {
            (Some(p), _) => Sampling::Pages { pages: p.count as usize, rows_per_page: p.rows as usize },
            (None, Some(n)) => Sampling::Rows(n as usize),
            (None, None) => Sampling::All,
        };
        let key = (spec.dataset.clone(), sampling, spec.sample_seed.clone());
        if !drawn.iter().any(|(k, _)| *k == key) {
            let rows = match &spec.dataset {
                None => Vec::new(),
                Some(d) => {
                    let seed = hex::decode(&spec.sample_seed).expect("the plan writes hex");
                    inputs::load_samples(d, sampling, &seed)
                        .with_context(|| format!("competition `{}`: dataset {d}", spec.competition))?
                }
            };
            drawn.push((key.clone(), Arc::new(rows)));
        }
        samples.push(Arc::clone(&drawn.iter().find(|(k, _)| *k == key).expect("drawn above").1));
    }
    Ok(Prepared {
        submissions,
        refused,
        unavailable,
        plugins: plugin_paths,
        plugin_sha256,
        devices,
        samples,
        overlays,
    })
}

/// How runs are executed.
#[derive(Debug, Clone)]
pub struct Options {
    /// Each run in its own `arena worker` process (the default); false: in this process, one at
    /// a time (for debugging).
    pub isolated: bool,
    /// Runs at once (isolated only).
    pub jobs: usize,
    /// The validator's devices; worker slot `k` uses `devices[k % len]` when the run's task kind
    /// supports it, else the first device it supports, else the CPU.
    pub devices: Vec<Device>,
    /// Overrides of the competitions' `[limits]`.
    pub timeout: Option<f64>,
    pub memory: Option<u64>,
}

/// Hears about runs as they go, for progress bars.
pub trait Observer: Sync {
    fn started(&self, run: usize, label: &str);
    fn progress(&self, run: usize, done: u64, total: u64, message: &str);
    fn finished(&self, run: usize, outcome: &Outcome, wall_ms: u64);
}

struct RunProgress<'a> {
    observer: &'a dyn Observer,
    run: usize,
}

impl Progress for RunProgress<'_> {
    fn report(&self, done: u64, total: u64, message: &str) {
        self.observer.progress(self.run, done, total, message);
    }
    fn is_cancelled(&self) -> bool {
        cancel::requested()
    }
}

fn device_for(slot: usize, options: &Options, supported: &[arena_plugin_api::DeviceKind]) -> Device {
    let ok = |d: &Device| supported.contains(&d.kind());
    if let Some(d) = options.devices.get(slot % options.devices.len().max(1)).filter(|d| ok(d)) {
        return *d;
    }
    options.devices.iter().copied().find(ok).unwrap_or(Device::Cpu)
}

/// The job that run `i` of `plan` executes in worker slot `slot` (which picks its device), with
/// its limits; or the run's outcome when it does not run: its submission is refused by the
/// competition's constraints, or its limits are invalid.
pub fn job(
    plan: &Plan,
    prepared: &Prepared,
    options: &Options,
    i: usize,
    slot: usize,
) -> Result<(Job, JobLimits), Outcome> {
    let run = &plan.runs[i];
    let spec = &plan.specs[run.spec];
    let sub = &prepared.submissions[run.submission];
    if let Some(why) = &prepared.refused[run.submission] {
        return Err(refused(why.clone()));
    }
    if let Some(why) = &prepared.unavailable[run.submission] {
        return Err(Err(JobFailure::new(FailureKind::InvalidSubmission, format!("submission files: {why}"))));
    }
    let timeout = options.timeout.or(spec.limits.timeout);
    let wall = match timeout.map(arena_core::units::seconds) {
        Some(Err(why)) => {
            return Err(Err(JobFailure::new(
                FailureKind::InvalidParameters,
                format!("limits.timeout: {why}"),
            )));
        }
        Some(Ok(w)) => Some(w),
        None => None,
    };
    let memory = options.memory.or(spec.limits.memory.map(|m| m.0));
    let limits = JobLimits { wall, memory_bytes: memory };
    let job = Job {
        plugin: prepared.plugins[run.spec].clone(),
        plugin_sha256: Some(prepared.plugin_sha256[run.spec].clone()),
        probe: false,
        task: TaskSpec {
            kind: spec.kind.clone(),
            params: spec.params.clone(),
            device: device_for(slot, options, &prepared.devices[run.spec]),
            seed: spec.seed,
        },
        request: EvalRequest {
            submission: sub.clone(),
            samples: prepared.samples[run.spec].as_ref().clone(),
            limits: Limits {
                time_limit_ms: limits.wall.map(|w| w.as_millis() as u64),
                memory_limit_bytes: limits.memory_bytes,
            },
        },
    };
    Ok((job, limits))
}

/// Runs every run of `plan`; returns each one's outcome and wall time, in plan order.
pub fn execute(
    plan: &Plan,
    prepared: &Prepared,
    options: &Options,
    observer: &dyn Observer,
) -> anyhow::Result<Vec<(Outcome, u64)>> {
    let supervisor = if options.isolated { Some(Supervisor::current_exe()?) } else { None };
    let slots = if options.isolated { options.jobs.max(1).min(plan.runs.len().max(1)) } else { 1 };
    let next = AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<(Outcome, u64)>>> =
        plan.runs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for slot in 0..slots {
            let (next, results, supervisor) = (&next, &results, &supervisor);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(run) = plan.runs.get(i) else { break };
                    let spec = &plan.specs[run.spec];
                    let sub = &prepared.submissions[run.submission];
                    observer.started(i, &format!("{} {} {}", sub.id, spec.plugin, spec.kind));
                    let start = Instant::now();
                    let outcome = if cancel::requested() {
                        Err(JobFailure::new(FailureKind::Cancelled, "the round was cancelled"))
                    } else {
                        match job(plan, prepared, options, i, slot) {
                            Err(outcome) => outcome,
                            Ok((job, limits)) => {
                                let progress = RunProgress { observer, run: i };
                                match supervisor {
                                    Some(s) => s.run(&job, limits, &progress),
                                    None => run_in_process(&job, &progress),
                                }
                            }
                        }
                    };
                    let wall_ms = start.elapsed().as_millis() as u64;
                    observer.finished(i, &outcome, wall_ms);
                    *results[i].lock().unwrap() = Some((outcome, wall_ms));
                }
            });
        }
    });
    let out: Vec<(Outcome, u64)> =
        results.into_iter().map(|m| m.into_inner().unwrap().expect("every run ran")).collect();
    if cancel::requested() {
        bail!("cancelled");
    }
    Ok(out)
}
