//! Golden cases from the independent Python reference (tests/reference/scoring_reference.py):
//! the reference competition files, fed the same raw scores, must give the same totals, win
//! rates, competition weights and final weights (relative 1e-12) and the same u16 vector.

mod common;

use arena_core::dryrun::{State, score};
use arena_plugin_api::metrics;
use arena_runtime::checker::load_competitions;
use common::golden::{load_cases, num, repo};

/// Relative 1e-12, with no absolute floor: softmax weights of 1e-40 are compared too.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

#[test]
fn reference_script_cases_match() {
    let cases = load_cases();
    assert!(cases.len() >= 50, "the golden file has {} cases", cases.len());
    let mut checked = 0usize;
    for case in &cases {
        let mut state = State::default();
        for (r, round) in case.rounds.iter().enumerate() {
            let report =
                score(&case.competitions, case.funding.as_ref(), &round.raw, round.block, &mut state)
                    .unwrap();
            let at = format!("{} round {r}", case.name);
            let expected = &round.expected;
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
                let comp_state =
                    state.competitions.get(&case.competitions[0].id).cloned().unwrap_or_default();
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
    let scorer = arena_core::scoring::Scorer::new(&comps[0]).unwrap();
    for (mcc, brier) in [(0.3, 0.1), (-1.0, 0.9), (1.0, 0.0), (0.0, 0.25), (0.77, 0.031), (-0.2, 0.26)] {
        let raw = [("mcc".to_string(), Some(mcc)), ("brier".to_string(), Some(brier))].into();
        let (_, _, total) = scorer.total(&raw);
        assert!(close(total, metrics::sn34_score(mcc, brier)), "mcc {mcc} brier {brier}: {total}");
    }
}
