//! Parity with PyTorch (tests/reference/detector_parity.py: torchvision ResNet-18/34/50,
//! ConvNeXt-T and ViT, M5 on waveforms, ResNet-18 pooled over video frames): the same counter-based weights
//! written as the same safetensors file (sha256), loaded through the plugin's loader, give the
//! logits torch computed, within 1e-4 of the largest logit; and the image preprocessing matches
//! OpenCV's resize byte for byte.

use std::path::Path;

use arena_detector::config::ModelConfig;
use arena_detector::preprocess::{Rgb, resize_shortest_edge};
use arena_detector::weights::{export, splitmix, write_safetensors};
use arena_detector::{Detector, Source};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/detector/parity.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn input_bytes(seed: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| (splitmix(seed.wrapping_add(i)) >> 56) as u8).collect()
}

fn input_floats(seed: u64, n: usize) -> Vec<f32> {
    (0..n as u64)
        .map(|i| ((splitmix(seed.wrapping_add(i)) >> 40) as f64 / 8_388_608.0 - 1.0) as f32)
        .collect()
}

/// model_config.yaml for a fixture case: images `[B, 3, H, W]`, video `[B, T, 3, H, W]`, audio
/// `[B, T]`.
fn config(case: &Value, classes: usize) -> String {
    let shape: Vec<usize> = serde_json::from_value(case["input_shape"].clone()).unwrap();
    let arch = case["architecture"].as_str().unwrap();
    let mut extra = String::new();
    for (k, v) in case["model"].as_object().unwrap() {
        extra.push_str(&format!("  {k}: {v}\n"));
    }
    let (modality, pre) = match shape.len() {
        2 => ("audio", format!("  sample_rate: 16000\n  duration_seconds: {}\n", shape[1] as f64 / 16000.0)),
        n => {
            let (h, w) = (shape[n - 2], shape[n - 1]);
            let norm = format!("  normalize:\n    mean: {}\n    std: {}\n", case["mean"], case["std"]);
            if n == 5 {
                ("video", format!("  resize: [{h}, {w}]\n  num_frames: {}\n{norm}", shape[1]))
            } else {
                ("image", format!("  resize: [{h}, {w}]\n{norm}"))
            }
        }
    };
    format!(
        "name: parity\nmodality: {modality}\npreprocessing:\n{pre}model:\n  architecture: {arch}\n  num_classes: {classes}\n{extra}"
    )
}

/// `burn_only`: skip the plugin's CPU path (every image architecture on the CPU) and run burn's
/// own kernels.
fn check_cases(device: &burn::tensor::Device, label: &str, burn_only: bool) {
    let fx = fixture();
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let seed = case["seed"].as_u64().unwrap();
        let shape: Vec<usize> = serde_json::from_value(case["input_shape"].clone()).unwrap();
        let expected: Vec<Vec<f64>> = serde_json::from_value(case["logits"].clone()).unwrap();
        let classes = expected[0].len();
        let cfg_text = config(case, classes);
        let cfg = ModelConfig::parse(&cfg_text, Path::new("model_config.yaml")).unwrap();

        // The generator's weights, written as torch wrote them: the same bytes.
        let generated = Detector::from_source(cfg, Source::synthetic(seed, device)).unwrap();
        let tensors = export(&generated.network, &generated.naming);
        assert_eq!(tensors.len(), generated.naming.order().len(), "{name}: every tensor exported");
        let dir = tempfile::tempdir().unwrap();
        write_safetensors(&tensors, true, &dir.path().join("model.safetensors")).unwrap();
        let digest =
            hex::encode(Sha256::digest(std::fs::read(dir.path().join("model.safetensors")).unwrap()));
        assert_eq!(
            digest,
            case["safetensors_sha256"].as_str().unwrap(),
            "{name}: weights file differs from torch's"
        );
        std::fs::write(dir.path().join("model_config.yaml"), &cfg_text).unwrap();

        // Loaded through the submission path.
        let mut det = Detector::load(dir.path(), device).unwrap();
        if burn_only {
            det = det.burn_only();
        }
        let image = case["architecture"].as_str().unwrap() != "m5";
        assert_eq!(det.uses_cpu_path(), image && !burn_only && *device == burn::tensor::Device::flex());
        let input_seed = case["input_seed"].as_u64().unwrap();
        let n: usize = shape.iter().product();
        let got = match shape.len() {
            2 => {
                let clips: Vec<Vec<f32>> =
                    input_floats(input_seed, n).chunks(shape[1]).map(<[f32]>::to_vec).collect();
                det.audio_logits(&clips).unwrap()
            }
            4 => {
                let frame = shape[1..].iter().product();
                let images: Vec<Vec<u8>> =
                    input_bytes(input_seed, n).chunks(frame).map(<[u8]>::to_vec).collect();
                let logits = det.image_logits(&images).unwrap();
                if det.uses_cpu_path() {
                    // The second pass computes into the first one's buffers, stale values and
                    // all: the same bits.
                    assert_eq!(det.image_logits(&images).unwrap(), logits, "{name}: a warm pass differs");
                    // Each image alone (one layer at a time over the batch of one) has the bits
                    // it has in the batch (where a ResNet's early layers run per image).
                    for (i, image) in images.iter().enumerate() {
                        let alone = det.image_logits(std::slice::from_ref(image)).unwrap();
                        assert_eq!(alone[0], logits[i], "{name}: image {i} alone differs from the batch");
                    }
                }
                logits
            }
            _ => {
                let frame: usize = shape[2..].iter().product();
                let frames: Vec<Vec<u8>> =
                    input_bytes(input_seed, n).chunks(frame).map(<[u8]>::to_vec).collect();
                let videos: Vec<Vec<Vec<u8>>> = frames.chunks(shape[1]).map(<[Vec<u8>]>::to_vec).collect();
                det.video_logits(&videos).unwrap()
            }
        };
        let scale = expected.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut worst = 0.0f64;
        for (g, e) in got.iter().zip(&expected) {
            for (a, b) in g.iter().zip(e) {
                worst = worst.max((*a as f64 - b).abs());
            }
        }
        eprintln!("{label} {name}: max |diff| {worst:.3e} (largest logit {scale:.3})");
        assert!(worst <= 1e-4 * scale, "{label} {name}: max |diff| {worst} > 1e-4 x {scale}");
    }
}

