//! A model directory: the input is split at the first NUL into config.json and one
//! model.safetensors file, written to a fresh directory, and inspected as a submission is
//! (config.json, safetensors headers, constraints), without reading weights.
#![no_main]
use arena_core::config::Constraints;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (config, weights) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), weights).unwrap();
    let constraints = Constraints {
        max_parameters: Some(1 << 40),
        architectures: vec!["LlamaForCausalLM".into()],
        ..Default::default()
    };
    if let Ok(summary) = arena_runtime::model::inspect(dir.path()) {
        assert!(summary.tensors > 0 || summary.parameters == 0);
    }
    let _ = arena_runtime::model::submission_violations(dir.path(), &serde_json::Value::Null, &constraints);
});
