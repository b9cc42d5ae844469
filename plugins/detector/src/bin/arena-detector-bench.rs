//! Images per second of the detector plugin's network against its peers on the same weights and
//! inputs, all in one run: PyTorch (torchvision), ONNX Runtime and OpenVINO.
//!
//!   arena-detector-bench [--device cpu|wgpu|cuda] [--arch resnet18|resnet50|convnext_tiny|vit]
//!                        [--vit 16,12,12,768,3072] [--batch 16] [--size 224] [--iters 5]
//!                        [--rounds 3] [--python python3] [--peers torch,onnxruntime,openvino]
//!                        [--threads N] [--torch-device cpu|cuda] [--burn] [--peak-tflops X]
//!
//! Writes a network of counter-based random weights (torchvision tensor names), loads it into
//! arena (on the CPU, the plugin's own CPU path; `--burn` also burn's Flex backend) and, through
//! tests/reference/bench_torchvision.py, into the peers asked for (ONNX Runtime and OpenVINO on
//! the module exported to ONNX; OpenVINO pinned to f32), each after one warm-up batch of the same
//! inputs. Then `--rounds` rounds, each timing `--iters` forward passes (normalisation included,
//! decoding excluded) of every side in turn, so that a host whose speed drifts (shared cloud
//! machines change speed by 2× within minutes) slows every side alike. Prints for every side the
//! median images/s, GFLOP/s (torch's FlopCounterMode count of the network), the fraction of the
//! f32 FMA peak (measured on the CPU unless `--peak-tflops` gives it), the largest logit
//! difference from arena, and arena's ratio to it: the median of the rounds' ratios, with their
//! range. The machine (`lscpu`) is printed first.

use std::path::Path;
use std::time::Instant;

use arena_detector::config::ModelConfig;
use arena_detector::weights::{export, splitmix, write_safetensors};
use arena_detector::{Detector, Source, burn_device};
use clap::Parser;

mod peers;
use peers::{Peers, Row, Turns, median, paired};

#[derive(Parser)]
#[command(about = "Detector forward-pass throughput: arena against PyTorch, ONNX Runtime and OpenVINO")]
struct Args {
    /// arena's device: cpu (the plugin's CPU path), wgpu, cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: arena_plugin_api::Device,
    #[arg(long, default_value = "resnet18")]
    arch: String,
    /// The ViT's shape for `--arch vit`: patch_size,num_layers,num_heads,hidden_dim,mlp_dim
    /// (default ViT-B/16).
    #[arg(long, default_value = "16,12,12,768,3072")]
    vit: String,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Square input side.
    #[arg(long, default_value_t = 224)]
    size: usize,
    #[command(flatten)]
    turns: Turns,
    /// The peers, comma-separated: torch, onnxruntime, openvino.
    #[arg(long, default_value = "torch")]
    peers: String,
    /// Peak dense f32 TFLOP/s, for the fraction of peak; on the CPU measured when not given
    /// (every CPU running independent vector FMA chains).
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// PyTorch's device.
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// Also time burn's own CPU backend (Flex), which the CPU path replaces.
    #[arg(long)]
    burn: bool,
}

