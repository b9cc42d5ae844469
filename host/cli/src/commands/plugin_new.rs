//! `arena plugin new`: a plugin crate from the embedded template, ready for `cargo build`, with
//! an example submission and samples that `arena plugin test` runs it on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct NewArgs {
    /// The plugin's name: its crate and `PluginInfo` name (letters, digits, `-`, `_`; starting
    /// with a letter).
    name: String,
    /// The directory to create the crate in (default: ./NAME).
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// The `arena-plugin-api` crate to depend on (default: the one this `arena` was built from).
    #[arg(long, value_name = "DIR")]
    api: Option<PathBuf>,
}

const CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("../../templates/plugin/lib.rs.tmpl");
const README: &str = include_str!("../../templates/plugin/README.md.tmpl");
const PREDICTION: &str = include_str!("../../templates/plugin/prediction.json.tmpl");
const SAMPLES: &str = include_str!("../../templates/plugin/samples.jsonl.tmpl");

/// The plugin-api crate of the checkout this binary was built from.
fn default_api() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugin-api")
}

pub fn exec(a: NewArgs) -> Result<ExitCode> {
    let name = &a.name;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    anyhow::ensure!(
        valid,
        "`{name}` is not a plugin name: letters, digits, `-` and `_`, starting with a letter"
    );
    let dir = a.path.clone().unwrap_or_else(|| PathBuf::from(name));
    anyhow::ensure!(!dir.exists(), "{} exists already: choose another --path", dir.display());
    let api = a.api.clone().unwrap_or_else(default_api);
    let api = api.canonicalize().with_context(|| {
        format!("the arena-plugin-api crate is not at {}: give its directory with --api", api.display())
    })?;
    anyhow::ensure!(
        api.join("Cargo.toml").is_file(),
        "{} has no Cargo.toml: --api names the arena-plugin-api crate's directory",
        api.display()
    );
    let crate_name = name.replace('-', "_");
    let type_name: String = name
        .split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{type}}", &type_name)
            .replace("{{api}}", &api.display().to_string())
    };
    // Written beside the target and renamed into place: a failure leaves no half-made crate.
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(".{crate_name}.new.{}", std::process::id()));
    let write = || -> Result<()> {
        std::fs::create_dir_all(tmp.join("src"))?;
        std::fs::write(tmp.join("Cargo.toml"), fill(CARGO_TOML))?;
        std::fs::write(tmp.join("src/lib.rs"), fill(LIB_RS))?;
        std::fs::write(tmp.join("README.md"), fill(README))?;
        std::fs::write(tmp.join(".gitignore"), "/target\n")?;
        std::fs::create_dir_all(tmp.join("example/submission"))?;
        std::fs::write(tmp.join("example/submission/prediction.json"), PREDICTION)?;
        std::fs::write(tmp.join("example/samples.jsonl"), SAMPLES)?;
        std::fs::rename(&tmp, &dir)?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.context(format!("creating {}", dir.display())));
    }
    println!("plugin: created {} (task kind `mean-abs-error`)", dir.display());
    println!("  cd {} && cargo build", dir.display());
    println!(
        "  arena plugin test target/debug/lib{crate_name}.so --submission example/submission --samples example/samples.jsonl"
    );
    Ok(ExitCode::SUCCESS)
}
