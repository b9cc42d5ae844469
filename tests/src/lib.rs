//! Helpers for the end-to-end tests: build (once per test process) and locate the `arena`
//! binary, the workspace's plugin libraries, and the crates that live outside the workspace
//! (the third-party example and the foreign-ABI fixture), then run `arena`. `hub`: a loopback
//! Hugging Face hub.

pub mod chat;
pub mod hub;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The cargo target directory this test binary was built into.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(2).unwrap().to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Do not inherit the test harness's package environment into nested builds.
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str()
            && (k.starts_with("CARGO_PKG_") || k == "CARGO_MANIFEST_DIR" || k == "CARGO_PRIMARY_PACKAGE")
        {
            c.env_remove(k);
        }
    }
    c
}

fn run_cargo(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("cannot run cargo for {what}: {e}"));
    assert!(out.status.success(), "building {what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();

/// The workspace's binaries and plugin libraries, as `cargo test --workspace` builds them.
///
/// Built (once per process) with the same command CI runs, so that under `cargo test
/// --workspace` the nested build finds everything fresh and compiles nothing: a `cargo build -p
/// PACKAGE` would resolve another feature set for the shared dependencies (wgpu, cubecl, gemm)
/// and compile them again. Paths come from cargo's own artifact messages (fresh units included),
/// not from guesses about the target directory. `artifact`: an executable's name, or a
/// library's file name.
fn workspace_artifact(package: &str, artifact: &str) -> PathBuf {
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if !built.contains_key("ws") {
        let mut c = cargo();
        c.current_dir(repo_root())
            .args(["test", "--workspace", "--no-run", "--quiet", "--message-format=json"])
            .arg("--target-dir")
            .arg(target_dir());
        if profile_dir().file_name().is_some_and(|n| n == "release") {
            c.arg("--release"); // `cargo bench` builds into target/release
        }
        let out = c.output().unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
        assert!(
            out.status.success(),
            "building the workspace failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] == true {
                continue;
            }
            let files = msg["executable"]
                .as_str()
                .into_iter()
                .chain(msg["filenames"].as_array().into_iter().flatten().filter_map(|f| f.as_str()));
            for f in files {
                let path = PathBuf::from(f);
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                built.insert(format!("ws:{name}"), path);
            }
        }
        built.insert("ws".into(), PathBuf::new());
    }
    let p = built
        .get(&format!("ws:{artifact}"))
        .cloned()
        .unwrap_or_else(|| panic!("`cargo test --workspace` built no `{artifact}` (package {package})"));
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// The `arena` binary.
pub fn arena_bin() -> PathBuf {
    workspace_artifact("arena-cli", "arena")
}

/// A shared library's file name on this platform.
pub fn lib_name(stem: &str) -> String {
    format!("{}{stem}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)
}

/// A cdylib-only fixture of the workspace, which nothing depends on, so that `cargo test` does not
/// leave its library: built on its own (it depends on `arena-plugin-api` alone, which is cheap),
/// then moved out of the profile directory into `plugin_dir()/fixtures`, so that `arena`, which
/// searches its own directory for plugins, never lists it.
pub fn fixture_plugin(package: &str, stem: &str) -> PathBuf {
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("fixture:{package}");
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let mut c = cargo();
    c.current_dir(repo_root())
        .args(["build", "--quiet", "-p", package])
        .arg("--target-dir")
        .arg(target_dir());
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        c.arg("--release");
    }
    run_cargo(c, package);
    let name = lib_name(stem);
    let uplifted = profile_dir().join(&name);
    assert!(uplifted.exists(), "{} was not built", uplifted.display());
    let dir = plugin_dir().join("fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join(&name);
    std::fs::rename(&uplifted, &dest).unwrap();
    built.insert(key, dest.clone());
    dest
}

/// The directory the e2e tests install the workspace's plugin libraries into, and nothing else
/// (`--plugin-dir` for `arena check` and `arena round`).
pub fn plugin_dir() -> PathBuf {
    target_dir().join("arena-e2e-plugins")
}

/// A workspace plugin library (`package` builds `lib<stem>.so`), as `cargo test --workspace`
/// builds it (into the profile's `deps/`; cargo uplifts only what `cargo build` asks for),
/// installed in [`plugin_dir`] under its own name. The copy goes to a temporary name first and is
/// renamed over the old one: a process that still maps the old file keeps its inode.
pub fn workspace_plugin(package: &str, stem: &str) -> PathBuf {
    let name = lib_name(stem);
    let built = workspace_artifact(package, &name);
    let mut installed = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("installed:{name}");
    if let Some(p) = installed.get(&key) {
        return p.clone();
    }
    let dir = plugin_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join(&name);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::copy(&built, &tmp).unwrap();
    std::fs::rename(&tmp, &dest).unwrap();
    installed.insert(key, dest.clone());
    dest
}

pub fn chaos_plugin() -> PathBuf {
    workspace_plugin("arena-chaos-plugin", "arena_chaos_plugin")
}

pub fn replay_plugin() -> PathBuf {
    workspace_plugin("arena-replay", "arena_replay")
}

/// Builds a crate outside the workspace with plain `cargo build` (optionally with features) and
/// returns a private copy of its library `lib<stem>.so`, so builds with other features cannot
/// overwrite it.
pub fn external_plugin(crate_dir: &str, stem: &str, features: &[&str]) -> PathBuf {
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("ext:{crate_dir}:{}", features.join(","));
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let dir = repo_root().join(crate_dir);
    let target = target_dir().join("external");
    let mut c = cargo();
    c.current_dir(&dir).args(["build", "--quiet"]).arg("--target-dir").arg(&target);
    if !features.is_empty() {
        c.arg("--features").arg(features.join(","));
    }
    run_cargo(c, crate_dir);
    let lib = target.join("debug").join(lib_name(stem));
    let copies =
        target.join("copies").join(if features.is_empty() { "default".into() } else { features.join("+") });
    std::fs::create_dir_all(&copies).unwrap();
    let copy = copies.join(lib_name(stem));
    // A fresh inode each time: the loader never unloads, and a process may still map the old one.
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(&lib, &copy).unwrap();
    built.insert(key, copy.clone());
    copy
}

/// Runs a crate's own tests outside the workspace (`cargo test`), as its author would.
pub fn external_test(crate_dir: &str) {
    let mut c = cargo();
    c.current_dir(repo_root().join(crate_dir))
        .args(["test", "--quiet"])
        .arg("--target-dir")
        .arg(target_dir().join("external"));
    run_cargo(c, crate_dir);
}

/// The third-party example plugin, built as its author would.
pub fn third_party_plugin() -> PathBuf {
    external_plugin("examples/third-party-plugin", "logreg_probe", &[])
}

/// Runs `arena` with `args`; returns its output.
pub fn arena(args: &[&str]) -> Output {
    arena_cmd(args).output().unwrap()
}

pub fn arena_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(arena_bin());
    // Plugin probes are cached under the target directory, not in the user's ~/.cache.
    c.args(args).env_remove("ARENA_PLUGIN_PATH").env("ARENA_LOG", "warn");
    c.env("ARENA_CACHE_DIR", target_dir().join("arena-e2e-cache"));
    c
}

/// `arena eval --plugin PLUGIN --task TASK ARGS…`.
pub fn eval_cmd(plugin: &Path, task: &str, args: &[&str]) -> Command {
    let mut c = arena_cmd(&["eval", "--plugin", plugin.to_str().unwrap(), "--task", task]);
    c.args(args);
    c
}

/// Runs `arena eval --plugin PLUGIN --task TASK ARGS…`; returns its output.
pub fn eval(plugin: &Path, task: &str, args: &[&str]) -> Output {
    eval_cmd(plugin, task, args).output().unwrap()
}

/// Parses stdout as JSON, with a useful panic message.
pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Makes `dir` a git repository with everything in it committed on `main`.
pub fn git_commit_all(dir: &Path) {
    let st = Command::new("sh")
        .arg("-c")
        .arg("git init -q -b main && git add -A && git -c user.name=t -c user.email=t@t commit -qm base")
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git init/commit failed in {}", dir.display());
}

pub fn perplexity_plugin() -> PathBuf {
    workspace_plugin("arena-perplexity", "arena_perplexity")
}

pub fn roleplay_plugin() -> PathBuf {
    workspace_plugin("arena-roleplay", "arena_roleplay")
}

/// The roleplay plugin's tiny-world writer.
pub fn tiny_roleplay_bin() -> PathBuf {
    workspace_artifact("arena-roleplay", "arena-tiny-roleplay")
}

pub fn detector_plugin() -> PathBuf {
    workspace_plugin("arena-detector", "arena_detector")
}

/// The benchmark generator and tiny-detector trainer of the detector plugin.
pub fn tiny_detect_bin() -> PathBuf {
    workspace_artifact("arena-detector", "arena-tiny-detect")
}

/// The detector plugin's generated benchmark and tiny detectors (`arena-tiny-detect --per-dataset
/// 12`), made once per build of the generator and shared by the test binaries: kept under the
/// target directory with a marker naming the generator's size and time, written through a
/// temporary directory renamed into place.
pub fn tiny_detect_dir() -> PathBuf {
    let bin = tiny_detect_bin();
    let meta = std::fs::metadata(&bin).unwrap();
    let stamp = format!("{} {:?}", meta.len(), meta.modified().unwrap());
    let dir = target_dir().join("arena-e2e-detector");
    let marker = dir.join(".made-by");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == stamp) {
        return dir;
    }
    let tmp = target_dir().join(format!(".arena-e2e-detector.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out =
        Command::new(&bin).args(["--out", tmp.to_str().unwrap(), "--per-dataset", "12"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(tmp.join(".made-by"), &stamp).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).unwrap();
    dir
}

/// In an `arena report` page: the `data-v` values of the table row `<tr data-uid="UID">` in the part of `html` after
/// `marker`, in column order.
pub fn row_values(html: &str, marker: &str, uid: u64) -> Vec<Option<f64>> {
    let part = &html[html.find(marker).unwrap_or_else(|| panic!("no `{marker}` in the page"))..];
    let start =
        part.find(&format!("<tr data-uid=\"{uid}\">")).unwrap_or_else(|| panic!("no row for uid {uid}"));
    let row = &part[start..start + part[start..].find("</tr>").unwrap()];
    row.split("data-v=\"")
        .skip(1)
        .map(|s| {
            let v = &s[..s.find('"').unwrap()];
            if v == "null" { None } else { Some(v.parse::<f64>().unwrap()) }
        })
        .collect()
}

/// The shape of a JSON value: every object's keys with the shapes of their values, arrays as
/// the union of their elements' shapes, scalars as their type names (`"number|null"` where
/// both occur). What a `--json` output promises its users, without its numbers.
pub fn json_shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    fn merge(a: Value, b: Value) -> Value {
        match (a, b) {
            (Value::Object(mut x), Value::Object(y)) => {
                for (k, v) in y {
                    let merged = match x.remove(&k) {
                        Some(old) => merge(old, v),
                        None => v,
                    };
                    x.insert(k, merged);
                }
                Value::Object(x)
            }
            (Value::Array(x), Value::Array(y)) => {
                let all: Vec<Value> = x.into_iter().chain(y).collect();
                Value::Array(all.into_iter().reduce(merge).into_iter().collect())
            }
            (x, y) if x == y => x,
            (x, y) => {
                let name = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                let mut names: Vec<String> =
                    name(&x).split('|').chain(name(&y).split('|')).map(str::to_string).collect();
                names.sort();
                names.dedup();
                Value::String(names.join("|"))
            }
        }
    }
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(a) => Value::Array(a.iter().map(json_shape).reduce(merge).into_iter().collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), json_shape(v))).collect()),
    }
}

