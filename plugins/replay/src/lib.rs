//! `replay`: SN94/BitSota-style research replay as an arena plugin.
//!
//! A task is a git repository at a base ref with a setup and a benchmark command, a metric and
//! its direction, the paths a patch may touch, a patch size limit and a time budget. A
//! submission is a patch (the submission path itself, or `patch.diff` in its directory),
//! optionally with an artifact file declared in the metadata
//! (`{"artifact": {"file": "…", "sha256": "…", "size_bytes": N}}`).
//!
//! The order of work follows the reference validator (`public_replay.py`):
//! 1. reject before running: patch over `max_patch_bytes`, not UTF-8, unparsable, touching a
//!    path outside `allowed_patch_paths` (fnmatch semantics: `*` crosses `/`), a `.pyc`/`.pyo`
//!    file, an escaping path (`..`, absolute, `.git/`), a symlink or submodule, or a path through
//!    a symlink of the base tree; a declared artifact with the wrong size or sha256;
//! 2. clone the repository into a clean workspace, check out the base, `git apply`;
//! 3. run setup and benchmark under bubblewrap (no network, read-only system, limits);
//! 4. extract the metric: `result_path` JSON `metric_value` when `metric_name` matches, else
//!    `metrics[name]`, else a top-level `name`; else the last `name: value` / `name=value` in
//!    stdout + stderr;
//! 5. status: non-zero exit or no metric is an error, or a rejection when the output contains
//!    `validator_rejection=`; otherwise the metric is the raw score.

pub mod patch;
pub mod sandbox;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use arena_plugin_api::*;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::patch::FileChange;
use crate::sandbox::{Ended, Mount, SandboxParams};

/// The reference validator's default patch size limit.
pub const DEFAULT_MAX_PATCH_BYTES: u64 = 262_144;
/// The reference validator's default time budget.
pub const DEFAULT_TIME_BUDGET_SECONDS: u64 = 3600;
/// The marker a benchmark prints to reject a submission.
pub const REJECTION_MARKER: &str = "validator_rejection=";
/// Names the patch may have inside a submission directory, in order of preference.
pub const PATCH_FILE_NAMES: [&str; 3] = ["patch.diff", "submission.patch", "patch"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Minimize,
    Maximize,
}

/// Parameters of a replay task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayParams {
    /// Git repository to clone: a local path or a URL.
    pub repository: String,
    /// Branch, tag or commit to start from.
    pub base_ref: String,
    /// Exact commit to check out; takes precedence over `base_ref` when given.
    #[serde(default)]
    pub base_commit_sha: Option<String>,
    /// Shell command run once before the benchmark (in the sandbox, without network).
    #[serde(default)]
    pub setup_command: Option<String>,
    /// Shell command that runs the benchmark.
    pub benchmark_command: String,
    /// JSON file the benchmark writes, relative to the repository root.
    #[serde(default)]
    pub result_path: Option<String>,
    /// The metric to extract.
    pub metric_name: String,
    /// Whether lower or higher values of the metric are better.
    pub metric_direction: Direction,
    /// Globs (fnmatch: `*` also matches `/`) of the paths a patch may touch; 1 to 64.
    pub allowed_patch_paths: Vec<String>,
    /// Largest accepted patch, in bytes.
    #[serde(default = "default_max_patch_bytes")]
    pub max_patch_bytes: u64,
    /// Time for setup and benchmark together, in seconds (1 to 86400).
    #[serde(default = "default_time_budget")]
    pub time_budget_seconds: u64,
    /// Sandbox settings.
    #[serde(default)]
    pub sandbox: SandboxParams,
}

fn default_max_patch_bytes() -> u64 {
    DEFAULT_MAX_PATCH_BYTES
}
fn default_time_budget() -> u64 {
    DEFAULT_TIME_BUDGET_SECONDS
}

