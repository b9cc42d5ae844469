//! Evaluation data on the host side, shared by every plugin: where rows come from (a local
//! file or directory, or a Hugging Face dataset through the hub cache), how they are read (JSON
//! lines, a JSON array, plain text, Parquet), and how a seeded subset is drawn (Python's
//! generator, as the reference subnets draw theirs).
//!
//! A dataset is named by a path, or by `hf://datasets/OWNER/NAME[@REVISION][/PATH]`, where PATH
//! is a file or a folder of the repository. Hub files are looked up in the local hub cache
//! (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`, laid out as
//! huggingface_hub lays it out); a missing file is downloaded ([`crate::fetch`], from
//! `HF_ENDPOINT`) unless `HF_HUB_OFFLINE=1`. `nltk:PATH` names a file of NLTK's data
//! (`nltk.download` puts it there; looked up along NLTK's path: `$NLTK_DATA`, `~/nltk_data`,
//! `/usr/share/nltk_data`, …), read as plain text, one `{"text": line}` row per line (SN37's word
//! list is `nltk:corpora/words/en-basic`).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::fetch::Hub;
use crate::pyrandom::PyRandom;

/// File extensions read as data.
pub const DATA_EXTENSIONS: [&str; 4] = ["jsonl", "json", "txt", "parquet"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetSource {
    Local(PathBuf),
    Hub {
        repo: String,
        revision: String,
        path: String,
    },
    /// A file under one of NLTK's data directories.
    Nltk(String),
}

impl DatasetSource {
    pub fn parse(spec: &str) -> anyhow::Result<DatasetSource> {
        if let Some(path) = spec.strip_prefix("nltk:") {
            if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == ".." || c == ".") {
                bail!(
                    "`{spec}`: an NLTK file is nltk:PATH, relative, without `.` or `..` (nltk:corpora/words/en-basic)"
                );
            }
            return Ok(DatasetSource::Nltk(path.to_string()));
        }
        let Some(rest) = spec.strip_prefix("hf://") else {
            return Ok(DatasetSource::Local(PathBuf::from(spec)));
        };
        let rest = rest.strip_prefix("datasets/").with_context(|| {
            format!("`{spec}`: a hub dataset is hf://datasets/OWNER/NAME[@REVISION][/PATH]")
        })?;
        let mut parts = rest.splitn(3, '/');
        let (owner, name) = match (parts.next(), parts.next()) {
            (Some(o), Some(n)) if !o.is_empty() && !n.is_empty() => (o, n),
            _ => bail!("`{spec}`: a hub dataset is hf://datasets/OWNER/NAME[@REVISION][/PATH]"),
        };
        let (name, revision) = match name.split_once('@') {
            Some((n, r)) if !r.is_empty() => (n, r),
            Some(_) => bail!("`{spec}`: empty revision after `@`"),
            None => (name, "main"),
        };
        let path = parts.next().unwrap_or("").trim_end_matches('/').to_string();
        if path.split('/').any(|c| c == ".." || c == ".") || path.starts_with('/') {
            bail!("`{spec}`: the path inside the repository must not contain `.` or `..`");
        }
        Ok(DatasetSource::Hub { repo: format!("{owner}/{name}"), revision: revision.to_string(), path })
    }
}

/// The hub cache directory huggingface_hub uses.
pub fn hub_cache_dir() -> PathBuf {
    cache_dir_from(|k| std::env::var_os(k))
}

/// [`hub_cache_dir`] in the environment `get`: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub(crate) fn cache_dir_from(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    if let Some(d) = get("HF_HUB_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = get("HF_HOME") {
        return PathBuf::from(d).join("hub");
    }
    get("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cache/huggingface/hub")
}

