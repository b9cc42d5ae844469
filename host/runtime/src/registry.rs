//! Media datasets described by a registry file in gasbench's layout (`dataset/configs/*.yaml`):
//! a list of datasets, each with a name, a modality, a media type (real, synthetic,
//! semisynthetic) and a path, here a local directory of media files (relative to the registry
//! file). Every media file becomes one sample, `{"dataset", "modality", "media_type"}` plus the
//! file, in dataset order and then path order; for video datasets a folder of frame images is
//! one sample too (gasbench's pre-extracted frames). Detector plugins draw their per-dataset
//! subsets from these.
//!
//! ```yaml
//! datasets:
//!   - name: real-textures
//!     modality: image
//!     media_type: real
//!     path: real/textures
//! ```
//! The legacy form, datasets grouped under `image:` / `video:` / `audio:`, is read too. gasbench's
//! download fields (source, source_format, media_per_archive, …) are accepted and ignored;
//! `include_paths` / `exclude_paths` filter files by glob on their path inside the dataset.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use arena_plugin_api::Sample;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use serde_json::json;

/// Media file extensions per modality.
pub fn extensions(modality: &str) -> &'static [&'static str] {
    match modality {
        "image" => &["png", "jpg", "jpeg", "webp", "bmp", "gif"],
        "video" => &["mp4", "webm", "avi", "mov", "mkv", "y4m"],
        "audio" => &["wav", "flac", "mp3", "ogg"],
        _ => &[],
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DatasetEntry {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub modality: Option<String>,
    pub media_type: String,
    #[serde(default)]
    pub include_paths: Vec<String>,
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    // gasbench's download and provenance fields: accepted, not used here.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub source_format: Option<String>,
    #[serde(default)]
    pub media_per_archive: Option<i64>,
    #[serde(default)]
    pub archives_per_dataset: Option<i64>,
    #[serde(default)]
    pub data_columns: Option<serde_json::Value>,
    #[serde(default)]
    pub filter_column: Option<String>,
    #[serde(default)]
    pub filter_value: Option<serde_json::Value>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub generator_family: Option<String>,
    #[serde(default)]
    pub generator_variant: Option<String>,
    #[serde(default)]
    pub content_category: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Registry {
    #[serde(default)]
    datasets: Vec<DatasetEntry>,
    #[serde(default)]
    image: Vec<DatasetEntry>,
    #[serde(default)]
    video: Vec<DatasetEntry>,
    #[serde(default)]
    audio: Vec<DatasetEntry>,
}

/// The datasets of a registry file, checked (errors name the file, line and field).
pub fn read(path: &Path) -> anyhow::Result<Vec<DatasetEntry>> {
    let text = crate::files::read_text(path, crate::files::FileKind::Samples)?;
    let reg: Registry =
        serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = reg.datasets;
    for (modality, list) in [("image", reg.image), ("video", reg.video), ("audio", reg.audio)] {
        for mut d in list {
            d.modality.get_or_insert_with(|| modality.to_string());
            out.push(d);
        }
    }
    let mut names = BTreeSet::new();
    for d in &out {
        let at = |m: String| anyhow::anyhow!("{}: dataset `{}`: {m}", path.display(), d.name);
        if d.name.is_empty() {
            bail!("{}: a dataset has an empty name", path.display());
        }
        if !names.insert(d.name.clone()) {
            return Err(at("the name appears twice".into()));
        }
        match d.modality.as_deref() {
            Some("image" | "video" | "audio") => {}
            Some(m) => return Err(at(format!("modality `{m}` is not image, video or audio"))),
            None => return Err(at("no modality".into())),
        }
        if !["real", "synthetic", "semisynthetic"].contains(&d.media_type.as_str()) {
            return Err(at(format!("media_type `{}` is not real, synthetic or semisynthetic", d.media_type)));
        }
    }
    Ok(out)
}

fn globs(patterns: &[String]) -> anyhow::Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).with_context(|| format!("invalid glob `{p}`"))?);
    }
    Ok(Some(b.build()?))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    out.extend(crate::files::walk(dir, Default::default())?.into_iter().map(|f| f.path));
    Ok(())
}

