//! Diagnostics about a user's file: where (file, line, column, field), what, and a hint.
//! Values only: the CLI renders them with miette for people, as JSON for tools.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One finding about one file. `line` and `column` are 1-based.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The field the finding is about, as a path (`tasks[0].weight`); empty for the whole file.
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip)]
    pub span: Option<Range<usize>>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "`{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// A file's text, for turning byte spans into lines and columns and for rendering snippets.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
    /// Byte offsets where lines start, computed once: a file with many diagnostics costs
    /// a binary search per diagnostic, not a scan from the start.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceText {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        SourceText { path: path.into(), text: text.into(), line_starts: std::sync::OnceLock::new() }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect()
        });
        // The last line start at or before the offset.
        let line = starts.partition_point(|&s| s <= offset);
        let start = starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }

    pub fn diagnostic(
        &self,
        severity: Severity,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, column) = self.line_col(span.as_ref().map_or(0, |s| s.start));
        Diagnostic {
            severity,
            file: self.path.clone(),
            line,
            column,
            field: field.into(),
            message: message.into(),
            hint,
            span,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A diagnostic about a file that could not be read at all (no source to show).
pub fn file_error(path: &Path, message: impl Into<String>, hint: Option<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        field: String::new(),
        message: message.into(),
        hint,
        span: None,
    }
}

/// The candidate closest to `word` by edit distance, if close enough for a "did you mean" hint.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod line_tests {
    use super::*;

    /// The indexed lookup gives what a scan from the start gives, at every offset.
    #[test]
    fn line_and_column_of_every_offset() {
        let text = "a = 1\n\nπ = \"é\"\r\nlast";
        let src = SourceText::new("f.toml", text);
        for offset in 0..=text.len() + 2 {
            let o = floor_char_boundary(text, offset.min(text.len()));
            let before = &text[..o];
            let want = (
                before.matches('\n').count() + 1,
                before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            );
            assert_eq!(src.line_col(offset), want, "offset {offset}");
        }
    }
}
