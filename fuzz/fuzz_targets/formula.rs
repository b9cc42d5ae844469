//! An aggregate formula: compiled under its budgets, then evaluated. Over budget is an error,
//! never a stack overflow or a long run (libFuzzer's -timeout catches the latter).
#![no_main]
use std::collections::BTreeMap;

use arena_core::scoring::formula::Formula;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(expr) = std::str::from_utf8(data) else { return };
    let Ok(f) = Formula::compile(expr, 3) else { return };
    let vars: BTreeMap<&str, f64> = [("a", 0.25), ("b", 0.5), ("c", 1e300)].into();
    let _ = f.eval(&vars, &vars);
});
