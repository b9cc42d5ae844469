//! RAW.json, as `arena score` reads it, scored against the repository's competitions. Whatever
//! the scorer accepts gives finite, non-negative weights that sum to 1 (or none at all) and a u16
//! vector whose largest entry is 65535.
#![no_main]
use arena_core::dryrun::{self, RawScores, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if arena_core::json::check_unique_keys(text).is_err() {
        return;
    }
    let Ok(raw) = serde_json::from_str::<RawScores>(text) else { return };
    let block = raw.block.unwrap_or(1_000_000);
    let mut state = State::default();
    let Ok(report) = dryrun::score(arena_fuzz::competitions(), None, &raw, block, &mut state) else { return };
    let sum: f64 = report.weights.iter().map(|w| w.weight).sum();
    for w in &report.weights {
        assert!(w.weight.is_finite() && w.weight >= 0.0, "uid {} weight {}", w.uid, w.weight);
    }
    if report.weights.iter().any(|w| w.weight > 0.0) {
        assert!((sum - 1.0).abs() < 1e-9, "weights sum to {sum}");
        assert_eq!(report.weights.iter().map(|w| w.u16).max(), Some(u16::MAX));
    }
    // A second round from the state the first left.
    let _ = dryrun::score(arena_fuzz::competitions(), None, &raw, block.saturating_add(1), &mut state);
});
