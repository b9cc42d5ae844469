//! `arena round`: one round of one or more competitions, from the files alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use arena_chain::Chain;
use arena_core::commitment;
use arena_core::config::Competition;
use arena_core::dryrun::State;
use arena_core::round::{self, Outcome, SubmissionEntry, SubmissionsFile};
use arena_plugin_api::Device;
use arena_runtime::inputs::parse_size;
use arena_runtime::ops::round::{self as ops, Observer, Options};
use arena_runtime::{checker, plugins};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::args::{ChainArg, PluginDirs, load_validator};

#[derive(Args)]
pub struct RoundArgs {
    /// Competition TOML files.
    #[arg(required = true, value_name = "COMPETITION.toml")]
    competitions: Vec<PathBuf>,
    /// The round's submissions: {"block", "registered", "submissions": [{"uid", "hotkey",
    /// "block", "competition", "path" | "repo" + "revision", "metadata"}]}, or a bare array of
    /// submissions. Paths are relative to the file. Default: the chain's commitments (--chain,
    /// --network, else the --config's network).
    #[arg(long, value_name = "SUBMISSIONS.json")]
    submissions: Option<PathBuf>,
    /// Read the submissions (miners' commitments), the block and the block hashes from the
    /// embedded chain.
    #[arg(long, value_name = "STATE.json", conflicts_with = "network")]
    chain: Option<PathBuf>,
    /// Read them from a subtensor node: finney, test, local or a ws:// / wss:// URL.
    #[arg(long, value_name = "NETWORK")]
    network: Option<String>,
    /// The subnet (default: the competitions' netuid, or the validator config's).
    #[arg(long, value_name = "N")]
    netuid: Option<u16>,
    /// The current block (default: the submissions file's "block", else the chain's).
    #[arg(long, value_name = "N")]
    block: Option<u64>,
    /// The hash of the sync block of competitions seeded by block hash (default: the chain's).
    #[arg(long, value_name = "HEX")]
    block_hash: Option<String>,
    /// A validator configuration: [funding] shares, devices, plugin directories, the netuid, and
    /// the network the submissions come from when no other source is given.
    #[arg(long, value_name = "VALIDATOR.toml")]
    config: Option<PathBuf>,
    /// EMA state carried between rounds: read if it exists, then written back.
    #[arg(long, value_name = "STATE.json")]
    state: Option<PathBuf>,
    /// Write the round report (runs, raw scores, leaderboards, u16 weights, digest) here.
    #[arg(long, value_name = "ROUND.json")]
    out: Option<PathBuf>,
    /// Runs at once, each in its own worker.
    #[arg(long, value_name = "N", default_value_t = 1)]
    jobs: usize,
    /// Run every evaluation in this process, one at a time (debugging: a crash ends the round).
    #[arg(long)]
    in_process: bool,
    /// Wall-clock limit per run in seconds, instead of the competitions' [limits].
    #[arg(long, value_name = "SECONDS", value_parser = arena_core::units::parse_seconds)]
    timeout: Option<f64>,
    /// Memory limit per run, e.g. 8GiB, instead of the competitions' [limits].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory: Option<u64>,
    #[command(flatten)]
    dirs: PluginDirs,
    /// Print the round report as JSON.
    #[arg(long)]
    json: bool,
}

