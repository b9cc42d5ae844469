//! Every file arena reads from its inputs goes through here: regular files only (a FIFO, a
//! device, a socket or a directory is refused with its kind named, before it is opened, so
//! nothing blocks), and at most a limit per kind of file (read through a bounded reader, so a
//! file that grows while it is read cannot exhaust memory).

use std::io::Read;
use std::path::Path;

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
    use std::os::unix::fs::FileTypeExt;
    let t = std::fs::metadata(path)?.file_type();
    Ok(if t.is_file() {
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
    })
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
}
