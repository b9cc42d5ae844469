//! `arena check`, `arena score` and `arena schema` driven through the built binary.

use arena_e2e::{arena, arena_cmd, replay_plugin, repo_root, stdout_json, text};

fn competitions() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("competitions"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    files.sort();
    files
}

#[test]
fn check_accepts_the_reference_competitions_and_rejects_with_file_line_field() {
    // The runnable ones, against the plugins this build made (searched before any stale copy
    // next to `arena`): no error.
    let plugin_dir = replay_plugin().parent().unwrap().to_str().unwrap().to_string();
    arena_e2e::perplexity_plugin();
    arena_e2e::detector_plugin();
    arena_e2e::roleplay_plugin();
    let mut args = vec!["check", "--plugin-dir", &plugin_dir];
    let files: Vec<String> = competitions();
    args.extend(files.iter().map(String::as_str));
    let out = arena(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 error(s)"), "{}", text(&out));

    let bad = repo_root().join("tests/malformed/task-weight-negative.toml");
    let out = arena(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("task-weight-negative.toml:41:"), "{t}");
    assert!(t.contains("`tasks[1].weight`") && t.contains("must be a positive, finite number"), "{t}");

    let out = arena(&["check", "--json", bad.to_str().unwrap()]);
    let report = stdout_json(&out);
    arena_e2e::assert_json_shape("check", &report);
    assert_eq!(report["errors"], 1, "{report}");
    assert_eq!(report["diagnostics"][0]["line"], 41);
    assert_eq!(report["diagnostics"][0]["field"], "tasks[1].weight");
}

#[test]
fn check_validates_task_params_against_the_installed_plugin() {
    let plugin_dir = replay_plugin().parent().unwrap().to_path_buf();
    let demo = repo_root().join("competitions/demo.toml");
    let dir = tempfile::tempdir().unwrap();

    let ok =
        arena(&["check", "--json", "--plugin-dir", plugin_dir.to_str().unwrap(), demo.to_str().unwrap()]);
    let report = stdout_json(&ok);
    assert_eq!(report["errors"], 0, "{report}");
    assert!(!report.to_string().contains("not installed"), "the replay plugin is found: {report}");

    // A parameter of the wrong type is an error at its field; an unknown kind is a warning.
    let text_of_demo = std::fs::read_to_string(&demo).unwrap();
    let bad_params = dir.path().join("bad-params.toml");
    std::fs::write(
        &bad_params,
        text_of_demo.replace("time_budget_seconds = 60", "time_budget_seconds = \"soon\""),
    )
    .unwrap();
    let unknown_kind = dir.path().join("unknown-kind.toml");
    std::fs::write(&unknown_kind, text_of_demo.replace("kind = \"replay\"", "kind = \"replai\"")).unwrap();
    for (file, errors, field, fragment) in [
        (&bad_params, 1, "tasks[0].params.time_budget_seconds", "rejected by replay's schema"),
        (&unknown_kind, 0, "tasks[0].kind", "has no task kind `replai`"),
    ] {
        let out =
            arena(&["check", "--json", "--plugin-dir", plugin_dir.to_str().unwrap(), file.to_str().unwrap()]);
        let report = stdout_json(&out);
        assert_eq!(report["errors"], errors, "{report}");
        assert_eq!(out.status.code(), Some(if errors > 0 { 1 } else { 0 }));
        let d = report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field)
            .unwrap_or_else(|| panic!("{report}"));
        assert!(d["message"].as_str().unwrap().contains(fragment), "{d}");
    }
    let d = stdout_json(&arena(&[
        "check",
        "--json",
        "--plugin-dir",
        plugin_dir.to_str().unwrap(),
        unknown_kind.to_str().unwrap(),
    ]));
    assert!(d.to_string().contains("did you mean `replay`?"), "{d}");
}

