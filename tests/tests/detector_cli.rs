//! The detector plugin through the `arena` binary, on the project's generated benchmark and tiny
//! detectors: in-process and isolated runs are bit-identical, more training ranks higher, the
//! entrance exam passes and fails on its mark, and broken submissions and media fail cleanly.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arena_e2e::*;
use serde_json::Value;

/// The benchmark and the four tiny detectors, generated once per build of the generator.
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(tiny_detect_dir)
}

const MODELS: [&str; 4] = ["detector-untrained", "detector-10", "detector-40", "detector-160"];

fn run(params: &str, isolated: bool, extra: &[&Path]) -> Value {
    let dir = workdir();
    let registry = dir.join("data/eval/registry.yaml");
    let mut args: Vec<String> =
        ["--params", params, "--samples", registry.to_str().unwrap(), "--json"].map(String::from).to_vec();
    for m in MODELS.iter().map(|m| dir.join("models").join(m)).chain(extra.iter().map(|p| p.to_path_buf())) {
        args.push("--submission".into());
        args.push(m.display().to_string());
    }
    if isolated {
        args.extend(["--isolated", "--timeout", "300", "--memory", "4GiB"].map(String::from));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = eval(&detector_plugin(), "image", &args);
    assert!(out.status.code().is_some(), "{}", text(&out));
    stdout_json(&out)
}

#[test]
fn full_benchmark_in_process_and_isolated_ranks_the_detectors() {
    let tmp = tempfile::tempdir().unwrap();
    // A submission naming an architecture the plugin does not have.
    let unknown = tmp.path().join("unknown-arch");
    std::fs::create_dir(&unknown).unwrap();
    std::fs::write(
        unknown.join("model_config.yaml"),
        "name: x\nmodality: image\nmodel:\n  architecture: resnet152\n",
    )
    .unwrap();
    // ResNet-18 weights declared as ResNet-34.
    let mismatched = tmp.path().join("mismatched");
    std::fs::create_dir(&mismatched).unwrap();
    let src = workdir().join("models/detector-40");
    std::fs::copy(src.join("model.safetensors"), mismatched.join("model.safetensors")).unwrap();
    let cfg = std::fs::read_to_string(src.join("model_config.yaml")).unwrap().replace("resnet18", "resnet34");
    std::fs::write(mismatched.join("model_config.yaml"), cfg).unwrap();

    let params = r#"{"batch_size": 16}"#;
    let a = run(params, false, &[&unknown, &mismatched]);
    let b = run(params, true, &[&unknown, &mismatched]);
    let scores: Vec<f64> =
        (0..4).map(|i| a["results"][i]["output"]["metrics"]["sn34_score"].as_f64().unwrap()).collect();
    for i in 0..4 {
        assert_eq!(
            a["results"][i]["output"], b["results"][i]["output"],
            "{}: in-process vs isolated",
            MODELS[i]
        );
        let m = &a["results"][i]["output"]["metrics"];
        assert_eq!(m["samples"], 72.0, "6 datasets x 12 images");
        assert_eq!(m["samples_error"], 0.0);
    }
    assert!(scores[1] < scores[2] && scores[2] < scores[3], "more training, better sn34: {scores:?}");
    assert!(scores[3] > 0.5, "the trained detector separates the benchmark: {scores:?}");
    let per_dataset = &a["results"][3]["output"]["details"]["per_dataset"];
    assert_eq!(per_dataset.as_object().unwrap().len(), 6);
    assert_eq!(per_dataset["gan-upsample"]["total"], 12);

    for v in [&a, &b] {
        let r = &v["results"][4];
        assert_eq!(r["status"], "failed");
        assert_eq!(r["failure"]["kind"], "invalid_submission", "{r}");
        let msg = r["failure"]["message"].as_str().unwrap();
        assert!(msg.contains("model_config.yaml") && msg.contains("resnet152"), "{msg}");
        let r = &v["results"][5];
        assert_eq!(r["failure"]["kind"], "invalid_submission", "{r}");
        let msg = r["failure"]["message"].as_str().unwrap();
        assert!(
            msg.contains("layer1.2.conv1.weight") && msg.contains("missing"),
            "first mismatching tensor: {msg}"
        );
    }
}

#[test]
fn entrance_exam_draws_per_dataset_and_applies_the_pass_mark() {
    let exam = |pass: f64| {
        let params =
            format!(r#"{{"mode": "exam", "exam": {{"samples_per_dataset": 5, "pass_accuracy": {pass}}}}}"#);
        run(&params, false, &[])
    };
    let v = exam(0.8);
    for i in 0..4 {
        let m = &v["results"][i]["output"]["metrics"];
        assert_eq!(m["samples"], 30.0, "5 per dataset");
        assert_eq!(v["results"][i]["output"]["raw_score"], m["accuracy"]);
    }
    let trained = &v["results"][3]["output"];
    assert_eq!(trained["metrics"]["exam_passed"], 1.0, "{trained}");
    assert_eq!(v["results"][0]["output"]["metrics"]["exam_passed"], 0.0);
    // The mark is a parameter: passed exactly when accuracy reaches it.
    for mark in [0.5, 0.9] {
        let v = exam(mark);
        for i in 0..4 {
            let o = &v["results"][i]["output"];
            let accuracy = o["metrics"]["accuracy"].as_f64().unwrap();
            assert_eq!(o["details"]["exam"]["passed"], accuracy >= mark, "{} at {mark}: {o}", MODELS[i]);
        }
    }
}

#[test]
fn unreadable_media_fail_their_own_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("broken");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("truncated.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let good = workdir().join("data/eval/gan-upsample");
    for f in ["0000.png", "0001.png"] {
        std::fs::copy(good.join(f), data.join(f)).unwrap();
    }
    let registry = tmp.path().join("registry.yaml");
    std::fs::write(
        &registry,
        "datasets:\n  - name: broken\n    modality: image\n    media_type: synthetic\n    path: broken\n",
    )
    .unwrap();
    let model = workdir().join("models/detector-160");
    let out = eval(
        &detector_plugin(),
        "image",
        &["--samples", registry.to_str().unwrap(), "--json", "--submission", model.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let o = &stdout_json(&out)["results"][0]["output"];
    assert_eq!(o["metrics"]["samples_ok"], 2.0);
    assert_eq!(o["metrics"]["samples_error"], 1.0);
    assert!(o["details"]["errors"][0].as_str().unwrap().contains("truncated.png"), "{o}");
}

#[test]
fn audio_and_video_run_through_the_same_pipeline() {
    let dir = workdir();
    for (task, registry, model, expected) in [
        ("audio", "data/audio/registry.yaml", "models/audio-m5", 24.0),
        ("video", "data/video/registry.yaml", "models/video-resnet18", 12.0),
    ] {
        let image_model = dir.join("models/detector-160");
        let out = eval(
            &detector_plugin(),
            task,
            &[
                "--samples",
                dir.join(registry).to_str().unwrap(),
                "--json",
                "--submission",
                dir.join(model).to_str().unwrap(),
                "--submission",
                image_model.to_str().unwrap(),
            ],
        );
        let v = stdout_json(&out);
        let o = &v["results"][0]["output"];
        assert_eq!(o["metrics"]["samples_ok"], expected, "{task}: {v}");
        assert_eq!(o["metrics"]["samples_error"], 0.0, "{task}: {v}");
        for m in ["accuracy", "binary_mcc", "binary_brier", "sn34_score"] {
            assert!(o["metrics"][m].as_f64().is_some_and(f64::is_finite), "{task} {m}: {o}");
        }
        assert_eq!(o["details"]["per_dataset"].as_object().unwrap().len(), 2, "{task}");
        // An image detector submitted to another modality fails as the submission's fault.
        let r = &v["results"][1];
        assert_eq!(r["failure"]["kind"], "invalid_submission", "{r}");
        assert!(
            r["failure"]["message"].as_str().unwrap().contains(&format!("this task scores {task}")),
            "{r}"
        );
    }
}

/// `--device wgpu` through the ABI gives the CPU's numbers (to float tolerance). Skipped without a
/// wgpu adapter unless ARENA_REQUIRE_WGPU=1.
#[test]
fn wgpu_through_the_abi_matches_the_cpu() {
    let dir = workdir();
    let registry = dir.join("data/eval/registry.yaml");
    let model = dir.join("models/detector-160");
    let run = |device: &str| {
        let out = eval(
            &detector_plugin(),
            "image",
            &[
                "--device",
                device,
                "--params",
                r#"{"mode": "exam", "exam": {"samples_per_dataset": 4}}"#,
                "--samples",
                registry.to_str().unwrap(),
                "--json",
                "--submission",
                model.to_str().unwrap(),
            ],
        );
        stdout_json(&out)["results"][0].clone()
    };
    let cpu = run("cpu");
    let gpu = run("wgpu");
    if gpu["status"] != "ok" {
        let required = std::env::var("ARENA_REQUIRE_WGPU").is_ok_and(|v| v == "1");
        assert!(!required, "wgpu is required (ARENA_REQUIRE_WGPU=1): {gpu}");
        eprintln!("no usable wgpu adapter: {gpu}");
        return;
    }
    assert_eq!(cpu["output"]["metrics"]["samples_ok"], 24.0);
    for m in ["accuracy", "binary_mcc", "binary_brier", "sn34_score"] {
        let (a, b) =
            (cpu["output"]["metrics"][m].as_f64().unwrap(), gpu["output"]["metrics"][m].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-5, "{m}: cpu {a} wgpu {b}");
    }
}

/// Per-sample weights (a sample's `weight`) weight accuracy, MCC and Brier; accuracy is then the
/// weighted mean of the per-dataset results.
#[test]
fn sample_weights_weight_the_metrics() {
    let dir = workdir();
    let tmp = tempfile::tempdir().unwrap();
    let samples = tmp.path().join("weighted.jsonl");
    let mut lines = String::new();
    for (name, media_type, weight) in [
        ("textures-real", "real", 3.0),
        ("gan-upsample", "synthetic", 1.0),
        ("latent-grid", "synthetic", 0.5),
    ] {
        for i in 0..12 {
            let file = dir.join(format!("data/eval/{name}/{i:04}.png"));
            lines.push_str(&format!(
                "{{\"data\": {{\"dataset\": \"{name}\", \"media_type\": \"{media_type}\", \"weight\": {weight}}}, \"files\": [\"{}\"]}}\n",
                file.display()
            ));
        }
    }
    std::fs::write(&samples, lines).unwrap();
    let model = dir.join("models/detector-40");
    let out = eval(
        &detector_plugin(),
        "image",
        &["--samples", samples.to_str().unwrap(), "--json", "--submission", model.to_str().unwrap()],
    );
    let o = &stdout_json(&out)["results"][0]["output"];
    let d = &o["details"]["per_dataset"];
    let correct = |n: &str| d[n]["correct"].as_f64().unwrap();
    let want = (3.0 * correct("textures-real") + correct("gan-upsample") + 0.5 * correct("latent-grid"))
        / (12.0 * 4.5);
    let got = o["metrics"]["accuracy"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-12, "weighted accuracy {got}, expected {want}: {o}");
}

/// The demo's detector competition through `arena round`: its three tasks read one pass per
/// detector, and each score is the plugin's own, bit for bit.
#[test]
fn the_demo_detector_competition_reads_three_tasks_from_one_pass_per_detector() {
    let dir = workdir();
    let tmp = tempfile::tempdir().unwrap();
    let registry = dir.join("data/eval/registry.yaml");
    let toml = std::fs::read_to_string(repo_root().join("competitions/demo-detector.toml"))
        .unwrap()
        .replace("target/arena-demo/detector/data/eval/registry.yaml", registry.to_str().unwrap());
    let comp = tmp.path().join("demo-detector.toml");
    std::fs::write(&comp, toml).unwrap();
    let subs: Vec<Value> = MODELS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            serde_json::json!({"uid": i + 1, "hotkey": m, "block": 10 * (i + 1), "competition": "demo-detector",
                "path": dir.join("models").join(m)})
        })
        .collect();
    detector_plugin();
    let v = round_json(
        tmp.path(),
        &comp,
        &serde_json::json!({"block": 1000, "submissions": subs}),
        &["--jobs", "2"],
    );
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), MODELS.len(), "one run per detector: {v}");
    let eval = run(r#"{"mode": "full", "batch_size": 32}"#, false, &[]);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r["tasks"], serde_json::json!(["sn34", "mcc", "brier"]));
        let metrics = &eval["results"][i]["output"]["metrics"];
        let tasks = &v["raw"]["submissions"][i]["tasks"];
        assert_eq!(tasks["sn34"], metrics["sn34_score"], "{}", MODELS[i]);
        assert_eq!(tasks["mcc"], metrics["binary_mcc"]);
        assert_eq!(tasks["brier"], metrics["binary_brier"]);
    }
    // Winner-take-all on sn34: the best detector gets everything.
    let best = (0..MODELS.len())
        .max_by(|&a, &b| {
            let s = |i: usize| v["raw"]["submissions"][i]["tasks"]["sn34"].as_f64().unwrap();
            s(a).total_cmp(&s(b))
        })
        .unwrap();
    assert_eq!(paid(&v), vec![(best as u64 + 1, 65535)]);
}

