//! The third-party path: a crate outside the workspace, depending on arena-plugin-api alone,
//! built with plain `cargo build`, loaded and run by `arena`.

use arena_e2e::*;
use serde_json::json;

#[test]
fn third_party_plugin_builds_loads_and_scores() {
    let lib = third_party_plugin();
    let v = stdout_json(&arena(&["plugins", "inspect", lib.to_str().unwrap(), "--json"]));
    assert_eq!(v["name"], "logreg-probe");
    assert_eq!(v["abi_version"], arena_plugin_api::ABI_VERSION);
    assert_eq!(v["tasks"][0]["name"], "logistic-regression");

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("model.json"), r#"{"weights": [2.0, -1.0], "bias": 0.5}"#).unwrap();
    let samples = dir.path().join("samples.jsonl");
    std::fs::write(
        &samples,
        "{\"features\": [1.0, 0.0], \"label\": 1}\n{\"features\": [0.0, 2.0], \"label\": 0}\n{\"features\": [0.0, 0.0], \"label\": 0}\n",
    )
    .unwrap();
    for isolated in [false, true] {
        let mut args =
            vec!["--submission", model.to_str().unwrap(), "--samples", samples.to_str().unwrap(), "--json"];
        if isolated {
            args.push("--isolated");
        }
        let out = eval(&lib, "logistic-regression", &args);
        assert!(out.status.success(), "{}", text(&out));
        let r = &stdout_json(&out)["results"][0]["output"];
        // z = 2.5, -1.5, 0.5 → losses ln(1+e^-2.5), ln(1+e^-1.5), ln(1+e^0.5); computed here
        // independently of the plugin.
        let losses = [(1.0 + (-2.5f64).exp()).ln(), (1.0 + (-1.5f64).exp()).ln(), (1.0 + 0.5f64.exp()).ln()];
        let mean = losses.iter().sum::<f64>() / 3.0;
        assert!((r["raw_score"].as_f64().unwrap() - mean).abs() < 1e-12, "{r}");
        assert_eq!(r["metrics"]["accuracy"], json!(2.0 / 3.0));
        for (got, want) in r["per_sample"].as_array().unwrap().iter().zip(losses) {
            assert!((got.as_f64().unwrap() - want).abs() < 1e-12);
        }
    }
}

/// `arena plugin new`: the crate it makes builds with plain `cargo build`, its own test passes,
/// and the library loads and scores at once.
#[test]
fn a_new_plugin_builds_as_made_passes_its_test_and_loads() {
    let w = tempfile::tempdir().unwrap();
    let dir = w.path().join("mae-probe");
    let out = arena(&["plugin", "new", "mae-probe", "--path", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let deps = &manifest[manifest.find("[dependencies]").unwrap()..manifest.find("# Plugins catch").unwrap()];
    assert_eq!(deps.lines().filter(|l| l.contains('=')).count(), 1, "arena-plugin-api alone: {deps}");
    // Made twice: refused, the first left as it was.
    let again = arena(&["plugin", "new", "mae-probe", "--path", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    assert!(!arena(&["plugin", "new", "9lives"]).status.success(), "a name must start with a letter");

    let lib = external_plugin(dir.to_str().unwrap(), "mae_probe", &[]);
    external_test(dir.to_str().unwrap());
    let v = stdout_json(&arena(&["plugins", "inspect", lib.to_str().unwrap(), "--json"]));
    assert_eq!(v["name"], "mae-probe");
    assert_eq!(v["abi_version"], arena_plugin_api::ABI_VERSION);
    assert_eq!(v["tasks"][0]["name"], "mean-abs-error");
    assert_eq!(v["tasks"][0]["params_schema"]["properties"]["scale"]["default"], 1.0);

    let sub = w.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("prediction.json"), r#"{"value": 3.0}"#).unwrap();
    let samples = w.path().join("samples.jsonl");
    std::fs::write(&samples, "{\"target\": 1.0}\n{\"target\": 6.0}\n").unwrap();
    let out = eval(
        &lib,
        "mean-abs-error",
        &[
            "--submission",
            sub.to_str().unwrap(),
            "--samples",
            samples.to_str().unwrap(),
            "--params",
            r#"{"scale": 2}"#,
            "--isolated",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let r = &stdout_json(&out)["results"][0]["output"];
    // |3-1|·2 and |3-6|·2, averaged: 5.
    assert_eq!(r["raw_score"], json!(5.0), "{r}");
    assert_eq!(r["per_sample"], json!([4.0, 6.0]));

    // The conformance suite on the example inputs the template ships: every check runs and
    // passes (the second of README's two commands).
    let out = arena(&[
        "plugin",
        "test",
        lib.to_str().unwrap(),
        "--submission",
        dir.join("example/submission").to_str().unwrap(),
        "--samples",
        dir.join("example/samples.jsonl").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let checks = stdout_json(&out)["checks"].as_array().unwrap().clone();
    let names: Vec<&str> = checks.iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(names, arena_runtime::conformance::CHECKS);
    assert!(checks.iter().all(|c| c["verdict"] == "pass"), "{checks:#?}");
}
