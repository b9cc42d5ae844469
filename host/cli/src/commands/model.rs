//! `arena model inspect`: a model directory without its weights, against a competition.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::args::competition_constraints;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Architecture, parameters, dtypes, size; with --competition, the constraints it breaks.
    /// Exit status 0 when the model is readable (and meets the constraints), 1 otherwise.
    Inspect {
        /// The model directory (Hugging Face layout: config.json, *.safetensors).
        dir: PathBuf,
        /// A competition file whose [constraints] the model must meet.
        #[arg(long, value_name = "COMPETITION.toml")]
        competition: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn inspect(dir: &Path, competition: Option<PathBuf>, as_json: bool) -> anyhow::Result<ExitCode> {
    let constraints = competition.as_deref().map(competition_constraints).transpose()?;
    let summary = arena_runtime::model::inspect(dir);
    let violations = match (&summary, &constraints) {
        (Ok(s), Some(c)) => arena_runtime::model::violations(s, c),
        _ => Vec::new(),
    };
    let ok = summary.is_ok() && violations.is_empty();
    if as_json {
        let out = match &summary {
            Ok(s) => json!({"ok": ok, "model": s, "violations": violations}),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        match &summary {
            Ok(s) => {
                println!("{}", s.dir.display());
                println!("  architecture  {}", s.architectures.join(", "));
                println!(
                    "  parameters    {} in {} tensors ({})",
                    s.parameters,
                    s.tensors,
                    s.dtypes.iter().map(|(d, n)| format!("{d} {n}")).collect::<Vec<_>>().join(", ")
                );
                println!("  files         {} bytes; weights in {}", s.total_bytes, s.weight_files.join(", "));
                if let Some(p) = s.max_positions {
                    println!("  positions     {p}");
                }
                for v in &violations {
                    println!("  REJECTED: {v}");
                }
                if competition.is_some() && violations.is_empty() {
                    println!("  meets the competition's constraints");
                }
            }
            Err(e) => println!("REJECTED: {e}"),
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