/// Compares the shape of a `--json` output with `tests/golden/shapes/NAME.json`; with
/// `ARENA_BLESS=1`, writes it instead. A renamed, removed or retyped field fails here first.
pub fn assert_json_shape(name: &str, v: &serde_json::Value) {
    let path = repo_root().join("tests/golden/shapes").join(format!("{name}.json"));
    let got = serde_json::to_string_pretty(&json_shape(v)).unwrap() + "\n";
    if std::env::var_os("ARENA_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (ARENA_BLESS=1 writes it)", path.display()));
    assert!(
        got == want,
        "the shape of `{name}` changed (a --json contract): if on purpose, rerun with ARENA_BLESS=1\nwant {}:\n{want}\ngot:\n{got}",
        path.display()
    );
}

/// Writes `submissions` (a SUBMISSIONS.json value) into `dir` and runs `arena round COMPETITION
/// --submissions … --json --plugin-dir PLUGINS` with `extra` arguments; returns the report after
/// checking that the round completed.
pub fn round_json(
    dir: &Path,
    competition: &Path,
    submissions: &serde_json::Value,
    extra: &[&str],
) -> serde_json::Value {
    let file = dir.join("submissions.json");
    std::fs::write(&file, submissions.to_string()).unwrap();
    let plugins = plugin_dir();
    let mut c = arena_cmd(&["round", competition.to_str().unwrap(), "--submissions", file.to_str().unwrap()]);
    c.args(["--json", "--plugin-dir", plugins.to_str().unwrap()]).args(extra);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    stdout_json(&out)
}

