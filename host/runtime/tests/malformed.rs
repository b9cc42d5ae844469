//! The malformed-file corpus (tests/malformed/): every file is rejected with an error whose
//! message or hint contains its `# expect:` fragment, at its `# field:` and `# line:`.

use std::path::{Path, PathBuf};

use arena_core::diag::Severity;
use arena_runtime::checker::check_files;

#[test]
fn every_malformed_file_gets_its_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/malformed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} malformed files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let header = |key: &str| {
            text.lines().find_map(|l| l.strip_prefix(&format!("# {key}: ")).map(|v| v.trim().to_string()))
        };
        let expect = header("expect").unwrap_or_else(|| panic!("{}: no `# expect:` line", file.display()));
        let field = header("field").unwrap_or_default();
        let line: usize = header("line")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("{}: no `# line:`", file.display()));
        let outcome = check_files(std::slice::from_ref(file), &[]);
        let errors: Vec<_> = outcome.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        let found = errors.iter().any(|d| {
            (d.message.contains(&expect) || d.hint.as_deref().is_some_and(|h| h.contains(&expect)))
                && d.field == field
                && d.line == line
                && d.file == *file
        });
        if !found {
            failures.push(format!(
                "{}: want `{expect}` at `{field}` line {line}; got:\n    {}",
                file.display(),
                errors.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} files:\n{}", failures.len(), files.len(), failures.join("\n"));
}

/// The reference competitions have no errors on their own (without plugins; `arena check --strict`
/// against the built plugins is `tests/tests/competitions_cli.rs`).
#[test]
fn reference_competitions_pass_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../competitions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for name in [
        "pretraining-3b",
        "finetuning-instruct-8b",
        "finetuning-reasoning-3b",
        "roleplay",
        "deepfake-image",
        "heldout-ppl",
        "demo",
    ] {
        assert!(files.iter().any(|f| f.file_stem().is_some_and(|s| s == name)), "competitions/{name}.toml");
    }
    let outcome = check_files(&files, &[]);
    let errors: Vec<String> =
        outcome.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}