/// The image architectures through the plugin's CPU path, M5 through burn.
#[test]
fn pytorch_logits_on_cpu() {
    check_cases(&burn::tensor::Device::flex(), "cpu", false);
}

/// Every architecture through burn's Flex backend.
#[test]
fn pytorch_logits_on_cpu_through_burn() {
    check_cases(&burn::tensor::Device::flex(), "flex", true);
}

/// wgpu (Mesa lavapipe in CI). Without an adapter the test says so and passes, unless
/// ARENA_REQUIRE_WGPU=1 (set by .ci/run), where a missing adapter fails it.
#[test]
fn pytorch_logits_on_wgpu() {
    let required = std::env::var("ARENA_REQUIRE_WGPU").is_ok_and(|v| v == "1");
    let probe = std::panic::catch_unwind(|| {
        let d = burn::tensor::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
        let t = burn::tensor::Tensor::<1>::ones([4], &d).sum().into_scalar::<f32>();
        (d, t)
    });
    match probe {
        Ok((device, 4.0)) => check_cases(&device, "wgpu", false),
        other => {
            assert!(
                !required,
                "wgpu is required (ARENA_REQUIRE_WGPU=1) but unusable: {:?}",
                other.map(|o| o.1)
            );
            eprintln!("no usable wgpu adapter here; set ARENA_REQUIRE_WGPU=1 to make this a failure");
        }
    }
}

/// CUDA, in builds with the `cuda` feature. Without a usable device the plugin refuses it with
/// the reason, which the test checks and prints; ARENA_REQUIRE_CUDA=1 makes that a failure.
#[cfg(feature = "cuda")]
#[test]
fn pytorch_logits_on_cuda() {
    let required = std::env::var("ARENA_REQUIRE_CUDA").is_ok_and(|v| v == "1");
    match arena_detector::burn_device(arena_plugin_api::Device::Cuda(0)) {
        Ok(device) => check_cases(&device, "cuda", false),
        Err(e) => {
            let reason = e.to_string();
            assert!(!required, "CUDA is required (ARENA_REQUIRE_CUDA=1) but unusable: {reason}");
            assert!(
                reason.contains("libcuda.so.1") || reason.contains("CUDA runtime"),
                "a refused CUDA device must say why: {reason}"
            );
            eprintln!("no usable CUDA device here: {reason}");
        }
    }
}

#[test]
fn resize_matches_opencv_byte_for_byte() {
    let fx = fixture();
    for case in fx["resize"].as_array().unwrap() {
        let src: Vec<usize> = serde_json::from_value(case["src"].clone()).unwrap();
        let target: Vec<usize> = serde_json::from_value(case["target"].clone()).unwrap();
        let img = Rgb {
            height: src[0],
            width: src[1],
            data: input_bytes(case["seed"].as_u64().unwrap(), src[0] * src[1] * 3),
        };
        let out = resize_shortest_edge(&img, target[0], target[1]);
        if let Some(px) = case.get("pixels") {
            let px: Vec<u8> = serde_json::from_value(px.clone()).unwrap();
            let off = out.data.iter().zip(&px).filter(|(a, b)| a != b).count();
            let worst =
                out.data.iter().zip(&px).map(|(a, b)| (*a as i32 - *b as i32).abs()).max().unwrap_or(0);
            assert_eq!(off, 0, "{src:?} -> {target:?}: {off} bytes differ from cv2 (worst {worst})");
        }
        assert_eq!(
            hex::encode(Sha256::digest(&out.data)),
            case["sha256"].as_str().unwrap(),
            "{src:?} -> {target:?}"
        );
    }
}
