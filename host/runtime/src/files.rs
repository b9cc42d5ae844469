//! Every file arena reads from its inputs goes through here: regular files only (a FIFO, a
//! device, a socket or a directory is refused with its kind named, before it is opened, so
//! nothing blocks), and at most a limit per kind of file (read through a bounded reader, so a
//! file that grows while it is read cannot exhaust memory).
//!
//! Directory walks ([`walk`]) list regular files only, never follow a symlink out of the tree
//! they walk, and stop at a loop, a depth or a number of entries with an error naming the path.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::bail;

/// The kinds of input file and their size limits (README, "Limits").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A competition or validator TOML file.
    Config,
    /// RAW.json, SUBMISSIONS.json, STATE.json, ROUND.json, a yuma input, a JSON argument.
    Json,
    /// A model's config.json, tokenizer_config.json and other small metadata.
    Metadata,
    /// Evaluation samples (JSON lines, JSON, text) and registry files.
    Samples,
}

impl FileKind {
    pub fn limit(self) -> u64 {
        match self {
            FileKind::Config => 16 << 20,
            FileKind::Json => 256 << 20,
            FileKind::Metadata => 16 << 20,
            FileKind::Samples => 4 << 30,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileKind::Config => "configuration file",
            FileKind::Json => "JSON file",
            FileKind::Metadata => "metadata file",
            FileKind::Samples => "samples file",
        }
    }
}

/// What a path is, when it is not a regular file.
fn not_regular(path: &Path) -> std::io::Result<Option<&'static str>> {
    Ok(kind_name(std::fs::metadata(path)?.file_type()))
}

/// A file type's name, when it is not a regular file.
fn kind_name(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else {
        Some("not a regular file")
    }
}

/// Refuses anything but a regular file (symlinks followed), naming what it is.
pub fn require_regular(path: &Path) -> anyhow::Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    match kind_name(meta.file_type()) {
        Some(what) => bail!("{} is {what}, not a regular file", path.display()),
        None => Ok(meta.len()),
    }
}

/// How a [`walk`] treats what it meets.
#[derive(Clone, Copy, Debug)]
pub struct WalkOptions<'a> {
    /// Enter symlinks to directories (inside the tree). Off: they are left out, as Python's
    /// `os.walk` leaves them (taoverse's directory hash).
    pub follow_dir_links: bool,
    /// Names skipped wherever they appear (`.git`).
    pub skip: &'a [&'a str],
    /// Refuse FIFOs, sockets and devices (an error naming the path); off: leave them out.
    pub strict: bool,
}

impl Default for WalkOptions<'_> {
    fn default() -> Self {
        WalkOptions { follow_dir_links: true, skip: &[], strict: true }
    }
}

/// The most directories deep a walk goes.
pub const MAX_WALK_DEPTH: usize = 32;
/// The most entries a walk lists.
pub const MAX_WALK_ENTRIES: usize = 1_000_000;

/// A regular file met by [`walk`]: its path as walked, and its size (a symlink's target's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walked {
    pub path: PathBuf,
    pub len: u64,
}

/// The regular files under `root`, in `os.walk` order: each directory's files by name, then its
/// subdirectories by name. A symlink is followed only to a target inside the tree: `root`
/// itself, or for a snapshot of the hub cache (`…/snapshots/<rev>`) its repository folder,
/// whose `blobs/` the snapshot's links point into; a link out of the tree, a broken link, a
/// directory met twice (a symlink loop, a bind mount), a path deeper than [`MAX_WALK_DEPTH`]
/// or more than [`MAX_WALK_ENTRIES`] entries is an error naming the path.
pub fn walk(root: &Path, options: WalkOptions<'_>) -> anyhow::Result<Vec<Walked>> {
    let canonical =
        root.canonicalize().map_err(|e| anyhow::anyhow!("cannot list {}: {e}", root.display()))?;
    let mut trees = vec![canonical.clone()];
    if let Some(repo) = canonical.parent().filter(|p| p.file_name().is_some_and(|n| n == "snapshots")) {
        trees.extend(repo.parent().map(Path::to_path_buf));
    }
    let meta = std::fs::metadata(&canonical)?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let mut state = WalkState { trees, options, seen: BTreeSet::new(), entries: 0, out: Vec::new() };
    state.seen.insert((meta.dev(), meta.ino()));
    state.dir(root, 0)?;
    Ok(state.out)
}

