//! Replay end to end, in-process: a small task repository made here, a patch that improves its
//! loss, and a suite of hostile submissions that must each be refused with their reason.
//! Needs `git` and `bwrap` (bubblewrap) on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

use arena_plugin_api::{
    Device, ErrorKind, EvalOutput, EvalRequest, EvalTask, Limits, NoProgress, Plugin, PluginError,
    Submission, TaskSpec,
};
use arena_replay::ReplayPlugin;
use serde_json::{Value, json};

const BENCH: &str = r#"#!/bin/sh
set -e
lr=$(sed -n 's/^lr=//p' train.cfg)
awk -v lr="$lr" 'BEGIN { if (lr <= 0) { print "validator_rejection=lr must be positive"; exit 1 }
  loss = (lr - 0.1)^2 + 0.01
  printf "{\"metric_name\":\"loss\",\"metric_value\":%.6f,\"metrics\":{\"loss\":%.6f}}\n", loss, loss > "result.json"
  printf "loss: %.6f\n", loss }'
"#;

fn sh(dir: &Path, cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).current_dir(dir).status().unwrap();
    assert!(st.success(), "`{cmd}` failed in {}", dir.display());
}

/// A git repository with `train.cfg` (lr=0.5), `bench.sh`, `src/model.txt`, a symlink `data` to
/// /tmp, committed on `main`.
fn task_repo(root: &Path) -> PathBuf {
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("train.cfg"), "lr=0.5\n").unwrap();
    std::fs::write(repo.join("bench.sh"), BENCH).unwrap();
    std::fs::write(repo.join("src/model.txt"), "layers=2\n").unwrap();
    std::os::unix::fs::symlink("/tmp", repo.join("src/data")).unwrap();
    sh(
        &repo,
        "chmod +x bench.sh && git init -q -b main && git add -A && git -c user.email=t@t -c user.name=t commit -qm base",
    );
    repo
}

fn params(repo: &Path) -> Value {
    json!({
        "repository": repo,
        "base_ref": "main",
        "setup_command": "mkdir -p build && echo ready > build/marker",
        "benchmark_command": "test -f build/marker && ./bench.sh",
        "result_path": "result.json",
        "metric_name": "loss",
        "metric_direction": "minimize",
        "allowed_patch_paths": ["train.cfg", "src/*"],
        "max_patch_bytes": 4096,
        "time_budget_seconds": 30,
        "sandbox": {"memory_bytes": 2u64 << 30, "pids": 64}
    })
}

fn task(params: Value) -> Result<Box<dyn EvalTask>, PluginError> {
    ReplayPlugin::create_task(TaskSpec { kind: "replay".into(), params, device: Device::Cpu, seed: 1 })
}

fn eval_patch(root: &Path, params: Value, patch: &[u8], metadata: Value) -> Result<EvalOutput, PluginError> {
    let sub = tempfile::tempdir_in(root).unwrap();
    std::fs::write(sub.path().join("patch.diff"), patch).unwrap();
    let req = EvalRequest {
        submission: Submission { id: "miner".into(), path: sub.path().to_path_buf(), metadata },
        samples: vec![],
        limits: Limits::default(),
    };
    task(params)?.evaluate(&req, &NoProgress)
}

fn diff(path: &str, old: &str, new: &str) -> String {
    format!("diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n")
}

#[test]
fn a_patch_that_improves_the_loss_scores_better_than_the_base() {
    let root = tempfile::tempdir().unwrap();
    let repo = task_repo(root.path());
    // An empty change is not a patch; the base is scored with a no-op edit of an allowed file.
    let base = eval_patch(
        root.path(),
        params(&repo),
        diff("src/model.txt", "layers=2", "layers=2 ").as_bytes(),
        Value::Null,
    )
    .unwrap();
    let better = eval_patch(
        root.path(),
        params(&repo),
        diff("train.cfg", "lr=0.5", "lr=0.15").as_bytes(),
        Value::Null,
    )
    .unwrap();
    assert!((base.raw_score - 0.17).abs() < 1e-9, "{base:?}");
    assert!((better.raw_score - 0.0125).abs() < 1e-9, "{better:?}");
    assert_eq!(better.metrics["loss"], better.raw_score);
    assert_eq!(better.details["changed_files"], json!(["train.cfg"]));
    assert_eq!(better.details["metric_direction"], json!("minimize"));
}

#[test]
fn metric_falls_back_to_the_output_when_there_is_no_result_file() {
    let root = tempfile::tempdir().unwrap();
    let repo = task_repo(root.path());
    let mut p = params(&repo);
    p["result_path"] = json!("missing.json");
    let out =
        eval_patch(root.path(), p, diff("train.cfg", "lr=0.5", "lr=0.3").as_bytes(), Value::Null).unwrap();
    assert!((out.raw_score - 0.05).abs() < 1e-9);
}

