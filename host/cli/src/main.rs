//! `arena`: the command-line front of the runtime.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use arena_core::dryrun::{self, RawScores, State};
use arena_plugin_api::{Device, EvalOutput, EvalRequest, Limits, TaskSpec};
use arena_runtime::cancel;
use arena_runtime::datasets;
use arena_runtime::inputs::{json_arg, load_samples, parse_size, submission};
use arena_runtime::isolate::{FnProgress, Supervisor};
use arena_runtime::job::{FailureKind, Job, JobFailure, JobLimits, run_in_process};
use arena_runtime::plugins::{self, LoadedPlugin, PluginLoadError};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

mod cli_chain;
mod commands;
mod output;

#[derive(Parser)]
#[command(
    name = "arena",
    version,
    about = "A runtime for Bittensor subnet competitions: competitions in TOML, evaluation plugins, isolated evaluation jobs, the weights they lead to, set on chain, and a bit-exact Yuma Consensus preview."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find, load and describe evaluation plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Evaluate one or more submissions with a plugin task, exactly as a validator would.
    Eval(EvalArgs),
    /// Check competition and validator files: syntax, types, rules, plugin parameters.
    /// Exit status 0 when every file is valid (warnings allowed), 1 otherwise.
    Check(CheckArgs),
    /// Run one round of competitions from their files: plan the evaluations (tasks that share
    /// a pass share one run), check each submission against the constraints, evaluate in
    /// isolated workers, read each task's metric, score, and print the leaderboards, the u16
    /// weights and the round's digest. Exit status 0 when the round completed (failed
    /// submissions included), 2 for bad input.
    Round(commands::round::RoundArgs),
    /// Dry-run the incentive mechanism from raw task scores, without models: totals, win
    /// rates, competition weights, and the weight vector (float and u16) set on chain.
    Score(ScoreArgs),
    /// Inspect a model directory without loading its weights (config.json, safetensors headers)
    /// and check it against a competition's constraints.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Read the chain (metagraph, commitments, weights), set weights as a validator, and run
    /// the embedded chain.
    #[command(subcommand)]
    Chain(cli_chain::ChainCommand),
    /// Publish a model commitment as a miner (the competition's format, hashes included).
    Commit(cli_chain::CommitArgs),
    /// btcli wallets: create a hotkey, show addresses.
    #[command(subcommand)]
    Wallet(cli_chain::WalletCommand),
    /// Preview Yuma Consensus: run subtensor's epoch (bit-exact fixed point) on a subnet state
    /// and print consensus, incentive, dividends, emission and bonds per uid.
    Yuma(YumaArgs),
    /// Print the JSON Schema of competition, validator or `arena yuma` input files (for editors).
    Schema {
        /// Which file kind.
        #[arg(value_enum, default_value = "competition")]
        kind: SchemaKind,
    },
    /// Internal: run one job sent on stdin (started by the host for isolated jobs).
    #[command(hide = true)]
    Worker,
}

#[derive(Subcommand)]
enum PluginsCommand {
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
}

