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
    let (_, mut task) = prepare(job)?;
    Ok(task.evaluate(&job.request, progress)?)
}
