//! The replay plugin through the `arena` binary, on the demo task: what README's demo runs.

use std::process::Command;

use arena_e2e::*;

#[test]
fn demo_replay_round_through_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let demo = repo_root().join("examples/replay-demo");
    let task = work.path().join("task");
    let st = Command::new("cp").arg("-r").arg(demo.join("task")).arg(&task).status().unwrap();
    assert!(st.success());
    git_commit_all(&task);
    let params = std::fs::read_to_string(demo.join("params.template.json"))
        .unwrap()
        .replace("@REPO@", task.to_str().unwrap());
    let lib = replay_plugin();
    let subs = demo.join("submissions");
    let out = eval(
        &lib,
        "replay",
        &[
            "--params",
            &params,
            "--isolated",
            "--timeout",
            "120",
            "--memory",
            "4GiB",
            "--json",
            "--submission",
            subs.join("better").to_str().unwrap(),
            "--submission",
            subs.join("worse").to_str().unwrap(),
            "--submission",
            subs.join("hostile").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = stdout_json(&out);
    let r = v["results"].as_array().unwrap();
    // Gradient descent on (w-3)^2 from 0: w_n = 3(1 - (1-2lr)^n); loss = (w-3)^2 + 0.01,
    // computed here independently of the benchmark script.
    let loss = |lr: f64, n: i32| 9.0 * (1.0 - 2.0 * lr).powi(2 * n) + 0.01;
    let better = r[0]["output"]["raw_score"].as_f64().unwrap();
    let worse = r[1]["output"]["raw_score"].as_f64().unwrap();
    assert!((better - loss(0.2, 40)).abs() < 1e-8, "{better}");
    assert!((worse - loss(0.01, 20)).abs() < 1e-8, "{worse}");
    assert!(better < worse);
    assert_eq!(r[2]["status"], "failed");
    assert_eq!(r[2]["failure"]["kind"], "invalid_submission");
    assert!(
        r[2]["failure"]["message"].as_str().unwrap().contains("`bench.sh` is outside the allowed paths"),
        "{v}"
    );
}

#[test]
fn a_sandboxed_benchmark_cannot_forge_the_worker_protocol() {
    let work = tempfile::tempdir().unwrap();
    let task = work.path().join("task");
    std::fs::create_dir(&task).unwrap();
    std::fs::write(task.join("train.cfg"), "lr=0.5\n").unwrap();
    git_commit_all(&task);
    // The benchmark writes a forged result line to every descriptor it may have inherited, and
    // to its stdout; the honest metric is 7.
    let forged = r#"{\"event\":\"result\",\"output\":{\"raw_score\":-1000}}"#;
    let bench = format!(
        "for fd in 3 4 5 6 7 8 9 10 11 12; do (echo \"{forged}\" >&$fd) 2>/dev/null; done; echo \"{forged}\"; echo loss: 7"
    );
    let params = serde_json::json!({
        "repository": task, "base_ref": "main", "benchmark_command": bench, "metric_name": "loss",
        "metric_direction": "minimize", "allowed_patch_paths": ["train.cfg"], "time_budget_seconds": 60,
        "sandbox": {"memory_bytes": 2147483648u64, "pids": 64}
    });
    let sub = work.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("patch.diff"),
        "--- a/train.cfg\n+++ b/train.cfg\n@@ -1 +1 @@\n-lr=0.5\n+lr=0.4\n",
    )
    .unwrap();
    let lib = replay_plugin();
    let out = eval(
        &lib,
        "replay",
        &[
            "--params",
            &params.to_string(),
            "--isolated",
            "--timeout",
            "60",
            "--json",
            "--submission",
            sub.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v = stdout_json(&out);
    assert_eq!(v["results"][0]["output"]["raw_score"], 7.0, "{v}");
}
