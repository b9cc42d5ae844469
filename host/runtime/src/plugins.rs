//! Finding plugin libraries, pinning them by hash, and checking what they provide.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use arena_plugin_api::{Device, ForeignPlugin, LoadError, PluginInfo, TaskKindInfo, load_plugin};
use sha2::{Digest, Sha256};

/// The file name suffix of a shared library on this platform.
pub const LIB_SUFFIX: &str = std::env::consts::DLL_SUFFIX;

/// Environment variable with extra plugin directories, separated like `PATH`.
pub const PLUGIN_PATH_ENV: &str = "ARENA_PLUGIN_PATH";

/// The directories searched for plugins, in order: those given explicitly, then
/// `$ARENA_PLUGIN_PATH`, then the directory of the `arena` executable and its `plugins/`
/// subdirectory (where `cargo build` and an install put first-party plugins).
pub fn plugin_dirs(explicit: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = explicit.to_vec();
    if let Some(p) = std::env::var_os(PLUGIN_PATH_ENV) {
        dirs.extend(std::env::split_paths(&p).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        dirs.push(exe_dir.join("plugins"));
        dirs.push(exe_dir);
    }
    let mut seen = BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// Shared libraries directly inside `dirs` (not recursive), in a stable order, each once.
pub fn candidate_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.to_string_lossy().ends_with(LIB_SUFFIX))
            .collect();
        files.sort();
        for f in files {
            let key = std::fs::canonicalize(&f).unwrap_or_else(|_| f.clone());
            if seen.insert(key) {
                out.push(f);
            }
        }
    }
    out
}

/// A plugin loaded in this process, with the hash of its file.
#[derive(Debug, Clone)]
pub struct LoadedPlugin {
    pub plugin: ForeignPlugin,
    pub sha256: String,
}

impl LoadedPlugin {
    pub fn info(&self) -> &PluginInfo {
        self.plugin.info()
    }
}

/// Loads a plugin after checking its hash against `pin` (when given).
pub fn load_pinned(path: &Path, pin: Option<&str>) -> Result<LoadedPlugin, PluginLoadError> {
    let sha256 = sha256_file(path).map_err(|e| {
        PluginLoadError::Load(LoadError::NotFound { path: path.to_path_buf(), reason: e.to_string() })
    })?;
    if let Some(expected) = pin
        && !expected.eq_ignore_ascii_case(&sha256)
    {
        return Err(PluginLoadError::PinMismatch {
            path: path.to_path_buf(),
            expected: expected.to_ascii_lowercase(),
            actual: sha256,
        });
    }
    let plugin = load_plugin(path).map_err(PluginLoadError::Load)?;
    Ok(LoadedPlugin { plugin, sha256 })
}

/// What a plugin library declares, learnt in a worker process (a broken or hostile library
/// takes the worker down, not the host), or from the cache of earlier probes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbedPlugin {
    pub path: PathBuf,
    pub sha256: String,
    pub info: PluginInfo,
}

impl ProbedPlugin {
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }
}

/// Where probes are cached: `$ARENA_CACHE_DIR`, else `$XDG_CACHE_HOME/arena`, else
/// `~/.cache/arena`; one file per library hash (and ABI version) under `plugins/`.
fn probe_cache() -> Option<PathBuf> {
    let root = std::env::var_os("ARENA_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("arena")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/arena")))?;
    Some(root.join("plugins"))
}

