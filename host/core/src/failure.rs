//! What an evaluation that did not produce an output became: the kind of failure and why.
//! Plain data, shared by the runtime (which produces failures) and rounds (which score them).

use arena_plugin_api::{ErrorKind, PluginError};
use serde::{Deserialize, Serialize};

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

    /// A failure for the machine's reasons (a crash, running out of memory or time, a worker
    /// that broke the protocol or did not start, a plugin's internal error), which another
    /// attempt may not repeat; never the miner's (an invalid submission) or the operator's (bad
    /// parameters, a plugin that does not load, an unsupported device). A validator retries
    /// those, and only those.
    pub fn is_infrastructure(self) -> bool {
        matches!(
            self,
            FailureKind::Internal
                | FailureKind::Timeout
                | FailureKind::OutOfMemory
                | FailureKind::Crashed
                | FailureKind::Exited
                | FailureKind::Protocol
                | FailureKind::Spawn
        )
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
