//! Reading tests/golden/scoring.json (written by tests/reference/scoring_reference.py) into
//! arena's types: shared by the golden test and the scoring benchmark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arena_core::config::Competition;
use arena_core::dryrun::RawScores;
use arena_core::scoring::RawSubmission;
use arena_plugin_api::metrics;
use arena_runtime::checker::load_competitions;
use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

pub struct Case {
    pub name: String,
    pub competitions: Vec<Competition>,
    pub funding: Option<BTreeMap<String, f64>>,
    pub rounds: Vec<Round>,
}

pub struct Round {
    pub block: u64,
    pub raw: RawScores,
    pub expected: Value,
}

/// A JSON number, or "inf" / "-inf".
pub fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// SN34 submissions carry predictions: plugin-api's metrics give the raw task scores.
fn raw_tasks(sub: &Value) -> BTreeMap<String, Option<f64>> {
    if let Some(tasks) = sub.get("tasks") {
        return tasks.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64())).collect();
    }
    let pred = &sub["predictions"];
    if pred.is_null() {
        return [("mcc".to_string(), None), ("brier".to_string(), None)].into();
    }
    let p: Vec<f64> = pred["p"].as_array().unwrap().iter().map(num).collect();
    let y: Vec<bool> = pred["y"].as_array().unwrap().iter().map(|v| v.as_i64() == Some(1)).collect();
    let w: Vec<f64> = pred["w"].as_array().unwrap().iter().map(num).collect();
    let predicted: Vec<bool> = p.iter().map(|&x| x > 0.5).collect();
    let mcc = metrics::binary_mcc(&metrics::confusion(&predicted, &y, &w));
    let brier = metrics::brier(&p, &y, &w);
    [("mcc".to_string(), Some(mcc)), ("brier".to_string(), Some(brier))].into()
}

pub fn load_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(repo().join("tests/golden/scoring.json")).unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    golden["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let name = case["name"].as_str().unwrap().to_string();
            let files: Vec<PathBuf> = case["competitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| repo().join("competitions").join(format!("{}.toml", c.as_str().unwrap())))
                .collect();
            let competitions =
                load_competitions(&files).unwrap_or_else(|e| panic!("{name}: {:?}", e.diagnostics));
            let funding = case
                .get("funding")
                .map(|f| f.as_object().unwrap().iter().map(|(k, v)| (k.clone(), num(v))).collect());
            let rounds = case["rounds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|round| {
                    let block = round["block"].as_u64().unwrap();
                    let submissions = round["submissions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| RawSubmission {
                            uid: s["uid"].as_u64().unwrap() as u16,
                            hotkey: s["hotkey"].as_str().unwrap().into(),
                            block: s["block"].as_u64().unwrap(),
                            competition: s["competition"].as_str().unwrap().into(),
                            tasks: raw_tasks(s),
                        })
                        .collect();
                    Round {
                        block,
                        raw: RawScores {
                            block: Some(block),
                            registered: round.get("registered").and_then(|v| v.as_u64()).map(|n| n as usize),
                            submissions,
                        },
                        expected: round["expected"].clone(),
                    }
                })
                .collect();
            Case { name, competitions, funding, rounds }
        })
        .collect()
}
