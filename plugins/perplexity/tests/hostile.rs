//! Hostile and broken model directories: each is rejected as an invalid submission with a
//! reason, without a crash or an unbounded allocation.

use std::path::{Path, PathBuf};

use arena_perplexity::PerplexityPlugin;
use arena_plugin_api::*;
use serde_json::{Value, json};

fn good() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lm-protocols/llama-40")
}

fn copy_model(dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(good()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// The header (as JSON) and the data of a safetensors file.
fn split(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), bytes[8 + n..].to_vec())
}

fn join(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// The first tensor (by data offset) other than the metadata entry.
fn first_tensor(header: &Value) -> String {
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .min_by_key(|(_, v)| v["data_offsets"][0].as_u64().unwrap())
        .map(|(k, _)| k.clone())
        .unwrap()
}

fn evaluate(dir: &Path) -> Result<EvalOutput, PluginError> {
    let mut task = PerplexityPlugin::create_task(TaskSpec {
        kind: "text_loss".into(),
        params: json!({"protocol": "rolling", "sequence_length": 16}),
        device: Device::Cpu,
        seed: 0,
    })?;
    let req = EvalRequest {
        submission: Submission { id: "hostile".into(), path: dir.to_path_buf(), metadata: Value::Null },
        samples: vec![Sample { data: json!({"text": "The red cat sees the old tree."}), files: vec![] }],
        limits: Limits::default(),
    };
    task.evaluate(&req, &NoProgress)
}

fn rejected(case: &str, mutate: impl FnOnce(&Path), expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(case);
    copy_model(&dir);
    mutate(&dir);
    match evaluate(&dir) {
        Ok(out) => panic!("{case}: accepted with raw score {}", out.raw_score),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::InvalidSubmission, "{case}: {e}");
            assert!(e.message.contains(expect), "{case}: `{}` lacks `{expect}`", e.message);
        }
    }
}

fn edit_weights(dir: &Path, f: impl FnOnce(&mut Value, &mut Vec<u8>)) {
    let p = dir.join("model.safetensors");
    let (mut h, mut d) = split(&std::fs::read(&p).unwrap());
    f(&mut h, &mut d);
    std::fs::write(&p, join(&h, &d)).unwrap();
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut Value)) {
    let p = dir.join("config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, v.to_string()).unwrap();
}

#[test]
fn the_untouched_model_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(tmp.path());
    assert!(evaluate(tmp.path()).unwrap().raw_score.is_finite());
}

#[test]
fn a_truncated_file_is_rejected() {
    rejected(
        "truncated",
        |d| {
            let p = d.join("model.safetensors");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        },
        "invalid safetensors",
    );
}