/// An artifact declared in the submission's metadata.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactDecl {
    /// File name inside the submission directory.
    file: String,
    sha256: String,
    size_bytes: u64,
    #[serde(default)]
    uri: Option<String>,
}

pub struct ReplayPlugin;

pub const TASK_KIND: &str = "replay";

impl Plugin for ReplayPlugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "replay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: String::new(),
            tasks: vec![TaskKindInfo {
                name: TASK_KIND.into(),
                description: "Apply a submitted patch to a task repository and run its benchmark in a \
                              bubblewrap sandbox (SN94/BitSota replay); the raw score is the metric."
                    .into(),
                devices: vec![DeviceKind::Cpu, DeviceKind::Cuda],
                params_schema: serde_json::to_value(schemars::schema_for!(ReplayParams))
                    .expect("schema serializes"),
            }],
        }
    }

    fn create_task(spec: TaskSpec) -> Result<Box<dyn EvalTask>, PluginError> {
        if spec.kind != TASK_KIND {
            return Err(PluginError::invalid_parameters(format!("unknown task kind `{}`", spec.kind)));
        }
        Ok(Box::new(ReplayTask::new(parse_params(&spec.params)?, spec.device)?))
    }
}

export_plugin!(ReplayPlugin);

/// A configured replay task.
pub struct ReplayTask {
    params: ReplayParams,
    allowed: GlobSet,
    device: Device,
}

impl ReplayTask {
    pub fn new(params: ReplayParams, device: Device) -> Result<Self, PluginError> {
        let bad = |m: String| Err(PluginError::invalid_parameters(m));
        // The benchmark is told its device (ARENA_DEVICE); one that is not there would run it on
        // the CPU instead, with other numbers than the validators that have it.
        if let Device::Cuda(n) = device
            && !Path::new(&format!("/dev/nvidia{n}")).exists()
        {
            return bad(format!("device cuda:{n}: this machine has no NVIDIA device /dev/nvidia{n}"));
        }
        if params.allowed_patch_paths.is_empty() || params.allowed_patch_paths.len() > 64 {
            return bad(format!(
                "allowed_patch_paths: needs 1 to 64 entries, has {}",
                params.allowed_patch_paths.len()
            ));
        }
        if !(1..=86_400).contains(&params.time_budget_seconds) {
            return bad(format!("time_budget_seconds: {} is outside 1..=86400", params.time_budget_seconds));
        }
        if params.benchmark_command.trim().is_empty() {
            return bad("benchmark_command: must not be empty".into());
        }
        if params.metric_name.trim().is_empty() {
            return bad("metric_name: must not be empty".into());
        }
        if let Some(r) = &params.result_path
            && check_relative_path(r).is_err()
        {
            return bad(format!("result_path: `{r}` must be a relative path inside the repository"));
        }
        let mut b = GlobSetBuilder::new();
        for g in &params.allowed_patch_paths {
            let glob = Glob::new(g)
                .map_err(|e| PluginError::invalid_parameters(format!("allowed_patch_paths: `{g}`: {e}")))?;
            b.add(glob);
        }
        let allowed =
            b.build().map_err(|e| PluginError::invalid_parameters(format!("allowed_patch_paths: {e}")))?;
        Ok(ReplayTask { params, allowed, device })
    }

