//! `arena validator run|status`: the validator service, and what its store says.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use arena_plugin_api::Device;
use arena_runtime::{checker, plugins};
use arena_validator::{ChainSource, Exit, Settings};
use clap::{Args, Subcommand};

use crate::args::{PluginDirs, WalletArgs, load_validator, print_json, table};

#[derive(Subcommand)]
pub enum ValidatorCommand {
    /// Run the validator service: sync the chain (block, metagraph, miners' commitments), run a
    /// round of the funded competitions at each round block (jobs in the store, evaluated by
    /// one worker slot per device in isolated workers), score it, and set weights once per
    /// epoch. Killed at any point and started again, it loses no result and sends no epoch's
    /// weights twice. SIGTERM or Ctrl-C stops it (running jobs go back to the queue); a second
    /// one kills the workers.
    Run(RunArgs),
    /// What the validator's store says: recent rounds, leaderboards, jobs pending or failed
    /// with their reasons, the last weights set. Reads the store while the validator runs.
    Status(StatusArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The validator configuration: netuid, network, wallet, competitions, devices, funding,
    /// store, [service] cadences.
    #[arg(long, value_name = "VALIDATOR.toml")]
    config: PathBuf,
    /// The embedded chain (a state file from `arena chain local new`) instead of the
    /// configuration's network.
    #[arg(long, value_name = "STATE.json", conflicts_with = "network")]
    chain: Option<PathBuf>,
    /// A subtensor node instead of the configuration's network: finney, test, local or a URL.
    #[arg(long, value_name = "NETWORK")]
    network: Option<String>,
    #[command(flatten)]
    wallet: WalletArgs,
    /// The store (default: the configuration's `store`, else arena-validator.sqlite beside it).
    #[arg(long, value_name = "FILE.sqlite")]
    store: Option<PathBuf>,
    /// Stop once every round up to this block is scored and its weights are set.
    #[arg(long, value_name = "BLOCK")]
    until_block: Option<u64>,
    /// The version key sent with weights (the subnet's, when higher).
    #[arg(long, value_name = "N", default_value_t = 0)]
    version_key: u64,
    #[command(flatten)]
    dirs: PluginDirs,
    /// Log lines as `human` text or `json` (one object per line), on stderr.
    #[arg(long, value_name = "FORMAT", default_value = "human", value_parser = ["human", "json"])]
    log_format: String,
}

impl RunArgs {
    pub fn json_logs(&self) -> bool {
        self.log_format == "json"
    }
}

#[derive(Args)]
pub struct StatusArgs {
    /// The validator configuration (its store is read).
    #[arg(long, value_name = "VALIDATOR.toml", required_unless_present = "store")]
    config: Option<PathBuf>,
    /// The store, instead of the configuration's.
    #[arg(long, value_name = "FILE.sqlite")]
    store: Option<PathBuf>,
    /// Rounds to show.
    #[arg(long, value_name = "N", default_value_t = 5)]
    rounds: u32,
    #[arg(long)]
    json: bool,
}

/// The store a configuration names, relative to its file.
fn store_path(config_path: &Path, config: &arena_core::config::ValidatorConfig) -> PathBuf {
    let base = config_path.parent().unwrap_or(Path::new("."));
    base.join(config.store.clone().unwrap_or_else(|| PathBuf::from("arena-validator.sqlite")))
}

fn instance() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is given.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    let host = match std::str::from_utf8(&buf[..end]) {
        Ok(h) if ok && !h.is_empty() => h.to_string(),
        _ => "host".into(),
    };
    format!("{host}:{}", std::process::id())
}