/// SN34's image competition from `competitions/` on the generated benchmark: its MCC and Brier
/// tasks read one pass per detector, its formula gives gasbench's sn34 score (the plugin's own
/// `sn34_score`, computed independently in the plugin from the same metrics), and a submission
/// over its 2 GiB limit is refused without running.
#[test]
fn the_sn34_competition_runs_from_its_file_and_its_formula_is_gasbenchs_score() {
    let dir = workdir();
    let tmp = tempfile::tempdir().unwrap();
    let registry = dir.join("data/eval/registry.yaml");
    let toml = std::fs::read_to_string(repo_root().join("competitions/deepfake-image.toml"))
        .unwrap()
        .replace("data/gasbench/image.yaml", registry.to_str().unwrap());
    let comp = tmp.path().join("deepfake-image.toml");
    std::fs::write(&comp, toml).unwrap();
    // Real model files plus a 3 GiB sparse file: over max_bytes.
    let big = tmp.path().join("oversized");
    std::fs::create_dir(&big).unwrap();
    for f in std::fs::read_dir(dir.join("models/detector-40")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, big.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::File::create(big.join("padding.bin")).unwrap().set_len(3 << 30).unwrap();
    let subs = serde_json::json!({"block": 100, "submissions": [
        {"uid": 1, "hotkey": "a", "block": 1, "competition": "deepfake-image", "path": dir.join("models/detector-40")},
        {"uid": 2, "hotkey": "b", "block": 2, "competition": "deepfake-image", "path": dir.join("models/detector-160")},
        {"uid": 3, "hotkey": "c", "block": 3, "competition": "deepfake-image", "path": big},
    ]});
    detector_plugin();
    let v = round_json(tmp.path(), &comp, &subs, &[]);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "one run per submission for both tasks: {v}");
    let scored = &v["competitions"][0]["submissions"];
    for i in 0..2 {
        assert_eq!(runs[i]["tasks"], serde_json::json!(["mcc", "brier"]));
        let sn34 = runs[i]["output"]["metrics"]["sn34_score"].as_f64().unwrap();
        let total = scored[i]["total"].as_f64().unwrap();
        assert!((total - sn34).abs() <= 1e-12, "formula {total} vs plugin {sn34}");
    }
    let msg = runs[2]["failure"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("model constraints:") && msg.contains("more than the maximum 2147483648"),
        "{msg}"
    );
}