/// One sample per media file of every dataset in the registry.
pub fn samples(path: &Path) -> anyhow::Result<Vec<Sample>> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for d in read(path)? {
        let modality = d.modality.clone().unwrap_or_default();
        let dir = base.join(&d.path);
        let include = globs(&d.include_paths).with_context(|| format!("dataset `{}`", d.name))?;
        let exclude = globs(&d.exclude_paths).with_context(|| format!("dataset `{}`", d.name))?;
        let mut files = Vec::new();
        walk(&dir, &mut files).with_context(|| format!("dataset `{}`", d.name))?;
        files.sort();
        let exts = extensions(&modality);
        let before = out.len();
        let mut frame_dirs: BTreeSet<PathBuf> = BTreeSet::new();
        let mut media = Vec::new();
        for f in files {
            let rel = f.strip_prefix(&dir).unwrap_or(&f);
            if include.as_ref().is_some_and(|g| !g.is_match(rel))
                || exclude.as_ref().is_some_and(|g| g.is_match(rel))
            {
                continue;
            }
            let ext = f.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
            if exts.contains(&ext.as_str()) {
                media.push(f);
            } else if modality == "video" && extensions("image").contains(&ext.as_str()) {
                frame_dirs.insert(f.parent().unwrap_or(&dir).to_path_buf());
            }
        }
        media.extend(frame_dirs);
        media.sort();
        for f in media {
            out.push(Sample {
                data: json!({ "dataset": d.name, "modality": modality, "media_type": d.media_type }),
                files: vec![f],
            });
        }
        if out.len() == before {
            bail!("{}: dataset `{}`: no {modality} files under {}", path.display(), d.name, dir.display());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_layouts_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["r/a.png", "r/sub/b.jpg", "r/notes.txt", "s/c.png", "s/skip/d.png"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let reg = dir.path().join("reg.yaml");
        std::fs::write(
            &reg,
            "datasets:\n  - name: real-a\n    path: r\n    modality: image\n    media_type: real\n    source: huggingface\nimage:\n  - name: fake-b\n    path: s\n    media_type: semisynthetic\n    exclude_paths: ['skip/**']\n",
        )
        .unwrap();
        let s = samples(&reg).unwrap();
        let names: Vec<_> =
            s.iter().map(|s| s.files[0].strip_prefix(dir.path()).unwrap().to_path_buf()).collect();
        assert_eq!(names, [PathBuf::from("r/a.png"), "r/sub/b.jpg".into(), "s/c.png".into()]);
        assert_eq!(s[2].data["media_type"], "semisynthetic");
        assert_eq!(s[2].data["modality"], "image");

        // Video: files, and folders of frames, one sample each.
        for f in ["v/a.mp4", "v/clip1/0001.png", "v/clip1/0002.png", "v/clip2/f.jpg"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        std::fs::write(
            &reg,
            "datasets:\n  - name: vids\n    path: v\n    modality: video\n    media_type: real\n",
        )
        .unwrap();
        let s = samples(&reg).unwrap();
        let names: Vec<_> =
            s.iter().map(|s| s.files[0].strip_prefix(dir.path()).unwrap().to_path_buf()).collect();
        assert_eq!(names, [PathBuf::from("v/a.mp4"), "v/clip1".into(), "v/clip2".into()]);

        std::fs::write(
            &reg,
            "datasets:\n  - name: x\n    path: r\n    modality: image\n    media_type: fake\n",
        )
        .unwrap();
        let e = samples(&reg).unwrap_err().to_string();
        assert!(e.contains("media_type `fake`"), "{e}");
        std::fs::write(&reg, "datasets:\n  - name: x\n    path: r\n    modality: image\n").unwrap();
        let e = format!("{:#}", samples(&reg).unwrap_err());
        assert!(e.contains("media_type") && e.contains("line"), "{e}");
    }
}
