//! `arena plugins list|inspect|new|test` (`new` in `plugin_new.rs`, `test` in `plugin_test.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use arena_runtime::plugins::{self, PluginLoadError, ProbedPlugin};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::args::PluginDirs;

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// List the plugins found in the plugin directories, and the libraries that failed to load.
    List {
        #[command(flatten)]
        dirs: PluginDirs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Load one plugin library and describe it: name, versions, hash, task kinds.
    Inspect {
        /// Path of the plugin library.
        path: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a plugin crate from a template: depends on arena-plugin-api alone, one task kind
    /// with a JSON Schema, a test and a README; it builds with a plain `cargo build`.
    New(super::plugin_new::NewArgs),
    /// The conformance suite a plugin must pass before validators load it, each check with its
    /// verdict: it loads and its ABI matches; every kind's schema is valid and its defaults
    /// validate; bad parameters get invalid_parameters and a missing or broken submission
    /// invalid_submission, never a crash; absent devices are refused cleanly; with
    /// --submission, two runs with one seed give the same bits, progress is reported,
    /// cancellation is honoured within 2 s; nothing is written to stdout. Exit status 1 when a
    /// check fails.
    Test(super::plugin_test::TestArgs),
}

fn plugin_json(p: &ProbedPlugin) -> Value {
    json!({
        "path": p.path,
        "sha256": p.sha256,
        "name": p.info().name,
        "version": p.info().version,
        "abi_version": p.info().abi_version,
        "tasks": p.info().tasks,
    })
}

fn load_error_json(e: &PluginLoadError) -> Value {
    match e {
        PluginLoadError::Load(l) => json!({"path": l.path(), "error": l.code(), "message": e.to_string()}),
        PluginLoadError::PinMismatch { path, .. } => {
            json!({"path": path, "error": "pin_mismatch", "message": e.to_string()})
        }
        PluginLoadError::Probe { path, code, .. } => {
            json!({"path": path, "error": code, "message": e.to_string()})
        }
    }
}

pub fn list(dirs: &PluginDirs, as_json: bool) -> anyhow::Result<ExitCode> {
    let search = plugins::plugin_dirs(&dirs.plugin_dirs);
    let found = plugins::discover(&search);
    if as_json {
        let (ok, bad): (Vec<_>, Vec<_>) = found.iter().partition(|r| r.is_ok());
        let out = json!({
            "directories": search,
            "plugins": ok.iter().map(|r| plugin_json(r.as_ref().unwrap())).collect::<Vec<_>>(),
            "errors": bad.iter().map(|r| load_error_json(r.as_ref().unwrap_err())).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("searched: {}", search.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "));
    if found.is_empty() {
        println!("no plugin libraries found");
    }
    for r in &found {
        match r {
            Ok(p) => {
                let kinds: Vec<&str> = p.info().tasks.iter().map(|t| t.name.as_str()).collect();
                println!(
                    "  {} {} (ABI {})  tasks: {}\n      {}",
                    p.info().name,
                    p.info().version,
                    p.info().abi_version,
                    kinds.join(", "),
                    p.path.display()
                );
            }
            Err(e) => println!("  FAILED {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let loaded = match plugins::probe(path) {
        Ok(l) => l,
        Err(e) => {
            if as_json {
                println!("{}", serde_json::to_string_pretty(&load_error_json(&e))?);
            } else {
                eprintln!("error: {e}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&plugin_json(&loaded))?);
        return Ok(ExitCode::SUCCESS);
    }
    let info = loaded.info();
    println!("{} {}", info.name, info.version);
    println!("  path:   {}", loaded.path.display());
    println!("  sha256: {}", loaded.sha256);
    println!("  ABI:    {} (this arena: {})", info.abi_version, arena_plugin_api::ABI_VERSION);
    for t in &info.tasks {
        let devs: Vec<&str> = t.devices.iter().map(|d| d.as_str()).collect();
        println!("  task {}  [{}]\n      {}", t.name, devs.join(", "), t.description);
        println!("      parameters: {}", serde_json::to_string(&t.params_schema)?);
    }
    Ok(ExitCode::SUCCESS)
}
