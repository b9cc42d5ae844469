//! `arena check`: competition and validator files, every rule, the plugins' schemas.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use arena_runtime::plugins;

use crate::args::PluginDirs;

#[derive(Args)]
pub struct CheckArgs {
    /// Competition or validator TOML files (a validator file's competitions are checked too).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    dirs: PluginDirs,
    /// Make every warning an error (a task whose plugin or kind is not installed included).
    #[arg(long)]
    strict: bool,
    /// Print the diagnostics as JSON.
    #[arg(long)]
    json: bool,
}

pub fn exec(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let dirs = plugins::plugin_dirs(&args.dirs.plugin_dirs);
    let mut outcome = arena_runtime::checker::check_files(&args.files, &dirs);
    if args.strict {
        outcome = outcome.strict();
    }
    if args.json {
        let out = json!({
            "files": outcome.files,
            "errors": outcome.errors(),
            "warnings": outcome.warnings(),
            "diagnostics": outcome.diagnostics,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let color =
            std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
        eprint!("{}", crate::output::diagnostics(&outcome.diagnostics, &outcome.sources, color));
        eprintln!(
            "checked {} file(s): {} error(s), {} warning(s)",
            outcome.files.len(),
            outcome.errors(),
            outcome.warnings()
        );
    }
    Ok(if outcome.errors() == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
