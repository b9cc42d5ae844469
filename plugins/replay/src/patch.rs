//! A strict reader of unified diffs (git-style and plain), enough to know every path a patch
//! touches, the modes it sets, and whether its hunks are well-formed. `git apply --check` is
//! still run afterwards; this reader exists so that a patch is judged before anything is
//! cloned or applied, and so that every path is checked, including renames, copies, deletions
//! and mode-only changes.

use std::fmt;

/// One file touched by a patch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileChange {
    /// The path before the change (`None` for a new file).
    pub old_path: Option<String>,
    /// The path after the change (`None` for a deleted file).
    pub new_path: Option<String>,
    /// The mode after the change, when the patch sets one (`100644`, `100755`, `120000`, …).
    pub new_mode: Option<String>,
    pub binary: bool,
    pub hunks: usize,
}

impl FileChange {
    /// Every path this change touches.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.old_path.iter().chain(self.new_path.iter()).map(String::as_str)
    }

    pub fn is_symlink(&self) -> bool {
        self.new_mode.as_deref() == Some("120000")
    }

    pub fn is_gitlink(&self) -> bool {
        self.new_mode.as_deref() == Some("160000")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

/// Parses a patch. Text before the first file header (a commit message, say) is ignored.
pub fn parse(text: &str) -> Result<Vec<FileChange>, ParseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut files: Vec<FileChange> = Vec::new();
    let mut cur: Option<FileChange> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].strip_suffix('\r').unwrap_or(lines[i]);
        let n = i + 1;
        if let Some(rest) = line.strip_prefix("diff --git ") {
            if let Some(f) = cur.take() {
                files.push(finish(f, n)?);
            }
            let (a, b) = split_git_header(rest).ok_or_else(|| err(n, "unreadable `diff --git` header"))?;
            cur = Some(FileChange { old_path: Some(a), new_path: Some(b), ..Default::default() });
            i += 1;
            continue;
        }
        if line.starts_with("--- ") && lines.get(i + 1).is_some_and(|l| l.starts_with("+++ ")) {
            let old = header_path(&line[4..], "a/").map_err(|m| err(n, m))?;
            let new_line = lines[i + 1].strip_suffix('\r').unwrap_or(lines[i + 1]);
            let new = header_path(&new_line[4..], "b/").map_err(|m| err(n + 1, m))?;
            let f = match cur.take() {
                // A plain (non-git) diff: each ---/+++ pair starts a file.
                Some(f) if f.hunks > 0 => {
                    files.push(finish(f, n)?);
                    FileChange::default()
                }
                Some(f) => f,
                None => FileChange::default(),
            };
            cur = Some(FileChange { old_path: old, new_path: new, ..f });
            i += 2;
            continue;
        }
        let Some(f) = cur.as_mut() else {
            i += 1;
            continue;
        };
        if let Some(h) = line.strip_prefix("@@ ") {
            let (old_len, new_len) = hunk_lengths(h).ok_or_else(|| err(n, "unreadable hunk header"))?;
            let (mut o, mut nw) = (0u64, 0u64);
            i += 1;
            while o < old_len || nw < new_len {
                let Some(l) = lines.get(i) else {
                    return Err(err(i + 1, "the patch ends inside a hunk"));
                };
                match l.as_bytes().first() {
                    Some(b' ') => {
                        o += 1;
                        nw += 1;
                    }
                    Some(b'-') => o += 1,
                    Some(b'+') => nw += 1,
                    Some(b'\\') => {}
                    // An empty line is a context line whose leading space was stripped.
                    None if i + 1 < lines.len() => {
                        o += 1;
                        nw += 1;
                    }
                    _ => {
                        return Err(err(
                            i + 1,
                            format!(
                                "hunk is shorter than its header says (expected {old_len} old and {new_len} new lines)"
                            ),
                        ));
                    }
                }
                if o > old_len || nw > new_len {
                    return Err(err(i + 1, "hunk is longer than its header says"));
                }
                i += 1;
            }
            while lines.get(i).is_some_and(|l| l.starts_with('\\')) {
                i += 1;
            }
            f.hunks += 1;
            continue;
        }
        if line.starts_with("GIT binary patch")
            || (line.starts_with("Binary files ") && line.ends_with(" differ"))
        {
            f.binary = true;
        } else if let Some(m) = line.strip_prefix("new file mode ") {
            f.old_path = None;
            f.new_mode = Some(m.trim().to_string());
        } else if line.starts_with("deleted file mode ") {
            f.new_path = None;
        } else if let Some(m) = line.strip_prefix("new mode ") {
            f.new_mode = Some(m.trim().to_string());
        } else if let Some(p) = line.strip_prefix("rename from ").or_else(|| line.strip_prefix("copy from "))
        {
            f.old_path = Some(unquote(p).map_err(|m| err(n, m))?);
        } else if let Some(p) = line.strip_prefix("rename to ").or_else(|| line.strip_prefix("copy to ")) {
            f.new_path = Some(unquote(p).map_err(|m| err(n, m))?);
        }
        i += 1;
    }
    if let Some(f) = cur.take() {
        files.push(finish(f, lines.len())?);
    }
    if files.is_empty() {
        return Err(err(1, "no file changes found (not a unified diff?)"));
    }
    Ok(files)
}

