//! A competition file: parsed with its spans, then every single-file and together check.
#![no_main]
use std::path::Path;

use arena_core::config::Competition;
use arena_core::config::check::{check_competition, check_together};
use arena_core::config::source::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = parse::<Competition>(Path::new("fuzz.toml"), text) else { return };
    let diags = check_competition(&parsed);
    for d in &diags {
        // Every diagnostic's span lies inside the file it names.
        if let Some(span) = &d.span {
            assert!(span.end <= text.len() && span.start <= span.end, "{d:?}");
        }
    }
    let _ = check_together(&[&parsed, &parsed]);
});
