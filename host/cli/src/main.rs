//! `arena`: the command-line front of the runtime. `main` parses and dispatches; each command
//! lives in `commands/` (cargo style), shared flags in `args.rs`, rendering in `output.rs`.

use std::process::ExitCode;

use arena_runtime::cancel;
use clap::{Parser, Subcommand};

mod args;
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
    /// Find, load and describe evaluation plugins; make a new one (`arena plugin new`) and test
    /// one against the conformance suite (`arena plugin test`).
    #[command(subcommand, visible_alias = "plugin")]
    Plugins(commands::plugins::PluginsCommand),
    /// Evaluate one or more submissions with a plugin task, exactly as a validator would.
    Eval(commands::eval::EvalArgs),
    /// Check competition and validator files: syntax, types, rules, plugin parameters.
    /// Exit status 0 when every file is valid (warnings allowed), 1 otherwise.
    Check(commands::check::CheckArgs),
    /// Run one round of competitions from their files: plan the evaluations (tasks that share
    /// a pass share one run), check each submission against the constraints, evaluate in
    /// isolated workers, read each task's metric, score, and print the leaderboards, the u16
    /// weights and the round's digest. Exit status 0 when the round completed (failed
    /// submissions included), 2 for bad input.
    Round(commands::round::RoundArgs),
    /// Rounds as one self-contained HTML page: per competition the leaderboard and why each
    /// uid got its weight, each task's raw and normalized scores, who beats whom, weights float
    /// and u16; with a store, scores and weights over rounds; with --yuma, the incentive and
    /// dividends arena's Yuma predicts. --png writes each plot as a PNG.
    Report(commands::report::ReportArgs),
    /// Dry-run the incentive mechanism from raw task scores, without models: totals, win
    /// rates, competition weights, and the weight vector (float and u16) set on chain.
    Score(commands::score::ScoreArgs),
    /// Inspect a model directory without loading its weights (config.json, safetensors headers)
    /// and check it against a competition's constraints.
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    /// Read the chain (metagraph, commitments, weights), set weights as a validator, and run
    /// the embedded chain.
    #[command(subcommand)]
    Chain(commands::chain::ChainCommand),
    /// Publish a model commitment as a miner (the competition's format, hashes included).
    Commit(commands::commit::CommitArgs),
    /// btcli wallets: create a hotkey, show addresses.
    #[command(subcommand)]
    Wallet(commands::wallet::WalletCommand),
    /// The validator service (`run`), from the miners' commitments to weights, crash-safe; and
    /// what its store says (`status`).
    #[command(subcommand)]
    Validator(commands::validator::ValidatorCommand),
    /// Preview Yuma Consensus: run subtensor's epoch (bit-exact fixed point) on a subnet state
    /// and print consensus, incentive, dividends, emission and bonds per uid.
    Yuma(commands::yuma::YumaArgs),
    /// Print the JSON Schema of competition, validator or `arena yuma` input files (for editors).
    Schema {
        /// Which file kind.
        #[arg(value_enum, default_value = "competition")]
        kind: commands::schema::SchemaKind,
    },
    /// Internal: run one job sent on stdin (started by the host for isolated jobs).
    #[command(hide = true)]
    Worker,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Worker = cli.command {
        init_logging();
        return ExitCode::from(arena_runtime::isolate::worker_main() as u8);
    }
    match &cli.command {
        // The service says what it does (info), as JSON lines on request.
        Command::Validator(commands::validator::ValidatorCommand::Run(a)) => {
            init_logging_with("warn,arena_validator=info,arena_chain=info", a.json_logs())
        }
        _ => init_logging(),
    }
    quiet_broken_pipe();
    cancel::install_handler();
    let result = match cli.command {
        Command::Plugins(commands::plugins::PluginsCommand::List { dirs, json }) => {
            commands::plugins::list(&dirs, json)
        }
        Command::Plugins(commands::plugins::PluginsCommand::Inspect { path, json }) => {
            commands::plugins::inspect(&path, json)
        }
        Command::Plugins(commands::plugins::PluginsCommand::New(args)) => commands::plugin_new::exec(args),
        Command::Plugins(commands::plugins::PluginsCommand::Test(args)) => commands::plugin_test::exec(args),
        Command::Eval(args) => commands::eval::exec(args),
        Command::Check(args) => commands::check::exec(args),
        Command::Round(args) => runtime().and_then(|rt| rt.block_on(commands::round::exec(args))),
        Command::Score(args) => commands::score::exec(args),
        Command::Report(args) => runtime().and_then(|rt| rt.block_on(commands::report::exec(args))),
        Command::Yuma(args) => commands::yuma::exec(args),
        Command::Chain(cmd) => runtime().and_then(|rt| rt.block_on(commands::chain::exec(cmd))),
        Command::Commit(args) => runtime().and_then(|rt| rt.block_on(commands::commit::exec(args))),
        Command::Wallet(cmd) => commands::wallet::exec(cmd),
        Command::Validator(commands::validator::ValidatorCommand::Run(a)) => {
            runtime().and_then(|rt| rt.block_on(commands::validator::run(a)))
        }
        Command::Validator(commands::validator::ValidatorCommand::Status(a)) => {
            runtime().and_then(|rt| rt.block_on(commands::validator::status(a)))
        }
        Command::Schema { kind } => commands::schema::exec(kind),
        Command::Model(commands::model::ModelCommand::Inspect { dir, competition, json }) => {
            commands::model::inspect(&dir, competition, json)
        }
        Command::Worker => unreachable!(),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(BROKEN_PIPE as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The process's one tokio runtime, for the commands that talk to a chain (`chain`, `commit`,
/// `round`): each runs inside one `block_on`, and nothing below it blocks on the runtime again.
/// Two workers: the chain client's connection and timers are all that run on it.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `arena … | head`: when the reader goes away, end quietly with the status a shell shows for
/// a tool that SIGPIPE ended (141), instead of Rust's panic on the failed write. SIGPIPE itself
/// stays ignored: the host writes to workers' pipes, and a worker that died must fail its own
/// job, not kill the round.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE);
        }
        default(info);
    }));
}

/// 128 + SIGPIPE.
const BROKEN_PIPE: i32 = 141;

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging() {
    init_logging_with("warn", false);
}

/// Logs to stderr, filtered by `$ARENA_LOG` (else `default`), human or JSON lines.
fn init_logging_with(default: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ARENA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { fmt.json().try_init() } else { fmt.try_init() };
}