/// Async for its chain reads only: the evaluation (`ops::execute`) blocks this thread, which is
/// the CLI's `block_on` (no other task runs on the runtime meanwhile).
pub async fn exec(args: RoundArgs) -> anyhow::Result<ExitCode> {
    let validator = args.config.as_deref().map(load_validator).transpose()?;
    let mut dir_args = args.dirs.plugin_dirs.clone();
    if let (Some(path), Some(v)) = (&args.config, &validator) {
        let base = path.parent().unwrap_or(Path::new("."));
        dir_args.extend(v.plugin_dirs.iter().map(|d| base.join(d)));
    }
    let dirs = plugins::plugin_dirs(&dir_args);
    let comps = match checker::load_runnable(&args.competitions, &dirs) {
        Ok(c) => c,
        Err(outcome) => {
            eprint!("{}", crate::output::diagnostics(&outcome.diagnostics, &outcome.sources, false));
            bail!("the competition files cannot run here (see `arena check --strict`)");
        }
    };
    let devices = match &validator {
        Some(v) => v
            .devices
            .iter()
            .map(|d| {
                d.parse::<Device>()
                    .map_err(|e| anyhow::anyhow!("{}: devices: {e}", args.config.as_ref().unwrap().display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        None => vec![Device::Cpu],
    };
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }

    // Without a source on the command line, the validator configuration's network.
    let network = match (&args.submissions, &args.chain, &args.network, &validator) {
        (None, None, None, Some(v)) => Some(v.network.clone()),
        _ => args.network.clone(),
    };
    let chain = match (&args.chain, &network) {
        (None, None) => None,
        (chain, network) => Some(ChainArg { chain: chain.clone(), network: network.clone() }.open().await?),
    };
    let netuid =
        args.netuid.or(validator.as_ref().map(|v| v.netuid)).or_else(|| comps.iter().find_map(|c| c.netuid));
    let (file, base) = match (&args.submissions, &chain) {
        (Some(path), _) => (read_submissions(path)?, path.parent().unwrap_or(Path::new(".")).to_path_buf()),
        (None, Some(chain)) => {
            let netuid = netuid.context("--netuid: which subnet's commitments to read")?;
            (from_chain(chain.as_ref(), netuid, &comps).await?, PathBuf::from("."))
        }
        (None, None) => bail!("pass --submissions, or --chain / --network to read the miners' commitments"),
    };
    round::validate(&file, &comps).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}",
            args.submissions.as_deref().unwrap_or(Path::new("the chain's commitments")).display()
        )
    })?;
    let block = match (args.block, file.block, &chain) {
        (Some(b), _, _) | (None, Some(b), _) => b,
        (None, None, Some(c)) => c.current_block().await?,
        (None, None, None) => {
            bail!("no current block: pass --block or put \"block\" in the submissions file")
        }
    };
    let mut hashes = BTreeMap::new();
    for sync in round::sync_blocks(&comps, block) {
        let hash = match (&args.block_hash, &chain) {
            (Some(h), _) => h.clone(),
            (None, Some(c)) => c.block_hash(sync).await?,
            (None, None) => continue,
        };
        hashes.insert(sync, hash);
    }
    let plan = round::plan(&comps, &file, block, &hashes).map_err(|e| anyhow::anyhow!(e))?;
    let prepared = ops::prepare(&comps, &file, &base, &plan, &dirs)?;
    let mut state = match &args.state {
        Some(p) if p.exists() => {
            let text = arena_runtime::files::read_json_text(p)?;
            serde_json::from_str::<State>(&text)
                .with_context(|| format!("parsing the state {}", p.display()))?
        }
        _ => State::default(),
    };

    let options = Options {
        isolated: !args.in_process,
        jobs: args.jobs,
        devices,
        timeout: args.timeout,
        memory: args.memory,
    };
    let bars = Bars::new(args.json);
    let outcomes = match ops::execute(&plan, &prepared, &options, &bars) {
        Ok(o) => o,
        Err(_) if arena_runtime::cancel::requested() => {
            eprintln!("cancelled: no report written");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Err(e),
    };
    let funding = validator.as_ref().map(|v| &v.funding);
    let report = round::collect(&comps, funding, &file, &plan, outcomes, &mut state)
        .map_err(|e| anyhow::anyhow!(e))?;

    if let Some(p) = &args.state {
        crate::output::write_atomic(p, &serde_json::to_string_pretty(&state)?)
            .with_context(|| format!("writing the state {}", p.display()))?;
    }
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(p) = &args.out {
        crate::output::write_atomic(p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print_runs(&report);
        print!("{}", crate::output::leaderboard(&report.scores, &comps));
        println!("digest {}", report.digest);
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads SUBMISSIONS.json; errors name the file and the field.
fn read_submissions(path: &Path) -> anyhow::Result<SubmissionsFile> {
    let text = arena_runtime::files::read_json_text(path)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    let parsed = if value.is_array() {
        serde_path_to_error::deserialize::<_, Vec<SubmissionEntry>>(value)
            .map(|submissions| SubmissionsFile { submissions, ..Default::default() })
    } else {
        serde_path_to_error::deserialize::<_, SubmissionsFile>(value)
    };
    parsed.map_err(|e| {
        let field = e.path().to_string();
        anyhow::anyhow!(
            "{}: {}: {}",
            path.display(),
            if field == "." { "the file".into() } else { field },
            e.inner()
        )
    })
}

/// The round's submissions from the miners' commitments: each commitment that parses in a
/// competition's format and names that competition is a hub model at its committed revision.
async fn from_chain(
    chain: &dyn Chain,
    netuid: u16,
    comps: &[Competition],
) -> anyhow::Result<SubmissionsFile> {
    let metagraph = chain.metagraph(netuid).await?;
    let mut submissions = Vec::new();
    let mut commitments = chain.commitments(netuid).await?;
    commitments.sort_by_key(|c| (c.uid, c.block));
    for c in commitments {
        let (Some(uid), Ok(data)) = (c.uid, &c.data) else { continue };
        for comp in comps {
            let Ok(m) = commitment::parse(comp.commitment.format, data) else { continue };
            if !comp.owns(&m) {
                continue;
            }
            submissions.push(SubmissionEntry {
                uid,
                hotkey: c.hotkey.clone(),
                block: c.block,
                competition: comp.id.clone(),
                path: None,
                repo: Some(m.repo()),
                revision: Some(m.commit.clone().unwrap_or_else(|| "main".into())),
                metadata: Some(serde_json::to_value(&m)?),
            });
        }
    }
    Ok(SubmissionsFile {
        block: Some(metagraph.block),
        registered: Some(metagraph.neurons.len()),
        submissions,
    })
}

fn print_runs(report: &round::RoundReport) {
    for r in &report.runs {
        let head =
            format!("{} uid {} {}/{} ({})", r.competition, r.uid, r.plugin, r.kind, r.tasks.join(", "));
        match (&r.output, &r.failure) {
            (Some(o), _) => {
                let metrics: Vec<String> = o.metrics.iter().map(|(k, v)| format!("{k}={v:.6}")).collect();
                println!(
                    "ok      {head}: raw_score={} {} ({:.2}s)",
                    o.raw_score,
                    metrics.join(" "),
                    r.wall_ms as f64 / 1e3
                );
                for (task, why) in &r.task_failures {
                    println!("        task {task} failed: {why}");
                }
            }
            (None, Some(f)) => println!("FAILED  {head}: {f} ({:.2}s)", r.wall_ms as f64 / 1e3),
            (None, None) => {}
        }
    }
}

/// One progress bar per running run (hidden with --json).
struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<usize, ProgressBar>>,
    hidden: bool,
}

impl Bars {
    fn new(hidden: bool) -> Self {
        Bars { multi: MultiProgress::new(), bars: Mutex::new(BTreeMap::new()), hidden }
    }
}

impl Observer for Bars {
    fn started(&self, run: usize, label: &str) {
        let bar = if self.hidden { ProgressBar::hidden() } else { self.multi.add(ProgressBar::new(0)) };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bars.lock().unwrap().insert(run, bar);
    }
    fn progress(&self, run: usize, done: u64, total: u64, message: &str) {
        if let Some(bar) = self.bars.lock().unwrap().get(&run) {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(message.to_string());
        }
    }
    fn finished(&self, run: usize, _outcome: &Outcome, _wall_ms: u64) {
        if let Some(bar) = self.bars.lock().unwrap().remove(&run) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}
