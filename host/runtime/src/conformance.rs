//! The conformance suite a plugin library must pass before validators load it (`arena plugin
//! test`). Every job runs in an isolated worker, as a validator runs it, so a plugin that
//! crashes fails its check and the suite goes on.
//!
//! Library checks: it loads and its ABI matches; each task kind's schema is a valid JSON Schema
//! whose defaults validate; parameters the schema rejects get `invalid_parameters`; a missing
//! or broken submission gets `invalid_submission`; a declared device that is absent is refused
//! with an error, not a crash or a silent run elsewhere. With a submission (the kind under
//! test): a run succeeds, a second run with the same seed gives the same bits, progress is
//! reported, cancellation is honoured within [`CANCEL_GRACE`]. Over every job: nothing is
//! written to stdout.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use arena_core::config::check::{schema_errors, schema_invalid};
use arena_plugin_api::splitmix::SplitMix64;
use arena_plugin_api::{
    Device, DeviceKind, EvalOutput, EvalRequest, Limits, PluginInfo, Progress, Sample, Submission,
    TaskKindInfo, TaskSpec,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::isolate::{CANCEL_GRACE, Supervisor};
use crate::job::{FailureKind, Job, JobFailure, JobLimits};

/// The checks, in the order a report lists them for a kind under test.
pub const CHECKS: [&str; 12] = [
    "load",
    "schema",
    "defaults",
    "bad_params",
    "missing_submission",
    "broken_submission",
    "devices",
    "run",
    "determinism",
    "progress",
    "cancel",
    "stdout",
];

/// What the suite runs the plugin on.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// The kind under test (default: the library's only kind).
    pub kind: Option<String>,
    /// Parameters of the kind under test (default: `{}`, every kind's defaults).
    pub params: Option<Value>,
    /// A submission the kind under test accepts: without one, the run checks are skipped.
    pub submission: Option<Submission>,
    pub samples: Vec<Sample>,
    pub seed: u64,
    /// Wall-clock limit of each job.
    pub timeout: Duration,
    /// Memory limit of each job.
    pub memory_bytes: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
        }
    }
}

/// One check and its verdict, with what was seen.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub check: &'static str,
    /// The task kind checked; none for the library's own checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub verdict: Verdict,
    pub detail: String,
}

/// The suite's result.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub plugin: PathBuf,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<PluginInfo>,
    pub checks: Vec<Check>,
}

impl Report {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    pub fn count(&self, v: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == v).count()
    }
}

/// The ordinal asked for to test a CUDA device that is absent: no machine has that many.
pub const ABSENT_CUDA_ORDINAL: u32 = 99;

/// The environment that hides every wgpu adapter from a worker: no Vulkan driver, no EGL vendor
/// and no GL driver for the loaders to find (Mesa's lavapipe and llvmpipe included).
pub const NO_WGPU_ADAPTER_ENV: [(&str, &str); 6] = [
    ("WGPU_BACKEND", "vulkan"),
    ("VK_ICD_FILENAMES", "/nonexistent/arena-no-driver.json"),
    ("VK_DRIVER_FILES", "/nonexistent/arena-no-driver.json"),
    ("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/arena-no-driver.json"),
    ("__EGL_VENDOR_LIBRARY_DIRS", "/nonexistent"),
    ("LIBGL_DRIVERS_PATH", "/nonexistent"),
];

/// Runs the suite on the library at `lib`, calling `each` with every check as it is decided.
pub fn run(sup: &Supervisor, lib: &Path, inputs: &Inputs, each: &mut dyn FnMut(&Check)) -> Report {
    let sha256 = crate::plugins::sha256_file(lib).unwrap_or_default();
    let mut s = Suite {
        sup,
        lib,
        sha256: sha256.clone(),
        inputs,
        checks: Vec::new(),
        stdout: Vec::new(),
        jobs: 0,
        each,
        work: tempfile::tempdir().ok(),
    };
    let info = s.load();
    if let Some(info) = &info {
        s.kinds(info);
    }
    Report { plugin: lib.to_path_buf(), sha256, info, checks: s.checks }
}