struct WalkState<'a> {
    trees: Vec<PathBuf>,
    options: WalkOptions<'a>,
    seen: BTreeSet<(u64, u64)>,
    entries: usize,
    out: Vec<Walked>,
}

impl WalkState<'_> {
    fn dir(&mut self, dir: &Path, depth: usize) -> anyhow::Result<()> {
        if depth >= MAX_WALK_DEPTH {
            bail!("{} is more than {MAX_WALK_DEPTH} directories deep", dir.display());
        }
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        let listing =
            std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
        for entry in listing {
            let entry = entry.map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
            self.entries += 1;
            if self.entries > MAX_WALK_ENTRIES {
                bail!("{} holds more than {MAX_WALK_ENTRIES} entries", dir.display());
            }
            let name = entry.file_name();
            if self.options.skip.iter().any(|s| name == *s) {
                continue;
            }
            let path = entry.path();
            let link = entry.file_type()?.is_symlink();
            if link {
                let target = path
                    .canonicalize()
                    .map_err(|e| anyhow::anyhow!("{} is a broken symlink: {e}", path.display()))?;
                if !self.trees.iter().any(|t| target.starts_with(t)) {
                    bail!(
                        "{} is a symlink to {}, outside the tree walked ({})",
                        path.display(),
                        target.display(),
                        self.trees[0].display()
                    );
                }
            }
            let meta = std::fs::metadata(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            if meta.is_dir() {
                if !link || self.options.follow_dir_links {
                    dirs.push((name, meta));
                }
            } else if meta.is_file() {
                files.push((name, meta.len()));
            } else if self.options.strict {
                bail!(
                    "{} is {}, not a regular file",
                    path.display(),
                    kind_name(meta.file_type()).unwrap_or("special")
                );
            }
        }
        files.sort();
        dirs.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, len) in files {
            self.out.push(Walked { path: dir.join(name), len });
        }
        for (name, meta) in dirs {
            let path = dir.join(&name);
            if !self.seen.insert((meta.dev(), meta.ino())) {
                bail!("{} is a directory met twice (a symlink loop?)", path.display());
            }
            self.dir(&path, depth + 1)?;
        }
        Ok(())
    }
}

