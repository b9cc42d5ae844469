//! A commitment string, in each format: what parses produces the same string back, and parses
//! to the same value again.
#![no_main]
use arena_core::commitment::{self, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for format in [Format::Taoverse, Format::TaoverseLegacy, Format::Dippy] {
        let Ok(c) = commitment::parse(format, s) else { continue };
        let Ok(again) = commitment::produce(format, &c) else { continue };
        let back = commitment::parse(format, &again).expect("a produced commitment parses");
        assert_eq!(back, c, "{format:?}: {s:?} -> {again:?}");
        let _ = commitment::verify(format, &c, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", None);
    }
});
