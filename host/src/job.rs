//! One evaluation job, and running it in this process.
//!
//! The same [`prepare`] runs in-process and inside an isolated worker, so the two modes refuse
//! the same things with the same messages.

use std::path::PathBuf;
use std::time::Duration;

use arena_plugin_api::{
    ErrorKind, EvalOutput, EvalRequest, EvalTask, PluginError, PluginInfo, Progress, TaskSpec,
};
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

/// Why a job failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The plugin rejected the submission.
    InvalidSubmission,
    /// The plugin rejected its parameters.
    InvalidParameters,
    /// The plugin reported an internal error, or panicked.
    Internal,
    /// The job was cancelled (Ctrl-C).
    Cancelled,
    /// The plugin library could not be loaded, or its pinned hash differs.
    Load,
    /// The plugin has no such task kind, or the task kind does not run on the device.
    Unsupported,
    /// The job ran past its wall-clock limit and was killed.
    Timeout,
    /// The job ran out of its memory limit.
    OutOfMemory,
    /// The worker was killed by a signal (segfault, abort, …).
    Crashed,
    /// The worker exited without a result.
    Exited,
    /// The worker broke the protocol.
    Protocol,
    /// The worker could not be started.
    Spawn,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::InvalidSubmission => "invalid submission",
            FailureKind::InvalidParameters => "invalid parameters",
            FailureKind::Internal => "plugin error",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Load => "plugin load error",
            FailureKind::Unsupported => "unsupported",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out of memory",
            FailureKind::Crashed => "crashed",
            FailureKind::Exited => "exited",
            FailureKind::Protocol => "protocol error",
            FailureKind::Spawn => "spawn error",
        }
    }
}

impl From<ErrorKind> for FailureKind {
    fn from(k: ErrorKind) -> Self {
        match k {
            ErrorKind::InvalidSubmission => FailureKind::InvalidSubmission,
            ErrorKind::InvalidParameters => FailureKind::InvalidParameters,
            ErrorKind::Internal => FailureKind::Internal,
            ErrorKind::Cancelled => FailureKind::Cancelled,
        }
    }
}

/// A failed job: what kind of failure, a message, and the last lines the worker wrote to stderr.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    pub kind: FailureKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr_tail: Vec<String>,
}

impl JobFailure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        JobFailure { kind, message: message.into(), stderr_tail: Vec::new() }
    }
}

impl From<PluginError> for JobFailure {
    fn from(e: PluginError) -> Self {
        JobFailure::new(e.kind.into(), e.message)
    }
}

impl From<PluginLoadError> for JobFailure {
    fn from(e: PluginLoadError) -> Self {
        JobFailure::new(FailureKind::Load, e.to_string())
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)?;
        if !self.stderr_tail.is_empty() {
            write!(f, "\n  stderr (last lines):")?;
            for l in &self.stderr_tail {
                write!(f, "\n    {l}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for JobFailure {}

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
