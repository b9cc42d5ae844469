//! `arena score`: the incentive mechanism from raw scores (`arena round` minus the runs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use arena_core::dryrun::{self, RawScores, State};
use clap::Args;

#[derive(Args)]
pub struct ScoreArgs {
    /// Competition TOML files.
    #[arg(required = true, value_name = "COMPETITION.toml")]
    competitions: Vec<PathBuf>,
    /// Raw task scores: {"block": N, "registered": N, "submissions": [{"uid", "hotkey", "block",
    /// "competition", "tasks": {"task": score or null}}]} ("registered", the metagraph size, only
    /// for competitions whose opponents are the whole registry).
    #[arg(long, value_name = "RAW.json")]
    raw: PathBuf,
    /// The current block (default: RAW.json's "block").
    #[arg(long, value_name = "N")]
    block: Option<u64>,
    /// EMA state carried between calls: read if it exists, then written back.
    #[arg(long, value_name = "STATE.json")]
    state: Option<PathBuf>,
    /// A validator configuration whose [funding] shares replace the competitions' own.
    #[arg(long, value_name = "VALIDATOR.toml")]
    config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn exec(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let comps = match arena_runtime::checker::load_competitions(&args.competitions) {
        Ok(c) => c,
        Err(outcome) => {
            eprint!("{}", crate::output::diagnostics(&outcome.diagnostics, &outcome.sources, false));
            anyhow::bail!("the competition files have errors (see `arena check`)");
        }
    };
    let funding = match &args.config {
        None => None,
        Some(path) => Some(crate::args::load_validator(path)?.funding),
    };
    let raw_text = arena_runtime::files::read_json_text(&args.raw)?;
    let raw: RawScores =
        serde_json::from_str(&raw_text).with_context(|| format!("parsing {}", args.raw.display()))?;
    let block =
        args.block.or(raw.block).context("no current block: pass --block or put \"block\" in RAW.json")?;
    let mut state = match &args.state {
        Some(p) if p.exists() => {
            let text = arena_runtime::files::read_json_text(p)?;
            serde_json::from_str(&text).with_context(|| format!("parsing the state {}", p.display()))?
        }
        _ => State::default(),
    };
    let report =
        dryrun::score(&comps, funding.as_ref(), &raw, block, &mut state).map_err(|e| anyhow::anyhow!(e))?;
    if let Some(p) = &args.state {
        let tmp = p.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&state)? + "\n")
            .and_then(|()| std::fs::rename(&tmp, p))
            .with_context(|| format!("writing the state {}", p.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::output::leaderboard(&report, &comps));
    }
    Ok(ExitCode::SUCCESS)
}