pub async fn run(a: RunArgs) -> Result<ExitCode> {
    let config = load_validator(&a.config)?;
    let base = a.config.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut dir_args = a.dirs.plugin_dirs.clone();
    dir_args.extend(config.plugin_dirs.iter().map(|d| base.join(d)));
    let plugin_dirs = plugins::plugin_dirs(&dir_args);
    let paths: Vec<PathBuf> = config.competitions.iter().map(|c| base.join(c)).collect();
    let competitions = match checker::load_runnable(&paths, &plugin_dirs) {
        Ok(c) => c,
        Err(outcome) => {
            eprint!("{}", crate::output::diagnostics(&outcome.diagnostics, &outcome.sources, false));
            anyhow::bail!("the competition files cannot run here (see `arena check --strict`)");
        }
    };
    // Only what this validator funds is evaluated.
    let competitions = competitions.into_iter().filter(|c| config.funding.contains_key(&c.id)).collect();
    let devices = config
        .devices
        .iter()
        .map(|d| d.parse::<Device>().map_err(|e| anyhow::anyhow!("{}: devices: {e}", a.config.display())))
        .collect::<Result<Vec<_>>>()?;
    let chain = match (&a.chain, &a.network) {
        (Some(path), _) => ChainSource::Local(path.clone()),
        (None, Some(n)) => ChainSource::Network(n.clone()),
        (None, None) => ChainSource::Network(config.network.clone()),
    };
    let signer = a.wallet.or_config(&config.wallet).hotkey().context("the validator's hotkey")?;
    let store = a.store.clone().unwrap_or_else(|| store_path(&a.config, &config));
    let settings = Settings {
        config,
        competitions,
        plugin_dirs,
        devices,
        chain,
        signer,
        store,
        until_block: a.until_block,
        version_key: a.version_key,
        instance: instance(),
    };
    match arena_validator::run(settings).await? {
        Exit::UntilBlock(b) => println!(
            "validator: stopped at block {b}: every round to --until-block is scored and its weights set"
        ),
        Exit::Stopped => println!("validator: stopped; running jobs went back to the queue"),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(a: StatusArgs) -> Result<ExitCode> {
    let path = match (&a.store, &a.config) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => store_path(c, &load_validator(c)?),
        (None, None) => anyhow::bail!("pass --config or --store"),
    };
    let store = arena_store::Sqlite::open_read_only(&path).await?;
    let st = arena_validator::status::status(&store, a.rounds).await?;
    if a.json {
        print_json(&st)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(vec!["round block", "state", "digest", "note"]);
    for r in &st.rounds {
        let note = match (&r.reason, r.failed_runs.len()) {
            (Some(why), _) => why.clone(),
            (None, 0) => String::new(),
            (None, n) => format!("{n} run(s) failed"),
        };
        t.add_row(vec![
            r.block.to_string(),
            format!("{:?}", r.state).to_lowercase(),
            r.digest.as_deref().map(|d| d[..16.min(d.len())].to_string()).unwrap_or_default(),
            note,
        ]);
    }
    println!("{t}");
    for lb in &st.leaderboards {
        println!("\n{} (round at block {})", lb.competition, lb.block);
        let mut t = table(vec!["uid", "total", "win rate", "weight"]);
        for r in &lb.rows {
            let f = |k: &str| r[k].as_f64().map(|v| format!("{v:.6}")).unwrap_or_else(|| r[k].to_string());
            t.add_row(vec![r["uid"].to_string(), f("total"), f("win_rate"), f("weight")]);
        }
        println!("{t}");
    }
    println!("\njobs: {}", st.jobs.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "));
    for j in &st.open_jobs {
        println!(
            "  job {} {} (attempt {}/{}){}",
            j.id,
            j.state,
            j.attempt,
            j.max_attempts,
            j.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    for r in st.rounds.iter().filter(|r| !r.failed_runs.is_empty()).take(1) {
        println!("failed runs of the round at block {}:", r.block);
        for f in &r.failed_runs {
            println!("  {f}");
        }
    }
    match &st.last_weights {
        Some(w) => println!(
            "last weights: round at block {}: {} ({})",
            w.round_block,
            w.weights.iter().map(|(u, v)| format!("{u}:{v}")).collect::<Vec<_>>().join(" "),
            w.outcome.get("outcome").and_then(|o| o.as_str()).unwrap_or("?")
        ),
        None => println!("last weights: none set yet"),
    }
    if let Some(c) = &st.chain {
        let age = c["moved_ms"].as_u64().map(|t| arena_validator::now_ms().saturating_sub(t) as f64 / 1e3);
        println!(
            "chain: block {} (it last moved {} s ago)",
            c["block"],
            age.map(|a| format!("{a:.1}")).unwrap_or_else(|| "?".into())
        );
    }
    if let Some(p) = &st.predicted_vtrust {
        match (p["validator_trust"].as_f64(), p["current_validator_trust"].as_f64()) {
            (Some(v), Some(now)) => {
                let clipped: Vec<String> = p["clipped"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| format!("uid {} +{:.4}", c[0], c[1].as_f64().unwrap_or(0.0)))
                    .collect();
                println!(
                    "predicted vtrust: {v:.4} (now {now:.4}) at block {}, {:.1}% of its weight beyond consensus{}",
                    p["block"],
                    p["consensus_distance"].as_f64().unwrap_or(0.0) * 100.0,
                    if clipped.is_empty() { String::new() } else { format!(" ({})", clipped.join(", ")) }
                );
            }
            _ => println!(
                "predicted vtrust: none at block {}: {}",
                p["block"],
                p["reason"].as_str().unwrap_or("?")
            ),
        }
    }
    if let Some(m) = &st.metrics {
        println!("metrics: http://{m}/metrics");
    }
    println!("store: {} bytes", st.store_bytes);
    Ok(ExitCode::SUCCESS)
}
