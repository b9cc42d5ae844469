//! What a submitted model is, read from its files without loading its weights: config.json and
//! the safetensors headers (memory-mapped; the header is bounded and validated, tensor data is
//! never read). Then the competition's constraints are checked against it, before any plugin
//! runs. Models are data: pickle weights are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde::Serialize;

use arena_core::config::{Constraints, Dtype as WantDtype};

/// Largest config.json / index file read (they are small; a huge one is hostile).
const MAX_JSON_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    #[error("config.json: {0}")]
    Config(String),
    #[error("no weights: the model has no .safetensors file")]
    NoWeights,
    #[error("{0}: pickle weights are not accepted (models are data: safetensors only)")]
    Pickle(String),
    #[error("{file}: {reason}")]
    Safetensors { file: String, reason: String },
    #[error("model.safetensors.index.json: {0}")]
    Index(String),
    #[error("tensor `{name}` is in both {first} and {second}")]
    DuplicateTensor { name: String, first: String, second: String },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Walk(String),
}

/// A model directory as its files describe it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub dir: PathBuf,
    /// config.json `architectures`.
    pub architectures: Vec<String>,
    pub model_type: Option<String>,
    /// The longest sequence the config allows (`max_position_embeddings`, `n_positions`, ...).
    pub max_positions: Option<u64>,
    /// Every file under the directory (symlinks followed) and its size: the repository's size.
    pub total_bytes: u64,
    pub weight_files: Vec<String>,
    pub tensors: usize,
    /// Σ of the tensors' element counts.
    pub parameters: u64,
    /// Parameters per stored dtype (`BF16`, `F32`, ...).
    pub dtypes: BTreeMap<String, u64>,
}

fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    let len = crate::files::require_regular(path).map_err(|e| format!("{e:#}"))?;
    if len > MAX_JSON_BYTES {
        return Err(format!("{len} bytes; more than the {MAX_JSON_BYTES} allowed"));
    }
    crate::files::read(path, crate::files::FileKind::Metadata).map_err(|e| format!("{e:#}"))
}

/// The size of every regular file under `dir` (symlinks inside the tree followed), `.git` left out.
fn total_size(dir: &Path) -> Result<u64, ModelError> {
    let options = crate::files::WalkOptions { skip: &[".git"], strict: false, ..Default::default() };
    let files = crate::files::walk(dir, options).map_err(|e| ModelError::Walk(format!("{e:#}")))?;
    Ok(files.iter().fold(0u64, |t, f| t.saturating_add(f.len)))
}

/// The constraints a submission breaks, each as a sentence: the chat template its metadata names
/// (its commitment's), the size of its files, and for language-model constraints its
/// config.json and safetensors headers (no weights are read).
pub fn submission_violations(path: &Path, metadata: &serde_json::Value, c: &Constraints) -> Vec<String> {
    let mut out = Vec::new();
    if !c.chat_templates.is_empty() {
        match metadata.get("chat_template").and_then(|t| t.as_str()) {
            Some(t) if c.chat_templates.iter().any(|a| a == t) => {}
            Some(t) => out.push(format!(
                "chat template `{t}` is not allowed (allowed: {})",
                c.chat_templates.join(", ")
            )),
            None => out.push(format!(
                "the submission names no chat template (allowed: {})",
                c.chat_templates.join(", ")
            )),
        }
    }
    if c.checks_model() {
        match inspect(path) {
            Err(e) => out.push(e.to_string()),
            Ok(summary) => out.extend(violations(&summary, c)),
        }
    } else {
        match size_violations(path, c) {
            Err(e) => out.push(e.to_string()),
            Ok(v) => out.extend(v),
        }
    }
    out
}

/// The size constraints a submission of any kind breaks (its files' total size, `.git` left
/// out, as `inspect` counts it), each as a sentence.
pub fn size_violations(dir: &Path, c: &Constraints) -> Result<Vec<String>, ModelError> {
    if c.min_bytes.is_none() && c.max_bytes.is_none() {
        return Ok(Vec::new());
    }
    let total = if dir.is_dir() {
        total_size(dir)?
    } else {
        std::fs::metadata(dir).map_err(|e| ModelError::Io(dir.to_path_buf(), e))?.len()
    };
    Ok(bytes_violations(total, c))
}

