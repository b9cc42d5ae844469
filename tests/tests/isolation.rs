//! Isolated jobs: plugins that panic, segfault, abort, exit, hang, eat memory or write to stdout
//! each fail their own job with the reason, while the host finishes the others. Ctrl-C stops
//! workers cleanly and leaves no process behind.

use std::path::Path;
use std::time::{Duration, Instant};

use arena_e2e::*;
use serde_json::{Value, json};

fn submission(root: &Path, name: &str, behaviour: Value) -> String {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("behaviour.json"), behaviour.to_string()).unwrap();
    d.to_str().unwrap().to_string()
}

fn samples(root: &Path) -> String {
    let p = root.join("samples.json");
    std::fs::write(&p, r#"[{"x": 1}, {"x": 2.5}, {"x": -0.5}]"#).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn each_misbehaving_plugin_fails_only_its_own_job() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let subs = [
        ("ok-first", json!({"kind": "sum"})),
        ("panics", json!({"kind": "panic"})),
        ("segfaults", json!({"kind": "segfault"})),
        ("aborts", json!({"kind": "abort"})),
        ("exits", json!({"kind": "exit", "code": 3})),
        ("hangs", json!({"kind": "sleep", "seconds": 60})),
        ("eats-memory", json!({"kind": "alloc", "bytes": 8u64 << 30})),
        ("segfaults-out-of-memory", json!({"kind": "oom-segfault"})),
        ("writes-stdout", json!({"kind": "stdout"})),
        ("ok-last", json!({"kind": "sum"})),
    ];
    let lib = chaos_plugin();
    let samples = samples(r);
    let mut args = vec![
        "--samples".to_string(),
        samples,
        "--isolated".into(),
        "--timeout".into(),
        "3".into(),
        "--memory".into(),
        "768MiB".into(),
        "--json".into(),
    ];
    for (name, b) in &subs {
        args.push("--submission".into());
        args.push(submission(r, name, b.clone()));
    }
    let start = Instant::now();
    let out = eval(&lib, "by-submission", &args.iter().map(String::as_str).collect::<Vec<_>>());
    let elapsed = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "some jobs failed, so the exit status is 1: {}", text(&out));
    let v = stdout_json(&out);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), subs.len(), "the host ran every job");
    let by_id = |id: &str| results.iter().find(|r| r["submission"] == id).unwrap().clone();

    for ok in ["ok-first", "ok-last", "writes-stdout"] {
        let r = by_id(ok);
        assert_eq!(r["status"], "ok", "{ok}: {r}");
        assert_eq!(r["output"]["raw_score"], 3.0, "{ok}: {r}");
    }
    let expect = [
        ("panics", "internal", "chaos: panic requested for panics"),
        ("segfaults", "crashed", "SIGSEGV"),
        ("aborts", "crashed", "SIGABRT"),
        ("exits", "exited", "exited with code 3"),
        ("hangs", "timeout", "wall-clock limit of 3.0s"),
        ("eats-memory", "out_of_memory", "limit 768.0 MiB"),
        // A segfault after the address space ran out is out of memory, not a crash.
        ("segfaults-out-of-memory", "out_of_memory", "limit 768.0 MiB) and was killed by signal 11, SIGSEGV"),
    ];
    for (id, kind, fragment) in expect {
        let r = by_id(id);
        assert_eq!(r["status"], "failed", "{id}: {r}");
        assert_eq!(r["failure"]["kind"], kind, "{id}: {r}");
        assert!(
            r["failure"]["message"].as_str().unwrap().contains(fragment),
            "{id}: `{fragment}` not in {r}"
        );
    }
    // The out-of-memory job says why in its stderr tail.
    let oom = by_id("eats-memory");
    assert!(oom["failure"]["stderr_tail"].to_string().contains("memory allocation of"), "{oom}");
    // Only the hanging job waited for its limit.
    assert!(elapsed < Duration::from_secs(25), "took {elapsed:?}");
}

#[test]
fn isolated_and_in_process_results_are_identical() {
    let root = tempfile::tempdir().unwrap();
    let sub = submission(root.path(), "s", json!({"kind": "sum"}));
    let samples = samples(root.path());
    let lib = chaos_plugin();
    let base = ["--samples", &samples, "--submission", &sub, "--seed", "9", "--json"];
    let a = stdout_json(&eval(&lib, "sum", &base));
    let mut iso = base.to_vec();
    iso.push("--isolated");
    let b = stdout_json(&eval(&lib, "sum", &iso));
    assert_eq!(a["results"][0]["output"], b["results"][0]["output"]);
    assert_eq!(a["results"][0]["output"]["metrics"]["seed"], 9.0);
}

#[test]
fn a_device_the_task_does_not_support_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let sub = submission(root.path(), "s", json!({"kind": "sum"}));
    let lib = chaos_plugin();
    for isolated in [false, true] {
        let mut args = vec!["--submission", &sub, "--device", "cuda:1", "--json"];
        if isolated {
            args.push("--isolated");
        }
        let v = stdout_json(&eval(&lib, "sum", &args));
        let f = &v["results"][0]["failure"];
        assert_eq!(f["kind"], "unsupported", "{v}");
        assert!(f["message"].as_str().unwrap().contains("runs on cpu, not on cuda:1"), "{v}");
    }
    let out = eval(&lib, "sum", &["--submission", &sub, "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("unknown device `tpu`"), "{}", text(&out));
}

/// Processes (other than `except`) whose environment carries `tag`.
fn processes_tagged(tag: &str, except: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == except {
            continue;
        }
        if let Ok(env) = std::fs::read(e.path().join("environ"))
            && env.split(|&b| b == 0).any(|kv| kv == tag.as_bytes())
        {
            // Zombies count too: a zombie is a process nobody reaped.
            found.push(pid);
        }
    }
    found
}

#[test]
fn ctrl_c_stops_workers_cleanly_and_leaves_no_process() {
    let root = tempfile::tempdir().unwrap();
    let hang = submission(root.path(), "hang", json!({"kind": "sleep", "seconds": 120}));
    let polite =
        submission(root.path(), "polite", json!({"kind": "sleep", "seconds": 120, "honour_cancel": true}));
    let lib = chaos_plugin();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let tag = format!("ARENA_E2E_TAG={}-{nanos}", std::process::id());
    let (k, v) = tag.split_once('=').unwrap();
    // One worker stops when asked; the other ignores the request and is killed after the grace.
    for sub in [&polite, &hang] {
        let child = eval_cmd(&lib, "by-submission", &["--submission", sub, "--isolated", "--json"])
            .env(k, v)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the worker runs.
        let t = Instant::now();
        while processes_tagged(&tag, child.id()).is_empty() {
            assert!(t.elapsed() < Duration::from_secs(20), "no worker started");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: plain syscall on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let t = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "stopping took {:?}", t.elapsed());
        assert_eq!(out.status.code(), Some(130), "{}", text(&out));
        let v = stdout_json(&out);
        assert_eq!(v["results"][0]["failure"]["kind"], "cancelled", "{v}");
        let left = processes_tagged(&tag, 0);
        assert!(left.is_empty(), "processes left behind: {left:?}");
    }
}