    /// Every check that needs only the patch text. Returns the parsed changes.
    pub fn check_patch(&self, bytes: &[u8]) -> Result<Vec<FileChange>, PluginError> {
        let reject = |m: String| Err(PluginError::invalid_submission(format!("patch rejected: {m}")));
        if bytes.len() as u64 > self.params.max_patch_bytes {
            return reject(format!(
                "{} bytes is over the limit of {} bytes",
                bytes.len(),
                self.params.max_patch_bytes
            ));
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return reject("not valid UTF-8".into());
        };
        let changes = match patch::parse(text) {
            Ok(c) => c,
            Err(e) => return reject(format!("unparsable diff: {e}")),
        };
        for c in &changes {
            for p in c.paths() {
                if let Err(m) = check_relative_path(p) {
                    return reject(format!("`{p}`: {m}"));
                }
                let lower = p.to_ascii_lowercase();
                if lower.ends_with(".pyc") || lower.ends_with(".pyo") {
                    return reject(format!("`{p}`: compiled Python files (.pyc/.pyo) are not accepted"));
                }
                if !self.allowed.is_match(p) {
                    return reject(format!(
                        "`{p}` is outside the allowed paths ({})",
                        self.params.allowed_patch_paths.join(", ")
                    ));
                }
            }
            if c.is_symlink() {
                return reject(format!(
                    "`{}` would be a symbolic link; patches may not create symlinks",
                    c.new_path.as_deref().unwrap_or("?")
                ));
            }
            if c.is_gitlink() {
                return reject(format!(
                    "`{}` would be a submodule; patches may not add submodules",
                    c.new_path.as_deref().unwrap_or("?")
                ));
            }
        }
        Ok(changes)
    }

