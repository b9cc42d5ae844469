//! Plain Rust types of the plugin API. Nothing here is an FFI type.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A kind of compute device. A task kind declares the kinds it supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Cuda,
    Wgpu,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 3] = [DeviceKind::Cpu, DeviceKind::Cuda, DeviceKind::Wgpu];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
            DeviceKind::Wgpu => "wgpu",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The device a task runs on: `cpu`, `cuda[:N]` or `wgpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Device {
    Cpu,
    Cuda(u32),
    Wgpu,
}

impl Device {
    pub fn kind(self) -> DeviceKind {
        match self {
            Device::Cpu => DeviceKind::Cpu,
            Device::Cuda(_) => DeviceKind::Cuda,
            Device::Wgpu => DeviceKind::Wgpu,
        }
    }

    /// The ordinal of the device among those of its kind (0 for cpu and wgpu).
    pub fn ordinal(self) -> u32 {
        match self {
            Device::Cuda(n) => n,
            _ => 0,
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Wgpu => f.write_str("wgpu"),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            "wgpu" => Ok(Device::Wgpu),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<u32>()
                    .map(Device::Cuda)
                    .map_err(|_| format!("invalid CUDA ordinal in device `{other}`")),
                None => Err(format!("unknown device `{other}` (expected cpu, cuda, cuda:N or wgpu)")),
            },
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

/// One kind of evaluation task that a plugin provides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskKindInfo {
    /// The name a competition or `arena eval --task` uses.
    pub name: String,
    pub description: String,
    /// The devices this task kind can run on.
    pub devices: Vec<DeviceKind>,
    /// JSON Schema of the task's parameters.
    pub params_schema: Value,
}

/// What a plugin library provides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// The plugin ABI version the library was built against (filled in by the export glue).
    #[serde(default)]
    pub abi_version: String,
    pub tasks: Vec<TaskKindInfo>,
}

impl PluginInfo {
    pub fn task(&self, name: &str) -> Option<&TaskKindInfo> {
        self.tasks.iter().find(|t| t.name == name)
    }
}

/// Everything a task is created from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub kind: String,
    pub params: Value,
    pub device: Device,
    /// Every random choice of the task derives from this seed.
    pub seed: u64,
}

/// The submission under evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The submission's identity (a uid, a hotkey, a repo@revision): used in reports only.
    pub id: String,
    /// Local directory (or file) holding the submission's files.
    pub path: PathBuf,
    /// Free-form metadata (the chain commitment, declared hashes, …).
    #[serde(default)]
    pub metadata: Value,
}

/// One evaluation sample: a JSON record plus optional local files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    #[serde(default)]
    pub data: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
}

/// Resource limits the host gives the task. The host enforces them for isolated jobs; a task
/// should also honour them itself (for the sub-processes it starts, say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock limit for the whole evaluation, in milliseconds.
    #[serde(default)]
    pub time_limit_ms: Option<u64>,
    /// Memory limit, in bytes.
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
}

/// One evaluation: a submission, the samples to score it on, and limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRequest {
    pub submission: Submission,
    #[serde(default)]
    pub samples: Vec<Sample>,
    #[serde(default)]
    pub limits: Limits,
}

/// The result of one evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalOutput {
    /// The task's raw score (its direction is declared by the competition, not here).
    pub raw_score: f64,
    /// Named metrics, for reports and for competitions that score on a metric other than
    /// the raw score.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// One score per sample, in sample order (empty when the task has no per-sample score).
    #[serde(default)]
    pub per_sample: Vec<f64>,
    /// Free-form details (logs, reasons, provenance).
    #[serde(default)]
    pub details: Value,
}

/// What went wrong, for the host to decide what to do with a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The submission is at fault (bad files, rejected patch, failed benchmark): scores zero.
    InvalidSubmission,
    /// The task's parameters are wrong: a configuration error, not the submission's fault.
    InvalidParameters,
    /// The plugin failed (a bug, a panic, an environment problem).
    Internal,
    /// The evaluation was cancelled through [`Progress::is_cancelled`].
    Cancelled,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidSubmission => "invalid submission",
            ErrorKind::InvalidParameters => "invalid parameters",
            ErrorKind::Internal => "internal",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

/// An error returned by a plugin: a kind and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError { kind, message: message.into() }
    }
    pub fn invalid_submission(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidSubmission, message)
    }
    pub fn invalid_parameters(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameters, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "evaluation cancelled")
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for PluginError {}

/// The host's side of a running evaluation: progress reports out, cancellation in.
pub trait Progress {
    /// `done` of `total` units of work are finished; `message` says what is happening.
    fn report(&self, done: u64, total: u64, message: &str);
    /// True once the host wants the evaluation to stop. A task checks it between units of work
    /// and returns [`PluginError::cancelled`].
    fn is_cancelled(&self) -> bool;
}

/// A [`Progress`] that ignores reports and never cancels.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _done: u64, _total: u64, _message: &str) {}
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// A plugin library: what it provides and how to create its tasks.
pub trait Plugin: 'static {
    /// The library's name, version and task kinds. `abi_version` is filled in by the glue.
    fn info() -> PluginInfo;
    /// Creates a task of `spec.kind`. Parameters are validated here: a bad one is an
    /// [`ErrorKind::InvalidParameters`] error naming the field.
    fn create_task(spec: TaskSpec) -> Result<Box<dyn EvalTask>, PluginError>;
}

/// A configured evaluation task, ready to score submissions.
pub trait EvalTask: Send {
    /// Scores one submission on the request's samples.
    fn evaluate(&mut self, request: &EvalRequest, progress: &dyn Progress)
    -> Result<EvalOutput, PluginError>;
}

/// Deserializes task parameters, turning a serde error into an
/// [`ErrorKind::InvalidParameters`] error that names the offending field.
pub fn parse_params<T: serde::de::DeserializeOwned>(params: &Value) -> Result<T, PluginError> {
    serde_json::from_value(params.clone())
        .map_err(|e| PluginError::invalid_parameters(format!("parameters: {e}")))
}