fn bytes_violations(total: u64, c: &Constraints) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(max) = c.max_bytes
        && total > max.0
    {
        out.push(format!("{total} bytes of files, more than the maximum {}", max.0));
    }
    if let Some(min) = c.min_bytes
        && total < min.0
    {
        out.push(format!("{total} bytes of files, fewer than the minimum {}", min.0));
    }
    out
}

/// One safetensors file's tensors: name → (dtype, shape).
fn read_header(path: &Path) -> Result<Vec<(String, Dtype, Vec<usize>)>, String> {
    crate::files::require_regular(path).map_err(|e| format!("{e:#}"))?;
    let file = File::open(path).map_err(|e| e.to_string())?;
    if file.metadata().map_err(|e| e.to_string())?.len() < 8 {
        return Err("shorter than the 8-byte header length".into());
    }
    // SAFETY: the map is read-only and only the header is read; the submission directory is
    // the validator's own copy, not modified while it is inspected.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    let (_, metadata) = SafeTensors::read_metadata(&map).map_err(|e| describe(&e))?;
    let mut out: Vec<(String, Dtype, Vec<usize>)> =
        metadata.tensors().into_iter().map(|(name, info)| (name, info.dtype, info.shape.clone())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn describe(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooLarge => "the header length is larger than 100 MB".into(),
        E::InvalidHeaderLength => "the header length runs past the end of the file".into(),
        E::MetadataIncompleteBuffer => {
            "the tensor data does not match the file's size (truncated, or offsets out of range)".into()
        }
        E::InvalidOffset(name) => format!("tensor `{name}` has offsets that overlap or leave a gap"),
        E::TensorInvalidInfo => "a tensor's byte range does not match its shape and dtype".into(),
        E::ValidationOverflow => "a tensor's shape overflows".into(),
        other => format!("invalid safetensors header: {other}"),
    }
}

/// Reads config.json and every safetensors header (sharded through
/// `model.safetensors.index.json`, or every `*.safetensors` file of the directory).
pub fn inspect(dir: &Path) -> Result<ModelSummary, ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::NotADirectory(dir.to_path_buf()));
    }
    let config_bytes = read_small(&dir.join("config.json")).map_err(ModelError::Config)?;
    let config: serde_json::Value =
        serde_json::from_slice(&config_bytes).map_err(|e| ModelError::Config(format!("not JSON: {e}")))?;
    let config = config.as_object().ok_or_else(|| ModelError::Config("not a JSON object".into()))?;
    let architectures = match config.get("architectures") {
        None => Vec::new(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ModelError::Config("`architectures` is not a list of strings".into()))?,
        Some(_) => return Err(ModelError::Config("`architectures` is not a list".into())),
    };
    let max_positions = ["max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"]
        .iter()
        .find_map(|k| config.get(*k).and_then(serde_json::Value::as_u64));

    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| ModelError::Io(dir.to_path_buf(), e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let index_path = dir.join("model.safetensors.index.json");
    let (weight_files, index): (Vec<String>, Option<BTreeMap<String, String>>) = if index_path.is_file() {
        let bytes = read_small(&index_path).map_err(ModelError::Index)?;
        let doc: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ModelError::Index(format!("not JSON: {e}")))?;
        let map = doc
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::Index("no `weight_map` object".into()))?;
        let mut index = BTreeMap::new();
        for (tensor, file) in map {
            let file =
                file.as_str().ok_or_else(|| ModelError::Index(format!("`{tensor}` maps to a non-string")))?;
            if file.contains('/')
                || file.contains('\\')
                || file.starts_with('.')
                || !file.ends_with(".safetensors")
            {
                return Err(ModelError::Index(format!(
                    "`{file}` is not a safetensors file name in the model directory"
                )));
            }
            if !names.iter().any(|n| n == file) {
                return Err(ModelError::Index(format!("shard `{file}` (for `{tensor}`) is missing")));
            }
            index.insert(tensor.clone(), file.to_string());
        }
        let files: BTreeSet<String> = index.values().cloned().collect();
        (files.into_iter().collect(), Some(index))
    } else {
        (names.iter().filter(|n| n.ends_with(".safetensors")).cloned().collect(), None)
    };
    if weight_files.is_empty() {
        if let Some(pickle) =
            names.iter().find(|n| [".bin", ".pt", ".pth", ".pkl", ".ckpt"].iter().any(|ext| n.ends_with(ext)))
        {
            return Err(ModelError::Pickle(pickle.clone()));
        }
        return Err(ModelError::NoWeights);
    }

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut parameters = 0u64;
    let mut dtypes: BTreeMap<String, u64> = BTreeMap::new();
    for file in &weight_files {
        let tensors = read_header(&dir.join(file))
            .map_err(|reason| ModelError::Safetensors { file: file.clone(), reason })?;
        for (name, dtype, shape) in tensors {
            if let Some(first) = seen.insert(name.clone(), file.clone()) {
                return Err(ModelError::DuplicateTensor { name, first, second: file.clone() });
            }
            if let Some(index) = &index
                && index.get(&name) != Some(file)
            {
                return Err(ModelError::Index(format!("tensor `{name}` of `{file}` is not mapped to it")));
            }
            let count =
                shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64)).ok_or_else(|| {
                    ModelError::Safetensors {
                        file: file.clone(),
                        reason: format!("tensor `{name}`'s shape overflows"),
                    }
                })?;
            parameters = parameters.saturating_add(count);
            *dtypes.entry(format!("{dtype:?}")).or_insert(0) += count;
        }
    }
    if let Some(index) = &index
        && let Some(missing) = index.keys().find(|t| !seen.contains_key(*t))
    {
        return Err(ModelError::Index(format!(
            "tensor `{missing}` is mapped to `{}` but not in it",
            index[missing]
        )));
    }
    Ok(ModelSummary {
        dir: dir.to_path_buf(),
        architectures,
        model_type: config.get("model_type").and_then(|v| v.as_str()).map(str::to_string),
        max_positions,
        total_bytes: total_size(dir)?,
        weight_files,
        tensors: seen.len(),
        parameters,
        dtypes,
    })
}