/// A round report's weights that are sent: `(uid, u16)` with the u16 above 0.
pub fn paid(report: &serde_json::Value) -> Vec<(u64, u64)> {
    report["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["uid"].as_u64().unwrap(), w["u16"].as_u64().unwrap()))
        .filter(|w| w.1 != 0)
        .collect()
}

/// A competition on the chaos plugin: `total` is the sum of `x` over a seeded draw of 3 of the
/// 10 rows, `drawn` reads the same run's `n` metric;
/// the total is `total` alone.
pub fn chaos_competition(dir: &Path, extra: &str) -> PathBuf {
    let rows: String = (1..=10).map(|x| format!("{{\"x\": {x}}}\n")).collect();
    std::fs::write(dir.join("rows.jsonl"), rows).unwrap();
    let toml = format!(
        r#"id = "chaos"
competition_id = 0
netuid = 1
name = "Chaos"
emission_share = 1.0

[data]
seed = {{ kind = "sync_block_hash", cadence = 10 }}
samples = 3

[limits]
timeout = 20
memory = "2GiB"

[[tasks]]
name = "total"
plugin = "chaos"
kind = "by-submission"
dataset = "{rows}"
direction = "higher"

[[tasks]]
name = "drawn"
plugin = "chaos"
kind = "by-submission"
dataset = "{rows}"
metric = "n"
direction = "higher"
{extra}
[score]
direction = "higher"
aggregate = {{ kind = "formula", expr = "total" }}

[ranking]
policy = {{ kind = "softmax", temperature = 0.5 }}
lone_win_rate = 1.0
exclude_zero = true
"#,
        rows = dir.join("rows.jsonl").display()
    );
    let path = dir.join("chaos.toml");
    std::fs::write(&path, toml).unwrap();
    path
}