    fn evaluate_inner(&self, req: &EvalRequest, progress: &dyn Progress) -> Result<EvalOutput, PluginError> {
        const STEPS: u64 = 6;
        let started = Instant::now();
        let budget = Duration::from_secs(self.params.time_budget_seconds);
        let budget = match req.limits.time_limit_ms {
            // Leave the host a little time to receive the result before its own limit.
            Some(ms) => budget.min(Duration::from_millis(ms).saturating_sub(Duration::from_millis(500))),
            None => budget,
        };
        let deadline = started + budget;

        progress.report(0, STEPS, "checking the patch");
        let patch_file = locate_patch(&req.submission.path)?;
        let bytes = read_limited(&patch_file, self.params.max_patch_bytes)?;
        let changes = self.check_patch(&bytes)?;
        let artifact = check_artifact(&req.submission)?;
        cancelled(progress)?;

        progress.report(1, STEPS, "cloning the task repository");
        let job = tempfile::Builder::new()
            .prefix("arena-replay-")
            .tempdir()
            .map_err(|e| PluginError::internal(format!("cannot create a job directory: {e}")))?;
        let ws = job.path().join("workspace");
        let base_commit = self.checkout(&ws)?;
        cancelled(progress)?;

        progress.report(2, STEPS, "applying the patch");
        for c in &changes {
            for p in c.paths() {
                if let Some(through) = symlink_on_path(&ws, p) {
                    return Err(PluginError::invalid_submission(format!(
                        "patch rejected: `{p}` goes through the symbolic link `{through}` of the base tree"
                    )));
                }
            }
        }
        let patch_copy = job.path().join("submission.patch");
        std::fs::write(&patch_copy, &bytes).map_err(|e| PluginError::internal(e.to_string()))?;
        let check = git(&ws, &["apply", "--check", "--whitespace=nowarn", path_str(&patch_copy)?])?;
        if !check.status.success() {
            return Err(PluginError::invalid_submission(format!(
                "patch rejected: it does not apply to {}: {}",
                short(&base_commit),
                String::from_utf8_lossy(&check.stderr).trim()
            )));
        }
        run_git(&ws, &["apply", "--whitespace=nowarn", path_str(&patch_copy)?])?;
        // Defence in depth: what git actually changed must be allowed too.
        let changed = run_git(&ws, &["status", "--porcelain=v1", "-z", "--untracked-files=all"])?;
        for entry in changed.split('\0').filter(|e| e.len() > 3) {
            let p = &entry[3..];
            if !self.allowed.is_match(p) {
                return Err(PluginError::invalid_submission(format!(
                    "patch rejected: it changed `{p}`, outside the allowed paths"
                )));
            }
        }
        cancelled(progress)?;

        // Hand the workspace to the sandbox user.
        let uid = self.params.sandbox.effective_uid();
        prepare_for_uid(job.path(), &ws, uid)?;
        let mut env = BTreeMap::new();
        env.insert("ARENA_SUBMISSION_ID".to_string(), req.submission.id.clone());
        env.insert("ARENA_DEVICE".to_string(), self.device.to_string());
        env.insert("ARENA_METRIC_NAME".to_string(), self.params.metric_name.clone());
        let mut mounts = Vec::new();
        let artifact_dir = job.path().join("artifact");
        if let Some((decl, src)) = &artifact {
            std::fs::create_dir_all(&artifact_dir).map_err(|e| PluginError::internal(e.to_string()))?;
            let dst = artifact_dir.join(Path::new(&decl.file).file_name().unwrap_or_default());
            std::fs::copy(src, &dst)
                .map_err(|e| PluginError::internal(format!("copying the artifact: {e}")))?;
            prepare_for_uid(job.path(), &artifact_dir, uid)?;
            let dst_s = path_str(&dst)?.to_string();
            for prefix in ["AUTORESEARCH_SUBMISSION_ARTIFACT", "ARENA_ARTIFACT"] {
                env.insert(format!("{prefix}_PATH"), dst_s.clone());
                env.insert(format!("{prefix}_BYTES"), decl.size_bytes.to_string());
                env.insert(format!("{prefix}_URI"), decl.uri.clone().unwrap_or_default());
            }
            mounts.push(Mount { path: &artifact_dir, writable: false });
        }
        let logs = job.path().join("logs");
        let is_cancelled = || progress.is_cancelled();
        let mut details = json!({
            "base_commit": base_commit,
            "changed_files": changes.iter().filter_map(|c| c.new_path.clone().or_else(|| c.old_path.clone())).collect::<Vec<_>>(),
            "metric_name": self.params.metric_name,
            "metric_direction": self.params.metric_direction,
        });
        let mut metrics = BTreeMap::new();

        for (step, name, command) in [
            (3, "setup", self.params.setup_command.as_deref()),
            (4, "benchmark", Some(self.params.benchmark_command.as_str())),
        ] {
            let Some(command) = command else { continue };
            progress.report(step, STEPS, &format!("running the {name} command"));
            let dir = logs.join(name);
            std::fs::create_dir_all(&dir).map_err(|e| PluginError::internal(e.to_string()))?;
            let out = sandbox::run(
                &self.params.sandbox,
                &ws,
                &mounts,
                &env,
                command,
                &dir,
                deadline,
                &is_cancelled,
            )
            .map_err(|e| PluginError::internal(format!("{name}: {e}")))?;
            metrics.insert(format!("{name}_seconds"), out.seconds);
            details[format!("{name}_exit")] = json!(out.describe_exit());
            details[format!("{name}_output_tail")] =
                json!(tail_lines(&format!("{}{}", out.stdout, out.stderr), 20));
            let combined = format!("{}\n{}", out.stdout, out.stderr);
            match out.ended {
                Ended::Cancelled => return Err(PluginError::cancelled()),
                Ended::TimedOut => {
                    return Err(PluginError::invalid_submission(format!(
                        "error: the {name} command ran past the time budget of {}s",
                        budget.as_secs()
                    )));
                }
                Ended::Exited(_) => {}
            }
            if let Some(reason) = rejection(&combined) {
                return Err(PluginError::invalid_submission(format!("rejected by the {name}: {reason}")));
            }
            if !out.success() {
                return Err(PluginError::invalid_submission(format!(
                    "error: the {name} command failed ({}): {}",
                    out.describe_exit(),
                    tail_lines(&combined, 5).join(" | ")
                )));
            }
            if name == "benchmark" {
                progress.report(5, STEPS, "extracting the metric");
                let value = self.extract_metric(&ws, &combined)?;
                metrics.insert(self.params.metric_name.clone(), value);
                progress.report(STEPS, STEPS, "done");
                return Ok(EvalOutput { raw_score: value, metrics, per_sample: Vec::new(), details });
            }
        }
        unreachable!("the benchmark step always runs")
    }

