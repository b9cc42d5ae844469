//! One evaluation job, and running it in this process.
//!
//! The same [`prepare`] runs in-process and inside an isolated worker, so the two modes refuse
//! the same things with the same messages.

use std::path::PathBuf;
use std::time::Duration;

pub use arena_core::failure::{FailureKind, JobFailure};
use arena_plugin_api::{EvalOutput, EvalRequest, EvalTask, PluginInfo, Progress, TaskSpec};
use serde::{Deserialize, Serialize};

use crate::plugins::{self, PluginLoadError};

/// Everything needed to run one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The plugin library.
    pub plugin: PathBuf,
    /// Refuse to load the plugin unless its file has this sha256.
    #[serde(default)]
    pub plugin_sha256: Option<String>,
    pub task: TaskSpec,
    pub request: EvalRequest,
    /// Only load the plugin and report what it declares (its `PluginInfo`, as the output's
    /// `details`): how the host learns about a library without loading it itself.
    #[serde(default)]
    pub probe: bool,
}

impl Job {
    /// The job that probes the library at `plugin` (pinned to `sha256`).
    pub fn probe(plugin: &std::path::Path, sha256: &str) -> Job {
        Job {
            plugin: plugin.to_path_buf(),
            plugin_sha256: Some(sha256.to_string()),
            task: TaskSpec {
                kind: String::new(),
                params: serde_json::Value::Null,
                device: arena_plugin_api::Device::Cpu,
                seed: 0,
            },
            request: EvalRequest {
                submission: arena_plugin_api::Submission {
                    id: String::new(),
                    path: PathBuf::new(),
                    metadata: serde_json::Value::Null,
                },
                samples: Vec::new(),
                limits: Default::default(),
            },
            probe: true,
        }
    }
}

/// Per-job limits the host enforces on an isolated job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobLimits {
    pub wall: Option<Duration>,
    pub memory_bytes: Option<u64>,
}

impl From<PluginLoadError> for JobFailure {
    fn from(e: PluginLoadError) -> Self {
        JobFailure::new(FailureKind::Load, e.to_string())
    }
}

/// Loads the job's plugin (hash-checked), checks the task kind and device, and creates the task.
pub fn prepare(job: &Job) -> Result<(PluginInfo, Box<dyn EvalTask>), JobFailure> {
    let loaded = plugins::load_pinned(&job.plugin, job.plugin_sha256.as_deref())?;
    plugins::check_task(loaded.info(), &job.task.kind, job.task.device)
        .map_err(|m| JobFailure::new(FailureKind::Unsupported, m))?;
    let task = loaded.plugin.create_task(&job.task)?;
    Ok((loaded.info().clone(), task))
}

/// Runs the job in this process. Limits are passed to the task but not enforced: a crash or
/// hang here takes the caller with it. Use [`crate::isolate`] for untrusted work.
pub fn run_in_process(job: &Job, progress: &dyn Progress) -> Result<EvalOutput, JobFailure> {
    if job.probe {
        // A library the loader refuses is an answer (with its code), not a failed probe.
        let details = match plugins::load_pinned(&job.plugin, job.plugin_sha256.as_deref()) {
            Ok(loaded) => serde_json::json!({ "info": loaded.info() }),
            Err(PluginLoadError::Load(e)) => {
                serde_json::json!({ "load_error": { "code": e.code(), "message": e.to_string() } })
            }
            Err(e) => return Err(e.into()),
        };
        return Ok(EvalOutput { details, ..Default::default() });
    }
    run_timed(job, progress).0
}

/// [`run_in_process`], with the time spent in the plugin's own code (creating the task and
/// evaluating), which the host's overhead is measured against; none for a probe or a job the
/// host refused before the plugin ran.
pub fn run_timed(job: &Job, progress: &dyn Progress) -> (Result<EvalOutput, JobFailure>, Option<Duration>) {
    if job.probe {
        return (run_in_process(job, progress), None);
    }
    let loaded = match plugins::load_pinned(&job.plugin, job.plugin_sha256.as_deref()) {
        Ok(l) => l,
        Err(e) => return (Err(e.into()), None),
    };
    if let Err(m) = plugins::check_task(loaded.info(), &job.task.kind, job.task.device) {
        return (Err(JobFailure::new(FailureKind::Unsupported, m)), None);
    }
    let start = std::time::Instant::now();
    let out = loaded.plugin.create_task(&job.task).and_then(|mut task| task.evaluate(&job.request, progress));
    (out.map_err(JobFailure::from), Some(start.elapsed()))
}
