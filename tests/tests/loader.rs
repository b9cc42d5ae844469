//! Loading plugins: the ABI round trip, several plugins side by side, and every loader error
//! from a real crafted library.

use std::cell::RefCell;

use arena_e2e::*;
use arena_plugin_api::{
    Device, DeviceKind, ErrorKind, EvalRequest, LoadError, Progress, Sample, Submission, TaskSpec,
    load_plugin,
};
use serde_json::json;

struct Recorder {
    reports: RefCell<Vec<(u64, u64, String)>>,
    cancel_after: Option<usize>,
}

impl Progress for Recorder {
    fn report(&self, done: u64, total: u64, message: &str) {
        self.reports.borrow_mut().push((done, total, message.to_string()));
    }
    fn is_cancelled(&self) -> bool {
        self.cancel_after.is_some_and(|n| self.reports.borrow().len() >= n)
    }
}

fn request(xs: &[f64]) -> EvalRequest {
    EvalRequest {
        submission: Submission {
            id: "uid-7".into(),
            path: "/nonexistent/ü dir".into(),
            metadata: json!({"hotkey": "5Fabc", "block": 123}),
        },
        samples: xs
            .iter()
            .map(|x| Sample { data: json!({"x": x}), files: vec!["/d/f.png".into()] })
            .collect(),
        limits: Default::default(),
    }
}

#[test]
fn abi_round_trip_of_info_task_request_output_progress_and_errors() {
    let plugin = load_plugin(&chaos_plugin()).unwrap();
    let info = plugin.info();
    assert_eq!(info.name, "chaos");
    assert_eq!(info.abi_version, arena_plugin_api::ABI_VERSION);
    let sum = info.task("sum").unwrap();
    assert_eq!(sum.devices, vec![DeviceKind::Cpu]);
    assert_eq!(sum.params_schema, json!({"type": "object"}));

    let spec = TaskSpec { kind: "sum".into(), params: json!({}), device: Device::Cpu, seed: 42 };
    let mut task = plugin.create_task(&spec).unwrap();
    let rec = Recorder { reports: RefCell::new(vec![]), cancel_after: None };
    let out = task.evaluate(&request(&[1.5, -0.25, 1e-300]), &rec).unwrap();
    assert_eq!(out.raw_score, 1.25 + 1e-300);
    assert_eq!(out.per_sample, vec![1.5, -0.25, 1e-300]);
    assert_eq!(out.metrics["n"], 3.0);
    assert_eq!(out.metrics["seed"], 42.0);
    assert_eq!(out.details, json!({"submission": "uid-7", "metadata": {"hotkey": "5Fabc", "block": 123}}));
    assert_eq!(rec.reports.borrow().len(), 3);
    assert_eq!(rec.reports.borrow()[2], (3, 3, "summing".to_string()));

    // The same call as a direct Rust call gives the same output, bit for bit.
    use arena_plugin_api::Plugin;
    let mut direct = arena_chaos_plugin::Chaos::create_task(spec.clone()).unwrap();
    let direct_out = direct.evaluate(&request(&[1.5, -0.25, 1e-300]), &arena_plugin_api::NoProgress).unwrap();
    assert_eq!(direct_out, out);

    // Cancellation crosses the ABI: the host says stop after the first report.
    let rec = Recorder { reports: RefCell::new(vec![]), cancel_after: Some(1) };
    let e = task.evaluate(&request(&[1.0, 2.0, 3.0]), &rec).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);

    // Errors keep their kind; a panic comes back as an internal error, and the task survives.
    let rec = Recorder { reports: RefCell::new(vec![]), cancel_after: None };
    let bad = task.evaluate(
        &EvalRequest { samples: vec![Sample { data: json!({"y": 1}), files: vec![] }], ..request(&[]) },
        &rec,
    );
    assert_eq!(bad.unwrap_err().kind, ErrorKind::InvalidSubmission);
    let e = plugin.create_task(&TaskSpec { kind: "nope".into(), ..spec.clone() }).err().unwrap();
    assert_eq!(e.kind, ErrorKind::InvalidParameters);
    let e = plugin.create_task(&TaskSpec { params: json!({"bogus": 1}), ..spec.clone() }).err().unwrap();
    assert!(e.message.contains("unknown field `bogus`"), "{e}");
    let mut panicky = plugin.create_task(&TaskSpec { kind: "panic".into(), ..spec.clone() }).unwrap();
    let e = panicky.evaluate(&request(&[1.0]), &rec).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
    assert!(e.message.contains("plugin panicked: chaos: panic requested for uid-7"), "{e}");
    let again = task.evaluate(&request(&[2.0]), &rec);
    assert_eq!(again.unwrap().raw_score, 2.0);
}