/// The bytes of a regular file of at most `kind`'s limit.
pub fn read(path: &Path, kind: FileKind) -> anyhow::Result<Vec<u8>> {
    let shown = path.display();
    match not_regular(path) {
        Err(e) => bail!("cannot read {shown}: {e}"),
        Ok(Some(what)) => bail!("{shown} is {what}, not a regular file"),
        Ok(None) => {}
    }
    let limit = kind.limit();
    let f = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
    let mut bytes = Vec::new();
    f.take(limit + 1).read_to_end(&mut bytes).map_err(|e| anyhow::anyhow!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > limit {
        bail!("{shown} is larger than a {} may be ({} MiB)", kind.name(), limit >> 20);
    }
    Ok(bytes)
}

/// The text of a JSON input file, refused when an object repeats a key (serde would keep the
/// last one silently).
pub fn read_json_text(path: &Path) -> anyhow::Result<String> {
    let text = read_text(path, FileKind::Json)?;
    arena_core::json::check_unique_keys(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(text)
}

/// The text of a regular UTF-8 file of at most `kind`'s limit.
pub fn read_text(path: &Path, kind: FileKind) -> anyhow::Result<String> {
    let bytes = read(path, kind)?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("{} is not UTF-8 (byte {})", path.display(), e.utf8_error().valid_up_to())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_their_limit_are_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.json");
        std::fs::write(&f, "{}").unwrap();
        assert_eq!(read_text(&f, FileKind::Json).unwrap(), "{}");
        let e = read_text(d.path(), FileKind::Json).unwrap_err().to_string();
        assert!(e.contains("is a directory, not a regular file"), "{e}");
        let e = read_text(Path::new("/dev/null"), FileKind::Json).unwrap_err().to_string();
        assert!(e.contains("is a character device"), "{e}");
        let fifo = d.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = read_text(&fifo, FileKind::Config).unwrap_err().to_string();
        assert!(e.contains("is a FIFO"), "{e}");
        let big = d.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; (FileKind::Config.limit() + 1) as usize]).unwrap();
        let e = read_text(&big, FileKind::Config).unwrap_err().to_string();
        assert!(e.contains("larger than a configuration file may be (16 MiB)"), "{e}");
        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(read_text(&f, FileKind::Json).unwrap_err().to_string().contains("not UTF-8"));
    }

    #[test]
    fn walks_list_regular_files_in_os_walk_order_and_stay_in_the_tree() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::create_dir_all(root.join("a")).unwrap();
        for f in ["z", "b/y", "b/c/x", "a/w", "m"] {
            std::fs::write(root.join(f), f).unwrap();
        }
        symlink("b/c", root.join("link-dir")).unwrap();
        symlink("z", root.join("link-file")).unwrap();
        let names = |w: Vec<Walked>| -> Vec<String> {
            w.iter().map(|f| f.path.strip_prefix(&root).unwrap().display().to_string()).collect()
        };
        let plain = WalkOptions { follow_dir_links: false, ..Default::default() };
        assert_eq!(names(walk(&root, plain).unwrap()), ["link-file", "m", "z", "a/w", "b/y", "b/c/x"]);
        // Followed, the linked directory is met a second time: refused, not listed twice.
        let e = walk(&root, WalkOptions::default()).unwrap_err().to_string();
        assert!(e.contains("met twice"), "{e}");
        std::fs::remove_file(root.join("link-dir")).unwrap();
        assert_eq!(walk(&root, WalkOptions::default()).unwrap().len(), 6);

        symlink(d.path(), root.join("out")).unwrap();
        let e = walk(&root, WalkOptions::default()).unwrap_err().to_string();
        assert!(e.contains("outside the tree walked"), "{e}");
        std::fs::remove_file(root.join("out")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        assert!(walk(&root, WalkOptions::default()).unwrap_err().to_string().contains("broken symlink"));
        std::fs::remove_file(root.join("dangling")).unwrap();

        assert!(std::process::Command::new("mkfifo").arg(root.join("a/fifo")).status().unwrap().success());
        let e = walk(&root, WalkOptions::default()).unwrap_err().to_string();
        assert!(e.contains("a/fifo is a FIFO"), "{e}");
        let lax = WalkOptions { strict: false, skip: &["b"], ..Default::default() };
        assert_eq!(names(walk(&root, lax).unwrap()), ["link-file", "m", "z", "a/w"]);
    }

    /// A snapshot of the hub cache links into its repository's `blobs/`: inside the tree.
    #[test]
    fn hub_snapshots_may_link_into_their_blobs() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("models--a--b");
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots/abc")).unwrap();
        std::fs::write(repo.join("blobs/123"), "{}").unwrap();
        symlink("../../blobs/123", repo.join("snapshots/abc/config.json")).unwrap();
        let files = walk(&repo.join("snapshots/abc"), WalkOptions::default()).unwrap();
        assert_eq!(files, [Walked { path: repo.join("snapshots/abc/config.json"), len: 2 }]);
        symlink("../../../elsewhere", repo.join("snapshots/abc/x")).unwrap();
        std::fs::write(d.path().join("elsewhere"), "").unwrap();
        assert!(walk(&repo.join("snapshots/abc"), WalkOptions::default()).is_err());
    }

    #[test]
    fn walks_stop_at_their_depth() {
        let d = tempfile::tempdir().unwrap();
        let mut p = d.path().to_path_buf();
        for _ in 0..MAX_WALK_DEPTH + 1 {
            p.push("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        let e = walk(d.path(), WalkOptions::default()).unwrap_err().to_string();
        assert!(e.contains("directories deep"), "{e}");
    }
}
