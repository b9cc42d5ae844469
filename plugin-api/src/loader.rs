//! Loading plugin libraries (host side).
//!
//! Several plugins load side by side: each library's header is read with
//! `lib_header_from_path` and initialised on its own (abi_stable's `load_from_*` helpers would
//! cache one root module per type). Libraries are never unloaded: thread-local destructors and
//! leaked statics make `dlclose` unsound for Rust libraries.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use abi_stable::library::{LibraryError, RootModuleError, lib_header_from_path};

use crate::ffi::{self, PANIC_PREFIX, PluginModuleRef, panic_message};
use crate::types::{EvalTask, PluginError, PluginInfo, TaskSpec};

/// Why a library could not be loaded as an arena plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The file does not exist or cannot be read.
    NotFound { path: PathBuf, reason: String },
    /// The file is not a loadable shared library.
    NotALibrary { path: PathBuf, reason: String },
    /// A shared library, but not an arena plugin (no exported root module).
    NoRootModule { path: PathBuf },
    /// Built for another ABI version (or another abi_stable version).
    IncompatibleAbi { path: PathBuf, expected: String, found: String },
    /// Same ABI version, but the types' layouts differ (built from a modified plugin-api).
    LayoutMismatch { path: PathBuf, details: String },
    /// The library panicked while initialising or describing itself.
    InitPanicked { path: PathBuf, message: String },
    /// The library returned an error while initialising or describing itself.
    InitFailed { path: PathBuf, reason: String },
}

impl LoadError {
    pub fn path(&self) -> &Path {
        match self {
            LoadError::NotFound { path, .. }
            | LoadError::NotALibrary { path, .. }
            | LoadError::NoRootModule { path }
            | LoadError::IncompatibleAbi { path, .. }
            | LoadError::LayoutMismatch { path, .. }
            | LoadError::InitPanicked { path, .. }
            | LoadError::InitFailed { path, .. } => path,
        }
    }