struct Suite<'a> {
    sup: &'a Supervisor,
    lib: &'a Path,
    sha256: String,
    inputs: &'a Inputs,
    checks: Vec<Check>,
    /// Jobs whose plugin wrote to stdout: (which job, bytes, how they began).
    stdout: Vec<(String, u64, String)>,
    jobs: usize,
    each: &'a mut dyn FnMut(&Check),
    work: Option<tempfile::TempDir>,
}

impl Suite<'_> {
    fn record(&mut self, check: &'static str, kind: Option<&str>, verdict: Verdict, detail: String) {
        let c = Check { check, kind: kind.map(str::to_string), verdict, detail };
        (self.each)(&c);
        self.checks.push(c);
    }

    fn work(&self) -> &Path {
        self.work.as_ref().map(|t| t.path()).unwrap_or(Path::new("/nonexistent"))
    }

    fn load(&mut self) -> Option<PluginInfo> {
        if self.sha256.is_empty() {
            let why = format!("{}: cannot read the library", self.lib.display());
            self.record("load", None, Verdict::Fail, why);
            return None;
        }
        match self.sup.probe(self.lib, &self.sha256) {
            Ok(info) => {
                let detail = format!(
                    "{} {}, ABI {} (this arena: {}), {} task kind(s)",
                    info.name,
                    info.version,
                    info.abi_version,
                    arena_plugin_api::ABI_VERSION,
                    info.tasks.len()
                );
                self.record("load", None, Verdict::Pass, detail);
                Some(info)
            }
            Err(e) => {
                let code = match &e {
                    crate::plugins::PluginLoadError::Probe { code, .. } => code.clone(),
                    crate::plugins::PluginLoadError::Load(l) => l.code().to_string(),
                    crate::plugins::PluginLoadError::PinMismatch { .. } => "pin_mismatch".into(),
                };
                self.record("load", None, Verdict::Fail, format!("{code}: {e}"));
                None
            }
        }
    }

    fn kinds(&mut self, info: &PluginInfo) {
        let under_test = match &self.inputs.kind {
            Some(k) if info.task(k).is_none() => {
                let have: Vec<&str> = info.tasks.iter().map(|t| t.name.as_str()).collect();
                let why = format!("the library has no task kind `{k}` (it has: {})", have.join(", "));
                self.record("kind", Some(k), Verdict::Fail, why);
                return;
            }
            Some(k) => Some(k.clone()),
            None if info.tasks.len() == 1 => Some(info.tasks[0].name.clone()),
            None => None,
        };
        if info.tasks.is_empty() {
            self.record("kind", None, Verdict::Fail, "the library declares no task kind".into());
        }
        for t in &info.tasks {
            let tested = under_test.as_deref() == Some(t.name.as_str());
            self.kind(t, tested);
        }
        if under_test.is_none() && self.inputs.submission.is_some() {
            let have: Vec<&str> = info.tasks.iter().map(|t| t.name.as_str()).collect();
            let why = format!("give --kind to run one of {} on the submission", have.join(", "));
            self.record("run", None, Verdict::Skip, why);
        }
        self.stdout_check();
    }

    /// The parameters a kind is run with: the given ones for the kind under test, else `{}`.
    fn params(&self, tested: bool) -> Value {
        match (&self.inputs.params, tested) {
            (Some(p), true) => p.clone(),
            _ => json!({}),
        }
    }

    /// The given submission for the kind under test, else an empty directory.
    fn submission(&self, tested: bool) -> Submission {
        match (&self.inputs.submission, tested) {
            (Some(s), true) => s.clone(),
            _ => {
                let path = self.work().join("empty-submission");
                let _ = std::fs::create_dir_all(&path);
                Submission { id: "empty".into(), path, metadata: Value::Null }
            }
        }
    }

    fn job(&self, kind: &str, params: Value, device: Device, submission: Submission) -> Job {
        let limits = Limits {
            time_limit_ms: Some(self.inputs.timeout.as_millis() as u64),
            memory_limit_bytes: self.inputs.memory_bytes,
        };
        Job {
            plugin: self.lib.to_path_buf(),
            plugin_sha256: Some(self.sha256.clone()),
            task: TaskSpec { kind: kind.to_string(), params, device, seed: self.inputs.seed },
            request: EvalRequest { submission, samples: self.inputs.samples.clone(), limits },
            probe: false,
        }
    }

    fn exec(
        &mut self,
        what: String,
        sup: &Supervisor,
        job: &Job,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, JobFailure> {
        let limits = JobLimits { wall: Some(self.inputs.timeout), memory_bytes: self.inputs.memory_bytes };
        self.jobs += 1;
        let o = sup.run_observed(job, limits, progress);
        if let Some((bytes, head)) = o.stdout {
            self.stdout.push((what, bytes, head));
        }
        o.result
    }

    fn kind(&mut self, t: &TaskKindInfo, tested: bool) {
        let k = Some(t.name.as_str());
        let schema_ok = match schema_invalid(&t.params_schema) {
            Some(why) => {
                self.record("schema", k, Verdict::Fail, why);
                false
            }
            None => {
                self.record("schema", k, Verdict::Pass, "a valid JSON Schema".into());
                true
            }
        };
        if schema_ok {
            let defaults = defaults(&t.params_schema);
            let bad: Vec<String> = defaults
                .iter()
                .filter_map(|(at, sub, value)| {
                    let errors = schema_errors(sub, value);
                    (!errors.is_empty())
                        .then(|| format!("{at}: default {value} is rejected: {}", errors[0].1))
                })
                .collect();
            match (defaults.len(), bad.is_empty()) {
                (0, _) => self.record("defaults", k, Verdict::Pass, "no default declared".into()),
                (n, true) => self.record("defaults", k, Verdict::Pass, format!("{n} default(s), each valid")),
                (_, false) => self.record("defaults", k, Verdict::Fail, bad.join("; ")),
            }
            self.bad_params(t, tested);
        } else {
            self.record("defaults", k, Verdict::Skip, "the schema is invalid".into());
            self.record("bad_params", k, Verdict::Skip, "the schema is invalid".into());
        }
        self.missing_submission(t, tested);
        self.broken_submission(t, tested);
        self.devices(t, tested);
        if tested {
            self.runs(t);
        }
    }

    fn bad_params(&mut self, t: &TaskKindInfo, tested: bool) {
        let k = Some(t.name.as_str());
        let candidates: Vec<(String, Value)> = invalid_params(&t.params_schema)
            .into_iter()
            .filter(|(_, v)| !schema_errors(&t.params_schema, v).is_empty())
            .collect();
        if candidates.is_empty() {
            self.record("bad_params", k, Verdict::Skip, "the schema accepts every value tried".into());
            return;
        }
        let mut wrong = Vec::new();
        for (what, params) in &candidates {
            let job = self.job(&t.name, params.clone(), Device::Cpu, self.submission(tested));
            let out = self.exec(format!("bad params ({what})"), self.sup, &job, &Quiet);
            if !is(&out, FailureKind::InvalidParameters) {
                wrong.push(format!("{what} ({params}): {}", outcome(&out)));
            }
        }
        if wrong.is_empty() {
            let what: Vec<&str> = candidates.iter().map(|(w, _)| w.as_str()).collect();
            self.record(
                "bad_params",
                k,
                Verdict::Pass,
                format!("invalid_parameters for {}", what.join(", ")),
            );
        } else {
            let why = format!("expected invalid_parameters; {}", wrong.join("; "));
            self.record("bad_params", k, Verdict::Fail, why);
        }
    }

    /// A submission failure check: `expect` for a run on `submission`; a refusal of the
    /// parameters (the kind needs --params) is a skip.
    fn submission_check(
        &mut self,
        check: &'static str,
        t: &TaskKindInfo,
        tested: bool,
        submission: Submission,
    ) {
        let k = Some(t.name.as_str());
        let job = self.job(&t.name, self.params(tested), Device::Cpu, submission);
        let out = self.exec(check.replace('_', " "), self.sup, &job, &Quiet);
        let (verdict, detail) = if is(&out, FailureKind::InvalidSubmission) {
            (Verdict::Pass, outcome(&out))
        } else if is(&out, FailureKind::InvalidParameters) && !tested {
            (
                Verdict::Skip,
                format!(
                    "the parameters `{{}}` are refused; test this kind with --kind and --params ({})",
                    outcome(&out)
                ),
            )
        } else {
            (Verdict::Fail, format!("expected invalid_submission; {}", outcome(&out)))
        };
        self.record(check, k, verdict, detail);
    }

    fn missing_submission(&mut self, t: &TaskKindInfo, tested: bool) {
        let path = self.work().join("no-such-submission");
        let sub = Submission { id: "missing".into(), path, metadata: Value::Null };
        self.submission_check("missing_submission", t, tested, sub);
    }

    /// The given submission with each file's bytes replaced by junk (an empty directory when
    /// none is given).
    fn broken_submission(&mut self, t: &TaskKindInfo, tested: bool) {
        let real = self.submission(tested);
        let broken = self.work().join(format!("broken-{}", t.name));
        let path = match junk_copy(&real.path, &broken, self.inputs.seed) {
            Ok(p) => p,
            Err(e) => {
                let why = format!("cannot make a broken copy of {}: {e:#}", real.path.display());
                self.record("broken_submission", Some(&t.name), Verdict::Skip, why);
                return;
            }
        };
        let sub = Submission { id: "broken".into(), path, metadata: real.metadata };
        self.submission_check("broken_submission", t, tested, sub);
    }

    fn devices(&mut self, t: &TaskKindInfo, tested: bool) {
        let k = Some(t.name.as_str());
        let others: Vec<DeviceKind> = t.devices.iter().copied().filter(|d| *d != DeviceKind::Cpu).collect();
        if others.is_empty() {
            self.record("devices", k, Verdict::Pass, "cpu only".into());
            return;
        }
        // A refusal says something about the device only if the same job runs on the CPU.
        let job = self.job(&t.name, self.params(tested), Device::Cpu, self.submission(tested));
        let on_cpu = self.exec("devices (cpu)".into(), self.sup, &job, &Quiet);
        if on_cpu.is_err() {
            let why = format!(
                "the job fails on the CPU too ({}); test with inputs the kind accepts (--kind, --params, --submission, --samples)",
                outcome(&on_cpu)
            );
            self.record("devices", k, Verdict::Skip, why);
            return;
        }
        for d in others {
            let (device, sup, what) = match d {
                DeviceKind::Cuda => (
                    Device::Cuda(ABSENT_CUDA_ORDINAL),
                    self.sup.clone(),
                    format!("cuda:{ABSENT_CUDA_ORDINAL}"),
                ),
                _ => {
                    let mut sup = self.sup.clone();
                    sup.env.extend(NO_WGPU_ADAPTER_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                    (Device::Wgpu, sup, "wgpu with no adapter".to_string())
                }
            };
            let job = self.job(&t.name, self.params(tested), device, self.submission(tested));
            let out = self.exec(format!("absent device ({what})"), &sup, &job, &Quiet);
            let refused =
                |k: FailureKind| matches!(k, FailureKind::InvalidParameters | FailureKind::Internal);
            let (verdict, detail) = match &out {
                Err(f) if refused(f.kind) => (Verdict::Pass, format!("{what}: {}", outcome(&out))),
                Err(f) if f.kind == FailureKind::InvalidSubmission => (
                    Verdict::Fail,
                    format!(
                        "{what}: the submission was blamed for the missing device (a validator without it would zero the miner): {}",
                        outcome(&out)
                    ),
                ),
                Err(_) => (Verdict::Fail, format!("{what}: not refused with an error; {}", outcome(&out))),
                Ok(_) => (
                    Verdict::Fail,
                    format!("{what}: the job ran on a device that is absent: {}", outcome(&out)),
                ),
            };
            self.record("devices", k, verdict, detail);
        }
    }

    /// The checks that need a run: success, determinism, progress, cancellation.
    fn runs(&mut self, t: &TaskKindInfo) {
        let k = Some(t.name.as_str());
        if self.inputs.submission.is_none() {
            for c in ["run", "determinism", "progress", "cancel"] {
                let why = "give --submission (and --samples) that the kind accepts".to_string();
                self.record(c, k, Verdict::Skip, why);
            }
            return;
        }
        let job = self.job(&t.name, self.params(true), Device::Cpu, self.submission(true));
        let first = Watch::new(None);
        let start = Instant::now();
        let one = self.exec("run 1".into(), self.sup, &job, &first);
        let took = start.elapsed();
        let one = match one {
            Ok(o) => {
                let detail = format!("raw score {} in {:.2}s", o.raw_score, took.as_secs_f64());
                self.record("run", k, Verdict::Pass, detail);
                o
            }
            Err(f) => {
                self.record("run", k, Verdict::Fail, outcome(&Err(f)));
                for c in ["determinism", "progress", "cancel"] {
                    self.record(c, k, Verdict::Skip, "the run failed".into());
                }
                return;
            }
        };
        let two = self.exec("run 2".into(), self.sup, &job, &Quiet);
        let (verdict, detail) = match &two {
            Ok(o) => match differences(&one, o) {
                None => {
                    let timings: Vec<&str> = one
                        .metrics
                        .iter()
                        .filter(|(n, x)| {
                            is_timing(n) && o.metrics.get(*n).is_some_and(|y| y.to_bits() != x.to_bits())
                        })
                        .map(|(n, _)| n.as_str())
                        .collect();
                    let mut detail = "two runs, the same bits".to_string();
                    if !timings.is_empty() {
                        detail += &format!(" (but the timings {}, which are not scores)", timings.join(", "));
                    }
                    if one.details != o.details {
                        detail += "; their details differ (not scored)";
                    }
                    (Verdict::Pass, detail)
                }
                Some(d) => (Verdict::Fail, format!("the same seed gave different outputs: {d}")),
            },
            Err(_) => (Verdict::Fail, format!("the second run failed: {}", outcome(&two))),
        };
        self.record("determinism", k, verdict, detail);

        let reports = first.reports.lock().unwrap().clone();
        let (verdict, detail) = progress_verdict(&reports);
        self.record("progress", k, verdict, detail);

        // Cancelled at its first progress report, or half-way through the first run's time.
        let cancelling = Watch::new(Some(took / 2));
        let out = self.exec("cancelled run".into(), self.sup, &job, &cancelling);
        let end = Instant::now();
        let at = *cancelling.cancelled_at.lock().unwrap();
        let (verdict, detail) = match at {
            None => (Verdict::Skip, format!("the run ended ({}) before the cancel was due", outcome(&out))),
            Some(at) => {
                let after = end.duration_since(at);
                let grace = CANCEL_GRACE.as_secs_f64();
                match &out {
                    _ if after >= CANCEL_GRACE => (
                        Verdict::Fail,
                        format!(
                            "did not stop within {grace:.1}s of the cancel and was killed: {}",
                            outcome(&out)
                        ),
                    ),
                    Err(f) if f.kind == FailureKind::Cancelled => (
                        Verdict::Pass,
                        format!("stopped {:.0} ms after the cancel", after.as_secs_f64() * 1e3),
                    ),
                    Ok(_) => (
                        Verdict::Pass,
                        format!("finished {:.0} ms after the cancel", after.as_secs_f64() * 1e3),
                    ),
                    Err(_) => (Verdict::Fail, format!("answered the cancel with {}", outcome(&out))),
                }
            }
        };
        self.record("cancel", k, verdict, detail);
    }

    fn stdout_check(&mut self) {
        let (verdict, detail) = if self.stdout.is_empty() {
            (Verdict::Pass, format!("nothing written to stdout in {} jobs", self.jobs))
        } else {
            let jobs: Vec<String> = self
                .stdout
                .iter()
                .map(|(what, n, head)| format!("{what}: {n} bytes, beginning {head:?}"))
                .collect();
            (Verdict::Fail, jobs.join("; "))
        };
        self.record("stdout", None, verdict, detail);
    }
}

/// A progress that cancels nothing and keeps nothing.
struct Quiet;

impl Progress for Quiet {
    fn report(&self, _: u64, _: u64, _: &str) {}
    fn is_cancelled(&self) -> bool {
        crate::cancel::requested()
    }
}

/// A progress that keeps the reports and, with `cancel_after`, cancels at the first report or
/// once that long has passed, remembering when.
struct Watch {
    start: Instant,
    cancel_after: Option<Duration>,
    reports: Mutex<Vec<(u64, u64)>>,
    cancelled_at: Mutex<Option<Instant>>,
}

impl Watch {
    fn new(cancel_after: Option<Duration>) -> Self {
        Watch {
            start: Instant::now(),
            cancel_after,
            reports: Mutex::default(),
            cancelled_at: Mutex::default(),
        }
    }
}

impl Progress for Watch {
    fn report(&self, done: u64, total: u64, _: &str) {
        self.reports.lock().unwrap().push((done, total));
    }
    fn is_cancelled(&self) -> bool {
        let Some(after) = self.cancel_after else { return crate::cancel::requested() };
        let due = !self.reports.lock().unwrap().is_empty() || self.start.elapsed() >= after;
        if due {
            self.cancelled_at.lock().unwrap().get_or_insert_with(Instant::now);
        }
        due || crate::cancel::requested()
    }
}

fn is(out: &Result<EvalOutput, JobFailure>, kind: FailureKind) -> bool {
    matches!(out, Err(f) if f.kind == kind)
}

/// A failure kind as the protocol spells it (`invalid_parameters`).
fn code(k: FailureKind) -> String {
    serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// What a job came to, in one line.
fn outcome(out: &Result<EvalOutput, JobFailure>) -> String {
    match out {
        Ok(o) => format!("succeeded (raw score {})", o.raw_score),
        Err(f) => format!("{}: {}", code(f.kind), f.message),
    }
}

/// The verdict on a run's progress reports.
fn progress_verdict(reports: &[(u64, u64)]) -> (Verdict, String) {
    if reports.is_empty() {
        return (Verdict::Fail, "no progress reported: the operator sees nothing until the job ends".into());
    }
    if let Some((d, t)) = reports.iter().find(|(d, t)| *t > 0 && d > t) {
        return (Verdict::Fail, format!("reported {d} done of {t}"));
    }
    if reports.windows(2).any(|w| w[1].1 == w[0].1 && w[1].0 < w[0].0) {
        return (Verdict::Fail, "progress went backwards".into());
    }
    let (d, t) = reports[reports.len() - 1];
    (Verdict::Pass, format!("{} report(s), the last {d} of {t}", reports.len()))
}

/// A metric that measures wall-clock time (`*_seconds`, `*_ms`): it differs between runs by
/// nature, so the determinism check names it instead of failing on it.
pub fn is_timing(metric: &str) -> bool {
    metric.ends_with("_seconds") || metric.ends_with("_ms")
}

/// Where two outputs of the same job differ in what is scored: the raw score, the metrics (but
/// timings), the per-sample scores, bit for bit (NaN equals NaN of the same bits).
pub fn differences(a: &EvalOutput, b: &EvalOutput) -> Option<String> {
    let same = |x: f64, y: f64| x.to_bits() == y.to_bits();
    if !same(a.raw_score, b.raw_score) {
        return Some(format!("raw score {} then {}", a.raw_score, b.raw_score));
    }
    let keys_a: Vec<&String> = a.metrics.keys().collect();
    let keys_b: Vec<&String> = b.metrics.keys().collect();
    if keys_a != keys_b {
        return Some(format!("metrics {keys_a:?} then {keys_b:?}"));
    }
    for (name, x) in a.metrics.iter().filter(|(n, _)| !is_timing(n)) {
        if !same(*x, b.metrics[name]) {
            return Some(format!("metric `{name}` {x} then {}", b.metrics[name]));
        }
    }
    if a.per_sample.len() != b.per_sample.len() {
        return Some(format!("{} per-sample scores then {}", a.per_sample.len(), b.per_sample.len()));
    }
    let i = a.per_sample.iter().zip(&b.per_sample).position(|(x, y)| !same(*x, *y))?;
    Some(format!("sample {i}: {} then {}", a.per_sample[i], b.per_sample[i]))
}

/// Parameters a schema should refuse: a declared property of the wrong type, a number instead
/// of an object, an unknown field. (The caller keeps those the schema does refuse.)
pub fn invalid_params(schema: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let wrong = match sub.get("type").and_then(Value::as_str) {
                Some("number" | "integer") => json!("not a number"),
                Some("string") => json!(12345),
                Some("boolean") => json!("yes"),
                Some("array" | "object") => json!(7),
                _ => continue,
            };
            out.push((format!("`{name}` of the wrong type"), json!({ name.as_str(): wrong })));
            break;
        }
    }
    out.push(("a number instead of an object".into(), json!(42)));
    out.push(("an unknown field".into(), json!({"arena_conformance_unknown_field": true})));
    out
}

