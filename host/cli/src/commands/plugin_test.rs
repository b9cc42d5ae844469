//! `arena plugin test`: the conformance suite a plugin library must pass before validators load
//! it, each check with its verdict (the suite is `arena_runtime::conformance`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use arena_runtime::conformance::{self, Check, Inputs, Verdict};
use arena_runtime::datasets::Sampling;
use arena_runtime::inputs::{json_arg, load_samples, parse_size, submission};
use arena_runtime::isolate::Supervisor;
use arena_runtime::plugins;
use clap::Args;

use crate::args::PluginDirs;

#[derive(Args)]
pub struct TestArgs {
    /// The plugin: a library path, or a plugin name looked up in the plugin directories.
    lib: String,
    /// The task kind to run on the submission (default: the library's only kind).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// Parameters of that kind: inline JSON, or a JSON file (default: `{}`).
    #[arg(long, value_name = "JSON|FILE")]
    params: Option<String>,
    /// A submission the kind accepts (file or directory): the run, determinism, progress and
    /// cancellation checks need one; its files, with their bytes replaced by junk, are the
    /// broken submission.
    #[arg(long, value_name = "PATH")]
    submission: Option<PathBuf>,
    /// Samples for the runs, as `arena eval --samples` reads them.
    #[arg(long, value_name = "DATASET")]
    samples: Option<String>,
    /// The seed of every run (two runs with it must give the same bits).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Wall-clock limit per job, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = arena_core::units::parse_seconds)]
    timeout: f64,
    /// Memory limit per job (its address space), as a validator sets one.
    #[arg(long, value_name = "SIZE", default_value = "8GiB", value_parser = parse_size)]
    memory: u64,
    #[command(flatten)]
    dirs: PluginDirs,
    /// Print JSON (every check with its verdict), for CI.
    #[arg(long)]
    json: bool,
}

pub fn exec(a: TestArgs) -> anyhow::Result<ExitCode> {
    let lib = plugins::resolve(&a.lib, &plugins::plugin_dirs(&a.dirs.plugin_dirs))?;
    let params = a.params.as_deref().map(json_arg).transpose().context("--params")?;
    let submission =
        a.submission.as_deref().map(|p| submission(p, None, None)).transpose().context("--submission")?;
    let samples = match a.samples.as_deref() {
        Some(spec) => load_samples(spec, Sampling::All, &a.seed.to_be_bytes()).context("--samples")?,
        None => Vec::new(),
    };
    let inputs = Inputs {
        kind: a.kind.clone(),
        params,
        submission,
        samples,
        seed: a.seed,
        timeout: arena_core::units::seconds(a.timeout).unwrap_or(Duration::from_secs(300)),
        memory_bytes: Some(a.memory),
    };
    let sup = Supervisor::current_exe()?;
    let mut print = |c: &Check| {
        if !a.json {
            let kind = c.kind.as_deref().map(|k| format!(" [{k}]")).unwrap_or_default();
            println!("{:<4}  {}{kind}: {}", c.verdict.as_str().to_uppercase(), c.check, c.detail);
        }
    };
    let report = conformance::run(&sup, &lib, &inputs, &mut print);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let (pass, fail, skip) =
            (report.count(Verdict::Pass), report.count(Verdict::Fail), report.count(Verdict::Skip));
        println!("{}: {pass} passed, {fail} failed, {skip} skipped", lib.display());
    }
    if arena_runtime::cancel::requested() {
        return Ok(ExitCode::from(130));
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
