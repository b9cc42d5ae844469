//! Images per second of the detector plugin's network against PyTorch (torchvision) on the same
//! weights and inputs, both sides in one run:
//!
//!   arena-detector-bench [--device cpu|wgpu|cuda] [--arch resnet18] [--batch 16] [--size 224]
//!                        [--iters 5] [--python python3] [--torch-device cpu|cuda] [--burn]
//!
//! Writes a network of counter-based random weights (torchvision tensor names), times arena's
//! forward pass (normalisation included, decoding excluded) after one warm-up batch (on the CPU,
//! ResNets take the plugin's CPU path; `--burn` also times burn's Flex backend), then runs
//! tests/reference/bench_torchvision.py on the same file and inputs, and prints both rates,
//! their ratio and the largest logit difference.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use arena_detector::config::ModelConfig;
use arena_detector::weights::{export, splitmix, write_safetensors};
use arena_detector::{Detector, Source, burn_device};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Detector forward-pass throughput: arena against PyTorch on the same weights")]
struct Args {
    /// arena's device: cpu (the CPU path for ResNets, burn Flex otherwise), wgpu, cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: arena_plugin_api::Device,
    #[arg(long, default_value = "resnet18")]
    arch: String,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Square input side.
    #[arg(long, default_value_t = 224)]
    size: usize,
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Python with torch and torchvision; empty to skip the reference side.
    #[arg(long, default_value = "python3")]
    python: String,
    /// PyTorch's device.
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// Also time burn's own CPU backend (Flex), which the CPU path replaces for ResNets.
    #[arg(long)]
    burn: bool,
}

/// Images per second of `iters` forward passes over `images`, after the first (returned).
fn time(det: &Detector, images: &[Vec<u8>], iters: usize) -> anyhow::Result<(f64, Vec<Vec<f32>>)> {
    let first = det.image_logits(images)?;
    let t0 = Instant::now();
    for _ in 0..iters {
        det.image_logits(images)?;
    }
    Ok(((images.len() * iters) as f64 / t0.elapsed().as_secs_f64(), first))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let dir = tempfile::tempdir()?;
    let cfg_text = format!(
        "name: bench\nmodality: image\npreprocessing:\n  resize: [{s}, {s}]\n  normalize:\n    mean: [0.485, 0.456, 0.406]\n    std: [0.229, 0.224, 0.225]\nmodel:\n  architecture: {}\n  num_classes: 2\n",
        a.arch,
        s = a.size
    );
    let cfg = ModelConfig::parse(&cfg_text, Path::new("model_config.yaml"))?;
    let host = burn::tensor::Device::flex();
    let generated = Detector::from_source(cfg, Source::synthetic(18, &host))?;
    let weights = dir.path().join("model.safetensors");
    write_safetensors(&export(&generated.network, &generated.naming), true, &weights)?;
    std::fs::write(dir.path().join("model_config.yaml"), &cfg_text)?;

    let device = burn_device(a.device)?;
    let det = Detector::load(dir.path(), &device)?;
    let n = 3 * a.size * a.size;
    let images: Vec<Vec<u8>> = (0..a.batch)
        .map(|b| {
            (0..n as u64)
                .map(|i| (splitmix(1u64.wrapping_add(b as u64 * n as u64 + i)) >> 56) as u8)
                .collect()
        })
        .collect();
    let (arena_rate, first) = time(&det, &images, a.iters)?;
    let engine = if det.uses_cpu_path() { "CPU path" } else { "burn" };
    println!(
        "arena   {:>9.2} images/s  ({}, {engine}, {}, batch {}, {}x{})",
        arena_rate, a.device, a.arch, a.batch, a.size, a.size
    );
    if a.burn && det.uses_cpu_path() {
        let (rate, logits) = time(&Detector::load(dir.path(), &device)?.burn_only(), &images, a.iters)?;
        let diff =
            max_diff(first.iter().flatten().map(|&x| x as f64), logits.iter().flatten().map(|&x| x as f64));
        println!("burn    {rate:>9.2} images/s  (Flex; max |logit diff| with the CPU path {diff:.2e})");
    }

    if a.python.is_empty() {
        return Ok(());
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/bench_torchvision.py");
    let out = Command::new(&a.python)
        .arg(&script)
        .args(["--weights", &weights.display().to_string(), "--arch", &a.arch, "--classes", "2"])
        .args([
            "--batch",
            &a.batch.to_string(),
            "--height",
            &a.size.to_string(),
            "--width",
            &a.size.to_string(),
        ])
        .args(["--iters", &a.iters.to_string(), "--device", &a.torch_device])
        .output()?;
    if !out.status.success() {
        anyhow::bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let torch_rate = r["images_per_s"].as_f64().unwrap_or(f64::NAN);
    let torch_logits: Vec<Vec<f64>> = serde_json::from_value(r["logits"].clone())?;
    let diff = max_diff(first.iter().flatten().map(|&x| x as f64), torch_logits.iter().flatten().copied());
    println!(
        "pytorch {:>9.2} images/s  (torch {}, {} threads, {})",
        torch_rate, r["torch"], r["threads"], a.torch_device
    );
    println!("ratio arena/pytorch {:.2}x; max |logit diff| {diff:.2e}", arena_rate / torch_rate);
    Ok(())
}

fn max_diff(a: impl Iterator<Item = f64>, b: impl Iterator<Item = f64>) -> f64 {
    a.zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}