fn finish(f: FileChange, line: usize) -> Result<FileChange, ParseError> {
    if f.old_path.is_none() && f.new_path.is_none() {
        return Err(err(line, "a file change with neither an old nor a new path"));
    }
    if f.paths().any(str::is_empty) {
        return Err(err(line, "a file change with an empty path"));
    }
    Ok(f)
}

/// `a/P b/P` (possibly quoted) to `(P, P)`.
fn split_git_header(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim_end();
    if rest.starts_with('"') {
        // Quoted paths: `"a/x y" "b/x y"` or a mix with an unquoted one.
        let (a, tail) = take_quoted(rest)?;
        let tail = tail.trim_start();
        let b = if tail.starts_with('"') { take_quoted(tail)?.0 } else { tail.to_string() };
        return Some((a.strip_prefix("a/")?.to_string(), b.strip_prefix("b/")?.to_string()));
    }
    if let Some(pos) = rest.find(" \"b/") {
        let b = take_quoted(&rest[pos + 1..])?.0;
        return Some((rest[..pos].strip_prefix("a/")?.to_string(), b.strip_prefix("b/")?.to_string()));
    }
    // Unquoted: the header is `a/` + P + ` b/` + P when old and new paths are the same; when
    // they differ (a rename), the rename lines give the real paths, so any split will do.
    let bytes = rest.len();
    if bytes % 2 == 1 {
        let half = (bytes - 1) / 2;
        if rest.is_char_boundary(half) && rest.is_char_boundary(half + 1) {
            let (l, r) = (&rest[..half], &rest[half + 1..]);
            if let (Some(l2), Some(r2)) = (l.strip_prefix("a/"), r.strip_prefix("b/"))
                && l2 == r2
            {
                return Some((l2.to_string(), r2.to_string()));
            }
        }
    }
    let pos = rest.find(" b/")?;
    Some((rest[..pos].strip_prefix("a/")?.to_string(), rest[pos + 3..].to_string()))
}

fn take_quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            let q = &s[..i + 2];
            return Some((unquote(q).ok()?, &body[i + 1..]));
        }
    }
    None
}

/// Git's C-style path quoting: `"a/\303\244 b"`.
fn unquote(p: &str) -> Result<String, String> {
    let p = p.trim_end();
    let Some(body) = p.strip_prefix('"').and_then(|b| b.strip_suffix('"')) else {
        return Ok(p.to_string());
    };
    let mut out: Vec<u8> = Vec::new();
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1).ok_or("bad escape at the end of a quoted path")?;
        i += 2;
        out.push(match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'v' => 11,
            b'"' => b'"',
            b'\\' => b'\\',
            b'0'..=b'7' => {
                let digits = b.get(i - 1..i + 2).ok_or("short octal escape in a quoted path")?;
                let s = std::str::from_utf8(digits).map_err(|_| "bad octal escape")?;
                i += 2;
                u8::from_str_radix(s, 8).map_err(|_| format!("bad octal escape \\{s}"))?
            }
            other => return Err(format!("unknown escape \\{} in a quoted path", other as char)),
        });
    }
    String::from_utf8(out).map_err(|_| "a quoted path is not UTF-8".to_string())
}

