//! `arena-roleplay-bench`: the speed of `roleplay_eval` against Dippy's code (the Python reference,
//! transformers) on the same tiny model and conversations, in one run.
//!
//! ```text
//! cargo run --release -p arena-roleplay --bin arena-roleplay-bench -- --samples 64 --iters 3 \
//!     --python /opt/refenv/bin/python
//! ```
//! Both sides score the same samples to the same eval score (printed as a check). The reference
//! runs every sample padded to the model's window (Dippy's layout); arena runs each sample without
//! its pads. "samples/s" is the figure a validator feels; tokens/s are given both ways.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use arena_plugin_api::{Device, NoProgress};
use arena_roleplay::lm::{Chat, Lm};
use arena_roleplay::{EvalParams, ModelOptions, data, eval};
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
#[command(name = "arena-roleplay-bench", about = "roleplay_eval against Dippy's Python code, side by side")]
struct Args {
    /// The fixture model (`llama` or `qwen2`) under tests/fixtures/roleplay/models.
    #[arg(long, default_value = "llama")]
    model: String,
    /// One of Dippy's template names.
    #[arg(long, default_value = "vicuna")]
    template: String,
    /// Samples per pass (the fixture's conversations, repeated).
    #[arg(long, default_value_t = 64)]
    samples: usize,
    #[arg(long, default_value_t = 3)]
    iters: usize,
    /// A Python with torch and transformers: also run the reference.
    #[arg(long)]
    python: Option<PathBuf>,
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/roleplay");
    let device: Device = a.device.parse().map_err(|e| anyhow::anyhow!("--device: {e}"))?;
    let lm = Lm::load(
        &root.join("models").join(&a.model),
        Chat::Dippy(a.template.clone()),
        &ModelOptions::default(),
        device,
    )
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let records: Vec<data::Record> = std::fs::read_to_string(root.join("conversations.jsonl"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| data::record(&serde_json::from_str(l)?).map_err(|e| anyhow::anyhow!(e)))
        .collect::<anyhow::Result<_>>()?;
    let (kept, _) = data::streamed(&records, 1000);
    let kept: Vec<_> =
        kept.into_iter().filter(|s| s.messages.iter().all(|m| !m.content.is_empty())).collect();
    let eos = lm.eos.clone().unwrap_or_default();
    let pairs: Vec<(String, String)> = (0..a.samples)
        .map(|i| {
            let s = &kept[i % kept.len()];
            Ok((
                lm.context(&s.messages).map_err(|e| anyhow::anyhow!(e))?,
                format!("{}{eos}", s.character_response),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let p: EvalParams = serde_json::from_value(serde_json::json!({"max_input_len": 1000}))?;
    let run = || eval::score(&p, &lm, &pairs, &NoProgress).map_err(|e| anyhow::anyhow!("{}", e.message));
    let warm = run()?;
    let mut best = f64::INFINITY;
    for _ in 0..a.iters {
        let t = Instant::now();
        run()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    let padded = a.samples * warm.max_len;
    println!("machine: {}", arena_plugin_api::machine::describe());
    println!(
        "model {} / template {}, {} samples, best of {} passes",
        a.model, a.template, a.samples, a.iters
    );
    println!(
        "{:<14} {:>10} {:>11} {:>15} {:>17} {:>14}",
        "impl", "s/pass", "samples/s", "real tokens/s", "padded tokens/s", "eval score"
    );
    let row = |name: &str, secs: f64, real: f64, score: f64| {
        println!(
            "{name:<14} {secs:>10.4} {:>11.1} {:>15.0} {:>17.0} {score:>14.9}",
            a.samples as f64 / secs,
            real / secs,
            padded as f64 / secs
        )
    };
    row("arena", best, warm.tokens as f64, warm.quality);
    if let Some(py) = &a.python {
        let script = root.join("../../reference/roleplay_reference.py");
        let out = Command::new(py)
            .arg(&script)
            .args(["--bench", &a.iters.to_string(), "--samples", &a.samples.to_string()])
            .args(["--model", &a.model, "--template", &a.template])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "the reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
        let v: Value = serde_json::from_str(line)?;
        let real = v["real_tokens_per_pass"].as_f64().unwrap_or(f64::NAN);
        let attentions = v["attentions"].as_object().cloned().unwrap_or_default();
        println!(
            "reference: torch {}, transformers {}, {} threads",
            v["torch"], v["transformers"], v["threads"]
        );
        for (attn, r) in attentions {
            let secs = r["best_seconds"].as_f64().unwrap_or(f64::NAN);
            let name = format!("torch {attn}");
            row(&name, secs, real, r["eval_score"].as_f64().unwrap_or(f64::NAN));
            println!("  arena is {:.2}x {name} (samples/s)", secs / best);
        }
    }
    Ok(())
}
