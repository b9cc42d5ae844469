//! Generates the project's small synthetic detection benchmark and trains tiny detectors of
//! different quality on it, deterministically:
//!
//!   arena-tiny-detect --out DIR [--seed N] [--per-dataset N]
//!
//! writes DIR/data/train and DIR/data/eval (PNG images and a gasbench-style registry.yaml each)
//! and DIR/models/<name>/ (model_config.yaml + model.safetensors, torchvision ResNet-18 tensor
//! names at width 8, 64×64 input) for the untrained network and three training budgets; plus
//! DIR/data/audio (WAV clips) and DIR/data/video (folders of frames) with an untrained M5 and
//! an untrained frame-pooling ResNet-18 for them (DIR/models/audio-m5, DIR/models/video-resnet18).

use std::path::{Path, PathBuf};
use std::time::Instant;

use arena_detector::config::ModelConfig;
use arena_detector::preprocess::{decode_image, resize_shortest_edge, to_chw};
use arena_detector::synth::{IMAGE_DATASETS, write_audio_benchmark, write_benchmark, write_video_benchmark};
use arena_detector::train::{TrainSet, train};
use arena_detector::weights::{export, write_safetensors};
use arena_detector::{Detector, Source};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Generate the synthetic detection benchmark and train tiny detectors on it")]
struct Args {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Seed of the benchmark and of training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Evaluation images per dataset (training uses twice as many).
    #[arg(long, default_value_t = 24)]
    per_dataset: usize,
}

const CONFIG: &str = "name: {name}
version: 1
modality: image
dtype: float32
preprocessing:
  resize: [64, 64]
  normalize:
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
model:
  architecture: resnet18
  width: 8
  num_classes: 2
  weights_file: model.safetensors
";

const AUDIO_CONFIG: &str = "name: audio-m5
modality: audio
preprocessing:
  sample_rate: 16000
  duration_seconds: 1.0
model:
  architecture: m5
  width: 8
  num_classes: 2
";

const VIDEO_CONFIG: &str = "name: video-resnet18
modality: video
preprocessing:
  resize: [64, 64]
  num_frames: 4
  normalize:
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
model:
  architecture: resnet18
  width: 8
  num_classes: 2
";

/// (name, training steps): the untrained network and three budgets.
const MODELS: [(&str, usize); 4] =
    [("detector-untrained", 0), ("detector-10", 10), ("detector-40", 40), ("detector-160", 160)];

fn load_train(dir: &Path) -> anyhow::Result<TrainSet> {
    let mut set = TrainSet::default();
    for spec in IMAGE_DATASETS {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(dir.join(spec.name))?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        files.sort();
        for f in files {
            let img = decode_image(&f)?;
            set.images.push(to_chw(&resize_shortest_edge(&img, 64, 64)));
            set.labels.push(spec.media_type != "real");
        }
    }
    Ok(set)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let t0 = Instant::now();
    let train_dir = args.out.join("data/train");
    let eval_dir = args.out.join("data/eval");
    write_benchmark(&train_dir, args.per_dataset * 2, args.seed.wrapping_mul(2).wrapping_add(1))?;
    write_benchmark(&eval_dir, args.per_dataset, args.seed.wrapping_mul(2).wrapping_add(2))?;
    println!(
        "benchmark: {} datasets, {} training and {} evaluation images per dataset ({:.1}s)",
        IMAGE_DATASETS.len(),
        args.per_dataset * 2,
        args.per_dataset,
        t0.elapsed().as_secs_f64()
    );
    write_audio_benchmark(&args.out.join("data/audio"), args.per_dataset, 1.0, args.seed.wrapping_add(3))?;
    write_video_benchmark(
        &args.out.join("data/video"),
        args.per_dataset / 2,
        4,
        [64, 64],
        args.seed.wrapping_add(4),
    )?;
    for (name, text) in [("audio-m5", AUDIO_CONFIG), ("video-resnet18", VIDEO_CONFIG)] {
        let config = ModelConfig::parse(text, Path::new("model_config.yaml"))?;
        let det = Detector::from_source(config, Source::synthetic(11, &burn::tensor::Device::flex()))?;
        let dir = args.out.join("models").join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("model_config.yaml"), text)?;
        write_safetensors(&export(&det.network, &det.naming), true, &dir.join("model.safetensors"))?;
    }
    let data = load_train(&train_dir)?;
    for (name, steps) in MODELS {
        let t = Instant::now();
        let text = CONFIG.replace("{name}", name);
        let config = ModelConfig::parse(&text, Path::new("model_config.yaml"))?;
        let det = train(&config, &data, steps, 32, 2e-3, 7, args.seed)?;
        let dir = args.out.join("models").join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("model_config.yaml"), &text)?;
        write_safetensors(&export(&det.network, &det.naming), true, &dir.join("model.safetensors"))?;
        println!("{name}: {steps} training steps ({:.1}s)", t.elapsed().as_secs_f64());
    }
    Ok(())
}
