//! Hostile submissions are rejected with a reason naming the fault, without crashing and without
//! unbounded allocation: malformed safetensors (truncated, huge header, overlapping offsets),
//! wrong dtypes, non-finite weights, tensors missing, misshapen or unexpected.

use std::collections::BTreeMap;
use std::path::Path;

use arena_detector::weights::{HostTensor, export, write_safetensors};
use arena_detector::{Detector, DetectorError, ModelConfig, Source};

const CONFIG: &str = "name: t\nmodality: image\npreprocessing:\n  resize: [32, 32]\nmodel:\n  architecture: resnet18\n  width: 4\n";

fn tensors() -> BTreeMap<String, HostTensor> {
    let cfg = ModelConfig::parse(CONFIG, Path::new("model_config.yaml")).unwrap();
    let d = Detector::from_source(cfg, Source::synthetic(1, &burn::tensor::Device::flex())).unwrap();
    export(&d.network, &d.naming)
}

/// Loads a submission whose weights file holds `bytes`; the error message.
fn load_bytes(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model_config.yaml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    match Detector::load(dir.path(), &burn::tensor::Device::flex()) {
        Ok(_) => panic!("accepted"),
        Err(DetectorError::Submission(m)) => m,
        Err(e) => panic!("wrong error kind: {e:?}"),
    }
}

fn file_bytes(t: &BTreeMap<String, HostTensor>) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.safetensors");
    write_safetensors(t, true, &p).unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn a_valid_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model_config.yaml"), CONFIG).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), file_bytes(&tensors())).unwrap();
    Detector::load(dir.path(), &burn::tensor::Device::flex()).unwrap();
}

#[test]
fn malformed_files_are_rejected() {
    let good = file_bytes(&tensors());
    let m = load_bytes(&good[..good.len() - 10]);
    assert!(m.contains("not a valid safetensors file"), "{m}");
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    let m = load_bytes(&huge);
    assert!(m.contains("not a valid safetensors file"), "{m}");
    let m = load_bytes(b"");
    assert!(m.contains("not a valid safetensors file"), "{m}");
    // Two tensors over the same bytes.
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut overlap = (header.len() as u64).to_le_bytes().to_vec();
    overlap.extend_from_slice(header.as_bytes());
    overlap.extend_from_slice(&[0u8; 16]);
    let m = load_bytes(&overlap);
    assert!(m.contains("not a valid safetensors file"), "{m}");
    // Offsets past the end.
    let header = r#"{"a":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#;
    let mut past = (header.len() as u64).to_le_bytes().to_vec();
    past.extend_from_slice(header.as_bytes());
    past.extend_from_slice(&[0u8; 16]);
    let m = load_bytes(&past);
    assert!(m.contains("not a valid safetensors file"), "{m}");
}

#[test]
fn wrong_dtypes_and_non_finite_weights_are_rejected() {
    let header = r#"{"conv1.weight":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#;
    let mut u8s = (header.len() as u64).to_le_bytes().to_vec();
    u8s.extend_from_slice(header.as_bytes());
    u8s.extend_from_slice(&[1, 2, 3, 4]);
    let m = load_bytes(&u8s);
    assert!(m.contains("`conv1.weight`") && m.contains("U8"), "{m}");

    let mut t = tensors();
    t.get_mut("layer2.0.bn1.running_var").unwrap().data[3] = f32::NAN;
    let m = load_bytes(&file_bytes(&t));
    assert!(
        m.contains("`layer2.0.bn1.running_var`") && m.contains("non-finite") && m.contains("element 3"),
        "{m}"
    );
    let mut t = tensors();
    t.get_mut("fc.weight").unwrap().data[0] = f32::INFINITY;
    let m = load_bytes(&file_bytes(&t));
    assert!(m.contains("`fc.weight`") && m.contains("non-finite"), "{m}");
}

#[test]
fn mismatched_tensors_are_named() {
    let mut t = tensors();
    t.remove("layer3.1.conv2.weight");
    let m = load_bytes(&file_bytes(&t));
    assert!(m.contains("`layer3.1.conv2.weight`") && m.contains("missing"), "{m}");

    let mut t = tensors();
    t.get_mut("layer1.0.conv1.weight").unwrap().shape = vec![4, 4, 9];
    let m = load_bytes(&file_bytes(&t));
    assert!(
        m.contains("`layer1.0.conv1.weight`") && m.contains("[4, 4, 9]") && m.contains("[4, 4, 3, 3]"),
        "{m}"
    );

    let mut t = tensors();
    t.insert("head.extra".into(), HostTensor { shape: vec![2], data: vec![0.0, 1.0] });
    let m = load_bytes(&file_bytes(&t));
    assert!(m.contains("`head.extra`") && m.contains("not part of the architecture"), "{m}");
}

#[test]
fn a_missing_weights_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model_config.yaml"), CONFIG).unwrap();
    match Detector::load(dir.path(), &burn::tensor::Device::flex()) {
        Err(DetectorError::Submission(m)) => {
            assert!(m.contains("model.safetensors") && m.contains("cannot open"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}