/// Images per second of `iters` forward passes over `images`.
fn rate(det: &Detector, images: &[Vec<u8>], iters: usize) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    for _ in 0..iters {
        det.image_logits(images)?;
    }
    Ok((images.len() * iters) as f64 / t0.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let dir = tempfile::tempdir()?;
    // Measured first, on an idle machine.
    let measured = a.peak_tflops.is_none();
    let peak = a.peak_tflops.or_else(|| {
        (a.device == arena_plugin_api::Device::Cpu).then(arena_plugin_api::machine::fma_peak_tflops).flatten()
    });
    let shape = if a.arch == "vit" {
        let v: Vec<&str> = a.vit.split(',').collect();
        let [patch, layers, heads, hidden, mlp] = v[..] else {
            anyhow::bail!("--vit wants patch_size,num_layers,num_heads,hidden_dim,mlp_dim, not {}", a.vit)
        };
        format!(
            "  patch_size: {patch}\n  num_layers: {layers}\n  num_heads: {heads}\n  hidden_dim: {hidden}\n  mlp_dim: {mlp}\n"
        )
    } else {
        String::new()
    };
    let cfg_text = format!(
        "name: bench\nmodality: image\npreprocessing:\n  resize: [{s}, {s}]\n  normalize:\n    mean: [0.485, 0.456, 0.406]\n    std: [0.229, 0.224, 0.225]\nmodel:\n  architecture: {}\n  num_classes: 2\n{shape}",
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
    a.turns.check()?;
    // The warm-up batch of each local side, whose logits the others are compared with.
    let first = det.image_logits(&images)?;
    let engine = if det.uses_cpu_path() { "CPU path" } else { "burn Flex" };
    let mut locals = vec![(Row::new("arena", None, engine), &det)];
    let burn_only;
    if a.burn && det.uses_cpu_path() {
        burn_only = Detector::load(dir.path(), &device)?.burn_only();
        let logits = burn_only.image_logits(&images)?;
        let diff =
            max_diff(first.iter().flatten().map(|&x| x as f64), logits.iter().flatten().map(|&x| x as f64));
        locals.push((Row::new("burn", Some(diff), "Flex"), &burn_only));
    }
    let mut peers = (!a.turns.python.is_empty()).then(|| start_peers(&a, &weights)).transpose()?;
    for _ in 0..a.turns.rounds {
        for (row, det) in &mut locals {
            row.rates.push(rate(det, &images, a.turns.iters)?);
            // Until rayon's idle workers sleep, before the next side.
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        if let Some(p) = &mut peers {
            p.round()?;
        }
    }
    let mut rows: Vec<Row> = locals.into_iter().map(|(row, _)| row).collect();
    let mut flops = None;
    if let Some(p) = peers {
        let r = p.finish()?;
        flops = r["flops_per_image"].as_f64();
        for p in r["peers"].as_array().into_iter().flatten() {
            let logits: Vec<Vec<f64>> = serde_json::from_value(p["logits"].clone())?;
            let diff = max_diff(first.iter().flatten().map(|&x| x as f64), logits.iter().flatten().copied());
            let detail = format!(
                "{}, {} threads, {}",
                p["version"].as_str().unwrap_or(""),
                p["threads"],
                p["precision"].as_str().unwrap_or("")
            );
            let mut row = Row::new(p["name"].as_str().unwrap_or("?"), Some(diff), &detail);
            row.rates = serde_json::from_value(p["images_per_s"].clone())?;
            anyhow::ensure!(
                row.rates.len() == a.turns.rounds,
                "{}: {} rounds of {}",
                row.side,
                row.rates.len(),
                a.turns.rounds
            );
            rows.push(row);
        }
    }

    println!("machine: {}", arena_plugin_api::machine::describe());
    if let (true, Some(p)) = (measured, peak) {
        println!("f32 FMA peak: {:.1} GFLOP/s, measured (--peak-tflops gives another)", p * 1e3);
    }
    println!(
        "network: {} ({}), batch {}, {}x{}, {} rounds of {} timed iterations per side; arena on {} ({engine}, {} threads)",
        a.arch,
        if a.arch == "vit" { a.vit.as_str() } else { "torchvision" },
        a.batch,
        a.size,
        a.size,
        a.turns.rounds,
        a.turns.iters,
        a.device,
        rayon::current_num_threads()
    );
    if let Some(f) = flops {
        println!("{:.3} GFLOP per image (torch FlopCounterMode: convolutions and matrix products)", f / 1e9);
    }
    println!(
        "{:<12} {:>10} {:>9} {:>8} {:>10} {:>13} {:>13}  detail",
        "side", "images/s", "GFLOP/s", "of peak", "arena/side", "range", "max |dlogit|"
    );
    let arena = rows[0].rates.clone();
    for r in &rows {
        let median_rate = median(r.rates.clone());
        let gflops = flops.map(|f| median_rate * f / 1e9);
        let peak = gflops.zip(peak).map(|(g, p)| format!("{:.1}%", g / (p * 10.0))).unwrap_or("-".into());
        let (ratio, range) = paired(&arena, &r.rates);
        println!(
            "{:<12} {:>10.2} {:>9} {peak:>8} {:>9.2}x {:>13} {:>13}  {}",
            r.side,
            median_rate,
            gflops.map(|g| format!("{g:.1}")).unwrap_or("-".into()),
            ratio,
            range,
            r.diff.map(|d| format!("{d:.2e}")).unwrap_or("-".into()),
            r.detail
        );
    }
    Ok(())
}

/// The peers' process (tests/reference/bench_torchvision.py), ready for its first round.
fn start_peers(a: &Args, weights: &Path) -> anyhow::Result<Peers> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/reference/bench_torchvision.py");
    let size = a.size.to_string();
    let args: Vec<String> = [
        "--weights",
        &weights.display().to_string(),
        "--arch",
        &a.arch,
        "--classes",
        "2",
        "--batch",
        &a.batch.to_string(),
        "--height",
        &size,
        "--width",
        &size,
        "--vit",
        &a.vit,
        "--device",
        &a.torch_device,
    ]
    .map(String::from)
    .into();
    Peers::start(&a.turns, &a.peers, script, &args)
}

fn max_diff(a: impl Iterator<Item = f64>, b: impl Iterator<Item = f64>) -> f64 {
    a.zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}
