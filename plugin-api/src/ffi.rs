//! The FFI boundary: every `abi_stable` type of the project lives in this module.
//!
//! Layout: a prefix-type root module ([`PluginModule`]) with `info` and `create_task`; a
//! `#[sabi_trait]` task object ([`FfiEvalTask`]); a `#[sabi_trait]` progress callback
//! ([`FfiProgress`]) borrowed from the host for the duration of one `evaluate`. Strings and
//! vectors are `abi_stable`'s `RString`/`RVec`, which carry their own vtables, so memory is
//! always freed by the side that allocated it. JSON values cross as strings.
//!
//! Growth: new root-module fields and new trait methods go after the `last_prefix_field`
//! markers, so libraries built against an older minor version keep loading.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use abi_stable::library::{CheckTypeLayout, RootModule, RootModuleResult};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::{RRef, VersionStrings};
use abi_stable::std_types::{RBox, RErr, ROk, ROption, RResult, RStr, RString, RVec, Tuple2};
use abi_stable::{StableAbi, declare_root_module_statics, sabi_trait};
use serde_json::Value;

pub use abi_stable::library::LibHeader;

use crate::types::*;

#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfiDeviceKind {
    Cpu,
    Cuda,
    Wgpu,
}

#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct FfiDevice {
    pub kind: FfiDeviceKind,
    pub ordinal: u32,
}

#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfiErrorKind {
    InvalidSubmission,
    InvalidParameters,
    Internal,
    Cancelled,
}

#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FfiError {
    pub kind: FfiErrorKind,
    pub message: RString,
}

#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FfiTaskKind {
    pub name: RString,
    pub description: RString,
    pub devices: RVec<FfiDeviceKind>,
    pub params_schema_json: RString,
    #[cfg(feature = "__test-layout-mismatch")]
    pub layout_mismatch: u64,
}

#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FfiPluginInfo {
    pub name: RString,
    pub version: RString,
    pub abi_version: RString,
    pub tasks: RVec<FfiTaskKind>,
}

#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FfiSample {
    pub data_json: RString,
    pub files: RVec<RString>,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct FfiLimits {
    pub time_limit_ms: ROption<u64>,
    pub memory_limit_bytes: ROption<u64>,
}

#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FfiRequest {
    pub submission_id: RString,
    pub submission_path: RString,
    pub submission_metadata_json: RString,
    pub samples: RVec<FfiSample>,
    pub limits: FfiLimits,
}

#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FfiOutput {
    pub raw_score: f64,
    pub metrics: RVec<Tuple2<RString, f64>>,
    pub per_sample: RVec<f64>,
    pub details_json: RString,
}

/// Progress reports and cancellation, implemented by the host.
#[sabi_trait]
pub trait FfiProgress {
    fn report(&self, done: u64, total: u64, message: RStr<'_>);
    #[sabi(last_prefix_field)]
    fn is_cancelled(&self) -> bool;
}

/// A configured evaluation task, implemented by the plugin.
#[sabi_trait]
pub trait FfiEvalTask: Send {
    #[sabi(last_prefix_field)]
    fn evaluate(
        &mut self,
        request: &FfiRequest,
        progress: FfiProgress_TO<'_, RRef<'_, ()>>,
    ) -> RResult<FfiOutput, FfiError>;
}

pub type FfiEvalTaskBox = FfiEvalTask_TO<'static, RBox<()>>;

/// The root module every plugin library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    pub info: extern "C" fn() -> RResult<FfiPluginInfo, FfiError>,
    #[sabi(last_prefix_field)]
    pub create_task: extern "C" fn(
        kind: RStr<'_>,
        params_json: RStr<'_>,
        device: FfiDevice,
        seed: u64,
    ) -> RResult<FfiEvalTaskBox, FfiError>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "arena_plugin";
    const NAME: &'static str = "arena plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(crate::ABI_VERSION);
}

// ---------------------------------------------------------------------------------------------
// Conversions between the plain types and their FFI forms.

impl From<DeviceKind> for FfiDeviceKind {
    fn from(k: DeviceKind) -> Self {
        match k {
            DeviceKind::Cpu => FfiDeviceKind::Cpu,
            DeviceKind::Cuda => FfiDeviceKind::Cuda,
            DeviceKind::Wgpu => FfiDeviceKind::Wgpu,
        }
    }
}

impl From<FfiDeviceKind> for DeviceKind {
    fn from(k: FfiDeviceKind) -> Self {
        match k {
            FfiDeviceKind::Cpu => DeviceKind::Cpu,
            FfiDeviceKind::Cuda => DeviceKind::Cuda,
            FfiDeviceKind::Wgpu => DeviceKind::Wgpu,
        }
    }
}

