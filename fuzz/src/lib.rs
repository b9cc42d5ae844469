//! What the fuzz targets share: the competitions the scorer is fuzzed against, and a stand-in
//! for the disk that the validator checks read.

use std::path::Path;

use arena_core::config::Competition;
use arena_core::config::check::Files;
use arena_core::config::source::{Parsed, parse};
use arena_core::diag::Diagnostic;

/// The repository's own competitions, parsed once: RAW.json inputs are scored against them.
pub fn competitions() -> &'static [Competition] {
    static COMPS: std::sync::OnceLock<Vec<Competition>> = std::sync::OnceLock::new();
    COMPS.get_or_init(|| {
        let mut out = Vec::new();
        for (name, text) in [
            ("demo.toml", include_str!("../../competitions/demo.toml")),
            ("pretraining-3b.toml", include_str!("../../competitions/pretraining-3b.toml")),
            ("roleplay.toml", include_str!("../../competitions/roleplay.toml")),
            ("deepfake-image.toml", include_str!("../../competitions/deepfake-image.toml")),
            ("finetuning-instruct-8b.toml", include_str!("../../competitions/finetuning-instruct-8b.toml")),
            ("proportional.toml", PROPORTIONAL),
        ] {
            let parsed: Parsed<Competition> =
                parse(Path::new(name), text).expect("the repository's competitions parse");
            out.push(parsed.value);
        }
        out
    })
}

/// A competition with the one policy the repository's files do not use.
const PROPORTIONAL: &str = r#"
id = "proportional"
competition_id = 9
name = "Proportional"
emission_share = 0.5

[data]
seed = { kind = "fixed", value = 0 }

[[tasks]]
name = "a"
plugin = "chaos"
kind = "sum"
weight = 0.75
direction = "higher"
[[tasks]]
name = "b"
plugin = "chaos"
kind = "sum"
weight = 0.25
direction = "higher"

[score]
direction = "higher"

[ranking]
policy = { kind = "proportional" }
ema_alpha = 0.5
min_weight = 0.01
burn = { uid = 0, share = 0.1 }
"#;

/// A disk on which every competition file is `competition` and every directory exists.
pub struct FakeDisk<'a> {
    pub competition: &'a str,
}

impl Files for FakeDisk<'_> {
    fn competition(&self, path: &Path) -> Result<Parsed<Competition>, Diagnostic> {
        parse(path, self.competition)
    }
    fn is_file(&self, _: &Path) -> bool {
        true
    }
    fn is_dir(&self, _: &Path) -> bool {
        true
    }
}