    fn checkout(&self, ws: &Path) -> Result<String, PluginError> {
        let out = Command::new("git")
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "clone",
                "--quiet",
                "--no-checkout",
                "--no-hardlinks",
                "--template=",
            ])
            .arg(&self.params.repository)
            .arg(ws)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| PluginError::internal(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(PluginError::internal(format!(
                "cannot clone {}: {}",
                self.params.repository,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let wanted = self.params.base_commit_sha.as_deref().unwrap_or(&self.params.base_ref);
        let candidates = [format!("{wanted}^{{commit}}"), format!("origin/{wanted}^{{commit}}")];
        let commit = candidates
            .iter()
            .find_map(|c| run_git(ws, &["rev-parse", "--verify", "--quiet", c]).ok())
            .map(|s| s.trim().to_string())
            .ok_or_else(|| {
                PluginError::invalid_parameters(format!(
                    "base ref `{wanted}` not found in {}",
                    self.params.repository
                ))
            })?;
        run_git(ws, &["checkout", "--quiet", "--detach", &commit])?;
        Ok(commit)
    }

    /// The metric, in the reference order: result JSON (`metric_value` with a matching
    /// `metric_name`, then `metrics[name]`, then a top-level key), then the last match of
    /// `\bname\b\s*[:=]\s*<number>` in stdout + stderr.
    pub fn extract_metric(&self, ws: &Path, output: &str) -> Result<f64, PluginError> {
        let name = &self.params.metric_name;
        if let Some(rel) = &self.params.result_path
            && let Some(payload) = read_result_json(ws, rel)?
            && let Some(v) = metric_from_payload(&payload, name)
        {
            return finite(name, v);
        }
        match metric_from_output(output, name) {
            Some(v) => finite(name, v),
            None => Err(PluginError::invalid_submission(format!(
                "error: the benchmark reported no `{name}` (neither in {} nor in its output)",
                self.params.result_path.as_deref().unwrap_or("a result file")
            ))),
        }
    }
}

impl EvalTask for ReplayTask {
    fn evaluate(&mut self, req: &EvalRequest, progress: &dyn Progress) -> Result<EvalOutput, PluginError> {
        self.evaluate_inner(req, progress)
    }
}

fn finite(name: &str, v: f64) -> Result<f64, PluginError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(PluginError::invalid_submission(format!("error: `{name}` is not finite ({v})")))
    }
}

fn cancelled(p: &dyn Progress) -> Result<(), PluginError> {
    if p.is_cancelled() { Err(PluginError::cancelled()) } else { Ok(()) }
}

