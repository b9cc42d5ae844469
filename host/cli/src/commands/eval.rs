//! `arena eval`: one plugin task on submissions, as a validator runs it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use arena_plugin_api::{Device, EvalOutput, EvalRequest, Limits, TaskSpec};
use arena_runtime::cancel;
use arena_runtime::datasets;
use arena_runtime::inputs::{json_arg, load_samples, parse_size, submission};
use arena_runtime::isolate::{FnProgress, Supervisor};
use arena_runtime::job::{FailureKind, Job, JobFailure, JobLimits, run_in_process};
use arena_runtime::plugins;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::args::{PluginDirs, competition_constraints};

#[derive(Args)]
pub struct EvalArgs {
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
    #[arg(long, value_name = "SECONDS", value_parser = arena_core::units::parse_seconds)]
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

pub fn exec(args: EvalArgs) -> anyhow::Result<ExitCode> {
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
    let limits = JobLimits {
        wall: args.timeout.and_then(|t| arena_core::units::seconds(t).ok()),
        memory_bytes: args.memory,
    };
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
            probe: false,
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