/// The constraints a model breaks, each as a sentence; empty when it may be evaluated.
pub fn violations(model: &ModelSummary, c: &Constraints) -> Vec<String> {
    let mut out = Vec::new();
    if !c.architectures.is_empty() {
        match model.architectures.as_slice() {
            [one] if c.architectures.contains(one) => {}
            [one] => out.push(format!(
                "architecture `{one}` is not allowed (allowed: {})",
                c.architectures.join(", ")
            )),
            [] => out.push("config.json names no architecture".into()),
            many => out.push(format!("config.json names several architectures ({})", many.join(", "))),
        }
    }
    if let Some(min) = c.min_parameters
        && model.parameters < min
    {
        out.push(format!("{} parameters, fewer than the minimum {min}", model.parameters));
    }
    if let Some(max) = c.max_parameters
        && model.parameters > max
    {
        out.push(format!("{} parameters, more than the maximum {max}", model.parameters));
    }
    out.extend(bytes_violations(model.total_bytes, c));
    if let Some(len) = c.sequence_length {
        match model.max_positions {
            Some(p) if p >= u64::from(len) => {}
            Some(p) => out.push(format!("config.json allows {p} positions; the competition evaluates {len}")),
            None => out.push(format!(
                "config.json gives no maximum sequence length; the competition evaluates {len}"
            )),
        }
    }
    if let Some(want) = c.dtype {
        let name = match want {
            WantDtype::Float32 => "F32",
            WantDtype::Float16 => "F16",
            WantDtype::Bfloat16 => "BF16",
        };
        let other: Vec<&String> = model.dtypes.keys().filter(|d| *d != name && is_float_name(d)).collect();
        if !other.is_empty() {
            out.push(format!(
                "weights are stored as {}; the competition requires {name}",
                other.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    out
}

fn is_float_name(d: &str) -> bool {
    matches!(d, "F16" | "BF16" | "F32" | "F64" | "F8_E4M3" | "F8_E5M2")
}
