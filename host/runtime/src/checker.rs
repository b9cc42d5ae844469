//! `arena check`: loads competition and validator files, runs every check, and collects the
//! diagnostics with the sources needed to render them.

use std::path::{Path, PathBuf};

use arena_plugin_api::PluginInfo;

use crate::plugins;
use arena_core::config::check::{
    Files, KindLookup, PluginCatalog, check_competition, check_plugins, check_together, check_validator,
};
use arena_core::config::source::{Parsed, parse};
use arena_core::config::{Competition, ValidatorConfig};
use arena_core::diag::{Diagnostic, Severity, SourceText};

/// What a file is, judged from its top-level keys: a validator configuration has `wallet`,
/// `funding`, `store` or `network`; anything else is read as a competition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Competition,
    Validator,
}

pub fn kind_of(text: &str) -> FileKind {
    match toml::de::DeTable::parse(text) {
        Ok(t)
            if t.get_ref()
                .keys()
                .any(|k| matches!(k.get_ref().as_ref(), "wallet" | "funding" | "network")) =>
        {
            FileKind::Validator
        }
        _ => FileKind::Competition,
    }
}

/// Reads and parses one file; unreadable or malformed files give one diagnostic.
#[allow(clippy::result_large_err)] // a diagnostic is built once per failed file
pub fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Parsed<T>, Diagnostic> {
    parse(path, &read_text(path)?)
}

/// A file's text; an unreadable or non-UTF-8 file gives one diagnostic.
#[allow(clippy::result_large_err)] // a diagnostic is built once per failed file
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes = crate::files::read(path, crate::files::FileKind::Config)
        .map_err(|e| arena_core::diag::file_error(path, format!("{e:#}"), None))?;
    String::from_utf8(bytes).map_err(|e| {
        arena_core::diag::file_error(
            path,
            format!("not UTF-8 (byte {}): TOML files are UTF-8", e.utf8_error().valid_up_to()),
            None,
        )
    })
}

/// The disk, as the validator checks read it.
pub struct Disk;

impl Files for Disk {
    fn competition(&self, path: &Path) -> Result<Parsed<Competition>, Diagnostic> {
        load(path)
    }
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

/// The installed plugins, by name.
pub struct InstalledPlugins {
    infos: Vec<PluginInfo>,
    dirs: Vec<PathBuf>,
}

impl InstalledPlugins {
    pub fn discover(dirs: &[PathBuf]) -> Self {
        let infos =
            plugins::discover(dirs).into_iter().filter_map(Result::ok).map(|p| p.info().clone()).collect();
        InstalledPlugins { infos, dirs: dirs.to_vec() }
    }
}

impl PluginCatalog for InstalledPlugins {
    fn lookup(&self, plugin: &str, kind: &str) -> KindLookup<'_> {
        let Some(info) = self.infos.iter().find(|i| i.name == plugin) else { return KindLookup::NoPlugin };
        match info.tasks.iter().find(|t| t.name == kind) {
            Some(k) => KindLookup::Found(k),
            None => KindLookup::NoKind { available: info.tasks.iter().map(|t| t.name.clone()).collect() },
        }
    }
    fn searched(&self) -> String {
        if self.dirs.is_empty() {
            "no directories".into()
        } else {
            self.dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        }
    }
}

#[derive(Debug, Default)]
pub struct CheckOutcome {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Vec<SourceText>,
    /// Files checked, validator-listed competition files included.
    pub files: Vec<PathBuf>,
}

impl CheckOutcome {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count()
    }

    /// Every warning made an error (`arena check --strict`, and `arena round`, which cannot run
    /// a task whose plugin or kind is missing).
    pub fn strict(mut self) -> Self {
        for d in &mut self.diagnostics {
            d.severity = Severity::Error;
        }
        self
    }
}