impl From<Device> for FfiDevice {
    fn from(d: Device) -> Self {
        FfiDevice { kind: d.kind().into(), ordinal: d.ordinal() }
    }
}

impl From<FfiDevice> for Device {
    fn from(d: FfiDevice) -> Self {
        match d.kind {
            FfiDeviceKind::Cpu => Device::Cpu,
            FfiDeviceKind::Cuda => Device::Cuda(d.ordinal),
            FfiDeviceKind::Wgpu => Device::Wgpu,
        }
    }
}

impl From<PluginError> for FfiError {
    fn from(e: PluginError) -> Self {
        let kind = match e.kind {
            ErrorKind::InvalidSubmission => FfiErrorKind::InvalidSubmission,
            ErrorKind::InvalidParameters => FfiErrorKind::InvalidParameters,
            ErrorKind::Internal => FfiErrorKind::Internal,
            ErrorKind::Cancelled => FfiErrorKind::Cancelled,
        };
        FfiError { kind, message: e.message.into() }
    }
}

impl From<FfiError> for PluginError {
    fn from(e: FfiError) -> Self {
        let kind = match e.kind {
            FfiErrorKind::InvalidSubmission => ErrorKind::InvalidSubmission,
            FfiErrorKind::InvalidParameters => ErrorKind::InvalidParameters,
            FfiErrorKind::Internal => ErrorKind::Internal,
            FfiErrorKind::Cancelled => ErrorKind::Cancelled,
        };
        PluginError { kind, message: e.message.into() }
    }
}

fn parse_json(what: &str, s: &str) -> Result<Value, PluginError> {
    if s.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(s).map_err(|e| PluginError::internal(format!("{what} is not JSON: {e}")))
}

fn to_json(v: &Value) -> RString {
    if v.is_null() { RString::new() } else { v.to_string().into() }
}

impl From<&PluginInfo> for FfiPluginInfo {
    fn from(i: &PluginInfo) -> Self {
        FfiPluginInfo {
            name: i.name.as_str().into(),
            version: i.version.as_str().into(),
            abi_version: i.abi_version.as_str().into(),
            tasks: i
                .tasks
                .iter()
                .map(|t| FfiTaskKind {
                    name: t.name.as_str().into(),
                    description: t.description.as_str().into(),
                    devices: t.devices.iter().map(|&d| d.into()).collect(),
                    params_schema_json: to_json(&t.params_schema),
                    #[cfg(feature = "__test-layout-mismatch")]
                    layout_mismatch: 0,
                })
                .collect(),
        }
    }
}

impl TryFrom<FfiPluginInfo> for PluginInfo {
    type Error = PluginError;
    fn try_from(i: FfiPluginInfo) -> Result<Self, PluginError> {
        let tasks = i
            .tasks
            .into_iter()
            .map(|t| {
                Ok(TaskKindInfo {
                    params_schema: parse_json(
                        &format!("parameter schema of task kind `{}`", t.name),
                        &t.params_schema_json,
                    )?,
                    name: t.name.into(),
                    description: t.description.into(),
                    devices: t.devices.into_iter().map(Into::into).collect(),
                })
            })
            .collect::<Result<_, PluginError>>()?;
        Ok(PluginInfo {
            name: i.name.into(),
            version: i.version.into(),
            abi_version: i.abi_version.into(),
            tasks,
        })
    }
}

fn path_string(p: &std::path::Path) -> RString {
    p.to_string_lossy().as_ref().into()
}

impl From<&EvalRequest> for FfiRequest {
    fn from(r: &EvalRequest) -> Self {
        FfiRequest {
            submission_id: r.submission.id.as_str().into(),
            submission_path: path_string(&r.submission.path),
            submission_metadata_json: to_json(&r.submission.metadata),
            samples: r
                .samples
                .iter()
                .map(|s| FfiSample {
                    data_json: to_json(&s.data),
                    files: s.files.iter().map(|p| path_string(p)).collect(),
                })
                .collect(),
            limits: FfiLimits {
                time_limit_ms: r.limits.time_limit_ms.into(),
                memory_limit_bytes: r.limits.memory_limit_bytes.into(),
            },
        }
    }
}

