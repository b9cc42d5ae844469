//! Golden cases from the independent Python reference (tests/reference/scoring_reference.py):
//! the reference competition files, fed the same raw scores, must give the same totals, win
//! rates, competition weights and final weights (relative 1e-12) and the same u16 vector.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arena_host::checker::load_competitions;
use arena_host::config::Competition;
use arena_host::dryrun::{RawScores, State, score};
use arena_host::scoring::RawSubmission;
use arena_plugin_api::metrics;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// Relative 1e-12, with no absolute floor: softmax weights of 1e-40 are compared too.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// SN34 submissions carry predictions: the plugin's metrics give the raw task scores.
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

#[test]
fn reference_script_cases_match() {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/golden/scoring.json")).unwrap())
            .unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 50, "the golden file has {} cases", cases.len());
    let mut checked = 0usize;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let files: Vec<PathBuf> = case["competitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| repo().join("competitions").join(format!("{}.toml", c.as_str().unwrap())))
            .collect();
        let comps: Vec<Competition> =
            load_competitions(&files).unwrap_or_else(|e| panic!("{name}: {:?}", e.diagnostics));
        let funding: Option<BTreeMap<String, f64>> = case
            .get("funding")
            .map(|f| f.as_object().unwrap().iter().map(|(k, v)| (k.clone(), num(v))).collect());
        let mut state = State::default();
        for (r, round) in case["rounds"].as_array().unwrap().iter().enumerate() {
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
            let raw = RawScores { block: Some(block), submissions };
            let report = score(&comps, funding.as_ref(), &raw, block, &mut state).unwrap();
            let at = format!("{name} round {r}");
            let expected = &round["expected"];
            let rows = expected["rows"].as_object().unwrap();
            let got: Vec<_> = report.competitions.iter().flat_map(|c| &c.submissions).collect();
            assert_eq!(got.len(), rows.len(), "{at}: evaluated uids");
            for row in got {
                let s = &row.scored;
                let want = &rows[&s.uid.to_string()];
                let checks = [
                    ("total", s.total, Some(&want["total"])),
                    ("win_rate", s.win_rate, want.get("win_rate")),
                    ("step_weight", s.step_weight, Some(&want["step_weight"])),
                    ("weight", row.weight, Some(&want["weight"])),
                ];
                for (field, value, want) in checks {
                    if let Some(w) = want {
                        assert!(close(value, num(w)), "{at} uid {}: {field} {value} != {}", s.uid, num(w));
                        checked += 1;
                    }
                }
                assert_eq!(
                    s.competitive,
                    want["competitive"].as_bool().unwrap(),
                    "{at} uid {}: competitive",
                    s.uid
                );
            }
            if let Some(want_state) = expected.get("state") {
                let comp_state = state.competitions.get(&comps[0].id).cloned().unwrap_or_default();
                assert!(comp_state.len() <= want_state.as_object().unwrap().len(), "{at}: EMA state uids");
                for (uid, w) in want_state.as_object().unwrap() {
                    let got = comp_state.get(&uid.parse().unwrap()).copied().unwrap_or(0.0);
                    assert!(close(got, num(w)), "{at} uid {uid}: EMA state {got} != {}", num(w));
                }
            }
            let want_weights = expected["weights"].as_object().unwrap();
            for w in &report.weights {
                let want = want_weights.get(&w.uid.to_string()).map_or(0.0, num);
                assert!(close(w.weight, want), "{at} uid {}: final weight {} != {want}", w.uid, w.weight);
                checked += 1;
            }
            let want_u16: Vec<(u16, u16)> = expected["u16"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as u16, p[1].as_u64().unwrap() as u16))
                .collect();
            let got_u16: Vec<(u16, u16)> =
                report.weights.iter().filter(|w| w.u16 != 0).map(|w| (w.uid, w.u16)).collect();
            assert_eq!(got_u16, want_u16, "{at}: u16 vector");
        }
    }
    assert!(checked > 500, "only {checked} numbers compared");
}

/// The gasbench sn34 formula of plugin-api's metrics against the competition file's formula.
#[test]
fn deepfake_formula_equals_sn34_score() {
    let comps = load_competitions(&[repo().join("competitions/deepfake-image.toml")]).unwrap();
    let scorer = arena_host::scoring::Scorer::new(&comps[0]).unwrap();
    for (mcc, brier) in [(0.3, 0.1), (-1.0, 0.9), (1.0, 0.0), (0.0, 0.25), (0.77, 0.031), (-0.2, 0.26)] {
        let raw = [("mcc".to_string(), Some(mcc)), ("brier".to_string(), Some(brier))].into();
        let (_, _, total) = scorer.total(&raw);
        assert!(close(total, metrics::sn34_score(mcc, brier)), "mcc {mcc} brier {brier}: {total}");
    }
}
