//! `arena-lm-bench`: tokens per second of arena's forward pass + loss against transformers on
//! the same model, tokens and machine, in one run.
//!
//! ```text
//! arena-lm-bench [--preset small|0.5b] [--device cpu|cuda] [--dtype f32|bf16|f16]
//!                [--batch 1] [--seq 512] [--iters 5] [--python python3] [--peak-tflops X]
//! ```
//! A random-init model of the preset's shape (Qwen2 layout) is written under
//! `target/arena-bench/<preset>` (reused when present). Both sides compute the mean next-token
//! cross-entropy of the same token ids (`(i * 7919 + 13) mod vocab`), after one warm-up
//! iteration; the loss of both is printed as a check that they computed the same thing.
//! transformers runs `tests/reference/bench_transformers.py` (torch, `inference_mode`, eager
//! attention off: torch picks SDPA). MFU is reported when `--peak-tflops` is given: achieved
//! FLOP/s over the peak, with 2 FLOPs per parameter per token plus attention.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use arena_llm::config::Family;
use arena_llm::tiny::{TinySpec, write_random_model};
use arena_llm::{CausalLm, ModelConfig, Tensor};
use clap::Parser;

#[derive(Parser)]
#[command(name = "arena-lm-bench", about = "Tokens per second of arena against transformers on one model")]
struct Args {
    /// Model shape: `tiny` (the demo models' shape), `small` (~39M parameters, for CPUs) or
    /// `0.5b` (Qwen2.5-0.5B's shape).
    #[arg(long, default_value = "small")]
    preset: String,
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value = "f32")]
    dtype: String,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, default_value_t = 512)]
    seq: usize,
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// The Python with torch and transformers.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Peak dense TFLOP/s of the device in this dtype, for MFU (H100 SXM bf16: 989).
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Skip the transformers side.
    #[arg(long)]
    arena_only: bool,
}

fn spec(preset: &str) -> anyhow::Result<TinySpec> {
    let mut s = TinySpec::new(Family::Qwen2);
    match preset {
        "tiny" => {} // the demo models' shape (~100k parameters): framework overhead dominates
        "small" => {
            s.vocab_size = 32_000;
            s.hidden_size = 512;
            s.intermediate_size = 1408;
            s.num_layers = 8;
            s.num_heads = 8;
            s.num_kv_heads = 2;
        }
        "0.5b" => {
            s.vocab_size = 151_936;
            s.hidden_size = 896;
            s.intermediate_size = 4864;
            s.num_layers = 24;
            s.num_heads = 14;
            s.num_kv_heads = 2;
        }
        other => bail!("unknown preset `{other}` (tiny, small, 0.5b)"),
    }
    s.max_position_embeddings = 32_768;
    Ok(s)
}