impl TryFrom<&FfiRequest> for EvalRequest {
    type Error = PluginError;
    fn try_from(r: &FfiRequest) -> Result<Self, PluginError> {
        let samples = r
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(Sample {
                    data: parse_json(&format!("sample {i}"), &s.data_json)?,
                    files: s.files.iter().map(|f| PathBuf::from(f.as_str())).collect(),
                })
            })
            .collect::<Result<_, PluginError>>()?;
        Ok(EvalRequest {
            submission: Submission {
                id: r.submission_id.to_string(),
                path: PathBuf::from(r.submission_path.as_str()),
                metadata: parse_json("submission metadata", &r.submission_metadata_json)?,
            },
            samples,
            limits: Limits {
                time_limit_ms: r.limits.time_limit_ms.into(),
                memory_limit_bytes: r.limits.memory_limit_bytes.into(),
            },
        })
    }
}

impl From<EvalOutput> for FfiOutput {
    fn from(o: EvalOutput) -> Self {
        FfiOutput {
            raw_score: o.raw_score,
            metrics: o.metrics.into_iter().map(|(k, v)| Tuple2(RString::from(k), v)).collect(),
            per_sample: o.per_sample.into(),
            details_json: to_json(&o.details),
        }
    }
}

impl TryFrom<FfiOutput> for EvalOutput {
    type Error = PluginError;
    fn try_from(o: FfiOutput) -> Result<Self, PluginError> {
        Ok(EvalOutput {
            raw_score: o.raw_score,
            metrics: o.metrics.into_iter().map(|Tuple2(k, v)| (k.into(), v)).collect(),
            per_sample: o.per_sample.into(),
            details: parse_json("output details", &o.details_json)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Plugin side: the glue `export_plugin!` instantiates for the author's `Plugin` type.

/// How a caught panic's message starts; the loader recognises a panic during init by it.
pub(crate) const PANIC_PREFIX: &str = "plugin panicked: ";

/// Runs `f`, turning a panic into an `Internal` error value. Nothing unwinds across the ABI.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, FfiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(e.into()),
        Err(payload) => {
            RErr(PluginError::internal(format!("{PANIC_PREFIX}{}", panic_message(&*payload))).into())
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// The library header `export_plugin!` places in the plugin's exported static.
pub const fn lib_header<P: Plugin>() -> LibHeader {
    // SAFETY: `erased_root_module::<P>` returns a `PrefixRef` made from a `PluginModuleRef`,
    // which is what `from_constructor::<PluginModuleRef>` requires.
    unsafe { LibHeader::from_constructor::<PluginModuleRef>(erased_root_module::<P>, CheckTypeLayout::Yes) }
}

extern "C" fn erased_root_module<P: Plugin>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<P>)
}

fn root_module<P: Plugin>() -> PluginModuleRef {
    PluginModule { info: info_glue::<P>, create_task: create_task_glue::<P> }.leak_into_prefix()
}

extern "C" fn info_glue<P: Plugin>() -> RResult<FfiPluginInfo, FfiError> {
    guard(|| {
        let mut info = P::info();
        info.abi_version = crate::ABI_VERSION.to_string();
        Ok(FfiPluginInfo::from(&info))
    })
}

extern "C" fn create_task_glue<P: Plugin>(
    kind: RStr<'_>,
    params_json: RStr<'_>,
    device: FfiDevice,
    seed: u64,
) -> RResult<FfiEvalTaskBox, FfiError> {
    guard(|| {
        let params = if params_json.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(params_json.as_str())
                .map_err(|e| PluginError::invalid_parameters(format!("parameters are not JSON: {e}")))?
        };
        let spec = TaskSpec { kind: kind.to_string(), params, device: device.into(), seed };
        let task = P::create_task(spec)?;
        Ok(FfiEvalTask_TO::from_value(TaskAdapter(task), TD_Opaque))
    })
}

/// Wraps the author's task as the FFI trait object.
struct TaskAdapter(Box<dyn EvalTask>);

impl FfiEvalTask for TaskAdapter {
    fn evaluate(
        &mut self,
        request: &FfiRequest,
        progress: FfiProgress_TO<'_, RRef<'_, ()>>,
    ) -> RResult<FfiOutput, FfiError> {
        guard(|| {
            let request = EvalRequest::try_from(request)?;
            let progress = ForeignProgress(progress);
            self.0.evaluate(&request, &progress).map(FfiOutput::from)
        })
    }
}

/// The host's progress callback, seen from the plugin.
struct ForeignProgress<'a, 'b>(FfiProgress_TO<'a, RRef<'b, ()>>);

impl Progress for ForeignProgress<'_, '_> {
    fn report(&self, done: u64, total: u64, message: &str) {
        self.0.report(done, total, message.into());
    }
    fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

// ---------------------------------------------------------------------------------------------
// Host side: the author's plain traits over a loaded library.

/// The plugin's progress callback target, seen from the host: wraps the host's `Progress`.
struct HostProgress<'a>(&'a dyn Progress);

impl FfiProgress for HostProgress<'_> {
    fn report(&self, done: u64, total: u64, message: RStr<'_>) {
        // A panic here would unwind into the plugin: contain it.
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.report(done, total, message.as_str())));
    }
    fn is_cancelled(&self) -> bool {
        catch_unwind(AssertUnwindSafe(|| self.0.is_cancelled())).unwrap_or(true)
    }
}