/// What the library at `path` declares, without loading it in this process: probed by an
/// `arena worker` (with the job failure classification: a crash, a hang, a refusal), then
/// remembered by the file's sha256. Outside the `arena` binary (a test harness embedding the
/// runtime) with no `$ARENA_WORKER_EXE`, the library is loaded in-process instead.
pub fn probe(path: &Path) -> Result<ProbedPlugin, PluginLoadError> {
    let sha256 = sha256_file(path).map_err(|e| {
        PluginLoadError::Load(LoadError::NotFound { path: path.to_path_buf(), reason: e.to_string() })
    })?;
    // Keyed by this arena's ABI too: another arena may have accepted a library this one refuses.
    let cached = probe_cache().map(|d| d.join(format!("{sha256}-abi{}.json", arena_plugin_api::ABI_VERSION)));
    if let Some(info) = cached
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| serde_json::from_str::<PluginInfo>(&t).ok())
    {
        return Ok(ProbedPlugin { path: path.to_path_buf(), sha256, info });
    }
    let info = match crate::isolate::Supervisor::for_probes() {
        Some(sup) => sup.probe(path, &sha256)?,
        None => load_pinned(path, Some(&sha256))?.info().clone(),
    };
    if let Some(f) = cached
        && let Some(dir) = f.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        // Atomic: a temporary file renamed into place; a failed write leaves no cache entry.
        let tmp = dir.join(format!(".{sha256}.{}.tmp", std::process::id()));
        if serde_json::to_vec(&info).ok().is_some_and(|b| std::fs::write(&tmp, b).is_ok()) {
            let _ = std::fs::rename(&tmp, &f);
        }
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(ProbedPlugin { path: path.to_path_buf(), sha256, info })
}

/// A plugin that could not be used.
#[derive(Debug, Clone)]
pub enum PluginLoadError {
    Load(LoadError),
    PinMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The worker that probed the library refused it (`code`: the loader's, as
    /// [`LoadError::code`]) or failed (`probe_crashed`, `probe_timeout`, …).
    Probe {
        path: PathBuf,
        code: String,
        message: String,
    },
}

impl std::fmt::Display for PluginLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginLoadError::Load(e) => e.fmt(f),
            PluginLoadError::PinMismatch { path, expected, actual } => write!(
                f,
                "{}: sha256 is {actual}, but {expected} is pinned; refusing to run it",
                path.display()
            ),
            PluginLoadError::Probe { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for PluginLoadError {}

/// Every candidate library in `dirs`, probed (or the reason it could not be).
pub fn discover(dirs: &[PathBuf]) -> Vec<Result<ProbedPlugin, PluginLoadError>> {
    candidate_files(dirs).iter().map(|p| probe(p)).collect()
}

/// Resolves `spec` to a library file: an existing path as given, else a plugin name looked up in
/// `dirs`, first by file name (`lib<name>.so`, `libarena_<name>.so`, with `-` as `_`), then by
/// the name each library declares.
pub fn resolve(spec: &str, dirs: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    if spec.contains(std::path::MAIN_SEPARATOR) || spec.ends_with(LIB_SUFFIX) {
        anyhow::bail!("plugin file {spec} does not exist");
    }
    let stem = spec.replace('-', "_");
    let prefix = std::env::consts::DLL_PREFIX;
    let names = [format!("{prefix}{stem}{LIB_SUFFIX}"), format!("{prefix}arena_{stem}{LIB_SUFFIX}")];
    for dir in dirs {
        for n in &names {
            let p = dir.join(n);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    for candidate in candidate_files(dirs) {
        if let Ok(p) = probe(&candidate)
            && p.info().name == spec
        {
            return Ok(candidate);
        }
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    anyhow::bail!(
        "no plugin named `{spec}` in {} (add a directory with --plugin-dir or ${PLUGIN_PATH_ENV})",
        if searched.is_empty() { "no directories".to_string() } else { searched.join(", ") }
    )
}

/// The task kind `kind` of `info`, if it exists and supports `device`; else a message for the
/// user that lists what is available.
pub fn check_task<'a>(info: &'a PluginInfo, kind: &str, device: Device) -> Result<&'a TaskKindInfo, String> {
    let Some(task) = info.task(kind) else {
        let kinds: Vec<&str> = info.tasks.iter().map(|t| t.name.as_str()).collect();
        return Err(format!(
            "plugin `{}` has no task kind `{kind}` (it provides: {})",
            info.name,
            kinds.join(", ")
        ));
    };
    if !task.devices.contains(&device.kind()) {
        let devs: Vec<&str> = task.devices.iter().map(|d| d.as_str()).collect();
        return Err(format!(
            "task kind `{kind}` of plugin `{}` runs on {}, not on {device}",
            info.name,
            devs.join(", ")
        ));
    }
    Ok(task)
}

/// Lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
