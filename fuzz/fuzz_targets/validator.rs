//! A validator configuration, checked against a disk whose competition files are the
//! repository's demo competition.
#![no_main]
use std::path::Path;

use arena_core::config::ValidatorConfig;
use arena_core::config::check::check_validator;
use arena_core::config::source::parse;
use arena_fuzz::FakeDisk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = parse::<ValidatorConfig>(Path::new("validator.toml"), text) else { return };
    let disk = FakeDisk { competition: include_str!("../../competitions/demo.toml") };
    let _ = check_validator(&parsed, &disk);
});
