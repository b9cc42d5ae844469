//! `arena-lm-bench`: tokens per second of arena's forward pass + loss against a peer on the same
//! model, tokens and machine, in one run: transformers, or llama.cpp (`--peer llama.cpp`).
//!
//! ```text
//! arena-lm-bench [--preset small|0.5b] [--device cpu|cuda] [--dtype f32|bf16|f16]
//!                [--batch 1] [--seq 512] [--iters 5] [--peer transformers|llama.cpp]
//!                [--python python3] [--peak-tflops X]
//! ```
//! llama.cpp runs `tests/reference/bench_llama_cpp.py` in the venv
//! `scripts/peers/install-llama-cpp.sh` makes: the same weights as an f32 GGUF, the same token
//! ids fed directly, logits for every position (f32 on the CPU, batch 1 only).
//! A random-init model of the preset's shape (Qwen2 layout) is written under
//! `target/arena-bench/<preset>` (reused when present). Both sides compute the mean next-token
//! cross-entropy of the same token ids (`(i * 7919 + 13) mod vocab`), after one warm-up
//! iteration; the loss of both, and the largest difference of one position's log-prob, are
//! printed as the check that they computed the same thing. arena's layers-only time (no LM head)
//! is printed beside llama.cpp's pp<seq> (`llama-bench`'s figure: the layers and one LM-head row).
//! transformers runs `tests/reference/bench_transformers.py` (torch, `inference_mode`, eager
//! attention off: torch picks SDPA). MFU is reported when `--peak-tflops` is given: achieved
//! FLOP/s over the peak, with 2 FLOPs per parameter per token plus attention. On the CPU in f32
//! the peak, unless given, is measured: every CPU running independent vector FMA chains
//! (`arena_plugin_api::machine::fma_peak_tflops`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use arena_llm::config::Family;
use arena_llm::tiny::{TinySpec, write_random_model};
use arena_llm::{CausalLm, ModelConfig, Tensor};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "arena-lm-bench",
    about = "Tokens per second of arena against transformers or llama.cpp on one model"
)]
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
    /// The peer run beside arena: `transformers` or `llama.cpp`.
    #[arg(long, default_value = "transformers")]
    peer: String,
    /// The Python of the peer (torch and transformers, or llama-cpp-python and gguf).
    #[arg(long, default_value = "python3")]
    python: String,
    /// Peak dense TFLOP/s of the device in this dtype, for the fraction of peak (H100 SXM bf16:
    /// 989). On the CPU in f32 it is measured when not given.
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Skip the peer's side.
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
    let llama_cpp = match a.peer.as_str() {
        "transformers" => false,
        "llama.cpp" => true,
        other => bail!("unknown peer `{other}` (transformers, llama.cpp)"),
    };
    if llama_cpp && (a.batch != 1 || a.device != "cpu" || a.dtype != "f32") {
        bail!("--peer llama.cpp runs batch 1, f32, on the CPU");
    }
    let s = spec(&a.preset)?;
    // Measured first, on an idle machine.
    let measured = a.peak_tflops.is_none();
    let peak = a.peak_tflops.or_else(|| {
        (a.device == "cpu" && a.dtype == "f32").then(arena_plugin_api::machine::fma_peak_tflops).flatten()
    });
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
    let step = |m: &CausalLm| -> anyhow::Result<Vec<Vec<f32>>> {
        let hidden = m.forward_hidden(&x, None, None)?;
        Ok(m.token_nll(&hidden, &targets)?)
    };
    // Every scored position's NLL, row by row (the last position of each row has no target).
    let nll: Vec<f64> = step(&model)? // warm-up
        .iter()
        .flat_map(|row| row[..a.seq - 1].iter().map(|&v| v as f64))
        .collect();
    let loss = nll.iter().sum::<f64>() / nll.len() as f64;
    let started = Instant::now();
    for _ in 0..a.iters {
        step(&model)?;
    }
    device.synchronize()?;
    let secs = started.elapsed().as_secs_f64() / a.iters as f64;
    // The layers alone (no LM head): the work of llama-bench's pp<seq>.
    let t0 = Instant::now();
    for _ in 0..a.iters {
        model.forward_hidden(&x, None, None)?;
    }
    device.synchronize()?;
    let trunk_secs = t0.elapsed().as_secs_f64() / a.iters as f64;
    let arena_tps = n as f64 / secs;

    println!("machine: {}", arena_plugin_api::machine::describe());
    if let (true, Some(p)) = (measured, peak) {
        println!("f32 FMA peak: {:.1} GFLOP/s, measured (--peak-tflops gives another)", p * 1e3);
    }
    println!(
        "model: {} ({} parameters), {} x {} tokens, {} on {}, {} timed iterations",
        a.preset, params, a.batch, a.seq, a.dtype, a.device, a.iters
    );
    let fpt = flops_per_token(&cfg, a.seq);
    let trunk_fpt = fpt - 2.0 * cfg.hidden_size as f64 * cfg.vocab_size as f64;
    let mfu = |flops: f64| peak.map(|p| format!("{:.1}%", 100.0 * flops / (p * 1e12))).unwrap_or("-".into());
    let row = |side: &str, tps: f64, fpt: f64, loss: Option<f64>| {
        let loss = loss.map(|l| format!("{l:.5}")).unwrap_or("-".into());
        println!(
            "{side:<22} {tps:>12.1} {:>10.2} {:>10.1} {loss:>10} {:>8}",
            n as f64 / tps * 1e3,
            tps * fpt / 1e9,
            mfu(tps * fpt)
        )
    };
    println!(
        "{:<22} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "side", "tokens/s", "ms/iter", "GFLOP/s", "loss", "of peak"
    );
    row("arena", arena_tps, fpt, Some(loss));
    row("arena layers only", n as f64 / trunk_secs, trunk_fpt, None);
    if a.arena_only {
        return Ok(());
    }
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference");
    let mut cmd = Command::new(&a.python);
    let model = dir.to_str().unwrap_or_default();
    let (seq, iters) = (a.seq.to_string(), a.iters.to_string());
    if llama_cpp {
        cmd.arg(reference.join("bench_llama_cpp.py"))
            .args(["--model", model, "--seq", &seq, "--iters", &iters]);
    } else {
        cmd.arg(reference.join("bench_transformers.py"))
            .args(["--model", model, "--device", &a.device, "--dtype", &a.dtype])
            .args(["--batch", &a.batch.to_string(), "--seq", &seq, "--iters", &iters]);
    }
    let out = cmd.output().with_context(|| format!("running the {} side with {}", a.peer, a.python))?;
    if !out.status.success() {
        bail!("{} side failed:\n{}", a.peer, String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the {} side printed no JSON", a.peer))?;
    let tps = v["tokens_per_s"].as_f64().unwrap_or(f64::NAN);
    row(&a.peer, tps, fpt, v["loss"].as_f64());
    let peer_trunk = v["trunk_tokens_per_s"].as_f64();
    if let Some(t) = peer_trunk {
        row(&format!("{} pp{}", a.peer, a.seq), t, trunk_fpt, None);
    }
    let peer_nll: Vec<f64> =
        v["nll"].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect()).unwrap_or_default();
    if peer_nll.len() != nll.len() {
        bail!("the {} side gave {} positions' NLL, arena {}", a.peer, peer_nll.len(), nll.len());
    }
    let (worst, at) = nll
        .iter()
        .zip(&peer_nll)
        .map(|(x, y)| (x - y).abs())
        .enumerate()
        .fold((0.0f64, 0), |(m, at), (i, d)| if d > m { (d, i) } else { (m, at) });
    println!("largest |log-prob difference| over {} positions: {worst:.3e} (position {at})", nll.len());
    let trunk_ratio =
        peer_trunk.map(|t| format!(", layers only {:.2}x", n as f64 / trunk_secs / t)).unwrap_or_default();
    println!(
        "ratio arena / {}: {:.2}x{trunk_ratio} ({}, {} threads)",
        a.peer,
        arena_tps / tps,
        v["versions"].as_str().unwrap_or(""),
        v["threads"]
    );
    Ok(())
}
