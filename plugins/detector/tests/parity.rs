//! Parity with torchvision (tests/reference/detector_parity.py): the same counter-based weights
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

fn config(arch: &str, classes: usize, h: usize, w: usize, mean: &Value, std: &Value) -> String {
    format!(
        "name: parity\nmodality: image\npreprocessing:\n  resize: [{h}, {w}]\n  normalize:\n    mean: {mean}\n    std: {std}\nmodel:\n  architecture: {arch}\n  num_classes: {classes}\n"
    )
}

fn check_cases(device: &burn::tensor::Device, label: &str) {
    let fx = fixture();
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let seed = case["seed"].as_u64().unwrap();
        let shape: Vec<usize> =
            case["input_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let (b, h, w) = (shape[0], shape[2], shape[3]);
        let expected: Vec<Vec<f64>> = serde_json::from_value(case["logits"].clone()).unwrap();
        let classes = expected[0].len();
        let cfg_text = config(name, classes, h, w, &case["mean"], &case["std"]);
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
        let det = Detector::load(dir.path(), device).unwrap();
        let input = input_bytes(case["input_seed"].as_u64().unwrap(), b * 3 * h * w);
        let images: Vec<Vec<u8>> = input.chunks(3 * h * w).map(|c| c.to_vec()).collect();
        let got = det.image_logits(&images).unwrap();
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

#[test]
fn torchvision_resnets_on_cpu() {
    check_cases(&burn::tensor::Device::flex(), "cpu");
}

/// wgpu (Mesa lavapipe in CI). Without an adapter the test says so and passes, unless
/// ARENA_REQUIRE_WGPU=1 (set by .ci/run), where a missing adapter fails it.
#[test]
fn torchvision_resnets_on_wgpu() {
    let required = std::env::var("ARENA_REQUIRE_WGPU").is_ok_and(|v| v == "1");
    let probe = std::panic::catch_unwind(|| {
        let d = burn::tensor::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
        let t = burn::tensor::Tensor::<1>::ones([4], &d).sum().into_scalar::<f32>();
        (d, t)
    });
    match probe {
        Ok((device, 4.0)) => check_cases(&device, "wgpu"),
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