/// Data files under `dir`, recursively, sorted by path.
fn data_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = crate::files::walk(dir, Default::default())?
        .into_iter()
        .map(|f| f.path)
        .filter(|p| p.extension().and_then(|x| x.to_str()).is_some_and(|x| DATA_EXTENSIONS.contains(&x)))
        .collect();
    out.sort();
    if out.is_empty() {
        bail!("{}: no data files ({})", dir.display(), DATA_EXTENSIONS.join(", "));
    }
    Ok(out)
}

fn files_at(p: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if p.is_dir() { data_files(p) } else { Ok(vec![p.to_path_buf()]) }
}

/// NLTK's data directories on Linux, in its search order (`nltk.data.path` without the
/// interpreter-prefix entries).
pub fn nltk_data_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("NLTK_DATA")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join("nltk_data"));
    }
    for d in [
        "/usr/share/nltk_data",
        "/usr/local/share/nltk_data",
        "/usr/lib/nltk_data",
        "/usr/local/lib/nltk_data",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// The files of a dataset, resolved through the hub cache (downloading one missing file when
/// online).
pub fn resolve(source: &DatasetSource, cache: &Path) -> anyhow::Result<Vec<PathBuf>> {
    match source {
        DatasetSource::Nltk(path) => {
            let dirs = nltk_data_dirs();
            match dirs.iter().map(|d| d.join(path)).find(|p| p.is_file()) {
                Some(p) => Ok(vec![p]),
                None => bail!(
                    "nltk:{path} is in none of NLTK's data directories ({}); fetch it with python3 -m nltk.downloader",
                    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        DatasetSource::Local(p) => {
            if !p.exists() {
                bail!("dataset {} does not exist", p.display());
            }
            files_at(p)
        }
        DatasetSource::Hub { repo, revision, path } => {
            if let Some(snapshot) = cached_snapshot(cache, "datasets", repo, revision) {
                let p = snapshot.join(path);
                if p.exists() {
                    return files_at(&p);
                }
            }
            let is_file = Path::new(path)
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| DATA_EXTENSIONS.contains(&x));
            let hub = Hub { cache: cache.to_path_buf(), ..Hub::from_env() };
            if hub.offline || !is_file {
                bail!(
                    "hf://datasets/{repo}@{revision}/{path} is not in the hub cache {}{}",
                    cache.display(),
                    if hub.offline {
                        " and HF_HUB_OFFLINE is set"
                    } else {
                        " (only single data files are downloaded)"
                    }
                );
            }
            let file = hub.fetch_dataset_file(repo, revision, path)?;
            Ok(vec![file])
        }
    }
}

/// The snapshot folder of `repo` at `revision` in the hub cache, if the cache has it:
/// `{kind}--OWNER--NAME/snapshots/COMMIT`, the commit being `revision` itself (40 hex digits) or
/// what `refs/REVISION` names. `kind`: `models` or `datasets`.
pub fn cached_snapshot(cache: &Path, kind: &str, repo: &str, revision: &str) -> Option<PathBuf> {
    let folder = cache.join(format!("{kind}--{}", repo.replace('/', "--")));
    let commit = if revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()) {
        revision.to_string()
    } else {
        std::fs::read_to_string(folder.join("refs").join(revision)).ok()?.trim().to_string()
    };
    let dir = folder.join("snapshots").join(commit);
    dir.is_dir().then_some(dir)
}

/// The rows of one data file: JSON lines, a JSON array, text (one row `{"text": line}` per
/// non-empty line) or Parquet (each row as a JSON object).
pub fn read_rows(path: &Path) -> anyhow::Result<Vec<Value>> {
    let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
    let text = || crate::files::read_text(path, crate::files::FileKind::Samples);
    match ext {
        "parquet" => read_parquet(path),
        "txt" => read_text_rows(path),
        _ => {
            let text = text()?;
            if text.trim_start().starts_with('[') {
                serde_json::from_str(&text).with_context(|| format!("{}: not a JSON array", path.display()))
            } else {
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .map(|(i, l)| {
                        serde_json::from_str(l)
                            .with_context(|| format!("{}:{}: not valid JSON", path.display(), i + 1))
                    })
                    .collect()
            }
        }
    }
}

/// Plain text: one `{"text": line}` row per non-blank line.
pub fn read_text_rows(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = crate::files::read_text(path, crate::files::FileKind::Samples)?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(|l| json!({ "text": l })).collect())
}

fn read_parquet(path: &Path) -> anyhow::Result<Vec<Value>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader =
        SerializedFileReader::new(f).with_context(|| format!("{}: not a Parquet file", path.display()))?;
    let rows = reader.get_row_iter(None).with_context(|| format!("{}: unreadable rows", path.display()))?;
    rows.map(|r| {
        r.map(|row| row.to_json_value()).with_context(|| format!("{}: unreadable row", path.display()))
    })
    .collect()
}