#[derive(Args)]
struct PluginDirs {
    /// A directory to search for plugins (repeatable). Also searched: $ARENA_PLUGIN_PATH, then
    /// the arena executable's directory and its plugins/ subdirectory.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
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

#[derive(Args)]
struct ScoreArgs {
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

#[derive(Args)]
struct YumaArgs {
    /// The epoch's input: {"current_block", "stake": [rao per uid], "last_update",
    /// "block_at_registration", "validator_permit", "weights" (dense rows or [uid, u16] pairs),
    /// optional "bonds", "owner_uid", "tao_stake", "tao_weight", "commit_blocks", "emission",
    /// "hyperparameters" {tempo, kappa, bonds_moving_average, bonds_penalty, liquid_alpha,
    /// alpha_low, alpha_high, alpha_sigmoid_steepness, yuma3, activity_cutoff,
    /// max_allowed_validators, commit_reveal, stake_threshold}, and "then": [changes per later
    /// epoch]}. `arena schema yuma` prints the full schema.
    #[arg(long, value_name = "EPOCH.json")]
    input: PathBuf,
    /// Run this many epochs, one tempo apart; bonds and permits carry over.
    #[arg(long, value_name = "N", default_value_t = 1)]
    epochs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ModelCommand {
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

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaKind {
    Competition,
    Validator,
    /// The input of `arena yuma`.
    Yuma,
}

#[derive(Args)]
struct EvalArgs {
    /// The plugin: a library path, or a plugin name looked up in the plugin directories.
    #[arg(long)]
    plugin: String,
    /// The task kind to run (see `arena plugins inspect`).
    #[arg(long)]
    task: String,
    /// Task parameters: inline JSON, or a JSON file.
    #[arg(long, value_name = "JSON|FILE")]
    params: Option<String>,
    /// A submission (file or directory); repeat to evaluate several, one job each.
    #[arg(long, required = true, value_name = "PATH")]
    submission: Vec<PathBuf>,
    /// Submission metadata (inline JSON or a file); default: the submission's submission.json.
    #[arg(long, value_name = "JSON|FILE")]
    metadata: Option<String>,
    /// Samples: a JSON array or JSON-lines file of records, a text or Parquet file, a folder of
    /// them, a hub dataset hf://datasets/OWNER/NAME[@REVISION][/PATH] (read from the hub cache),
    /// or a media registry (.yaml, gasbench's layout: one sample per media file of each dataset)
    #[arg(long, value_name = "DATASET")]
    samples: Option<String>,
    /// Check each submission against this competition's model constraints (config.json and
    /// safetensors headers only) before its job; a violation fails the job without running the plugin
    #[arg(long, value_name = "COMPETITION.toml")]
    competition: Option<PathBuf>,
    /// Draw this many samples: Python's shuffle of the rows seeded by --seed, then the first N
    #[arg(long, value_name = "N", conflicts_with = "sample_pages")]
    sample_rows: Option<usize>,
    /// Draw this many pages of --rows-per-page consecutive rows, each page chosen with Python's
    /// randint seeded by --seed (SN37's page choice)
    #[arg(long, value_name = "N", requires = "rows_per_page")]
    sample_pages: Option<usize>,
    /// Rows per page for --sample-pages
    #[arg(long, value_name = "N")]
    rows_per_page: Option<usize>,
    /// Device: cpu, cuda, cuda:N or wgpu.
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Seed for every random choice of the task.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run each job in a separate worker process, with limits: a crash or hang costs the job only.
    #[arg(long)]
    isolated: bool,
    /// Wall-clock limit per job, in seconds (enforced with --isolated; always passed to the task).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Memory limit per job, e.g. 4GiB (enforced with --isolated; always passed to the task).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<u64>,
    /// Refuse to run unless the plugin file has this sha256.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    #[command(flatten)]
    dirs: PluginDirs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Worker = cli.command {
        init_logging();
        return ExitCode::from(arena_runtime::isolate::worker_main() as u8);
    }
    init_logging();
    cancel::install_handler();
    let result = match cli.command {
        Command::Plugins(PluginsCommand::List { dirs, json }) => plugins_list(&dirs, json),
        Command::Plugins(PluginsCommand::Inspect { path, json }) => plugins_inspect(&path, json),
        Command::Eval(args) => eval(args),
        Command::Check(args) => check(args),
        Command::Round(args) => commands::round::exec(args),
        Command::Score(args) => score(args),
        Command::Yuma(args) => yuma(args),
        Command::Chain(cmd) => cli_chain::chain(cmd),
        Command::Commit(args) => cli_chain::commit(args),
        Command::Wallet(cmd) => cli_chain::wallet(cmd),
        Command::Schema { kind } => schema(kind),
        Command::Model(ModelCommand::Inspect { dir, competition, json }) => {
            model_inspect(&dir, competition, json)
        }
        Command::Worker => unreachable!(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARENA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn plugin_json(p: &LoadedPlugin) -> Value {
    json!({
        "path": p.plugin.path(),
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
    }
}

fn plugins_list(dirs: &PluginDirs, as_json: bool) -> anyhow::Result<ExitCode> {
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
                    p.plugin.path().display()
                );
            }
            Err(e) => println!("  FAILED {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn plugins_inspect(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let loaded = match plugins::load_pinned(path, None) {
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
    println!("  path:   {}", loaded.plugin.path().display());
    println!("  sha256: {}", loaded.sha256);
    println!("  ABI:    {} (this arena: {})", info.abi_version, arena_plugin_api::ABI_VERSION);
    for t in &info.tasks {
        let devs: Vec<&str> = t.devices.iter().map(|d| d.as_str()).collect();
        println!("  task {}  [{}]\n      {}", t.name, devs.join(", "), t.description);
        println!("      parameters: {}", serde_json::to_string(&t.params_schema)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let dirs = plugins::plugin_dirs(&args.dirs.plugin_dirs);
    let plugin = plugins::resolve(&args.plugin, &dirs)?;
    let params = match &args.params {
        Some(p) => json_arg(p).context("--params")?,
        None => json!({}),
    };
    let metadata = args.metadata.as_deref().map(json_arg).transpose().context("--metadata")?;
    let samples = match args.samples.as_deref() {
        None => Vec::new(),
        Some(spec) => {
            let sampling = match (args.sample_rows, args.sample_pages, args.rows_per_page) {
                (Some(n), _, _) => datasets::Sampling::Rows(n),
                (None, Some(pages), Some(rows_per_page)) => {
                    datasets::Sampling::Pages { pages, rows_per_page }
                }
                _ => datasets::Sampling::All,
            };
            load_samples(spec, sampling, &args.seed.to_be_bytes()).context("--samples")?
        }
    };
    let limits = JobLimits { wall: args.timeout.map(Duration::from_secs_f64), memory_bytes: args.memory };
    if !args.isolated && (limits.wall.is_some() || limits.memory_bytes.is_some()) {
        tracing::warn!(
            "--timeout and --memory are enforced only with --isolated; passing them to the task as hints"
        );
    }
    let task = TaskSpec { kind: args.task.clone(), params, device: args.device, seed: args.seed };
    let supervisor = if args.isolated { Some(Supervisor::current_exe()?) } else { None };
    let constraints = args.competition.as_deref().map(competition_constraints).transpose()?;

    let mut results = Vec::new();
    let mut failed = 0usize;
    for path in &args.submission {
        if cancel::requested() {
            break;
        }
        let sub = submission(path, None, metadata.as_ref())?;
        let job = Job {
            plugin: plugin.clone(),
            plugin_sha256: args.sha256.clone(),
            task: task.clone(),
            request: EvalRequest {
                submission: sub,
                samples: samples.clone(),
                limits: Limits {
                    time_limit_ms: limits.wall.map(|w| w.as_millis() as u64),
                    memory_limit_bytes: limits.memory_bytes,
                },
            },
        };
        let bar = if args.json { ProgressBar::hidden() } else { ProgressBar::new(0) };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_prefix(job.request.submission.id.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        let progress = FnProgress(|done, total, msg: &str| {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(msg.to_string());
        });
        let start = Instant::now();
        let refused = constraints.as_ref().and_then(|c| constraint_failure(&job.request.submission, c));
        let outcome = match (refused, &supervisor) {
            (Some(f), _) => Err(f),
            (None, Some(s)) => s.run(&job, limits, &progress),
            (None, None) => run_in_process(&job, &progress),
        };
        bar.finish_and_clear();
        let wall_ms = start.elapsed().as_millis() as u64;
        if outcome.is_err() {
            failed += 1;
        }
        if !args.json {
            print_outcome(&job.request.submission.id, &outcome, wall_ms);
        }
        results.push(result_json(&job.request.submission.id, &outcome, wall_ms));
    }

    if args.json {
        let out = json!({
            "plugin": plugin,
            "task": task.kind,
            "device": task.device,
            "seed": task.seed,
            "isolated": args.isolated,
            "limits": {
                "timeout_s": args.timeout,
                "memory_bytes": args.memory,
            },
            "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if args.submission.len() > 1 {
        println!("{} of {} jobs succeeded", args.submission.len() - failed, args.submission.len());
    }
    if cancel::requested() {
        return Ok(ExitCode::from(130));
    }
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn result_json(id: &str, outcome: &Result<EvalOutput, JobFailure>, wall_ms: u64) -> Value {
    match outcome {
        Ok(o) => json!({"submission": id, "status": "ok", "wall_ms": wall_ms, "output": o}),
        Err(f) => json!({"submission": id, "status": "failed", "wall_ms": wall_ms, "failure": f}),
    }
}

fn print_outcome(id: &str, outcome: &Result<EvalOutput, JobFailure>, wall_ms: u64) {
    match outcome {
        Ok(o) => {
            let metrics: Vec<String> = o.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "ok      {id}  raw_score={}  {}  ({:.2}s)",
                o.raw_score,
                metrics.join(" "),
                wall_ms as f64 / 1e3
            );
        }
        Err(f) => {
            println!("FAILED  {id}  {f}  ({:.2}s)", wall_ms as f64 / 1e3);
        }
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
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

fn score(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let comps = match arena_runtime::checker::load_competitions(&args.competitions) {
        Ok(c) => c,
        Err(outcome) => {
            eprint!("{}", crate::output::diagnostics(&outcome.diagnostics, &outcome.sources, false));
            anyhow::bail!("the competition files have errors (see `arena check`)");
        }
    };
    let funding = match &args.config {
        None => None,
        Some(path) => {
            let parsed = arena_runtime::checker::load::<arena_core::config::ValidatorConfig>(path)
                .map_err(|d| anyhow::anyhow!("{d}"))?;
            Some(parsed.value.funding)
        }
    };
    let raw_text =
        std::fs::read_to_string(&args.raw).with_context(|| format!("reading {}", args.raw.display()))?;
    let raw: RawScores =
        serde_json::from_str(&raw_text).with_context(|| format!("parsing {}", args.raw.display()))?;
    let block =
        args.block.or(raw.block).context("no current block: pass --block or put \"block\" in RAW.json")?;
    let mut state = match &args.state {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
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

fn yuma(args: YumaArgs) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let input = arena_yuma::report::parse(&text, &args.input.display().to_string())?;
    let results = arena_yuma::run(&input, args.epochs)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json!({"epochs": results}))?);
    } else {
        print!("{}", crate::output::epochs(&results, input.emission));
    }
    Ok(ExitCode::SUCCESS)
}

fn schema(kind: SchemaKind) -> anyhow::Result<ExitCode> {
    let schema = match kind {
        SchemaKind::Competition => schemars::schema_for!(arena_core::config::Competition),
        SchemaKind::Validator => schemars::schema_for!(arena_core::config::ValidatorConfig),
        SchemaKind::Yuma => schemars::schema_for!(arena_yuma::EpochInput),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}

/// One competition file, its errors rendered as `arena check` does.
fn load_competition(path: &Path) -> anyhow::Result<arena_core::config::Competition> {
    match arena_runtime::checker::load_competitions(&[path.to_path_buf()]) {
        Ok(mut c) => Ok(c.remove(0)),
        Err(outcome) => {
            eprint!("{}", crate::output::diagnostics(&outcome.diagnostics, &outcome.sources, false));
            anyhow::bail!("the competition file has errors (see `arena check`)");
        }
    }
}

/// A competition file's model constraints (its errors rendered as `arena check` does).
fn competition_constraints(path: &Path) -> anyhow::Result<arena_core::config::Constraints> {
    Ok(load_competition(path)?.constraints)
}

/// Why a submission fails a competition's constraints (its files' size; config.json and the
/// safetensors headers for language-model constraints; no weights loaded); `None` when it meets
/// them.
fn constraint_failure(
    sub: &arena_plugin_api::Submission,
    c: &arena_core::config::Constraints,
) -> Option<JobFailure> {
    let v = arena_runtime::model::submission_violations(&sub.path, &sub.metadata, c);
    if v.is_empty() {
        return None;
    }
    Some(JobFailure::new(FailureKind::InvalidSubmission, format!("model constraints: {}", v.join("; "))))
}

fn model_inspect(dir: &Path, competition: Option<PathBuf>, as_json: bool) -> anyhow::Result<ExitCode> {
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