/// Checks every file. `plugin_dirs`: where to look for plugins, as searched (see
/// [`plugins::plugin_dirs`]); a validator file's own `plugin_dirs` are added.
pub fn check_files(paths: &[PathBuf], plugin_dirs: &[PathBuf]) -> CheckOutcome {
    let mut out = CheckOutcome::default();
    let mut competitions: Vec<Parsed<Competition>> = Vec::new();
    let mut validators: Vec<Parsed<ValidatorConfig>> = Vec::new();
    for path in paths {
        out.files.push(path.clone());
        let text = match read_text(path) {
            Ok(text) => text,
            Err(diag) => {
                out.diagnostics.push(diag);
                continue;
            }
        };
        match kind_of(&text) {
            FileKind::Competition => add(&mut out, parse(path, &text), Some(&text), &mut competitions),
            FileKind::Validator => add(&mut out, parse(path, &text), Some(&text), &mut validators),
        }
    }
    let mut dirs = plugin_dirs.to_vec();
    for v in &validators {
        let base = v.source.path.parent().unwrap_or(Path::new("."));
        dirs.extend(v.value.plugin_dirs.iter().map(|d| base.join(d)));
    }
    let catalog = InstalledPlugins::discover(&dirs);

    for v in &validators {
        let (diags, loaded) = check_validator(v, &Disk);
        out.diagnostics.extend(diags);
        let mut listed = Vec::new();
        for (path, result) in loaded {
            // Already checked on its own, or missing (reported at the validator's entry).
            if competitions.iter().any(|c| same_file(&c.source.path, &path)) || !path.is_file() {
                continue;
            }
            out.files.push(path);
            add(&mut out, result, None, &mut listed);
        }
        for c in &listed {
            out.diagnostics.extend(check_competition(c));
            out.diagnostics.extend(check_plugins(c, &catalog));
        }
        let together: Vec<&Parsed<Competition>> = listed.iter().collect();
        out.diagnostics.extend(check_together(&together));
    }
    for c in &competitions {
        out.diagnostics.extend(check_competition(c));
        out.diagnostics.extend(check_plugins(c, &catalog));
    }
    let together: Vec<&Parsed<Competition>> = competitions.iter().collect();
    out.diagnostics.extend(check_together(&together));
    out
}

/// Records a loaded file, or its diagnostic with the file's text (`text` when the caller has
/// it, read again otherwise) so the snippet can be shown.
fn add<T>(
    out: &mut CheckOutcome,
    result: Result<Parsed<T>, Diagnostic>,
    text: Option<&str>,
    into: &mut Vec<Parsed<T>>,
) {
    match result {
        Ok(parsed) => {
            out.sources.push(parsed.source.clone());
            into.push(parsed);
        }
        Err(diag) => {
            let text = text
                .map(str::to_string)
                .or_else(|| crate::files::read_text(&diag.file, crate::files::FileKind::Config).ok());
            if let Some(text) = text {
                out.sources.push(SourceText::new(diag.file.clone(), text));
            }
            out.diagnostics.push(diag);
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Loads competition files for `arena round`: every error is fatal, and so is every warning,
/// a task whose plugin or kind is not installed in `plugin_dirs` included.
pub fn load_runnable(paths: &[PathBuf], plugin_dirs: &[PathBuf]) -> Result<Vec<Competition>, CheckOutcome> {
    let outcome = check_files(paths, plugin_dirs).strict();
    if outcome.errors() > 0 {
        return Err(outcome);
    }
    load_competitions(paths)
}

/// Loads a validator configuration for the commands that run one (`round`, `score`,
/// `set-weights --config`): its own checks' errors are fatal (shares, devices, the same
/// competition listed twice); its competitions are checked where they are run.
pub fn load_validator(path: &Path) -> Result<ValidatorConfig, CheckOutcome> {
    let mut out = CheckOutcome::default();
    let mut parsed = Vec::new();
    add(&mut out, load::<ValidatorConfig>(path), None, &mut parsed);
    let Some(v) = parsed.pop() else { return Err(out) };
    let (diags, _) = check_validator(&v, &Disk);
    out.diagnostics.extend(diags);
    if out.errors() > 0 { Err(out) } else { Ok(v.value) }
}

/// Loads competition files for `arena score`: every error is fatal there.
pub fn load_competitions(paths: &[PathBuf]) -> Result<Vec<Competition>, CheckOutcome> {
    let mut out = CheckOutcome::default();
    let mut parsed = Vec::new();
    for path in paths {
        add(&mut out, load::<Competition>(path), None, &mut parsed);
    }
    for c in &parsed {
        out.diagnostics.extend(check_competition(c));
    }
    let together: Vec<&Parsed<Competition>> = parsed.iter().collect();
    out.diagnostics.extend(check_together(&together));
    if out.errors() > 0 { Err(out) } else { Ok(parsed.into_iter().map(|p| p.value).collect()) }
}