/// How a subset of rows is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    All,
    /// Python's `shuffle` of the row indices, then the first `n` (in shuffled order).
    Rows(usize),
    /// `pages` draws of `randint(0, n_pages - 1)`, each taking `rows_per_page` consecutive rows
    /// starting at `page * rows_per_page` (SN37's page choice over a local table; pages may repeat).
    Pages {
        pages: usize,
        rows_per_page: usize,
    },
}

/// Draws rows with Python's generator seeded by `seed` (an integer of any size, big-endian).
pub fn sample<T: Clone>(rows: Vec<T>, sampling: Sampling, seed_be: &[u8]) -> anyhow::Result<Vec<T>> {
    let mut rng = PyRandom::from_be_bytes(seed_be);
    match sampling {
        Sampling::All => Ok(rows),
        Sampling::Rows(n) => {
            let mut idx: Vec<usize> = (0..rows.len()).collect();
            rng.shuffle(&mut idx);
            Ok(idx.into_iter().take(n).map(|i| rows[i].clone()).collect())
        }
        Sampling::Pages { pages, rows_per_page } => {
            if rows_per_page == 0 {
                bail!("rows per page must be at least 1");
            }
            let n_pages = rows.len() / rows_per_page;
            if n_pages == 0 {
                bail!("{} rows make no page of {rows_per_page}", rows.len());
            }
            let mut out = Vec::with_capacity(pages * rows_per_page);
            for _ in 0..pages {
                let p = rng.randint(0, n_pages as i64 - 1) as usize;
                out.extend_from_slice(&rows[p * rows_per_page..(p + 1) * rows_per_page]);
            }
            Ok(out)
        }
    }
}

/// Resolves, reads (files in order) and samples a dataset.
pub fn load(spec: &str, sampling: Sampling, seed_be: &[u8]) -> anyhow::Result<Vec<Value>> {
    let source = DatasetSource::parse(spec)?;
    let mut rows = Vec::new();
    let plain = matches!(source, DatasetSource::Nltk(_));
    for f in resolve(&source, &hub_cache_dir())? {
        rows.extend(if plain { read_text_rows(&f)? } else { read_rows(&f)? });
    }
    sample(rows, sampling, seed_be)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_specs() {
        assert_eq!(
            DatasetSource::parse("hf://datasets/HuggingFaceFW/fineweb-edu@v1/sample/10BT").unwrap(),
            DatasetSource::Hub {
                repo: "HuggingFaceFW/fineweb-edu".into(),
                revision: "v1".into(),
                path: "sample/10BT".into()
            }
        );
        assert_eq!(
            DatasetSource::parse("hf://datasets/a/b").unwrap(),
            DatasetSource::Hub { repo: "a/b".into(), revision: "main".into(), path: String::new() }
        );
        assert!(DatasetSource::parse("hf://models/a/b").is_err());
        assert!(DatasetSource::parse("hf://datasets/a").is_err());
        assert!(DatasetSource::parse("hf://datasets/a/b/../../etc").is_err());
        assert_eq!(
            DatasetSource::parse("data/x.jsonl").unwrap(),
            DatasetSource::Local("data/x.jsonl".into())
        );
    }
}
