//! Model directories read without loading weights, and hostile files rejected with a reason.

use std::path::Path;

use arena_runtime::checker::load_competitions;
use arena_runtime::model::{inspect, violations};

const CONFIG: &str =
    r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "max_position_embeddings": 4096}"#;

/// A safetensors file: 8-byte little-endian header length, JSON header, data.
fn st(header: &str, data_len: usize) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, data_len));
    out
}

const VALID: &str = r#"{"embed":{"dtype":"BF16","shape":[10,4],"data_offsets":[0,80]},"lm_head":{"dtype":"BF16","shape":[4,10],"data_offsets":[80,160]}}"#;

fn model(dir: &Path, files: &[(&str, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn competition(name: &str) -> arena_core::config::Constraints {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../competitions/{name}.toml"));
    load_competitions(&[path]).unwrap().remove(0).constraints
}

#[test]
fn a_valid_model_is_summarized_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    model(&dir, &[("config.json", CONFIG.into()), ("model.safetensors", st(VALID, 160))]);
    let s = inspect(&dir).unwrap();
    assert_eq!(s.parameters, 80);
    assert_eq!(s.tensors, 2);
    assert_eq!(s.dtypes.get("BF16"), Some(&80));
    assert_eq!(s.architectures, vec!["LlamaForCausalLM"]);
    assert_eq!(s.max_positions, Some(4096));
    assert_eq!(s.total_bytes, (CONFIG.len() + 8 + VALID.len() + 160) as u64);

    // SN9 B3: the architecture, sequence length and dtype pass; 80 parameters are too few.
    let v = violations(&s, &competition("pretraining-3b"));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("80 parameters, fewer than the minimum 3200000000"), "{v:?}");
    // SN37 reasoning wants 16384 positions and at least 3.2e9 parameters.
    let v = violations(&s, &competition("finetuning-reasoning-3b"));
    assert!(v.iter().any(|m| m.contains("allows 4096 positions; the competition evaluates 16384")), "{v:?}");

    // Sharded through an index: the same tensors in two files.
    let sharded = tmp.path().join("sharded");
    let a = r#"{"embed":{"dtype":"F32","shape":[10,4],"data_offsets":[0,160]}}"#;
    let b = r#"{"lm_head":{"dtype":"F32","shape":[4,10],"data_offsets":[0,160]}}"#;
    let index =
        r#"{"metadata":{"total_size":320},"weight_map":{"embed":"a.safetensors","lm_head":"b.safetensors"}}"#;
    model(
        &sharded,
        &[
            ("config.json", CONFIG.into()),
            ("a.safetensors", st(a, 160)),
            ("b.safetensors", st(b, 160)),
            ("model.safetensors.index.json", index.into()),
        ],
    );
    let s = inspect(&sharded).unwrap();
    assert_eq!((s.parameters, s.weight_files.len()), (80, 2));
    let v = violations(&s, &competition("pretraining-3b"));
    assert!(
        v.iter().any(|m| m.contains("weights are stored as F32; the competition requires BF16")),
        "{v:?}"
    );
}

#[test]
fn hostile_models_are_rejected_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let mut truncated = st(VALID, 160);
    truncated.truncate(truncated.len() - 10);
    let mut huge_header = st(VALID, 160);
    huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut past_end = st(VALID, 160);
    past_end[..8].copy_from_slice(&10_000u64.to_le_bytes());
    let overlapping = r#"{"a":{"dtype":"F32","shape":[20],"data_offsets":[0,80]},"b":{"dtype":"F32","shape":[20],"data_offsets":[40,120]}}"#;
    let out_of_range = r#"{"a":{"dtype":"F32","shape":[20],"data_offsets":[0,80]}}"#;
    let wrong_size = r#"{"a":{"dtype":"BF16","shape":[10,4],"data_offsets":[0,40]}}"#;
    let unknown_dtype = r#"{"a":{"dtype":"F128","shape":[2],"data_offsets":[0,32]}}"#;
    let overflow = r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#;
    let index_escape = r#"{"weight_map":{"embed":"../outside.safetensors"}}"#;
    let index_missing = r#"{"weight_map":{"embed":"model-00001.safetensors"}}"#;
    let a = r#"{"embed":{"dtype":"F32","shape":[10,4],"data_offsets":[0,160]}}"#;
    type Files = Vec<(&'static str, Vec<u8>)>;
    let cases: Vec<(&str, Files, &str)> = vec![
        ("truncated", vec![("model.safetensors", truncated)], "does not match the file's size"),
        ("huge-header", vec![("model.safetensors", huge_header)], "larger than 100 MB"),
        ("header-past-end", vec![("model.safetensors", past_end)], "runs past the end of the file"),
        ("overlapping", vec![("model.safetensors", st(overlapping, 120))], "overlap or leave a gap"),
        ("out-of-range", vec![("model.safetensors", st(out_of_range, 40))], "does not match the file's size"),
        ("wrong-size", vec![("model.safetensors", st(wrong_size, 40))], "does not match its shape and dtype"),
        ("unknown-dtype", vec![("model.safetensors", st(unknown_dtype, 32))], "invalid safetensors header"),
        ("not-json", vec![("model.safetensors", st("{not json", 0))], "invalid safetensors header"),
        ("shape-overflow", vec![("model.safetensors", st(overflow, 0))], "overflows"),
        ("tiny", vec![("model.safetensors", vec![1, 2, 3])], "shorter than the 8-byte header length"),
        ("pickle", vec![("pytorch_model.bin", vec![0x80, 0x04])], "pickle weights are not accepted"),
        ("no-weights", vec![], "no .safetensors file"),
        (
            "index-escape",
            vec![("model.safetensors.index.json", index_escape.into())],
            "is not a safetensors file name in the model directory",
        ),
        ("index-missing", vec![("model.safetensors.index.json", index_missing.into())], "is missing"),
        (
            "duplicate",
            vec![("a.safetensors", st(a, 160)), ("b.safetensors", st(a, 160))],
            "tensor `embed` is in both a.safetensors and b.safetensors",
        ),
    ];
    for (name, files, fragment) in cases {
        let dir = tmp.path().join(name);
        let mut all = vec![("config.json", CONFIG.as_bytes().to_vec())];
        all.extend(files);
        model(&dir, &all);
        let err = inspect(&dir).map(|s| s.parameters).expect_err(name).to_string();
        assert!(err.contains(fragment), "{name}: `{err}` lacks `{fragment}`");
    }

    let configs: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not-json", b"{".to_vec(), "config.json: not JSON"),
        ("not-object", b"[1]".to_vec(), "not a JSON object"),
        ("architectures", br#"{"architectures": "Llama"}"#.to_vec(), "`architectures` is not a list"),
        ("huge", vec![b' '; 5 << 20], "more than the"),
    ];
    for (name, config, fragment) in configs {
        let dir = tmp.path().join(format!("config-{name}"));
        model(&dir, &[("config.json", config), ("model.safetensors", st(VALID, 160))]);
        let err = inspect(&dir).map(|s| s.parameters).expect_err(name).to_string();
        assert!(err.contains(fragment), "{name}: `{err}` lacks `{fragment}`");
    }
    let dir = tmp.path().join("no-config");
    model(&dir, &[("model.safetensors", st(VALID, 160))]);
    assert!(inspect(&dir).unwrap_err().to_string().starts_with("config.json:"));
}