/// The path of a `---`/`+++` line: `/dev/null` is `None`; the `a/`/`b/` prefix is dropped;
/// a trailing tab and timestamp (plain diff) is dropped.
fn header_path(s: &str, prefix: &str) -> Result<Option<String>, String> {
    let s = s.trim_end_matches('\r');
    let s = if s.starts_with('"') { s.to_string() } else { s.split('\t').next().unwrap_or("").to_string() };
    let p = unquote(&s)?;
    if p == "/dev/null" {
        return Ok(None);
    }
    Ok(Some(p.strip_prefix(prefix).map(str::to_string).unwrap_or(p)))
}

/// `-a,b +c,d @@ …` to `(b, d)`; a missing count means 1.
fn hunk_lengths(h: &str) -> Option<(u64, u64)> {
    let mut parts = h.split_whitespace();
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let len = |r: &str| -> Option<u64> {
        match r.split_once(',') {
            Some((start, n)) => {
                start.parse::<u64>().ok()?;
                n.parse().ok()
            }
            None => {
                r.parse::<u64>().ok()?;
                Some(1)
            }
        }
    };
    Some((len(old)?, len(new)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_diff_with_rename_mode_and_new_file() {
        let p = "From abc\nSubject: x\n\n\
diff --git a/src/train.py b/src/train.py\nindex 1..2 100644\n--- a/src/train.py\n+++ b/src/train.py\n@@ -1,2 +1,2 @@\n-lr = 0.1\n+lr = 0.05\n keep\n\
diff --git a/old.txt b/new dir/new.txt\nsimilarity index 100%\nrename from old.txt\nrename to new dir/new.txt\n\
diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n\
diff --git a/l b/l\nnew file mode 120000\nindex 0000000..1\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+/etc/passwd\n\\ No newline at end of file\n";
        let f = parse(p).unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f[0].new_path.as_deref(), Some("src/train.py"));
        assert_eq!(f[0].hunks, 1);
        assert_eq!(f[1].old_path.as_deref(), Some("old.txt"));
        assert_eq!(f[1].new_path.as_deref(), Some("new dir/new.txt"));
        assert_eq!(f[2].new_mode.as_deref(), Some("100755"));
        assert!(f[3].is_symlink());
        assert_eq!(f[3].old_path, None);
    }

    #[test]
    fn plain_diff_and_quoted_paths() {
        let p = "--- a.txt\t2024-01-01\n+++ a.txt\t2024-01-02\n@@ -1 +1 @@\n-x\n+y\n--- b.txt\n+++ b.txt\n@@ -1 +1 @@\n-x\n+y\n";
        let f = parse(p).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].new_path.as_deref(), Some("b.txt"));
        let q = "diff --git \"a/x\\303\\244 y\" \"b/x\\303\\244 y\"\n--- \"a/x\\303\\244 y\"\n+++ \"b/x\\303\\244 y\"\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(parse(q).unwrap()[0].new_path.as_deref(), Some("xä y"));
    }

    #[test]
    fn malformed_patches_are_errors() {
        assert!(parse("hello world\n").is_err());
        assert!(parse("").is_err());
        // hunk says 3 old lines, has 1
        let short = "--- a/x\n+++ b/x\n@@ -1,3 +1,1 @@\n-a\n+b\n";
        assert!(parse(short).is_err());
        // hunk has more lines than it declares, followed by junk
        let long = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n-b\n+c\n";
        assert!(parse(long).is_err(), "{:?}", parse(long));
        assert!(parse("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n").is_err());
        assert!(parse("--- a/x\n+++ b/x\n@@ garbage @@\n").is_err());
    }

    /// Found by the `patch` fuzz target: `rename from ` with nothing after it gave an empty path.
    #[test]
    fn an_empty_path_is_refused() {
        let p = "diff --git a/x b/y\nsimilarity index 90%\nrename from \nrename to y\n";
        let e = parse(p).unwrap_err();
        assert!(e.message.contains("empty path"), "{e}");
    }
}