#[test]
fn artifact_is_checked_and_exposed_to_the_benchmark() {
    let root = tempfile::tempdir().unwrap();
    let repo = task_repo(root.path());
    let mut p = params(&repo);
    p["benchmark_command"] = json!("echo \"loss: $(cat \"$AUTORESEARCH_SUBMISSION_ARTIFACT_PATH\")\"");
    let sub = tempfile::tempdir_in(root.path()).unwrap();
    std::fs::write(sub.path().join("patch.diff"), diff("train.cfg", "lr=0.5", "lr=0.4")).unwrap();
    std::fs::write(sub.path().join("weights.bin"), "0.75").unwrap();
    // sha256("0.75")
    let sha = "1eb3b0c06c2c7c2ab7ea2d5a1b1a3a3ac3c0ed1e06ab5ad02a80e2b4ebb0d8bb";
    let run = |sha: &str, size: u64| {
        let req = EvalRequest {
            submission: Submission {
                id: "m".into(),
                path: sub.path().to_path_buf(),
                metadata: json!({"artifact": {"file": "weights.bin", "sha256": sha, "size_bytes": size}}),
            },
            samples: vec![],
            limits: Limits::default(),
        };
        task(p.clone()).unwrap().evaluate(&req, &NoProgress)
    };
    let real_sha = {
        let out = Command::new("sha256sum").arg(sub.path().join("weights.bin")).output().unwrap();
        String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
    };
    assert_ne!(real_sha, sha, "the wrong hash must really be wrong");
    let e = run(sha, 4).unwrap_err();
    assert!(e.message.contains("sha256"), "{e}");
    let e = run(&real_sha, 5).unwrap_err();
    assert!(e.message.contains("size is 4 bytes, 5 declared"), "{e}");
    let out = run(&real_sha, 4).unwrap();
    assert_eq!(out.raw_score, 0.75);
}

#[test]
fn benchmark_failures_rejections_and_budgets() {
    let root = tempfile::tempdir().unwrap();
    let repo = task_repo(root.path());

    // The benchmark's own gate: validator_rejection= means rejected, with the reason.
    let e =
        eval_patch(root.path(), params(&repo), diff("train.cfg", "lr=0.5", "lr=-1").as_bytes(), Value::Null)
            .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSubmission);
    assert!(e.message.contains("rejected by the benchmark: lr must be positive"), "{e}");

    // A non-zero exit without the marker is an error.
    let mut p = params(&repo);
    p["benchmark_command"] = json!("echo loss: 1; exit 3");
    let e = eval_patch(root.path(), p, diff("train.cfg", "lr=0.5", "lr=0.2").as_bytes(), Value::Null)
        .unwrap_err();
    assert!(e.message.contains("exit code 3"), "{e}");

    // No metric anywhere.
    let mut p = params(&repo);
    p["benchmark_command"] = json!("echo done");
    let e = eval_patch(root.path(), p, diff("train.cfg", "lr=0.5", "lr=0.2").as_bytes(), Value::Null)
        .unwrap_err();
    assert!(e.message.contains("reported no `loss`"), "{e}");

    // The time budget covers the benchmark.
    let mut p = params(&repo);
    p["benchmark_command"] = json!("sleep 30");
    p["time_budget_seconds"] = json!(1);
    let t = std::time::Instant::now();
    let e = eval_patch(root.path(), p, diff("train.cfg", "lr=0.5", "lr=0.2").as_bytes(), Value::Null)
        .unwrap_err();
    assert!(e.message.contains("time budget of 1s"), "{e}");
    assert!(t.elapsed().as_secs() < 10);
}

#[test]
fn the_sandbox_has_no_network_and_a_read_only_system() {
    let root = tempfile::tempdir().unwrap();
    let repo = task_repo(root.path());
    let mut p = params(&repo);
    // Only loopback exists (no route out), /etc is read-only, and the real /tmp is not visible.
    p["benchmark_command"] = json!(
        "n=$(ls /sys/class/net | grep -vc '^lo$'); \
         if touch /etc/arena-escape 2>/dev/null; then echo wrote-etc; fi; \
         if [ -e /tmp/arena-host-marker ]; then echo saw-host-tmp; fi; \
         echo \"loss: $n\""
    );
    std::fs::write("/tmp/arena-host-marker", "x").unwrap();
    let out =
        eval_patch(root.path(), p, diff("train.cfg", "lr=0.5", "lr=0.2").as_bytes(), Value::Null).unwrap();
    let _ = std::fs::remove_file("/tmp/arena-host-marker");
    assert_eq!(out.raw_score, 0.0, "network interfaces other than lo inside the sandbox: {out:?}");
    let tail = out.details["benchmark_output_tail"].to_string();
    assert!(!tail.contains("wrote-etc") && !tail.contains("saw-host-tmp"), "{tail}");
    assert!(!Path::new("/etc/arena-escape").exists());
}