/// Every `default` a schema declares: (where, the subschema it belongs to with the root's
/// definitions, the value).
pub fn defaults(schema: &Value) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    walk_defaults(schema, schema, String::new(), false, &mut out);
    out
}

fn walk_defaults(root: &Value, v: &Value, at: String, names: bool, out: &mut Vec<(String, Value, Value)>) {
    match v {
        Value::Object(o) => {
            if !names && let Some(d) = o.get("default") {
                let mut sub = o.clone();
                for defs in ["$defs", "definitions"] {
                    if let Some(x) = root.get(defs) {
                        sub.entry(defs).or_insert_with(|| x.clone());
                    }
                }
                out.push((
                    if at.is_empty() { "/".into() } else { at.clone() },
                    Value::Object(sub),
                    d.clone(),
                ));
            }
            for (key, child) in o {
                // Values, not schemas: nothing in them is a default.
                if !names && matches!(key.as_str(), "default" | "const" | "enum" | "examples") {
                    continue;
                }
                // The values of these maps are schemas, keyed by names (a property may be
                // called `default`).
                let map = !names
                    && matches!(key.as_str(), "properties" | "patternProperties" | "$defs" | "definitions");
                walk_defaults(root, child, format!("{at}/{key}"), map, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                walk_defaults(root, child, format!("{at}/{i}"), false, out);
            }
        }
        _ => {}
    }
}

/// Copies the tree at `from` into the directory `to` with each file's bytes replaced by seeded
/// junk of the same length (at most 4 KiB, at least 16 bytes). Returns the broken submission: a
/// file of the same name for a file, `to` for a directory (empty for a missing `from`).
fn junk_copy(from: &Path, to: &Path, seed: u64) -> anyhow::Result<PathBuf> {
    let mut rng = SplitMix64::new(seed ^ 0x6a75_6e6b);
    let mut junk =
        |len: u64| -> Vec<u8> { (0..len.clamp(16, 4096)).map(|_| (rng.next_u64() >> 56) as u8).collect() };
    std::fs::create_dir_all(to)?;
    if from.is_file() {
        let dest = to.join(from.file_name().unwrap_or("submission".as_ref()));
        std::fs::write(&dest, junk(std::fs::metadata(from)?.len()))?;
        return Ok(dest);
    }
    if !from.is_dir() {
        return Ok(to.to_path_buf());
    }
    let options = crate::files::WalkOptions { skip: &[".git"], strict: false, ..Default::default() };
    let root = from.canonicalize()?;
    for f in crate::files::walk(from, options)? {
        let rel = f.path.strip_prefix(&root).or_else(|_| f.path.strip_prefix(from))?;
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&dest, junk(f.len))?;
    }
    Ok(to.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_found_with_its_definitions_and_none_in_values() {
        let schema = json!({
            "type": "object",
            "$defs": {"M": {"type": "object", "properties": {"b": {"type": "integer", "default": 3}}}},
            "properties": {
                "default": {"type": "number", "default": "x"},
                "m": {"$ref": "#/$defs/M", "default": {"b": 1}},
                "c": {"const": {"default": 1}, "enum": [{"default": 2}]}
            }
        });
        let found = defaults(&schema);
        let at: Vec<&str> = found.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(at, ["/$defs/M/properties/b", "/properties/default", "/properties/m"]);
        let bad: Vec<&str> = found
            .iter()
            .filter(|(_, s, v)| !schema_errors(s, v).is_empty())
            .map(|(a, _, _)| a.as_str())
            .collect();
        assert_eq!(bad, ["/properties/default"], "`x` is not a number; {{b: 1}} resolves M");
    }

    #[test]
    fn the_invalid_params_are_refused_by_a_strict_schema_and_a_loose_one_refuses_fewer() {
        let strict = json!({"type": "object", "additionalProperties": false,
            "properties": {"scale": {"type": "number"}}});
        let refused = |s: &Value| {
            invalid_params(s).into_iter().filter(|(_, v)| !schema_errors(s, v).is_empty()).count()
        };
        assert_eq!(refused(&strict), 3);
        assert_eq!(refused(&json!({"type": "object"})), 1, "only the number");
        assert_eq!(refused(&json!({})), 0);
    }

    #[test]
    fn outputs_differ_by_their_bits() {
        let a = EvalOutput { raw_score: 1.0, per_sample: vec![0.1, f64::NAN], ..Default::default() };
        assert_eq!(differences(&a, &a.clone()), None, "NaN equals itself by its bits");
        let mut b = a.clone();
        b.per_sample[0] = 0.1 + f64::EPSILON;
        assert!(differences(&a, &b).unwrap().starts_with("sample 0"));
        let mut c = a.clone();
        c.metrics.insert("n".into(), 1.0);
        assert!(differences(&a, &c).is_some());
        let mut t = (a.clone(), a.clone());
        t.0.metrics.insert("benchmark_seconds".into(), 0.5);
        t.1.metrics.insert("benchmark_seconds".into(), 0.25);
        assert_eq!(differences(&t.0, &t.1), None, "a timing is not a score");
    }

    #[test]
    fn progress_needs_a_report_that_stays_within_its_total() {
        assert_eq!(progress_verdict(&[]).0, Verdict::Fail);
        assert_eq!(progress_verdict(&[(1, 3), (2, 3), (3, 3)]).0, Verdict::Pass);
        assert_eq!(progress_verdict(&[(4, 3)]).0, Verdict::Fail);
        assert_eq!(progress_verdict(&[(2, 3), (1, 3)]).0, Verdict::Fail);
    }

    #[test]
    fn a_junk_copy_keeps_the_names_and_replaces_the_bytes() {
        let d = tempfile::tempdir().unwrap();
        let from = d.path().join("sub");
        std::fs::create_dir_all(from.join("inner")).unwrap();
        std::fs::write(from.join("config.json"), "{\"a\": 1}").unwrap();
        std::fs::write(from.join("inner/w.bin"), vec![0u8; 10_000]).unwrap();
        let to = d.path().join("broken");
        assert_eq!(junk_copy(&from, &to, 7).unwrap(), to);
        let c = std::fs::read(to.join("config.json")).unwrap();
        assert_eq!(c.len(), 16);
        assert_ne!(c, b"{\"a\": 1}");
        assert_eq!(std::fs::read(to.join("inner/w.bin")).unwrap().len(), 4096);
        let again = d.path().join("again");
        junk_copy(&from, &again, 7).unwrap();
        assert_eq!(std::fs::read(again.join("config.json")).unwrap(), c, "seeded");
    }
}