#[test]
fn a_huge_header_length_is_rejected_without_allocating_it() {
    rejected(
        "huge-header",
        |d| {
            let p = d.join("model.safetensors");
            let mut b = std::fs::read(&p).unwrap();
            b[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
            std::fs::write(&p, &b).unwrap();
        },
        "invalid safetensors",
    );
}

#[test]
fn overlapping_offsets_are_rejected() {
    rejected(
        "overlap",
        |d| {
            edit_weights(d, |h, _| {
                let first = first_tensor(h);
                let offsets = h[&first]["data_offsets"].clone();
                let other = h
                    .as_object()
                    .unwrap()
                    .keys()
                    .find(|k| **k != first && *k != "__metadata__")
                    .unwrap()
                    .clone();
                h[&other]["data_offsets"] = offsets;
            })
        },
        "invalid safetensors",
    );
}

#[test]
fn out_of_range_offsets_are_rejected() {
    rejected(
        "out-of-range",
        |d| edit_weights(d, |_, data| data.truncate(data.len() - 4)),
        "invalid safetensors",
    );
}

#[test]
fn a_non_float_dtype_is_rejected() {
    rejected(
        "int-dtype",
        |d| {
            edit_weights(d, |h, _| {
                let first = first_tensor(h);
                h[&first]["dtype"] = json!("I32");
            })
        },
        "dtype I32",
    );
}

#[test]
fn nan_and_inf_weights_are_rejected() {
    for (case, bits) in [
        ("nan", f32::NAN.to_bits()),
        ("inf", f32::INFINITY.to_bits()),
        ("neg-inf", f32::NEG_INFINITY.to_bits()),
    ] {
        rejected(
            case,
            |d| {
                edit_weights(d, |h, data| {
                    let first = first_tensor(h);
                    let at = h[&first]["data_offsets"][0].as_u64().unwrap() as usize + 40;
                    data[at..at + 4].copy_from_slice(&bits.to_le_bytes());
                })
            },
            "non-finite value",
        );
    }
}

#[test]
fn a_shape_that_differs_from_the_config_is_rejected() {
    rejected("shape", |d| edit_config(d, |v| v["intermediate_size"] = json!(96)), "shape mismatch");
}

#[test]
fn a_missing_tensor_is_rejected() {
    rejected(
        "missing",
        |d| {
            edit_weights(d, |h, data| {
                // Remove the tensor and its bytes; the remaining offsets stay contiguous.
                let gone = h.as_object_mut().unwrap().remove("model.norm.weight").unwrap();
                let (a, b) =
                    (gone["data_offsets"][0].as_u64().unwrap(), gone["data_offsets"][1].as_u64().unwrap());
                data.drain(a as usize..b as usize);
                for (k, v) in h.as_object_mut().unwrap().iter_mut() {
                    if k == "__metadata__" {
                        continue;
                    }
                    for i in 0..2 {
                        let x = v["data_offsets"][i].as_u64().unwrap();
                        if x >= b {
                            v["data_offsets"][i] = json!(x - (b - a));
                        }
                    }
                }
            })
        },
        "model.norm.weight",
    );
}

#[test]
fn unsupported_and_absurd_configs_are_rejected() {
    rejected("model-type", |d| edit_config(d, |v| v["model_type"] = json!("gpt2")), "model_type `gpt2`");
    rejected("huge-vocab", |d| edit_config(d, |v| v["vocab_size"] = json!(1u64 << 40)), "sizes beyond");
    rejected("heads", |d| edit_config(d, |v| v["num_key_value_heads"] = json!(3)), "not a multiple");
    rejected("not-json", |d| std::fs::write(d.join("config.json"), "{").unwrap(), "not valid JSON");
}

#[test]
fn a_broken_tokenizer_or_shard_index_is_rejected() {
    rejected("no-tokenizer", |d| std::fs::remove_file(d.join("tokenizer.json")).unwrap(), "tokenizer");
    rejected(
        "escaping-shard",
        |d| {
            std::fs::remove_file(d.join("model.safetensors")).unwrap();
            let idx = json!({"weight_map": {"model.norm.weight": "../../etc/passwd"}});
            std::fs::write(d.join("model.safetensors.index.json"), idx.to_string()).unwrap();
        },
        "not a plain file name",
    );
    rejected(
        "no-weights",
        |d| std::fs::remove_file(d.join("model.safetensors")).unwrap(),
        "neither model.safetensors",
    );
}

#[test]
fn weight_norms_beyond_the_limits_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    copy_model(tmp.path());
    let mut task = PerplexityPlugin::create_task(TaskSpec {
        kind: "heldout_ppl".into(),
        params: json!({"model": {"weight_norms": {"soft": 0.01, "soft_fraction": 0.5, "hard": 1000.0}}}),
        device: Device::Cpu,
        seed: 0,
    })
    .unwrap();
    let req = EvalRequest {
        submission: Submission { id: "norms".into(), path: tmp.path().to_path_buf(), metadata: Value::Null },
        samples: vec![Sample { data: json!({"text": "The red cat."}), files: vec![] }],
        limits: Limits::default(),
    };
    let e = task.evaluate(&req, &NoProgress).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSubmission);
    assert!(e.message.contains("weight norms: mean fraction"), "{e}");
}
