//! A miner's unified diff, as the replay plugin reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(changes) = arena_replay::patch::parse(text) {
        for c in &changes {
            for p in c.paths() {
                assert!(!p.is_empty());
            }
        }
    }
});