/// Forward FLOPs per token: 2 per weight of the matrices a token passes through (including the
/// output projection) plus attention scores and values over an average context of seq/2.
fn flops_per_token(cfg: &ModelConfig, seq: usize) -> f64 {
    let h = cfg.hidden_size as f64;
    let q = (cfg.num_heads * cfg.head_dim) as f64;
    let kv = (cfg.num_kv_heads * cfg.head_dim) as f64;
    let i = cfg.intermediate_size as f64;
    let per_layer = 2.0 * (h * q + 2.0 * h * kv + q * h + 3.0 * h * i) + 2.0 * 2.0 * q * seq as f64 / 2.0;
    cfg.num_layers as f64 * per_layer + 2.0 * h * cfg.vocab_size as f64
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let s = spec(&a.preset)?;
    let dir = PathBuf::from("target/arena-bench").join(&a.preset);
    let cfg = if dir.join("model.safetensors").is_file() {
        ModelConfig::from_file(&dir.join("config.json"))?
    } else {
        eprintln!("writing a random-init {} model to {}", a.preset, dir.display());
        write_random_model(&dir, &s, 0)?
    };
    let params = cfg.parameter_count();
    let device = arena_llm::open_device(if a.device.starts_with("cuda") { "cuda" } else { "cpu" }, 0)?;
    let dtype = arena_llm::parse_dtype(&a.dtype)?;
    let files = arena_llm::weights::WeightFiles::open(&dir)?;
    let model = files.build(&cfg, dtype, &device)?;
    let n = a.batch * a.seq;
    let ids: Vec<u32> = (0..n).map(|i| ((i as u64 * 7919 + 13) % cfg.vocab_size as u64) as u32).collect();
    let targets: Vec<Vec<u32>> = ids
        .chunks(a.seq)
        .map(|row| row[1..].iter().copied().chain([arena_llm::protocols::UNSCORED]).collect())
        .collect();
    let x = Tensor::from_vec(ids, (a.batch, a.seq), &device)?;
    let step = |m: &CausalLm| -> anyhow::Result<f64> {
        let hidden = m.forward_hidden(&x, None, None)?;
        let nll = m.token_nll(&hidden, &targets)?;
        let total: f64 = nll.iter().flatten().map(|&v| v as f64).sum();
        Ok(total / (a.batch * (a.seq - 1)) as f64)
    };
    let loss = step(&model)?; // warm-up
    let started = Instant::now();
    for _ in 0..a.iters {
        step(&model)?;
    }
    device.synchronize()?;
    let secs = started.elapsed().as_secs_f64() / a.iters as f64;
    if std::env::var_os("ARENA_BENCH_SPLIT").is_some() {
        let t0 = Instant::now();
        let mut hidden = None;
        for _ in 0..a.iters {
            hidden = Some(model.forward_hidden(&x, None, None)?);
        }
        let fwd = t0.elapsed().as_secs_f64() / a.iters as f64;
        let t1 = Instant::now();
        for _ in 0..a.iters {
            model.token_nll(hidden.as_ref().unwrap_or_else(|| unreachable!()), &targets)?;
        }
        let head = t1.elapsed().as_secs_f64() / a.iters as f64;
        eprintln!("split: layers {:.1} ms, head + loss {:.1} ms", fwd * 1e3, head * 1e3);
    }
    let arena_tps = n as f64 / secs;

    println!(
        "model: {} ({} parameters), {} x {} tokens, {} on {}, {} timed iterations",
        a.preset, params, a.batch, a.seq, a.dtype, a.device, a.iters
    );
    let fpt = flops_per_token(&cfg, a.seq);
    let mfu = |tps: f64| {
        a.peak_tflops.map(|p| format!("{:.1}%", 100.0 * tps * fpt / (p * 1e12))).unwrap_or("-".into())
    };
    println!("{:<14} {:>12} {:>12} {:>10} {:>8}", "side", "tokens/s", "ms/iter", "loss", "MFU");
    println!("{:<14} {:>12.1} {:>12.2} {:>10.5} {:>8}", "arena", arena_tps, secs * 1e3, loss, mfu(arena_tps));
    if a.arena_only {
        return Ok(());
    }
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/bench_transformers.py");
    let out = Command::new(&a.python)
        .arg(&script)
        .args(["--model", dir.to_str().unwrap_or_default()])
        .args(["--device", &a.device, "--dtype", &a.dtype])
        .args(["--batch", &a.batch.to_string(), "--seq", &a.seq.to_string(), "--iters", &a.iters.to_string()])
        .output()
        .with_context(|| format!("running {} {}", a.python, script.display()))?;
    if !out.status.success() {
        bail!("transformers side failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("transformers side printed no JSON")?;
    let tps = v["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
    let tloss = v["loss"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{:<14} {:>12.1} {:>12.2} {:>10.5} {:>8}",
        "transformers",
        tps,
        n as f64 / tps * 1e3,
        tloss,
        mfu(tps)
    );
    println!(
        "ratio arena / transformers: {:.2}x ({})",
        arena_tps / tps,
        v["versions"].as_str().unwrap_or("")
    );
    Ok(())
}