#[test]
fn several_plugins_load_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    for p in [chaos_plugin(), replay_plugin(), third_party_plugin()] {
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    // In one process, through the library API.
    let loaded: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| load_plugin(&e.unwrap().path()).unwrap()).collect();
    let mut names: Vec<_> = loaded.iter().map(|p| p.info().name.clone()).collect();
    names.sort();
    assert_eq!(names, ["chaos", "logreg-probe", "replay"]);
    // Each keeps its own root module: creating a task reaches the right library (replay, alone,
    // requires parameters, so its refusal proves the call went to replay's code).
    for p in &loaded {
        let kind = p.info().tasks[0].name.clone();
        let r = p.create_task(&TaskSpec { kind, params: json!({}), device: Device::Cpu, seed: 0 });
        match p.info().name.as_str() {
            "replay" => assert!(r.err().unwrap().message.contains("missing field `repository`")),
            name => assert!(r.is_ok(), "{name}"),
        }
    }
    // Through the CLI.
    let out = arena(&["plugins", "list", "--plugin-dir", dir.path().to_str().unwrap(), "--json"]);
    let v = stdout_json(&out);
    let mut listed: Vec<String> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["path"].as_str().unwrap().starts_with(dir.path().to_str().unwrap()))
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ["chaos", "logreg-probe", "replay"]);
}

fn inspect_error(path: &std::path::Path) -> serde_json::Value {
    let out = arena(&["plugins", "inspect", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    stdout_json(&out)
}

#[test]
fn a_file_that_is_not_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join(lib_name("fake"));
    std::fs::write(&fake, "this is not an ELF file\n").unwrap();
    assert!(matches!(load_plugin(&fake), Err(LoadError::NotALibrary { .. })));
    let v = inspect_error(&fake);
    assert_eq!(v["error"], "not_a_library");
    assert!(v["message"].as_str().unwrap().contains("not a loadable shared library"), "{v}");
    let missing = dir.path().join("missing.so");
    assert!(matches!(load_plugin(&missing), Err(LoadError::NotFound { .. })));
}

#[test]
fn a_library_without_the_root_module() {
    let lib = fixture_plugin("arena-no-root-module", "arena_no_root_module");
    assert!(matches!(load_plugin(&lib), Err(LoadError::NoRootModule { .. })));
    let v = inspect_error(&lib);
    assert_eq!(v["error"], "no_root_module");
    assert!(v["message"].as_str().unwrap().contains("not an arena plugin"), "{v}");
}

#[test]
fn a_plugin_built_for_another_abi_version() {
    let lib = external_plugin("tests/fixtures/foreign-abi", "arena_foreign_abi", &["next-major"]);
    match load_plugin(&lib) {
        Err(LoadError::IncompatibleAbi { expected, found, .. }) => {
            assert!(expected.contains(arena_plugin_api::ABI_VERSION), "{expected}");
            assert!(found.contains("2.0.0"), "{found}");
        }
        other => panic!("expected IncompatibleAbi, got {other:?}"),
    }
    let v = inspect_error(&lib);
    assert_eq!(v["error"], "incompatible_abi");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("1.0.0") && msg.contains("2.0.0"), "both versions must be named: {msg}");
}

#[test]
fn a_plugin_with_a_different_type_layout() {
    let lib = external_plugin("tests/fixtures/foreign-abi", "arena_foreign_abi", &["layout-mismatch"]);
    match load_plugin(&lib) {
        Err(LoadError::LayoutMismatch { details, .. }) => assert!(!details.is_empty()),
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
    assert_eq!(inspect_error(&lib)["error"], "layout_mismatch");
}

#[test]
fn a_plugin_that_panics_while_initialising() {
    // A fresh probe cache: the same file answered before, without the variable.
    let cache = tempfile::tempdir().unwrap();
    let out = arena_cmd(&["plugins", "inspect", chaos_plugin().to_str().unwrap(), "--json"])
        .env("ARENA_CHAOS_PANIC_IN_INFO", "1")
        .env("ARENA_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = stdout_json(&out);
    assert_eq!(v["error"], "init_panicked");
    assert!(v["message"].as_str().unwrap().contains("chaos: asked to panic in info()"), "{v}");
}

#[test]
fn a_pinned_hash_that_differs_refuses_to_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("behaviour.json"), r#"{"kind": "sum"}"#).unwrap();
    let lib = chaos_plugin();
    let wrong = "0".repeat(64);
    let out =
        eval(&lib, "sum", &["--sha256", &wrong, "--submission", dir.path().to_str().unwrap(), "--json"]);
    let v = stdout_json(&out);
    let f = &v["results"][0]["failure"];
    assert_eq!(f["kind"], "load", "{v}");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains(lib.to_str().unwrap()) && msg.contains(&wrong),
        "file and hash must be named: {msg}"
    );
    // The right hash runs.
    let inspect = stdout_json(&arena(&["plugins", "inspect", lib.to_str().unwrap(), "--json"]));
    let sha = inspect["sha256"].as_str().unwrap();
    let out = eval(&lib, "sum", &["--sha256", sha, "--submission", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}
