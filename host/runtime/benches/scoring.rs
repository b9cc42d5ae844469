//! `cargo bench -p arena-host --bench scoring`: arena's scoring of the golden rounds (totals,
//! wins, policy, EMA, split, u16), per competition, next to the Python reference scoring the
//! same rounds, in one run, with the ratio. Each case prepares its competitions once (formulas
//! compiled), as a validator does, then scores its rounds.

#[path = "../tests/common/golden.rs"]
#[allow(dead_code)] // the golden test reads every field; the benchmark does not
mod golden;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use arena_core::dryrun::{State, score_with};
use arena_core::scoring::Scorer;

const REPEAT: usize = 20;

fn main() {
    let cases: Vec<_> = golden::load_cases().into_iter().filter(|c| c.competitions.len() == 1).collect();
    let mut by_comp: BTreeMap<String, Vec<&golden::Case>> = BTreeMap::new();
    for case in &cases {
        by_comp.entry(case.competitions[0].id.clone()).or_default().push(case);
    }
    let script = golden::repo().join("tests/reference/scoring_reference.py");
    let out = Command::new("python3").arg(&script).args(["--bench", &REPEAT.to_string()]).output();
    let python: Option<serde_json::Value> =
        out.ok().filter(|o| o.status.success()).and_then(|o| serde_json::from_slice(&o.stdout).ok());
    if python.is_none() {
        println!("(python3 {} --bench failed: no reference timings)", script.display());
    }
    println!("scoring the golden rounds, µs per round, best of {REPEAT}:");
    println!("{:<26} {:>7} {:>12} {:>12} {:>8}", "competition", "rounds", "arena", "reference", "ratio");
    for (id, cases) in &by_comp {
        let rounds: usize = cases.iter().map(|c| c.rounds.len()).sum();
        let prepared: Vec<Vec<Scorer>> = cases
            .iter()
            .map(|c| c.competitions.iter().map(|comp| Scorer::new(comp).unwrap()).collect())
            .collect();
        let mut best = f64::INFINITY;
        for _ in 0..REPEAT {
            let start = Instant::now();
            for (case, scorers) in cases.iter().zip(&prepared) {
                let mut state = State::default();
                for round in &case.rounds {
                    let report = score_with(scorers, None, &round.raw, round.block, &mut state).unwrap();
                    std::hint::black_box(report);
                }
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        let rust = best / rounds as f64 * 1e6;
        let reference = python.as_ref().and_then(|p| {
            let r = &p[id.as_str()];
            (r["rounds"].as_u64()? as usize == rounds)
                .then(|| r["seconds"].as_f64().unwrap() / rounds as f64 * 1e6)
        });
        match reference {
            Some(py) => println!("{id:<26} {rounds:>7} {rust:>12.1} {py:>12.1} {:>7.1}x", py / rust),
            None => println!("{id:<26} {rounds:>7} {rust:>12.1} {:>12} {:>8}", "-", "-"),
        }
    }
    println!("(deepfake-image: the reference computes MCC and Brier from the predictions inside the round;");
    println!(" arena receives them as raw task scores, computed by the detector plugin.)");
}
