//! `arena plugin test`: the conformance suite catches each rule the chaos fixture breaks, with
//! its verdict, and each first-party plugin passes it, with a run of one kind on a tiny model or
//! task (the template's run is in `third_party.rs`).

use std::path::Path;

use arena_e2e::*;
use serde_json::{Value, json};

/// `arena plugin test LIB ARGS… --json`: its exit status and report.
fn suite(lib: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["plugin", "test", lib.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = arena(&all);
    (out.status.code(), stdout_json(&out))
}

/// The verdict and detail of check `check` on kind `kind` (none: the library's own check).
fn verdict(report: &Value, check: &str, kind: Option<&str>) -> (String, String) {
    let c = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check && c["kind"].as_str() == kind)
        .unwrap_or_else(|| panic!("no check {check} for {kind:?} in {report:#}"));
    (c["verdict"].as_str().unwrap().to_string(), c["detail"].as_str().unwrap().to_string())
}

fn assert_verdict(report: &Value, check: &str, kind: Option<&str>, want: &str, fragment: &str) {
    let (v, detail) = verdict(report, check, kind);
    assert_eq!(v, want, "{check} {kind:?}: {detail}");
    assert!(detail.contains(fragment), "{check} {kind:?}: `{fragment}` not in: {detail}");
}

/// A submission for the chaos `by-submission` kind that sums, and samples.
fn sum_inputs(d: &Path) -> (String, String) {
    let sub = d.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("behaviour.json"), json!({"kind": "sum"}).to_string()).unwrap();
    let samples = d.join("samples.json");
    std::fs::write(&samples, r#"[{"x": 1}, {"x": 2.5}, {"x": -0.5}]"#).unwrap();
    (sub.to_str().unwrap().to_string(), samples.to_str().unwrap().to_string())
}