    /// A short machine-readable name of the failure.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::NotFound { .. } => "not_found",
            LoadError::NotALibrary { .. } => "not_a_library",
            LoadError::NoRootModule { .. } => "no_root_module",
            LoadError::IncompatibleAbi { .. } => "incompatible_abi",
            LoadError::LayoutMismatch { .. } => "layout_mismatch",
            LoadError::InitPanicked { .. } => "init_panicked",
            LoadError::InitFailed { .. } => "init_failed",
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path().display();
        match self {
            LoadError::NotFound { reason, .. } => write!(f, "{p}: cannot read plugin: {reason}"),
            LoadError::NotALibrary { reason, .. } => {
                write!(f, "{p}: not a loadable shared library: {reason}")
            }
            LoadError::NoRootModule { .. } => write!(
                f,
                "{p}: a shared library, but not an arena plugin (no root module exported; \
                 did the crate call `arena_plugin_api::export_plugin!`?)"
            ),
            LoadError::IncompatibleAbi { expected, found, .. } => write!(
                f,
                "{p}: incompatible plugin ABI: this arena speaks {expected}, the plugin was \
                 built for {found}; rebuild the plugin against a compatible arena-plugin-api"
            ),
            LoadError::LayoutMismatch { details, .. } => write!(
                f,
                "{p}: plugin ABI layout mismatch (same version, different types; was it built \
                 from a modified arena-plugin-api?): {details}"
            ),
            LoadError::InitPanicked { message, .. } => {
                write!(f, "{p}: plugin panicked during initialisation: {message}")
            }
            LoadError::InitFailed { reason, .. } => {
                write!(f, "{p}: plugin failed to initialise: {reason}")
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// A loaded plugin library.
#[derive(Clone)]
pub struct ForeignPlugin {
    path: PathBuf,
    module: PluginModuleRef,
    info: PluginInfo,
}

impl fmt::Debug for ForeignPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignPlugin").field("path", &self.path).field("info", &self.info).finish()
    }
}

impl ForeignPlugin {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Creates a task through the ABI. The returned task implements the same [`EvalTask`]
    /// trait a plugin author implements, so callers cannot tell the two apart.
    pub fn create_task(&self, spec: &TaskSpec) -> Result<Box<dyn EvalTask>, PluginError> {
        ffi::call_create_task(self.module, spec)
    }
}

/// Loads the plugin library at `path`, checks its ABI version and type layouts, and reads its
/// description. Loading the same path twice returns the same library.
pub fn load_plugin(path: &Path) -> Result<ForeignPlugin, LoadError> {
    let path = std::fs::canonicalize(path)
        .map_err(|e| LoadError::NotFound { path: path.to_path_buf(), reason: e.to_string() })?;
    let header = lib_header_from_path(&path).map_err(|e| classify(&path, e))?;
    // abi_stable runs the root-module constructor under catch_unwind and reports `Unwound`.
    let module = header.init_root_module::<PluginModuleRef>().map_err(|e| classify(&path, e))?;
    // `info` is glue that already catches panics; the outer guard covers a broken library.
    let info = match catch_unwind(AssertUnwindSafe(|| ffi::call_info(module))) {
        Ok(Ok(info)) => info,
        Ok(Err(e)) if e.message.starts_with(PANIC_PREFIX) => {
            return Err(LoadError::InitPanicked {
                path,
                message: e.message[PANIC_PREFIX.len()..].to_string(),
            });
        }
        Ok(Err(e)) => return Err(LoadError::InitFailed { path, reason: e.to_string() }),
        Err(p) => return Err(LoadError::InitPanicked { path, message: panic_message(&*p) }),
    };
    Ok(ForeignPlugin { path, module, info })
}

fn classify(path: &Path, err: LibraryError) -> LoadError {
    let path = path.to_path_buf();
    match err {
        LibraryError::OpenError { err, .. } => LoadError::NotALibrary { path, reason: err.to_string() },
        LibraryError::GetSymbolError { .. } => LoadError::NoRootModule { path },
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => {
            LoadError::IncompatibleAbi {
                path,
                expected: format!("ABI {expected_version}"),
                found: format!("ABI {actual_version}"),
            }
        }
        LibraryError::InvalidAbiHeader(h) => LoadError::IncompatibleAbi {
            path,
            expected: format!(
                "abi_stable ABI {}.{}",
                abi_stable::library::AbiHeader::VALUE.abi_major,
                abi_stable::library::AbiHeader::VALUE.abi_minor
            ),
            found: format!("abi_stable ABI {}.{}", h.abi_major, h.abi_minor),
        },
        LibraryError::ParseVersionError(e) => {
            LoadError::IncompatibleAbi { path, expected: crate::ABI_VERSION.into(), found: e.to_string() }
        }
        LibraryError::RootModule { err: RootModuleError::Unwound, .. } => {
            LoadError::InitPanicked { path, message: "root module constructor unwound".into() }
        }
        LibraryError::RootModule { err: RootModuleError::Returned(e), .. } => {
            LoadError::InitFailed { path, reason: e.to_string() }
        }
        LibraryError::AbiInstability(e) => {
            LoadError::LayoutMismatch { path, details: first_lines(&e.to_string(), 12) }
        }
        LibraryError::InvalidCAbi { expected, found } => LoadError::LayoutMismatch {
            path,
            details: format!("C ABI check: expected {expected}, found {found}"),
        },
        LibraryError::Many(errs) => match errs.into_iter().next() {
            Some(first) => classify(&path, first),
            None => LoadError::InitFailed { path, reason: "unknown loader error".into() },
        },
    }
}

fn first_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.trim().lines().collect();
    let mut out = lines.iter().take(n).copied().collect::<Vec<_>>().join("\n");
    if lines.len() > n {
        out.push_str(&format!("\n… ({} more lines)", lines.len() - n));
    }
    out
}
