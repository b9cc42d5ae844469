//! `arena model inspect` through the built binary.

use arena_e2e::{arena, repo_root, stdout_json, text};

#[test]
fn model_inspect_reports_and_checks_constraints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"architectures": ["Qwen2ForCausalLM"], "max_position_embeddings": 32768}"#,
    )
    .unwrap();
    let header = r#"{"w":{"dtype":"BF16","shape":[8,8],"data_offsets":[0,128]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend([0u8; 128]);
    std::fs::write(dir.join("model.safetensors"), &bytes).unwrap();

    let out = arena(&["model", "inspect", dir.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = stdout_json(&out);
    assert_eq!(report["model"]["parameters"], 64);

    let comp = repo_root().join("competitions/pretraining-3b.toml");
    let out = arena(&["model", "inspect", dir.to_str().unwrap(), "--competition", comp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("REJECTED: 64 parameters, fewer than the minimum 3200000000"),
        "{}",
        text(&out)
    );

    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() - 1]).unwrap();
    let out = arena(&["model", "inspect", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("REJECTED: model.safetensors: the tensor data does not match"),
        "{}",
        text(&out)
    );
}