#[test]
fn each_rule_the_chaos_fixture_breaks_is_caught_with_its_verdict() {
    let w = tempfile::tempdir().unwrap();
    let lib = chaos_plugin();
    let (sub, samples) = sum_inputs(w.path());

    // Every kind's library checks, no run (the library has many kinds and no --kind is given).
    let (code, r) = suite(&lib, &["--memory", "1GiB", "--timeout", "20"]);
    assert_eq!(code, Some(1), "{r:#}");
    assert_verdict(&r, "load", None, "pass", "chaos 0.1.0");
    assert_verdict(&r, "schema", Some("bad-schema"), "fail", "not a valid JSON Schema");
    assert_verdict(
        &r,
        "defaults",
        Some("bad-default"),
        "fail",
        "/properties/seconds: default \"soon\" is rejected",
    );
    assert_verdict(
        &r,
        "bad_params",
        Some("unwrap-params"),
        "fail",
        "a number instead of an object (42): internal",
    );
    assert_verdict(
        &r,
        "bad_params",
        Some("sum"),
        "pass",
        "invalid_parameters for a number instead of an object",
    );
    assert_verdict(&r, "missing_submission", Some("sum"), "fail", "expected invalid_submission; succeeded");
    assert_verdict(&r, "missing_submission", Some("by-submission"), "pass", "invalid_submission");
    assert_verdict(&r, "broken_submission", Some("by-submission"), "pass", "invalid_submission");
    assert_verdict(&r, "missing_submission", Some("segfault"), "fail", "crashed");
    assert_verdict(&r, "devices", Some("cuda-abort"), "fail", "cuda:99: not refused with an error; crashed");
    assert_verdict(&r, "devices", Some("sum"), "pass", "cpu only");
    assert_verdict(
        &r,
        "stdout",
        None,
        "fail",
        "bytes, beginning \"this line is not part of the worker protocol",
    );

    // The run checks, one broken rule at a time; the rest of each kind passes.
    let runs: [(&str, &str, &str, &str); 4] = [
        ("nondeterministic", "{}", "determinism", "the same seed gave different outputs: raw score"),
        ("score", r#"{"value": 2}"#, "progress", "no progress reported"),
        ("sleep", r#"{"seconds": 5}"#, "cancel", "did not stop within 2.0s of the cancel and was killed"),
        ("stdout", "{}", "stdout", "bytes, beginning"),
    ];
    for (kind, params, broken, fragment) in runs {
        let (code, r) =
            suite(&lib, &["--kind", kind, "--params", params, "--submission", &sub, "--samples", &samples]);
        assert_eq!(code, Some(1), "{kind}: {r:#}");
        let k = if broken == "stdout" { None } else { Some(kind) };
        assert_verdict(&r, broken, k, "fail", fragment);
        assert_verdict(&r, "run", Some(kind), "pass", "raw score");
        for other in ["determinism", "progress", "cancel"].into_iter().filter(|c| *c != broken) {
            if !(kind == "score" && other == "cancel") {
                assert_eq!(verdict(&r, other, Some(kind)).0, "pass", "{kind} {other}: {r:#}");
            }
        }
    }

    // A well-behaved kind passes everything, and the exit status says so.
    let (code, r) = suite(&lib, &["--kind", "by-submission", "--submission", &sub, "--samples", &samples]);
    let by_sub: Vec<&Value> =
        r["checks"].as_array().unwrap().iter().filter(|c| c["kind"] == "by-submission").collect();
    assert!(by_sub.iter().all(|c| c["verdict"] == "pass"), "{by_sub:#?}");
    assert_verdict(&r, "determinism", Some("by-submission"), "pass", "the same bits");
    assert_verdict(&r, "cancel", Some("by-submission"), "pass", "ms after the cancel");
    assert_eq!(code, Some(1), "other kinds still break rules");
    // With a submission and many kinds, the run waits for --kind.
    let (_, r) = suite(&lib, &["--submission", &sub, "--timeout", "20", "--memory", "1GiB"]);
    assert_verdict(&r, "run", None, "skip", "give --kind");

    // A library that is not a plugin fails to load, with the loader's reason.
    let junk = w.path().join("libjunk.so");
    std::fs::write(&junk, b"not a library").unwrap();
    let (code, r) = suite(&junk, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(verdict(&r, "load", None).0, "fail", "{r:#}");
    assert_eq!(r["checks"].as_array().unwrap().len(), 1, "nothing else runs: {r:#}");
}

/// Every check of the library passes; every run check of `kind` ran and passed. Returns the report.
fn assert_passes(lib: &Path, kind: &str, args: &[&str]) -> Value {
    let mut all = vec!["--kind", kind];
    all.extend_from_slice(args);
    let (code, r) = suite(lib, &all);
    let failed: Vec<&Value> =
        r["checks"].as_array().unwrap().iter().filter(|c| c["verdict"] == "fail").collect();
    assert!(failed.is_empty(), "{}: {failed:#?}", lib.display());
    assert_eq!(code, Some(0), "{r:#}");
    // Every check ran and passed: the library's own, and each of the kind under test.
    for check in arena_runtime::conformance::CHECKS.into_iter().filter(|c| !["load", "stdout"].contains(c)) {
        let (v, detail) = verdict(&r, check, Some(kind));
        assert_eq!(v, "pass", "{} {kind} {check}: {detail}", lib.display());
    }
    assert_eq!(verdict(&r, "load", None).0, "pass");
    assert_eq!(verdict(&r, "stdout", None).0, "pass");
    r
}

#[test]
fn the_perplexity_plugin_passes_on_a_tiny_model() {
    let fx = repo_root().join("tests/fixtures/lm-protocols");
    assert_passes(
        &perplexity_plugin(),
        "text_loss",
        &[
            "--params",
            r#"{"protocol": "sn9_packed", "sequence_length": 64}"#,
            "--submission",
            fx.join("llama-40").to_str().unwrap(),
            "--samples",
            fx.join("docs.jsonl").to_str().unwrap(),
        ],
    );
}

#[test]
fn the_replay_plugin_passes_on_the_demo_task() {
    let work = tempfile::tempdir().unwrap();
    let demo = repo_root().join("examples/replay-demo");
    let task = work.path().join("task");
    let st = std::process::Command::new("cp").arg("-r").arg(demo.join("task")).arg(&task).status().unwrap();
    assert!(st.success());
    git_commit_all(&task);
    let params = std::fs::read_to_string(demo.join("params.template.json"))
        .unwrap()
        .replace("@REPO@", task.to_str().unwrap());
    let sub = demo.join("submissions/better");
    assert_passes(&replay_plugin(), "replay", &["--params", &params, "--submission", sub.to_str().unwrap()]);
}

#[test]
fn the_detector_plugin_passes_on_a_tiny_detector_and_refuses_wgpu_without_an_adapter() {
    let dir = tiny_detect_dir();
    let r = assert_passes(
        &detector_plugin(),
        "image",
        &[
            "--params",
            r#"{"mode": "exam", "exam": {"samples_per_dataset": 4}}"#,
            "--submission",
            dir.join("models/detector-40").to_str().unwrap(),
            "--samples",
            dir.join("data/eval/registry.yaml").to_str().unwrap(),
        ],
    );
    assert_verdict(
        &r,
        "devices",
        Some("image"),
        "pass",
        "wgpu with no adapter: invalid_parameters: --device wgpu",
    );
}

#[test]
fn the_roleplay_plugin_passes_on_a_tiny_chat_model() {
    let fx = repo_root().join("tests/fixtures/roleplay");
    assert_passes(
        &roleplay_plugin(),
        "roleplay_eval",
        &[
            "--params",
            r#"{"model": {"chat_template": "vicuna"}}"#,
            "--submission",
            fx.join("models/llama").to_str().unwrap(),
            "--samples",
            fx.join("conversations.jsonl").to_str().unwrap(),
        ],
    );
}