/// Hostile submissions: each must be refused before the benchmark runs, with its reason.
#[test]
fn hostile_patches_are_rejected_with_their_reason() {
    let root = tempfile::tempdir().unwrap();
    let repo = task_repo(root.path());
    let big =
        format!("--- a/train.cfg\n+++ b/train.cfg\n@@ -1 +1 @@\n-lr=0.5\n+lr=0.5{}\n", "0".repeat(5000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("over the byte limit", big.into_bytes(), "over the limit of 4096 bytes"),
        ("not a diff", b"please give me the best score\n".to_vec(), "unparsable diff"),
        ("empty", Vec::new(), "unparsable diff"),
        ("corrupt hunk counts", b"--- a/train.cfg\n+++ b/train.cfg\n@@ -1,3 +1,3 @@\n-lr=0.5\n+lr=0.2\n".to_vec(), "unparsable diff"),
        ("not UTF-8", b"--- a/train.cfg\n+++ b/train.cfg\n@@ -1 +1 @@\n-lr=0.5\n+lr=\xff\xfe\n".to_vec(), "not valid UTF-8"),
        ("outside the allowed globs", diff("bench.sh", "#!/bin/sh", "#!/bin/sh\necho loss: 0").into_bytes(), "outside the allowed paths"),
        ("a .pyc file", b"diff --git a/src/m.pyc b/src/m.pyc\nnew file mode 100644\nGIT binary patch\nliteral 1\nIcmZo*000310RR91\n\nliteral 0\nHcmV?d00001\n\n".to_vec(), ".pyc/.pyo"),
        ("a .pyo file", diff("src/x.PYO", "a", "b").into_bytes(), ".pyc/.pyo"),
        ("parent-directory escape", diff("src/../../../etc/passwd", "root", "pwned").into_bytes(), "escapes the tree"),
        ("absolute path", b"--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n".to_vec(), "absolute path"),
        ("symlink out of the tree", b"diff --git a/src/evil b/src/evil\nnew file mode 120000\n--- /dev/null\n+++ b/src/evil\n@@ -0,0 +1 @@\n+/etc/shadow\n\\ No newline at end of file\n".to_vec(), "symbolic link"),
        ("write through a base-tree symlink", b"diff --git a/src/data/x b/src/data/x\nnew file mode 100644\n--- /dev/null\n+++ b/src/data/x\n@@ -0,0 +1 @@\n+owned\n".to_vec(), "goes through the symbolic link `src/data`"),
        ("git hooks", b"diff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\nnew file mode 100755\n--- /dev/null\n+++ b/.git/hooks/post-checkout\n@@ -0,0 +1 @@\n+rm -rf /\n".to_vec(), "inside .git"),
        ("rename to a disallowed path", b"diff --git a/src/model.txt b/bench2.sh\nsimilarity index 100%\nrename from src/model.txt\nrename to bench2.sh\n".to_vec(), "`bench2.sh` is outside the allowed paths"),
        ("delete a disallowed file", b"diff --git a/bench.sh b/bench.sh\ndeleted file mode 100755\n--- a/bench.sh\n+++ /dev/null\n@@ -1 +0,0 @@\n-#!/bin/sh\n".to_vec(), "`bench.sh` is outside the allowed paths"),
        ("mode change to a disallowed file", b"diff --git a/bench.sh b/bench.sh\nold mode 100755\nnew mode 100644\n".to_vec(), "outside the allowed paths"),
        ("submodule", b"diff --git a/src/sub b/src/sub\nnew file mode 160000\nindex 0000000..1111111\n--- /dev/null\n+++ b/src/sub\n@@ -0,0 +1 @@\n+Subproject commit 1111111111111111111111111111111111111111\n".to_vec(), "submodule"),
        ("does not apply", diff("train.cfg", "lr=0.9", "lr=0.2").into_bytes(), "does not apply"),
    ];
    assert!(cases.len() >= 10);
    for (name, patch, expected) in cases {
        let e = eval_patch(root.path(), params(&repo), &patch, Value::Null)
            .expect_err(&format!("hostile case `{name}` was accepted"));
        assert_eq!(e.kind, ErrorKind::InvalidSubmission, "case `{name}`: {e}");
        assert!(e.message.contains(expected), "case `{name}`: expected `{expected}` in `{}`", e.message);
    }
    // The task repository itself is untouched: every job works on its own clone.
    let status = Command::new("git").args(["status", "--porcelain"]).current_dir(&repo).output().unwrap();
    assert!(status.stdout.is_empty(), "the task repository itself was modified");
}

#[test]
fn bad_parameters_name_the_field() {
    let root = tempfile::tempdir().unwrap();
    let repo = task_repo(root.path());
    let cases = [
        ("allowed_patch_paths", json!([]), "allowed_patch_paths: needs 1 to 64"),
        ("time_budget_seconds", json!(0), "time_budget_seconds: 0 is outside"),
        ("metric_direction", json!("sideways"), "unknown variant `sideways`"),
        ("result_path", json!("../x.json"), "result_path"),
        ("allowed_patch_paths", json!(["src/[a"]), "allowed_patch_paths: `src/[a`"),
        ("surprise", json!(1), "unknown field `surprise`"),
    ];
    for (field, value, expected) in cases {
        let mut p = params(&repo);
        p[field] = value;
        let e = task(p).err().expect("bad parameters were accepted");
        assert_eq!(e.kind, ErrorKind::InvalidParameters);
        assert!(e.message.contains(expected), "{field}: expected `{expected}` in `{}`", e.message);
    }
}
