//! Images per second of the detector plugin's network against its peers on the same weights and
//! inputs, all in one run: PyTorch (torchvision), ONNX Runtime and OpenVINO.
//!
//!   arena-detector-bench [--device cpu|wgpu|cuda] [--arch resnet18|resnet50|convnext_tiny|vit]
//!                        [--vit 16,12,12,768,3072] [--batch 16] [--size 224] [--iters 5]
//!                        [--python python3] [--peers torch,onnxruntime,openvino]
//!                        [--threads N] [--torch-device cpu|cuda] [--burn] [--peak-tflops X]
//!
//! Writes a network of counter-based random weights (torchvision tensor names), times arena's
//! forward pass (normalisation included, decoding excluded) after one warm-up batch (on the CPU,
//! the plugin's own CPU path; `--burn` also times burn's Flex backend), then runs
//! tests/reference/bench_torchvision.py on the same file and inputs for the peers asked for
//! (ONNX Runtime and OpenVINO on the module exported to ONNX; OpenVINO pinned to f32), and
//! prints for every side images/s, GFLOP/s (torch's FlopCounterMode count of the network),
//! the fraction of the f32 FMA peak (measured on the CPU unless `--peak-tflops` gives it), the largest logit difference from arena, and each peer's
//! ratio. The machine (`lscpu`) is printed first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use arena_detector::config::ModelConfig;
use arena_detector::weights::{export, splitmix, write_safetensors};
use arena_detector::{Detector, Source, burn_device};
use clap::Parser;

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
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Python with torch and torchvision (and onnxruntime, openvino for those peers); empty to
    /// skip the peers.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The peers, comma-separated: torch, onnxruntime, openvino.
    #[arg(long, default_value = "torch")]
    peers: String,
    /// The peers' intra-op threads (default: every CPU, as arena uses).
    #[arg(long)]
    threads: Option<usize>,
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
    let (arena_rate, first) = time(&det, &images, a.iters)?;
    let engine = if det.uses_cpu_path() { "CPU path" } else { "burn Flex" };
    println!("machine: {}", arena_plugin_api::machine::describe());
    if let (true, Some(p)) = (measured, peak) {
        println!("f32 FMA peak: {:.1} GFLOP/s, measured (--peak-tflops gives another)", p * 1e3);
    }
    println!(
        "network: {} ({}), batch {}, {}x{}, {} timed iterations; arena on {} ({engine}, {} threads)",
        a.arch,
        if a.arch == "vit" { a.vit.as_str() } else { "torchvision" },
        a.batch,
        a.size,
        a.size,
        a.iters,
        a.device,
        rayon::current_num_threads()
    );
    let mut rows = vec![Row { side: "arena".into(), rate: arena_rate, diff: None, detail: engine.into() }];
    if a.burn && det.uses_cpu_path() {
        let (rate, logits) = time(&Detector::load(dir.path(), &device)?.burn_only(), &images, a.iters)?;
        let diff =
            max_diff(first.iter().flatten().map(|&x| x as f64), logits.iter().flatten().map(|&x| x as f64));
        rows.push(Row { side: "burn".into(), rate, diff: Some(diff), detail: "Flex".into() });
    }

    let mut flops = None;
    if !a.python.is_empty() {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/bench_torchvision.py");
        let size = a.size.to_string();
        let mut cmd = Command::new(&a.python);
        cmd.arg(&script)
            .args(["--weights", &weights.display().to_string(), "--arch", &a.arch, "--classes", "2"])
            .args(["--batch", &a.batch.to_string(), "--height", &size, "--width", &size, "--vit", &a.vit])
            .args(["--iters", &a.iters.to_string(), "--device", &a.torch_device, "--peers", &a.peers]);
        if let Some(t) = a.threads {
            cmd.args(["--threads", &t.to_string()]);
        }
        let out = cmd.output()?;
        if !out.status.success() {
            anyhow::bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        }
        let r: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        flops = r["flops_per_image"].as_f64();
        for p in r["peers"].as_array().into_iter().flatten() {
            let logits: Vec<Vec<f64>> = serde_json::from_value(p["logits"].clone())?;
            let diff = max_diff(first.iter().flatten().map(|&x| x as f64), logits.iter().flatten().copied());
            rows.push(Row {
                side: p["name"].as_str().unwrap_or("?").into(),
                rate: p["images_per_s"].as_f64().unwrap_or(f64::NAN),
                diff: Some(diff),
                detail: format!(
                    "{}, {} threads, {}",
                    p["version"].as_str().unwrap_or(""),
                    p["threads"],
                    p["precision"].as_str().unwrap_or("")
                ),
            });
        }
    }
    if let Some(f) = flops {
        println!("{:.3} GFLOP per image (torch FlopCounterMode: convolutions and matrix products)", f / 1e9);
    }
    println!(
        "{:<12} {:>10} {:>9} {:>8} {:>10} {:>13}  detail",
        "side", "images/s", "GFLOP/s", "of peak", "arena/side", "max |dlogit|"
    );
    for r in &rows {
        let gflops = flops.map(|f| r.rate * f / 1e9);
        let peak = gflops.zip(peak).map(|(g, p)| format!("{:.1}%", g / (p * 10.0))).unwrap_or("-".into());
        println!(
            "{:<12} {:>10.2} {:>9} {peak:>8} {:>9.2}x {:>13}  {}",
            r.side,
            r.rate,
            gflops.map(|g| format!("{g:.1}")).unwrap_or("-".into()),
            arena_rate / r.rate,
            r.diff.map(|d| format!("{d:.2e}")).unwrap_or("-".into()),
            r.detail
        );
    }
    Ok(())
}

/// One line of the table: a side's rate, its largest logit difference from arena, and what ran.
struct Row {
    side: String,
    rate: f64,
    diff: Option<f64>,
    detail: String,
}

fn max_diff(a: impl Iterator<Item = f64>, b: impl Iterator<Item = f64>) -> f64 {
    a.zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}
