//! Reading the inputs of `arena eval`: parameters, samples, submissions, sizes.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use arena_plugin_api::{Sample, Submission};
use serde_json::Value;

/// The name of the optional metadata file inside a submission directory.
pub const SUBMISSION_METADATA_FILE: &str = "submission.json";

/// Parses `arg` as inline JSON when it looks like JSON, else reads it as a JSON file.
pub fn json_arg(arg: &str) -> anyhow::Result<Value> {
    let t = arg.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return serde_json::from_str(arg).with_context(|| format!("invalid JSON: {arg}"));
    }
    let text = crate::files::read_text(Path::new(arg), crate::files::FileKind::Json)?;
    serde_json::from_str(&text).with_context(|| format!("{arg} is not valid JSON"))
}

/// The samples of a dataset spec, as `arena eval --samples` and `arena round` read them: a media
/// registry (`.yaml`, one sample per media file), a JSON or JSON-lines file of sample records
/// (`{"data", "files"}` unwrapped, relative files resolved), or any other dataset of
/// [`crate::datasets`] (each row becomes a sample's `data`); then the seeded draw.
pub fn load_samples(
    spec: &str,
    sampling: crate::datasets::Sampling,
    seed_be: &[u8],
) -> anyhow::Result<Vec<Sample>> {
    let local = !spec.starts_with("hf://");
    let has = |exts: &[&str]| local && exts.iter().any(|x| spec.ends_with(x));
    let all = if has(&[".yaml", ".yml"]) {
        crate::registry::samples(Path::new(spec))?
    } else if has(&[".json", ".jsonl"]) {
        read_samples(Path::new(spec))?
    } else {
        crate::datasets::load(spec, crate::datasets::Sampling::All, &[])?
            .into_iter()
            .map(|data| Sample { data, files: Vec::new() })
            .collect()
    };
    crate::datasets::sample(all, sampling, seed_be)
}

/// Reads samples from a JSON array or a JSON-lines file. Each record is either
/// `{"data": …, "files": [...]}` or any other JSON value (taken as `data`). Relative file paths
/// are resolved against the samples file's directory.
pub fn read_samples(path: &Path) -> anyhow::Result<Vec<Sample>> {
    let base = path.parent().unwrap_or(Path::new("."));
    crate::datasets::read_rows(path)?
        .into_iter()
        .enumerate()
        .map(|(i, v)| sample_from(v, base).with_context(|| format!("{}: sample {i}", path.display())))
        .collect()
}

fn sample_from(v: Value, base: &Path) -> anyhow::Result<Sample> {
    let is_record = v
        .as_object()
        .is_some_and(|o| o.contains_key("data") && o.keys().all(|k| k == "data" || k == "files"));
    if !is_record {
        return Ok(Sample { data: v, files: Vec::new() });
    }
    let mut s: Sample = serde_json::from_value(v)?;
    for f in &mut s.files {
        if f.is_relative() {
            *f = base.join(&*f);
        }
    }
    Ok(s)
}

/// A submission from a local path. Its id is the file or directory name unless given; its
/// metadata is `metadata` if given, else the directory's `submission.json` if present.
pub fn submission(path: &Path, id: Option<&str>, metadata: Option<&Value>) -> anyhow::Result<Submission> {
    if !path.exists() {
        bail!("submission {} does not exist", path.display());
    }
    let abs: PathBuf = std::fs::canonicalize(path)?;
    let id = id.map(str::to_string).unwrap_or_else(|| {
        abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| abs.display().to_string())
    });
    let metadata = match metadata {
        Some(m) => m.clone(),
        None => {
            let f = abs.join(SUBMISSION_METADATA_FILE);
            if f.is_file() {
                let text = crate::files::read_text(&f, crate::files::FileKind::Metadata)?;
                serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", f.display()))?
            } else {
                Value::Null
            }
        }
    };
    Ok(Submission { id, path: abs, metadata })
}

pub use arena_core::units::parse_size;

/// taoverse's directory hash: `b64(sha256(concat(b64(sha256(file)))))` over the files met by
/// `os.walk` with sorted directory and file names (a directory's files before its
/// subdirectories). Symlinks to files are hashed by their target's content.
pub fn directory_hash(dir: &Path) -> anyhow::Result<String> {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let b64 = base64::engine::general_purpose::STANDARD;
    // os.walk lists a symlink to a directory among the directories but does not enter it.
    let options = crate::files::WalkOptions { follow_dir_links: false, ..Default::default() };
    let mut out = Sha256::new();
    for file in crate::files::walk(dir, options)? {
        if file.path.file_name().and_then(|n| n.to_str()).is_none() {
            anyhow::bail!("{}: a file name that is not UTF-8", file.path.display());
        }
        let mut h = Sha256::new();
        let mut f =
            std::fs::File::open(&file.path).with_context(|| format!("reading {}", file.path.display()))?;
        std::io::copy(&mut f, &mut h).with_context(|| format!("reading {}", file.path.display()))?;
        out.update(b64.encode(h.finalize()).as_bytes());
    }
    Ok(b64.encode(out.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("2 MB").unwrap(), 2_000_000);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn samples_json_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        std::fs::write(&a, r#"[{"data": {"x": 1}, "files": ["img.png"]}, {"x": 2}]"#).unwrap();
        let s = read_samples(&a).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].files, vec![dir.path().join("img.png")]);
        assert_eq!(s[1].data, serde_json::json!({"x": 2}));
        let b = dir.path().join("b.jsonl");
        std::fs::write(&b, "{\"x\": 1}\n\n{\"x\": 2}\nnot json\n").unwrap();
        let err = format!("{:#}", read_samples(&b).unwrap_err());
        assert!(err.contains("b.jsonl:4"), "{err}");
    }
}
