//! Parsing TOML files into the config types while keeping the span of every field, so that
//! every error (syntax, type, semantic) can name its line, column and field.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostic, Severity, SourceText, closest};

/// The span of every key path in a TOML document (`tasks[0].weight` → its value's bytes).
#[derive(Debug, Clone, Default)]
pub struct Spans {
    map: BTreeMap<String, Range<usize>>,
}

impl Spans {
    /// Span of a field, or of its closest enclosing field that exists.
    pub fn locate(&self, field: &str) -> Option<Range<usize>> {
        let mut path = field.to_string();
        loop {
            if let Some(span) = self.map.get(&path) {
                return Some(span.clone());
            }
            let cut = path.rfind(['.', '['])?;
            path.truncate(cut);
        }
    }

    pub fn contains(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    fn index(&mut self, prefix: &str, table: &DeTable<'_>) {
        for (key, value) in table {
            let path = join(prefix, key.get_ref());
            self.map.insert(path.clone(), value.span());
            self.index_value(&path, value.get_ref());
        }
    }

    fn index_value(&mut self, path: &str, value: &DeValue<'_>) {
        match value {
            DeValue::Table(t) => self.index(path, t),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.map.insert(p.clone(), item.span());
                    self.index_value(&p, item.get_ref());
                }
            }
            _ => {}
        }
    }
}

/// Appends a key to a field path, quoting keys that are not bare TOML keys.
pub fn join(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare { key.to_string() } else { format!("{key:?}") };
    if prefix.is_empty() { key } else { format!("{prefix}.{key}") }
}

/// A parsed file: the typed value, its spans, and its text (kept for rendering).
#[derive(Debug, Clone)]
pub struct Parsed<T> {
    pub value: T,
    pub spans: Spans,
    pub source: SourceText,
}

impl<T> Parsed<T> {
    /// A diagnostic at a field of this file (at its closest existing parent when absent).
    pub fn at(
        &self,
        severity: Severity,
        field: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        self.source.diagnostic(severity, self.spans.locate(field), field, message, hint)
    }
}

/// Parses `text` (the contents of `path`) as a `T`. On failure, one diagnostic naming the
/// line, column and field; the parse stops at the first error, as serde does.
#[allow(clippy::result_large_err)] // a diagnostic is built once per failed file
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<Parsed<T>, Diagnostic> {
    let source = SourceText::new(path, text);
    let table = DeTable::parse(text).map_err(|e| {
        let message = e.message().trim();
        let hint = message.contains("duplicate").then(|| {
            "a key or a [table] may be defined once; write one [[tasks]] per task, never [tasks]".to_string()
        });
        source.diagnostic(Severity::Error, e.span(), "", format!("TOML syntax: {message}"), hint)
    })?;
    let mut spans = Spans::default();
    spans.map.insert(String::new(), 0..0);
    spans.index("", table.get_ref());

    let de = toml::Deserializer::parse(text).map_err(|e| {
        source.diagnostic(Severity::Error, e.span(), "", format!("TOML syntax: {}", e.message().trim()), None)
    })?;
    let value = serde_path_to_error::deserialize::<_, T>(de).map_err(|err| {
        let field = field_path(&err.path().to_string());
        let inner = err.inner();
        let message = inner.message().trim().to_string();
        let span = inner.span().or_else(|| spans.locate(&field));
        let hint = hint_for(&message);
        let field = refine_field(&field, &message);
        source.diagnostic(Severity::Error, span, field, message, hint)
    })?;
    Ok(Parsed { value, spans, source })
}

/// serde_path_to_error writes the root as "." and sequence items as `[i]`.
fn field_path(p: &str) -> String {
    if p == "." { String::new() } else { p.to_string() }
}

/// For "unknown field `x`" and "missing field `x`", the field is the named one.
fn refine_field(parent: &str, message: &str) -> String {
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(name) = rest.split('`').next()
        {
            let last = parent.rsplit(['.', ']']).next().unwrap_or("");
            return if last == name { parent.to_string() } else { join(parent, name) };
        }
    }
    parent.to_string()
}

fn hint_for(message: &str) -> Option<String> {
    // "unknown field `weigth`, expected one of `name`, `weight`" / "unknown variant `x`, expected ..."
    for prefix in ["unknown field `", "unknown variant `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let word = rest.split('`').next()?;
            let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
            return match closest(word, expected.iter().copied()) {
                Some(best) => Some(format!("did you mean `{best}`?")),
                None if !expected.is_empty() => Some(format!(
                    "allowed: {}",
                    expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
                )),
                None => None,
            };
        }
    }
    if message.starts_with("missing field `") {
        return Some("add it; `arena schema` prints every field with its meaning".into());
    }
    None
}