/// The number in a result payload, in the reference order.
pub fn metric_from_payload(payload: &Value, name: &str) -> Option<f64> {
    if payload.get("metric_name").and_then(Value::as_str) == Some(name)
        && let Some(v) = payload.get("metric_value").and_then(as_number)
    {
        return Some(v);
    }
    if let Some(v) = payload.get("metrics").and_then(|m| m.get(name)).and_then(as_number) {
        return Some(v);
    }
    payload.get(name).and_then(as_number)
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The last `name: value` or `name = value` in `output`.
pub fn metric_from_output(output: &str, name: &str) -> Option<f64> {
    let re = regex::Regex::new(&format!(
        r"\b{}\b\s*[:=]\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:nan|inf(?:inity)?))",
        regex::escape(name)
    ))
    .ok()?;
    re.captures_iter(output).last().and_then(|c| c[1].parse().ok())
}

/// The reason after `validator_rejection=`, when the output has one.
pub fn rejection(output: &str) -> Option<String> {
    let pos = output.rfind(REJECTION_MARKER)?;
    let reason = output[pos + REJECTION_MARKER.len()..].lines().next().unwrap_or("").trim();
    Some(if reason.is_empty() { "(no reason given)".into() } else { reason.to_string() })
}

fn read_result_json(ws: &Path, rel: &str) -> Result<Option<Value>, PluginError> {
    let p = ws.join(rel);
    let Ok(meta) = std::fs::symlink_metadata(&p) else { return Ok(None) };
    if !meta.is_file() || symlink_on_path(ws, rel).is_some() {
        return Err(PluginError::invalid_submission(format!(
            "error: result_path `{rel}` is not a regular file inside the workspace"
        )));
    }
    let text = std::fs::read_to_string(&p)
        .map_err(|e| PluginError::invalid_submission(format!("error: {rel}: {e}")))?;
    Ok(serde_json::from_str(&text).ok())
}

/// A relative path that stays inside the tree and out of `.git`.
fn check_relative_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.contains('\0') || p.contains('\\') {
        return Err("NUL or backslash in the path".into());
    }
    let path = Path::new(p);
    for c in path.components() {
        match c {
            Component::Normal(n) if n.eq_ignore_ascii_case(".git") => return Err("inside .git".into()),
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("escapes the tree with `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
        }
    }
    Ok(())
}

/// The first existing proper prefix of `rel` inside `root` that is a symlink.
fn symlink_on_path(root: &Path, rel: &str) -> Option<String> {
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = Path::new(rel).components().collect();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        if i + 1 == comps.len() {
            break;
        }
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Some(cur.strip_prefix(root).unwrap_or(&cur).display().to_string());
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    None
}

fn locate_patch(path: &Path) -> Result<PathBuf, PluginError> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    for n in PATCH_FILE_NAMES {
        let p = path.join(n);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(PluginError::invalid_submission(format!(
        "no patch in {} (expected one of {})",
        path.display(),
        PATCH_FILE_NAMES.join(", ")
    )))
}

/// Reads at most `limit + 1` bytes, so a huge file is rejected without reading it all.
fn read_limited(p: &Path, limit: u64) -> Result<Vec<u8>, PluginError> {
    let f = std::fs::File::open(p)
        .map_err(|e| PluginError::invalid_submission(format!("{}: {e}", p.display())))?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(|e| PluginError::invalid_submission(e.to_string()))?;
    if buf.len() as u64 > limit {
        let total = std::fs::metadata(p).map(|m| m.len()).unwrap_or(buf.len() as u64);
        return Err(PluginError::invalid_submission(format!(
            "patch rejected: {total} bytes is over the limit of {limit} bytes"
        )));
    }
    Ok(buf)
}

fn check_artifact(sub: &Submission) -> Result<Option<(ArtifactDecl, PathBuf)>, PluginError> {
    let Some(decl) = sub.metadata.get("artifact") else { return Ok(None) };
    let decl: ArtifactDecl = serde_json::from_value(decl.clone())
        .map_err(|e| PluginError::invalid_submission(format!("metadata.artifact: {e}")))?;
    check_relative_path(&decl.file)
        .map_err(|m| PluginError::invalid_submission(format!("artifact `{}`: {m}", decl.file)))?;
    let dir = if sub.path.is_dir() {
        sub.path.clone()
    } else {
        sub.path.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let p = dir.join(&decl.file);
    let meta = std::fs::symlink_metadata(&p)
        .map_err(|e| PluginError::invalid_submission(format!("artifact {}: {e}", p.display())))?;
    if !meta.is_file() {
        return Err(PluginError::invalid_submission(format!(
            "artifact {} is not a regular file",
            p.display()
        )));
    }
    if meta.len() != decl.size_bytes {
        return Err(PluginError::invalid_submission(format!(
            "artifact {}: size is {} bytes, {} declared",
            decl.file,
            meta.len(),
            decl.size_bytes
        )));
    }
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(&p).map_err(|e| PluginError::invalid_submission(e.to_string()))?;
    std::io::copy(&mut f, &mut h).map_err(|e| PluginError::invalid_submission(e.to_string()))?;
    let got = hex::encode(h.finalize());
    if !got.eq_ignore_ascii_case(decl.sha256.trim()) {
        return Err(PluginError::invalid_submission(format!(
            "artifact {}: sha256 is {got}, {} declared",
            decl.file, decl.sha256
        )));
    }
    Ok(Some((decl, p)))
}

/// Makes `dir` (and everything under it) owned by `uid`, and `job` traversable by it.
fn prepare_for_uid(job: &Path, dir: &Path, uid: u32) -> Result<(), PluginError> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: getuid has no preconditions.
    if uid == unsafe { libc::getuid() } {
        return Ok(());
    }
    std::fs::set_permissions(job, std::fs::Permissions::from_mode(0o711))
        .map_err(|e| PluginError::internal(format!("chmod {}: {e}", job.display())))?;
    chown_tree(dir, uid)
        .map_err(|e| PluginError::internal(format!("chown {} to uid {uid}: {e}", dir.display())))
}

fn chown_tree(p: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid))?;
    let meta = std::fs::symlink_metadata(p)?;
    if meta.is_dir() {
        for e in std::fs::read_dir(p)? {
            chown_tree(&e?.path(), uid)?;
        }
    }
    Ok(())
}