#[test]
fn score_carries_the_ema_between_calls() {
    let dir = tempfile::tempdir().unwrap();
    let demo = repo_root().join("competitions/demo.toml");
    let state = dir.path().join("state.json");
    let raw = |losses: [f64; 3]| {
        let path = dir.path().join("raw.json");
        let subs: Vec<serde_json::Value> = losses
            .iter()
            .enumerate()
            .map(|(i, l)| serde_json::json!({"uid": i as u16 + 1, "hotkey": "h", "block": 100 * (i as u64 + 1), "competition": "demo", "tasks": {"loss": l}}))
            .collect();
        std::fs::write(&path, serde_json::json!({"block": 1000, "submissions": subs}).to_string()).unwrap();
        path
    };
    let run = |losses| {
        let r = raw(losses);
        let out = arena(&[
            "score",
            demo.to_str().unwrap(),
            "--raw",
            r.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        stdout_json(&out)
    };
    let first = run([0.5, 0.4, 0.3]);
    let s1: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let second = run([0.3, 0.4, 0.5]);
    let s2: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let steps = |report: &serde_json::Value| -> Vec<f64> {
        report["competitions"][0]["submissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step_weight"].as_f64().unwrap())
            .collect()
    };
    let (a, b) = (steps(&first), steps(&second));
    for uid in 1..=3usize {
        let old = s1["competitions"]["demo"][uid.to_string()].as_f64().unwrap();
        let new = s2["competitions"]["demo"][uid.to_string()].as_f64().unwrap();
        assert!((old - a[uid - 1]).abs() < 1e-15, "first round state is the step weights");
        let want = 0.5 * old + 0.5 * b[uid - 1];
        assert!((new - want).abs() < 1e-15, "uid {uid}: {new} != {want}");
    }
    // The burn uid 0 holds its 10% share; the largest weight maps to 65535.
    let weights = second["weights"].as_array().unwrap();
    let burn = weights.iter().find(|w| w["uid"] == 0).unwrap();
    assert!((burn["weight"].as_f64().unwrap() - 0.1).abs() < 1e-12, "{burn}");
    assert_eq!(weights.iter().map(|w| w["u16"].as_u64().unwrap()).max(), Some(65535));
    // The human form is a leaderboard.
    let r = raw([0.5, 0.4, 0.3]);
    let out = arena(&["score", demo.to_str().unwrap(), "--raw", r.to_str().unwrap()]);
    let t = text(&out);
    assert!(t.contains("win rate") && t.contains("weights set on chain") && t.contains("65535"), "{t}");
}

#[test]
fn score_uses_the_validator_funding_and_rejects_bad_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    let instruct = repo_root().join("competitions/finetuning-instruct-8b.toml");
    let reasoning = repo_root().join("competitions/finetuning-reasoning-3b.toml");
    let config = repo_root().join("examples/validator.toml");
    let tasks =
        serde_json::json!({"synthetic_mmlu": 0.4, "word_sorting": 10.0, "fineweb": 3.0, "if_eval_v2": 0.5});
    let raw = dir.path().join("raw.json");
    std::fs::write(
        &raw,
        serde_json::json!({"block": 5_000_000, "submissions": [
            {"uid": 1, "block": 4_900_000, "competition": "finetuning-instruct-8b", "tasks": tasks},
        ]})
        .to_string(),
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "score",
            instruct.to_str().unwrap(),
            reasoning.to_str().unwrap(),
            "--raw",
            raw.to_str().unwrap(),
            "--json",
        ];
        a.extend_from_slice(extra);
        arena_cmd(&a).output().unwrap()
    };
    let out = args(&["--config", config.to_str().unwrap()]);
    let report = stdout_json(&out);
    // Only the instruct competition is active at this block: its half share becomes all of it.
    assert_eq!(report["competitions"][0]["emission_share"], 1.0, "{report}");
    assert_eq!(report["competitions"][1]["active"], false);
    assert_eq!(report["weights"][0]["u16"], 65535);

    std::fs::write(&raw, r#"{"block": 5000000, "submissions": [{"uid": 1, "block": 1, "competition": "finetuning-instruct-8b", "tasks": {"synthetic_mmlu": 0.4}}]}"#).unwrap();
    let out = args(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("task `word_sorting` is missing; write null for a failed task"),
        "{}",
        text(&out)
    );

    // SN11 compares every registered uid: RAW.json must say how many there are.
    let roleplay = repo_root().join("competitions/roleplay.toml");
    let tasks = serde_json::json!({"quality": 0.5, "creativity": 0.5, "latency": 500.0, "vibe": 0.5, "coherence": 1.0});
    let sub = serde_json::json!({"uid": 1, "block": 1, "competition": "roleplay", "tasks": tasks});
    for (registered, fragment) in [(None, "give the number of registered uids"), (Some(4), "")] {
        let mut doc = serde_json::json!({"block": 100, "submissions": [sub.clone()]});
        if let Some(n) = registered {
            doc["registered"] = n.into();
        }
        std::fs::write(&raw, doc.to_string()).unwrap();
        let out = arena(&["score", roleplay.to_str().unwrap(), "--raw", raw.to_str().unwrap(), "--json"]);
        if fragment.is_empty() {
            // One submission against three absent uids: it wins all three.
            assert_eq!(stdout_json(&out)["competitions"][0]["submissions"][0]["win_rate"], 1.0);
        } else {
            assert_eq!(out.status.code(), Some(2));
            assert!(text(&out).contains(fragment), "{}", text(&out));
        }
    }
}

#[test]
fn schema_describes_both_file_kinds() {
    let comp = stdout_json(&arena(&["schema"]));
    assert!(comp["properties"]["tasks"].is_object(), "{comp}");
    assert!(comp["properties"]["ranking"].is_object());
    let validator = stdout_json(&arena(&["schema", "validator"]));
    assert!(validator["properties"]["funding"].is_object(), "{validator}");
}

#[test]
fn every_runnable_reference_competition_passes_check_strict_against_the_built_plugins() {
    let plugin_dir = replay_plugin().parent().unwrap().to_path_buf();
    // The plugins the competitions name, all built into that directory.
    arena_e2e::perplexity_plugin();
    arena_e2e::detector_plugin();
    arena_e2e::roleplay_plugin();
    let mut runnable = 0;
    for file in competitions() {
        let stem = std::path::Path::new(&file).file_stem().unwrap().to_str().unwrap().to_string();
        let out =
            arena(&["check", "--strict", "--json", "--plugin-dir", plugin_dir.to_str().unwrap(), &file]);
        let report = stdout_json(&out);
        assert_eq!(out.status.code(), Some(0), "{stem}: {report:#}");
        assert_eq!(report["errors"], 0, "{stem}: {report:#}");
        runnable += 1;
    }
    assert!(runnable >= 11, "{runnable} runnable competitions");
}
