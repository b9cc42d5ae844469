//! gasbench's scoring, checked against the independent Python computation
//! (tests/reference/detector_metrics.py) on random outputs: predictions, P(synthetic), accuracy,
//! binary MCC, Brier, cross-entropy, sn34, provenance weights, per-dataset caps.

use std::path::Path;

use arena_detector::metrics::{Scored, dataset_caps, label_of, prediction, provenance_weights, summarize};
use serde_json::Value;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/detector/metrics.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Probabilities are float32 as numpy computes them, but numpy's vectorised `exp` and libm's
/// `expf` may differ in the last bit: agreement is to float32 precision.
fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{what}: arena {a} vs reference {b}");
}

#[test]
fn pooled_metrics_match_the_reference() {
    let fx = fixture();
    for (i, case) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let logits: Vec<Vec<f32>> = serde_json::from_value(case["logits"].clone()).unwrap();
        let labels: Vec<u8> = serde_json::from_value(case["labels"].clone()).unwrap();
        let datasets: Vec<String> = serde_json::from_value(case["datasets"].clone()).unwrap();
        let names: Vec<&str> = datasets.iter().map(String::as_str).collect();
        let e = &case["expected"];
        let weights = match case["shares"].as_array() {
            Some(s) => provenance_weights(&names, s[0].as_f64().unwrap(), s[1].as_f64().unwrap()),
            None => vec![1.0; labels.len()],
        };
        let mut scored = Vec::new();
        for (k, l) in logits.iter().enumerate() {
            let (predicted, p) = prediction(l).unwrap();
            assert_eq!(predicted as u64, e["predictions"][k].as_u64().unwrap(), "case {i} sample {k}");
            close(p, e["p_synthetic"][k].as_f64().unwrap(), &format!("case {i} sample {k} P(synthetic)"));
            scored.push(Scored { label: labels[k] == 1, predicted, p_synthetic: p, weight: weights[k] });
        }
        let s = summarize(&scored, !case["shares"].is_null());
        close(s.accuracy, e["accuracy"].as_f64().unwrap(), &format!("case {i} accuracy"));
        close(s.binary_mcc, e["binary_mcc"].as_f64().unwrap(), &format!("case {i} mcc"));
        close(s.binary_brier, e["binary_brier"].as_f64().unwrap(), &format!("case {i} brier"));
        close(s.binary_cross_entropy, e["binary_cross_entropy"].as_f64().unwrap(), &format!("case {i} bce"));
        close(s.sn34_score, e["sn34_score"].as_f64().unwrap(), &format!("case {i} sn34"));
    }
}

#[test]
fn caps_match_the_reference() {
    for case in fixture()["caps"].as_array().unwrap() {
        let names: Vec<String> = serde_json::from_value(case["names"].clone()).unwrap();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let expected: Vec<usize> = serde_json::from_value(case["caps"].clone()).unwrap();
        assert_eq!(dataset_caps(&refs, case["target"].as_u64().unwrap() as usize, 5.0), expected);
    }
}

#[test]
fn media_types_map_to_labels() {
    assert_eq!(label_of("real"), Some(false));
    assert_eq!(label_of("synthetic"), Some(true));
    assert_eq!(label_of("semisynthetic"), Some(true));
    assert_eq!(label_of("fake"), None);
}
