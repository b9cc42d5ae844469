//! The host's crate rules (ARCHITECTURE.md, "Invariants"), checked on `cargo metadata` and on
//! the sources, so that a dependency in the wrong place fails here and not in a review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use arena_e2e::repo_root;
use serde_json::Value;

/// Package name → the names of its normal (not dev, not build) dependencies, for this platform.
fn normal_deps() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let out = Command::new(cargo)
        .current_dir(repo_root())
        .args(["metadata", "--format-version", "1", "--filter-platform", &target])
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut graph = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps: BTreeSet<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null()))
            .map(|d| name_of[d["pkg"].as_str().unwrap()].to_string())
            .collect();
        graph
            .entry(name_of[node["id"].as_str().unwrap()].to_string())
            .or_insert_with(BTreeSet::new)
            .extend(deps);
    }
    graph
}

/// Every package `root` depends on through normal dependencies.
fn closure(graph: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.to_string()];
    while let Some(p) = stack.pop() {
        for d in graph.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

fn refuse(graph: &BTreeMap<String, BTreeSet<String>>, krate: &str, forbidden: &[&str], why: &str) {
    let all = closure(graph, krate);
    let found: Vec<&&str> = forbidden.iter().filter(|f| all.contains(**f)).collect();
    assert!(found.is_empty(), "{krate} depends on {found:?}: {why}");
}

/// Terminal and argument crates: only the CLI knows them.
const CLI_ONLY: [&str; 4] = ["clap", "indicatif", "comfy-table", "miette"];

#[test]
fn the_core_does_no_io_and_knows_no_async_chain_or_terminal() {
    let g = normal_deps();
    let mut forbidden =
        vec!["tokio", "subxt", "parquet", "hf-hub", "arena-runtime", "arena-chain", "arena-cli"];
    forbidden.extend(CLI_ONLY);
    refuse(&g, "arena-core", &forbidden, "arena-core is pure");
}

#[test]
fn yuma_is_a_leaf_on_fixed_point_and_serde() {
    let g = normal_deps();
    let allowed = ["anyhow", "schemars", "serde", "serde_json", "serde_path_to_error", "substrate-fixed"];
    let direct = &g["arena-yuma"];
    let extra: Vec<&String> = direct.iter().filter(|d| !allowed.contains(&d.as_str())).collect();
    assert!(extra.is_empty(), "arena-yuma depends on {extra:?}");
}

#[test]
fn the_report_draws_and_knows_neither_async_chain_runtime_nor_terminal() {
    let g = normal_deps();
    let mut forbidden = vec!["tokio", "subxt", "arena-runtime", "arena-chain", "arena-store", "arena-cli"];
    forbidden.extend(CLI_ONLY);
    refuse(&g, "arena-report", &forbidden, "arena-report turns round JSON into pages and pictures");
}

#[test]
fn the_chain_knows_neither_core_nor_runtime_and_only_the_cli_knows_the_terminal() {
    let g = normal_deps();
    refuse(
        &g,
        "arena-chain",
        &["arena-core", "arena-runtime", "arena-cli"],
        "the chain is transport and keys",
    );
    refuse(
        &g,
        "arena-runtime",
        &["arena-chain", "subxt", "arena-cli"],
        "the runtime evaluates; the chain is apart",
    );
    // Direct dependencies: hf-hub draws its own download bars with indicatif, which arena's
    // runtime never touches (the sources are checked below).
    for krate in ["arena-core", "arena-yuma", "arena-chain", "arena-runtime"] {
        let direct: Vec<&String> = g[krate].iter().filter(|d| CLI_ONLY.contains(&d.as_str())).collect();
        assert!(
            direct.is_empty(),
            "{krate} depends on {direct:?}: only the CLI knows clap and terminal rendering"
        );
    }
    for krate in ["core", "yuma", "chain", "runtime"] {
        for (file, text) in sources(krate) {
            for c in ["clap::", "indicatif::", "comfy_table::", "miette::"] {
                assert!(!text.contains(c), "{file} uses {c}: only the CLI knows clap and terminal rendering");
            }
        }
    }
}

/// The Rust sources of a host crate.
fn sources(krate: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![repo_root().join("host").join(krate).join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(repo_root()).unwrap_or(Path::new("")).display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    assert!(!out.is_empty(), "host/{krate}/src has no sources");
    out
}

#[test]
fn only_the_runtime_loads_plugins_or_spawns_workers_and_no_library_makes_a_tokio_runtime() {
    let loading = ["load_plugin(", "Supervisor {", "Command::new("];
    let runtimes = ["runtime::Builder", "Runtime::new(", "#[tokio::main]"];
    for krate in ["core", "yuma", "chain", "runtime", "report", "cli"] {
        for (file, text) in sources(krate) {
            if krate != "runtime" {
                for p in loading {
                    assert!(
                        !text.contains(p),
                        "{file}: `{p}`: only arena-runtime loads plugins or spawns workers"
                    );
                }
            }
            if krate != "cli" {
                for p in runtimes {
                    assert!(!text.contains(p), "{file}: `{p}`: library crates never create a tokio runtime");
                }
            }
        }
    }
}

/// subxt is the optional feature `subtensor` of arena-chain (on by default), and only
/// `subtensor.rs`, the module that feature gates, uses it. tokio is a plain dependency, for its
/// timers only (retry backoff, RPC timeouts): outside `subtensor.rs` the chain uses
/// `tokio::time` and nothing else of it.
#[test]
fn the_subtensor_client_is_a_feature_of_the_chain() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo_root())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chain = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == "arena-chain").unwrap();
    for dep in ["subxt", "scale-decode", "scale-value"] {
        let d = chain["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == dep && d["kind"].is_null())
            .unwrap_or_else(|| panic!("arena-chain has no dependency {dep}"));
        assert_eq!(d["optional"], true, "{dep} must be optional in arena-chain");
    }
    let subtensor: Vec<&str> =
        chain["features"]["subtensor"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(subtensor.contains(&"dep:subxt"), "{subtensor:?}");
    for (file, text) in sources("chain") {
        if file.ends_with("subtensor.rs") {
            continue;
        }
        for c in ["subxt::", "scale_value::", "scale_decode::"] {
            assert!(!text.contains(c), "{file} uses {c} outside the `subtensor` feature's module");
        }
        for (i, _) in text.match_indices("tokio::") {
            assert!(
                text[i..].starts_with("tokio::time::"),
                "{file} uses tokio beyond its timers: {}",
                text[i..].lines().next().unwrap_or("")
            );
        }
    }
    let lib = std::fs::read_to_string(repo_root().join("host/chain/src/lib.rs")).unwrap();
    assert!(lib.contains("#[cfg(feature = \"subtensor\")]\npub mod subtensor;"), "lib.rs gates the module");
}

/// The CLI reads its input files through `arena_runtime::files` (bounded, regular files only).
#[test]
fn the_cli_reads_input_files_through_the_bounded_reader() {
    for (file, text) in sources("cli") {
        for bare in ["fs::read_to_string(", "fs::read("] {
            assert!(!text.contains(bare), "{file} uses {bare}: read inputs with arena_runtime::files");
        }
    }
}