fn git(ws: &Path, args: &[&str]) -> Result<std::process::Output, PluginError> {
    Command::new("git")
        .arg("-C")
        .arg(ws)
        .args(["-c", "core.hooksPath=/dev/null"])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| PluginError::internal(format!("cannot run git: {e}")))
}

fn run_git(ws: &Path, args: &[&str]) -> Result<String, PluginError> {
    let out = git(ws, args)?;
    if !out.status.success() {
        return Err(PluginError::internal(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn path_str(p: &Path) -> Result<&str, PluginError> {
    p.to_str().ok_or_else(|| PluginError::internal(format!("non-UTF-8 path {}", p.display())))
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

fn tail_lines(s: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| l.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_extraction_order() {
        let p = json!({"metric_name": "loss", "metric_value": 1.5, "metrics": {"loss": 2.5}, "loss": 3.5});
        assert_eq!(metric_from_payload(&p, "loss"), Some(1.5));
        let p = json!({"metric_name": "other", "metric_value": 1.5, "metrics": {"loss": 2.5}, "loss": 3.5});
        assert_eq!(metric_from_payload(&p, "loss"), Some(2.5));
        let p = json!({"metrics": {"acc": 0.1}, "loss": "3.5"});
        assert_eq!(metric_from_payload(&p, "loss"), Some(3.5));
        assert_eq!(metric_from_payload(&json!({"x": 1}), "loss"), None);
    }

    #[test]
    fn metric_from_output_takes_the_last_whole_word_match() {
        let out = "val_loss: 9\nloss: 3.0\nstep 2 loss=2.5e-1\nmy_loss: 7\n";
        assert_eq!(metric_from_output(out, "loss"), Some(0.25));
        assert_eq!(metric_from_output(out, "val_loss"), Some(9.0));
        assert_eq!(metric_from_output("heldout_ppl = .5", "heldout_ppl"), Some(0.5));
        assert!(metric_from_output("loss: nan", "loss").unwrap().is_nan());
        assert_eq!(metric_from_output("no metric here", "loss"), None);
    }

    #[test]
    fn rejection_marker() {
        assert_eq!(
            rejection("x\nvalidator_rejection=parameter_count too high\n").as_deref(),
            Some("parameter_count too high")
        );
        assert_eq!(rejection("all good"), None);
    }

    #[test]
    fn relative_paths() {
        assert!(check_relative_path("src/a.py").is_ok());
        assert!(check_relative_path("../a").is_err());
        assert!(check_relative_path("a/../../b").is_err());
        assert!(check_relative_path("/etc/passwd").is_err());
        assert!(check_relative_path(".git/hooks/pre-commit").is_err());
        assert!(check_relative_path("x/.GIT/config").is_err());
    }
}