/// A task living in a loaded library, driven through the ABI.
pub(crate) struct ForeignTask(pub(crate) FfiEvalTaskBox);

impl EvalTask for ForeignTask {
    fn evaluate(
        &mut self,
        request: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let request = FfiRequest::from(request);
        let host = HostProgress(progress);
        let progress = FfiProgress_TO::from_ptr(RRef::new(&host), TD_Opaque);
        match self.0.evaluate(&request, progress) {
            ROk(out) => EvalOutput::try_from(out),
            RErr(e) => Err(e.into()),
        }
    }
}

pub(crate) fn call_info(module: PluginModuleRef) -> Result<PluginInfo, PluginError> {
    match module.info()() {
        ROk(info) => PluginInfo::try_from(info),
        RErr(e) => Err(e.into()),
    }
}

pub(crate) fn call_create_task(
    module: PluginModuleRef,
    spec: &TaskSpec,
) -> Result<Box<dyn EvalTask>, PluginError> {
    let params = spec.params.to_string();
    match module.create_task()(
        spec.kind.as_str().into(),
        params.as_str().into(),
        spec.device.into(),
        spec.seed,
    ) {
        ROk(task) => Ok(Box::new(ForeignTask(task))),
        RErr(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_symbol_is_abi_stables_root_module_loader() {
        // `export_plugin!` hard-codes this name; it must match the one the loader looks up.
        assert_eq!(abi_stable::library::ROOT_MODULE_LOADER_NAME, "_1as_0lib_1header_0root_bmodule_bloader");
    }

    #[test]
    fn request_round_trips_through_ffi_form() {
        let req = EvalRequest {
            submission: Submission {
                id: "uid-3@abc".into(),
                path: PathBuf::from("/tmp/sub mission/ü"),
                metadata: serde_json::json!({"hotkey": "5F…", "n": [1, 2.5, null]}),
            },
            samples: vec![
                Sample { data: serde_json::json!({"text": "hé"}), files: vec!["/a/b.png".into()] },
                Sample::default(),
            ],
            limits: Limits { time_limit_ms: Some(1500), memory_limit_bytes: None },
        };
        let ffi = FfiRequest::from(&req);
        assert_eq!(EvalRequest::try_from(&ffi).unwrap(), req);
    }

    #[test]
    fn output_and_info_round_trip_through_ffi_form() {
        let out = EvalOutput {
            raw_score: -0.125,
            metrics: [("loss".to_string(), 1.5), ("acc".to_string(), f64::MIN_POSITIVE)]
                .into_iter()
                .collect(),
            per_sample: vec![0.0, -1.0, 1e300],
            details: serde_json::json!({"why": ["x"]}),
        };
        assert_eq!(EvalOutput::try_from(FfiOutput::from(out.clone())).unwrap(), out);

        let info = PluginInfo {
            name: "p".into(),
            version: "1.2.3".into(),
            abi_version: "1.0.0".into(),
            tasks: vec![TaskKindInfo {
                name: "t".into(),
                description: "d".into(),
                devices: vec![DeviceKind::Cpu, DeviceKind::Wgpu],
                params_schema: serde_json::json!({"type": "object"}),
            }],
        };
        assert_eq!(PluginInfo::try_from(FfiPluginInfo::from(&info)).unwrap(), info);
        for d in [Device::Cpu, Device::Cuda(3), Device::Wgpu] {
            assert_eq!(Device::from(FfiDevice::from(d)), d);
        }
    }

    #[test]
    fn guard_turns_panics_into_internal_errors() {
        let r: RResult<(), FfiError> = guard(|| panic!("boom {}", 7));
        match r {
            RErr(e) => {
                assert_eq!(e.kind, FfiErrorKind::Internal);
                assert!(e.message.contains("boom 7"), "{}", e.message);
            }
            ROk(()) => panic!("expected an error"),
        }
    }
}
