//! `arena round`: competitions run from their files, through the built binary and plugins.
//! The chaos plugin makes rounds with crashing submissions; the replay plugin runs the demo's
//! round as README's demo does.

use std::path::{Path, PathBuf};
use std::process::Command;

use arena_e2e::*;
use serde_json::{Value, json};

fn behaviour(dir: &Path, name: &str, b: Value) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("behaviour.json"), b.to_string()).unwrap();
    d
}

fn plugin_dir() -> String {
    chaos_plugin().parent().unwrap().to_str().unwrap().to_string()
}

fn write_json(path: &Path, v: &Value) -> String {
    std::fs::write(path, v.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

fn round(args: &[&str]) -> std::process::Output {
    let mut c = arena_cmd(&["round"]);
    c.args(args).args(["--plugin-dir", &plugin_dir()]);
    c.output().unwrap()
}

#[test]
fn a_round_runs_every_submission_and_a_crash_fails_only_its_own() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let comp = chaos_competition(d, "");
    behaviour(d, "ok", json!({"kind": "sum"}));
    behaviour(d, "crash", json!({"kind": "segfault"}));
    behaviour(d, "also-ok", json!({"kind": "sum"}));
    let subs = write_json(
        &d.join("subs.json"),
        &json!({"block": 1005, "submissions": [
            {"uid": 1, "hotkey": "a", "block": 10, "competition": "chaos", "path": "ok"},
            {"uid": 2, "hotkey": "b", "block": 20, "competition": "chaos", "path": "crash"},
            {"uid": 3, "hotkey": "c", "block": 30, "competition": "chaos", "path": "also-ok"},
        ]}),
    );
    let hash = "0x1c8b1b1ef1b4e8d1d0b4a9f1c8e42c5a30b4c9b0c7d5a1f7e1e2b0a3d4c5b6a7";
    let out_file = d.join("round.json");
    let run = |jobs: &str, out: &Path| {
        round(&[
            comp.to_str().unwrap(),
            "--submissions",
            &subs,
            "--block-hash",
            hash,
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ])
    };
    let out = run("2", &out_file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = stdout_json(&out);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    assert_eq!(saved, v, "--out writes what --json prints");
    assert_json_shape("round", &v);

    // Two tasks that read one run: one run per submission.
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{v}");
    assert_eq!(runs[0]["tasks"], json!(["total", "drawn"]));
    assert_eq!(runs[1]["status"], "failed");
    assert_eq!(runs[1]["failure"]["kind"], "crashed", "{}", runs[1]);
    // The seeded draw: 3 rows of 1..10, the same for both well-behaved submissions.
    let raw = v["raw"]["submissions"].as_array().unwrap();
    let total = raw[0]["tasks"]["total"].as_f64().unwrap();
    assert_eq!(raw[0]["tasks"]["drawn"], json!(3.0));
    assert_eq!(raw[2]["tasks"]["total"].as_f64().unwrap(), total);
    assert!((6.0..=27.0).contains(&total), "{total}");
    assert_eq!(raw[1]["tasks"], json!({"total": null, "drawn": null}));
    // The seed is the sync block's: block 1000, from the hash given.
    assert_eq!(v["seeds"][0]["sync_block"], 1000);
    assert_eq!(v["seeds"][0]["block_hash"], hash);

    // `arena round` is `arena score` plus the runs: the same raw scores give the same weights.
    let raw_file = write_json(&d.join("raw.json"), &v["raw"]);
    let score = arena(&["score", comp.to_str().unwrap(), "--raw", &raw_file, "--json"]);
    assert!(score.status.success(), "{}", text(&score));
    assert_eq!(stdout_json(&score)["weights"], v["weights"]);
    assert_json_shape("score", &stdout_json(&score));
    let uids: Vec<u64> = paid(&v).into_iter().map(|(uid, _)| uid).collect();
    assert_eq!(uids, vec![1, 3], "the crashed submission earns nothing");

    // Same block hash, one job at a time: the same digest. Another hash draws other rows.
    let again = run("1", &d.join("again.json"));
    assert_eq!(stdout_json(&again)["digest"], v["digest"]);
    let other = round(&[comp.to_str().unwrap(), "--submissions", &subs, "--block-hash", "0x00", "--json"]);
    let other = stdout_json(&other);
    assert_eq!(other["seeds"][0]["block_hash"], "0x00");
    assert_ne!(other["seeds"][0]["seed"], v["seeds"][0]["seed"]);
}

/// Hub submissions are downloaded from `HF_ENDPOINT` (here a loopback hub) into
/// `HF_HUB_CACHE`; a repository the hub does not have is bad input that names the submission
/// and the hub's status.
#[test]
fn hub_submissions_are_downloaded_from_hf_endpoint() {
    use arena_e2e::hub::{HubRepo, TestHub};
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let comp = chaos_competition(d, "");
    let model = HubRepo::new("miner/sum", &[("behaviour.json", br#"{"kind": "sum"}"#)]);
    let server = TestHub::start(vec![model.clone()]);
    let cache = d.join("hub");
    let run = |second: &str| {
        let subs = write_json(
            &d.join("subs.json"),
            &json!({"block": 1005, "submissions": [
                {"uid": 1, "hotkey": "a", "block": 10, "competition": "chaos",
                 "repo": "miner/sum", "revision": model.commit},
                {"uid": 2, "hotkey": "b", "block": 20, "competition": "chaos", "repo": second, "revision": "main"},
            ]}),
        );
        let mut c = arena_cmd(&["round", comp.to_str().unwrap(), "--submissions", &subs]);
        c.args(["--block-hash", "0x01", "--json", "--plugin-dir", &plugin_dir()])
            .env("HF_ENDPOINT", server.endpoint())
            .env("HF_HUB_CACHE", &cache)
            .env_remove("HF_HUB_OFFLINE");
        c.output().unwrap()
    };
    let out = run("miner/sum");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let raw = stdout_json(&out)["raw"]["submissions"].clone();
    assert!(raw[0]["tasks"]["total"].as_f64().is_some_and(|t| t > 0.0), "{raw}");
    assert_eq!(raw[0]["tasks"], raw[1]["tasks"], "{raw}");
    assert!(cache.join("models--miner--sum/snapshots").join(&model.commit).join("behaviour.json").is_file());
    let out = run("miner/gone");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for says in ["submissions[1].repo", "miner/gone@main", "HTTP 404"] {
        assert!(text(&out).contains(says), "{says}: {}", text(&out));
    }
}

#[test]
fn bad_input_is_refused_with_its_file_and_field_and_writes_nothing() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let comp = chaos_competition(d, "");
    behaviour(d, "ok", json!({"kind": "sum"}));
    let entry = |uid: u64, competition: &str, path: &str| json!({"uid": uid, "hotkey": "h", "block": 1, "competition": competition, "path": path});
    let out_file = d.join("round.json");
    let expect_refused = |subs: Value, comp: &Path, env: &[(&str, &str)], wants: &[&str]| {
        let file = write_json(&d.join("subs.json"), &subs);
        let mut c = arena_cmd(&["round", comp.to_str().unwrap(), "--submissions", &file, "--block", "100"]);
        c.args(["--block-hash", "0x01", "--out", out_file.to_str().unwrap(), "--plugin-dir", &plugin_dir()]);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{t}");
        for want in wants {
            assert!(t.contains(want), "wanted `{want}` in:\n{t}");
        }
        assert!(!out_file.exists(), "a report was written for refused input");
    };
    expect_refused(
        json!([entry(1, "chaos", "ok"), entry(2, "nope", "ok")]),
        &comp,
        &[],
        &["subs.json", "submissions[1].competition", "`nope`"],
    );
    expect_refused(
        json!([entry(1, "chaos", "ok"), entry(1, "chaos", "ok")]),
        &comp,
        &[],
        &["submissions[1].uid", "appears twice"],
    );
    expect_refused(
        json!([entry(1, "chaos", "missing")]),
        &comp,
        &[],
        &["submissions[0].path", "does not exist"],
    );
    expect_refused(
        json!({"submissions": [{"uid": "one", "block": 1, "competition": "chaos", "path": "ok"}]}),
        &comp,
        &[],
        &["subs.json", "submissions[0].uid"],
    );
    let cache = d.join("hub");
    expect_refused(
        json!([{"uid": 1, "block": 1, "competition": "chaos", "repo": "owner/model", "revision": "main"}]),
        &comp,
        &[("HF_HUB_OFFLINE", "1"), ("HF_HUB_CACHE", cache.to_str().unwrap())],
        &["submissions[0].repo", "owner/model@main is not in the hub cache", "HF_HUB_OFFLINE"],
    );
    // A task kind the plugin does not have: `arena check` warns, `arena round` refuses.
    let unknown_kind = d.join("unknown-kind.toml");
    let toml = std::fs::read_to_string(&comp).unwrap().replacen("by-submission", "by-magic", 1);
    std::fs::write(&unknown_kind, toml).unwrap();
    expect_refused(
        json!([entry(1, "chaos", "ok")]),
        &unknown_kind,
        &[],
        &["unknown-kind.toml", "tasks[0].kind", "no task kind `by-magic`"],
    );
}

/// The real order on the embedded chain: miners commit hub models, the round reads the
/// commitments (models from the hub cache, the seed from the chain's block hash), the validator
/// sets the report's u16 weights as they are.
#[test]
fn a_round_from_chain_commitments_sets_the_reports_weights() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let comp = chaos_competition(d, "");
    let cache = d.join("hub");
    let wallets = d.join("wallets");
    let chain = d.join("chain.json");
    let env = |c: &mut Command| {
        c.env("HF_HUB_CACHE", &cache).env("HF_HUB_OFFLINE", "1").env("BT_WALLET_PATH", &wallets);
    };
    let run = |args: &[&str]| {
        let mut c = arena_cmd(args);
        env(&mut c);
        let out = c.output().unwrap();
        assert!(out.status.success(), "arena {args:?}:\n{}", text(&out));
        out
    };
    let names = ["validator", "miner-a", "miner-b"];
    let mut neurons = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let out =
            run(&["wallet", "new-hotkey", "--wallet", n, "--seed", &format!("{:064x}", i + 1), "--json"]);
        assert_json_shape("wallet-new-hotkey", &stdout_json(&out));
        let addr = stdout_json(&out)["hotkey"].as_str().unwrap().to_string();
        let stake = if i == 0 { 1_000_000_000_000u64 } else { 0 };
        neurons.push(format!("{addr}:{addr}:{stake}"));
    }
    let mut new = vec!["chain", "local", "new", chain.to_str().unwrap(), "--netuid", "1", "--tempo", "20"];
    new.extend(["--weights-rate-limit", "5"]);
    for n in &neurons {
        new.extend(["--neuron", n.as_str()]);
    }
    run(&new);
    run(&["chain", "local", "advance", "--chain", chain.to_str().unwrap(), "--blocks", "20"]);
    for (i, n) in names.iter().enumerate().skip(1) {
        let rev = format!("{i:040x}");
        let snap =
            behaviour(&cache.join(format!("models--arena--{n}/snapshots")), &rev, json!({"kind": "sum"}));
        run(&[
            "commit",
            "--chain",
            chain.to_str().unwrap(),
            "--netuid",
            "1",
            "--wallet",
            n,
            "--repo",
            &format!("arena/{n}"),
            "--revision",
            &rev,
            "--model-dir",
            snap.to_str().unwrap(),
            "--competition-id",
            "0",
        ]);
    }
    run(&["chain", "local", "advance", "--chain", chain.to_str().unwrap(), "--blocks", "5"]);
    let report = d.join("round.json");
    let mut c = arena_cmd(&[
        "round",
        comp.to_str().unwrap(),
        "--chain",
        chain.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
        "--json",
        "--plugin-dir",
        &plugin_dir(),
    ]);
    env(&mut c);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = stdout_json(&out);
    let raw = v["raw"]["submissions"].as_array().unwrap();
    assert_eq!(raw.len(), 2, "{v}");
    assert_eq!(raw.iter().map(|s| s["uid"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2]);
    assert!(v["seeds"][0]["block_hash"].as_str().unwrap().starts_with("0x"));
    assert_eq!(v["raw"]["registered"], 3);
    let sent = paid(&v);
    assert!(!sent.is_empty());

    // The validator's configuration gives the netuid and the wallet (the chain flag wins over
    // its network).
    let config = d.join("validator.toml");
    std::fs::write(
        &config,
        format!(
            "netuid = 1\nnetwork = \"local\"\ncompetitions = [\"{}\"]\n\n[wallet]\nname = \"validator\"\nhotkey = \"default\"\n\n[funding]\nchaos = 1.0\n",
            comp.display()
        ),
    )
    .unwrap();
    let out = run(&[
        "chain",
        "set-weights",
        "--chain",
        chain.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--journal",
        d.join("journal.json").to_str().unwrap(),
        "--json",
    ]);
    let set = stdout_json(&out);
    assert_json_shape("chain-set-weights", &set);
    let set: Vec<(u64, u64)> = set["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect();
    assert_eq!(set, sent, "set-weights --report sends the report's u16 values as they are");

    // A model changed after its commitment no longer matches the committed secure hash: refused
    // with the reason, the other miner still evaluated.
    let tampered = cache.join("models--arena--miner-b/snapshots").join(format!("{:040x}", 2));
    std::fs::write(tampered.join("extra.txt"), "not what was committed").unwrap();
    let mut c = arena_cmd(&["round", comp.to_str().unwrap(), "--chain", chain.to_str().unwrap()]);
    c.args(["--json", "--plugin-dir", &plugin_dir()]);
    env(&mut c);
    let v = stdout_json(&c.output().unwrap());
    for r in v["runs"].as_array().unwrap() {
        if r["uid"] == 2 {
            let msg = r["failure"]["message"].as_str().unwrap_or_default();
            assert!(
                msg.contains("commitment: secure hash") && msg.contains("does not match the model"),
                "{r}"
            );
        } else {
            assert_eq!(r["status"], "ok", "{r}");
        }
    }
}

/// A copy of a competition file of `competitions/` with some of its text replaced.
fn competition_copy(dir: &Path, name: &str, replace: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(repo_root().join("competitions").join(name)).unwrap();
    for (from, to) in replace {
        assert!(text.contains(from), "{name} has no `{from}`");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The demo's replay competition: the patches replayed in the sandbox, the hostile one refused.
#[test]
fn the_demo_replay_competition_runs_from_its_file() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let task = d.join("task");
    let demo = repo_root().join("examples/replay-demo");
    assert!(Command::new("cp").arg("-r").arg(demo.join("task")).arg(&task).status().unwrap().success());
    git_commit_all(&task);
    let comp = competition_copy(d, "demo.toml", &[("target/arena-demo/task", task.to_str().unwrap())]);
    let subs = demo.join("submissions");
    let file = write_json(
        &d.join("subs.json"),
        &json!({"block": 1000, "submissions": [
            {"uid": 1, "hotkey": "better", "block": 100, "competition": "demo", "path": subs.join("better")},
            {"uid": 2, "hotkey": "worse", "block": 200, "competition": "demo", "path": subs.join("worse")},
            {"uid": 3, "hotkey": "hostile", "block": 300, "competition": "demo", "path": subs.join("hostile")},
        ]}),
    );
    let mut c =
        arena_cmd(&["round", comp.to_str().unwrap(), "--submissions", &file, "--jobs", "3", "--json"]);
    c.args(["--plugin-dir", replay_plugin().parent().unwrap().to_str().unwrap()]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = stdout_json(&out);
    // Gradient descent on (w-3)^2 from 0, computed here independently of the benchmark.
    let loss = |lr: f64, n: i32| 9.0 * (1.0 - 2.0 * lr).powi(2 * n) + 0.01;
    let raw = v["raw"]["submissions"].as_array().unwrap();
    assert!((raw[0]["tasks"]["loss"].as_f64().unwrap_or(-1.0) - loss(0.2, 40)).abs() < 1e-8, "{v:#}");
    assert!((raw[1]["tasks"]["loss"].as_f64().unwrap() - loss(0.01, 20)).abs() < 1e-8, "{v}");
    assert_eq!(raw[2]["tasks"]["loss"], Value::Null);
    let f = &v["runs"][2]["failure"];
    assert_eq!(f["kind"], "invalid_submission");
    assert!(f["message"].as_str().unwrap().contains("`bench.sh` is outside the allowed paths"), "{f}");
    // Softmax over win rates (0.1), burn 10% to uid 0; the better patch leads.
    let w: Vec<(u64, f64)> = v["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["uid"].as_u64().unwrap(), w["weight"].as_f64().unwrap()))
        .filter(|w| w.1 > 0.0)
        .collect();
    assert_eq!(w.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!((w[0].1 - 0.1).abs() < 1e-12 && w[1].1 > w[2].1, "{w:?}");

    // Its report: every weight as the round's JSON has it, and why the hostile patch earns nothing.
    let round = d.join("round.json");
    std::fs::write(&round, v.to_string()).unwrap();
    let page = d.join("report.html");
    let out = arena(&["report", round.to_str().unwrap(), "--out", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    for w in v["weights"].as_array().unwrap() {
        let vals = row_values(&html, "<table class=\"weights\">", w["uid"].as_u64().unwrap());
        assert_eq!(vals, vec![w["weight"].as_f64(), w["u16"].as_f64()], "{w}");
    }
    let board = &html[html.find("<table class=\"leaderboard\">").unwrap()..];
    let hostile = &board[board.find("<tr data-uid=\"3\">").unwrap()..];
    assert!(hostile[..hostile.find("</tr>").unwrap()].contains("failed: "), "{hostile}");

    // A plugin whose schema rejects the params: refused before anything runs.
    let bad =
        competition_copy(d, "demo.toml", &[("time_budget_seconds = 60", "time_budget_seconds = \"soon\"")]);
    let mut c = arena_cmd(&["round", bad.to_str().unwrap(), "--submissions", &file]);
    c.args(["--plugin-dir", replay_plugin().parent().unwrap().to_str().unwrap()]);
    let out = c.output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("demo.toml") && t.contains("tasks[0].params.time_budget_seconds"), "{t}");
}

/// The demo's language-model competition on the committed tiny models: each task's raw score is
/// what the independent transformers reference computed, and a model outside the constraints is
/// refused with the reason without running.
#[test]
fn the_demo_llm_competition_matches_the_reference_and_refuses_what_breaks_its_constraints() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let fx = repo_root().join("tests/fixtures");
    let lm = fx.join("lm-protocols");
    let data = |f: &str| lm.join(f).to_str().unwrap().to_string();
    let (docs, reference, mc) = (data("docs.jsonl"), data("reference.jsonl"), data("multiple_choice.jsonl"));
    let comp = competition_copy(
        d,
        "demo-llm.toml",
        &[
            ("target/arena-demo/llm/data/eval.jsonl", &docs),
            ("target/arena-demo/llm/data/reference.jsonl", &reference),
            ("target/arena-demo/llm/data/multiple_choice.jsonl", &mc),
        ],
    );
    let file = write_json(
        &d.join("subs.json"),
        &json!({"block": 1000, "submissions": [
            {"uid": 1, "hotkey": "l", "block": 100, "competition": "demo-llm", "path": lm.join("llama-40")},
            {"uid": 2, "hotkey": "q", "block": 200, "competition": "demo-llm", "path": lm.join("qwen2-120")},
            {"uid": 3, "hotkey": "g", "block": 300, "competition": "demo-llm", "path": fx.join("llm/gemma2")},
        ]}),
    );
    let mut c =
        arena_cmd(&["round", comp.to_str().unwrap(), "--submissions", &file, "--jobs", "2", "--json"]);
    c.args(["--plugin-dir", perplexity_plugin().parent().unwrap().to_str().unwrap()]);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = stdout_json(&out);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(lm.join("expected.json")).unwrap()).unwrap();
    let raw = v["raw"]["submissions"].as_array().unwrap();
    for (i, m) in ["llama-40", "qwen2-120"].iter().enumerate() {
        let t = &raw[i]["tasks"];
        for (task, key) in [("text_loss", "sn9_loss"), ("reference_loss", "reference_loss")] {
            let (got, want) = (t[task].as_f64().unwrap(), expected[m][key].as_f64().unwrap());
            assert!((got - want).abs() / want <= 1e-4, "{m} {task}: {got} vs {want}");
        }
        assert_eq!(t["multiple_choice"].as_f64(), expected[m]["mc_fraction_wrong"].as_f64(), "{m}");
    }
    assert_eq!(raw[2]["tasks"], json!({"text_loss": null, "reference_loss": null, "multiple_choice": null}));
    let refused: Vec<&Value> = v["runs"].as_array().unwrap().iter().filter(|r| r["uid"] == 3).collect();
    assert_eq!(refused.len(), 3, "three runs (one per task kind) for the refused model");
    for r in refused {
        let msg = r["failure"]["message"].as_str().unwrap();
        assert!(msg.starts_with("model constraints:") && msg.contains("Gemma2ForCausalLM"), "{msg}");
    }
    let raw_file = write_json(&d.join("raw.json"), &v["raw"]);
    let score = arena(&["score", comp.to_str().unwrap(), "--raw", &raw_file, "--json"]);
    assert_eq!(stdout_json(&score)["weights"], v["weights"]);
}

/// Fills a hub-cache dataset (`datasets--OWNER--NAME/snapshots/SHA/PATH`, `refs/main`) with
/// `rows` generated rows of the real dataset's columns, as JSON lines.
fn hub_dataset(cache: &Path, repo: &str, path: &str, rows: &[Value]) {
    let folder = cache.join(format!("datasets--{}", repo.replace('/', "--")));
    let sha = format!("{:040x}", repo.len() * 7919);
    let dir = folder.join("snapshots").join(&sha).join(path);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(folder.join("refs")).unwrap();
    std::fs::write(folder.join("refs/main"), &sha).unwrap();
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join("train-00000.jsonl"), text).unwrap();
}

/// Generated prose in the style of the corpus the tiny models were trained on (so that their
/// generations depend on the prompt, as SN9's "reasonable output" check requires), different
/// per row and per dataset.
fn prose(seed: usize, i: usize) -> String {
    let adj = ["heavy", "tall", "dark", "bright", "red", "warm", "old", "green", "soft", "quiet"];
    let noun = ["tree", "window", "bird", "lamp", "road", "child", "forest", "garden", "stone", "river"];
    let verb = ["follows", "likes", "moves", "meets", "finds", "sees"];
    let name = ["Ada", "Hana", "Dan", "Eve", "Bo", "Gus"];
    let thing = ["cards", "books", "coins", "apples"];
    let mut out = Vec::new();
    for k in 0..8 {
        let x = seed * 101 + i * 13 + k * 7;
        if k % 3 == 2 {
            let (n, m) = (x % 9, (x / 9) % 5);
            let (who, what) = (name[x % name.len()], thing[(x / 3) % thing.len()]);
            out.push(format!("{who} has {n} {what} and gets {m} more, so {who} has {} {what}.", n + m));
        } else {
            out.push(format!(
                "The {} {} {} the {} {}.",
                adj[x % adj.len()],
                noun[(x / 2) % noun.len()],
                verb[(x / 5) % verb.len()],
                adj[(x / 7) % adj.len()],
                noun[(x / 3) % noun.len()]
            ));
        }
    }
    out.join(" ")
}

/// A submissions file (written in `d`) with one submission of the tiny Llama model at `block`
/// for `competition`, in a round at `round_block`.
fn tiny_model_submission(d: &Path, round_block: u64, uid: u16, block: u64, competition: &str) -> String {
    let lm = repo_root().join("tests/fixtures/lm-protocols/llama-40");
    write_json(
        &d.join("subs.json"),
        &json!({"block": round_block, "submissions": [
            {"uid": uid, "hotkey": "m", "block": block, "competition": competition, "path": lm},
        ]}),
    )
}

/// The forced tokenizer of SN9 and SN37, Xenova/gpt-4, in the hub cache: here the tiny model's
/// own tokenizer with a lower-casing normalizer, so that the token stream differs while the
/// model still reads it (SN9's "reasonable output" check refuses a foreign one).
fn forced_gpt4_tokenizer(cache: &Path) {
    let own = repo_root().join("tests/fixtures/lm-protocols/llama-40/tokenizer.json");
    let mut tokenizer: Value = serde_json::from_str(&std::fs::read_to_string(own).unwrap()).unwrap();
    tokenizer["normalizer"] = json!({"type": "Lowercase"});
    let rev = format!("{:040x}", 4);
    let tok = cache.join("models--Xenova--gpt-4/snapshots").join(&rev);
    std::fs::create_dir_all(&tok).unwrap();
    std::fs::write(tok.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    // Its chat template, which SN37's reference-loss contexts go through.
    let config = repo_root().join("tests/fixtures/lm-protocols/llama-40/tokenizer_config.json");
    std::fs::copy(config, tok.join("tokenizer_config.json")).unwrap();
    std::fs::create_dir_all(cache.join("models--Xenova--gpt-4/refs")).unwrap();
    std::fs::write(cache.join("models--Xenova--gpt-4/refs/main"), &rev).unwrap();
}

/// SN9's pretraining competition from `competitions/`: its six datasets come from the hub
/// cache (generated rows with the real columns: `text`, and `content` for the Stack v2), its
/// seed from the block hash; a tiny model breaks its constraints and is refused with the
/// reasons; in a copy with the constraints relaxed (and the windows the tiny model's 512
/// positions) every task runs with the file's kinds and parameters, through the competition's
/// forced tokenizer.
#[test]
fn the_sn9_competition_runs_from_its_file_on_hub_cache_datasets() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let cache = d.join("hub");
    let datasets = [
        ("HuggingFaceFW/fineweb", "", "text"),
        ("HuggingFaceFW/fineweb-edu-score-2", "", "text"),
        ("bigcode/the-stack-v2-dedup", "", "content"),
        ("laion/Pes2oX-fulltext", "", "text"),
        ("HuggingFaceTB/finemath", "finemath-3plus", "text"),
        ("HuggingFaceTB/finemath", "infiwebmath-3plus", "text"),
    ];
    for (n, (repo, path, column)) in datasets.iter().enumerate() {
        let rows: Vec<Value> = (0..120)
            .map(|i| {
                let mut r = json!({"id": format!("{repo}-{i}"), "url": format!("https://example.org/{i}")});
                r[column] = json!(prose(n, i));
                r
            })
            .collect();
        hub_dataset(&cache, repo, path, &rows);
    }
    forced_gpt4_tokenizer(&cache);
    let subs = tiny_model_submission(d, 5_200_000, 7, 5_100_000, "pretraining-3b");
    let hash = "0x5c0f0e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7f";
    let run = |comp: &Path| {
        let mut c =
            arena_cmd(&["round", comp.to_str().unwrap(), "--submissions", &subs, "--block-hash", hash]);
        c.args([
            "--jobs",
            "2",
            "--json",
            "--plugin-dir",
            perplexity_plugin().parent().unwrap().to_str().unwrap(),
        ]);
        c.env("HF_HUB_CACHE", &cache).env("HF_HUB_OFFLINE", "1");
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        stdout_json(&out)
    };

    let strict = repo_root().join("competitions/pretraining-3b.toml");
    let v = run(&strict);
    assert_eq!(v["seeds"][0]["sync_block"], 5_200_000 / 150 * 150);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6, "six tasks, six datasets: {v}");
    for r in runs {
        let msg = r["failure"]["message"].as_str().unwrap();
        for reason in
            ["fewer than the minimum 3200000000", "the competition requires BF16", "allows 512 positions"]
        {
            assert!(msg.contains(reason), "{msg}");
        }
    }

    let relaxed = d.join("pretraining-3b.toml");
    let mut toml = std::fs::read_to_string(&strict).unwrap();
    let start = toml.find("[constraints]").unwrap();
    let end = start + toml[start..].find("\n[data]").unwrap();
    toml.replace_range(start..end, "[constraints]\neval_block_delay = 250\ntokenizer = \"Xenova/gpt-4\"\n");
    let toml = toml.replace("sequence_length = 4096", "sequence_length = 512");
    std::fs::write(&relaxed, &toml).unwrap();
    let own_tokenizer = d.join("own-tokenizer.toml");
    std::fs::write(&own_tokenizer, toml.replace("tokenizer = \"Xenova/gpt-4\"\n", "")).unwrap();
    let v = run(&relaxed);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    for r in runs {
        assert_eq!(r["status"], "ok", "{r}");
        let loss = r["output"]["raw_score"].as_f64().unwrap();
        assert!(loss.is_finite() && loss > 0.0 && loss < 10.0, "{r}");
        assert_eq!(r["output"]["details"]["sequence_length"], 512);
    }
    // The same block hash draws the same pages: the same digest again.
    assert_eq!(run(&relaxed)["digest"], v["digest"]);
    // The forced tokenizer is the one evaluated: with the model's own (capitals kept), other
    // token streams, other losses.
    let own = run(&own_tokenizer);
    for (a, b) in v["runs"].as_array().unwrap().iter().zip(own["runs"].as_array().unwrap()) {
        assert_eq!(b["status"], "ok", "{b}");
        assert_ne!(a["output"]["raw_score"], b["output"]["raw_score"], "{a}\n{b}");
    }

    // A forced tokenizer missing from the hub cache is bad input: nothing runs.
    std::fs::remove_dir_all(cache.join("models--Xenova--gpt-4")).unwrap();
    let mut c =
        arena_cmd(&["round", relaxed.to_str().unwrap(), "--submissions", &subs, "--block-hash", hash]);
    c.args(["--plugin-dir", perplexity_plugin().parent().unwrap().to_str().unwrap()]);
    let out = c.env("HF_HUB_CACHE", &cache).env("HF_HUB_OFFLINE", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("constraints.tokenizer") && text(&out).contains("Xenova/gpt-4@main"),
        "{}",
        text(&out)
    );
}

/// SN1-style multiple-choice rows (`challenge`, `reference` and the dataset's other columns),
/// as SN37's macrobench holds them; a few have an invalid letter, as the real data does.
fn macrobench_rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let q = prose(7, i).split(". ").next().unwrap().to_string();
            let opts: Vec<String> =
                (0..4).map(|k| prose(8, i * 4 + k).split(". ").nth(1).unwrap().to_string()).collect();
            let challenge = format!("{q}?\nA. {}\nB. {}\nC. {}\nD. {}", opts[0], opts[1], opts[2], opts[3]);
            let letter = if i % 50 == 49 { "E" } else { ["A", "B", "C", "D"][i % 4] };
            json!({"id": format!("mb-{i}"), "challenge": challenge, "reference": letter,
                   "hotkey": "5Sn1", "timestamp": "2025-01-01T00:00:00"})
        })
        .collect()
}

/// An NLTK data folder as `nltk.download("words")` and `("averaged_perceptron_tagger_eng")`
/// leave it: a generated Basic-English-sized word list and the test tagger model.
fn nltk_data(dir: &Path) -> PathBuf {
    let root = dir.join("nltk_data");
    let words = root.join("corpora/words");
    std::fs::create_dir_all(&words).unwrap();
    let syll = ["ka", "lo", "mi", "re", "tu", "sen", "dor", "pha", "qui", "bel", "von", "ax"];
    let list: Vec<String> = (0..850)
        .map(|i| {
            format!(
                "{}{}{}",
                syll[i % 12],
                syll[(i / 12) % 12],
                if i % 3 == 0 { "" } else { syll[(i / 144) % 12] }
            )
        })
        .collect();
    std::fs::write(words.join("en-basic"), list.join("\n") + "\n").unwrap();
    let tagger = root.join("taggers/averaged_perceptron_tagger_eng");
    std::fs::create_dir_all(&tagger).unwrap();
    let fixture = repo_root().join("tests/fixtures/nltk_data/taggers/averaged_perceptron_tagger_eng");
    for f in std::fs::read_dir(fixture).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, tagger.join(f.file_name().unwrap())).unwrap();
    }
    root
}

fn sn37_round(
    comp: &Path,
    subs: &str,
    cache: &Path,
    nltk: Option<&Path>,
    home: &Path,
) -> std::process::Output {
    let hash = "0x37f00d1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7f";
    let mut c = arena_cmd(&["round", comp.to_str().unwrap(), "--submissions", subs, "--block-hash", hash]);
    c.args([
        "--jobs",
        "2",
        "--json",
        "--plugin-dir",
        perplexity_plugin().parent().unwrap().to_str().unwrap(),
    ]);
    let home = home.join("home");
    std::fs::create_dir_all(&home).unwrap();
    c.env("HF_HUB_CACHE", cache).env("HF_HUB_OFFLINE", "1").env("HOME", &home).env_remove("NLTK_DATA");
    if let Some(n) = nltk {
        c.env("NLTK_DATA", n);
    }
    c.output().unwrap()
}

fn ok_json(out: &std::process::Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    stdout_json(out)
}

/// SN37's INSTRUCT_8B from `competitions/`: multiple choice and IF-eval on generated macrobench
/// rows, FineWeb pages, word sorting on an NLTK word list; the tiny model breaks the
/// constraints and is refused; with them relaxed every task runs with the file's kinds and
/// parameters, twice to the same digest.
#[test]
fn the_sn37_instruct_competition_runs_from_its_file() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let cache = d.join("hub");
    hub_dataset(&cache, "macrocosm-os/macrobench-bittensor-01", "", &macrobench_rows(800));
    // Documents longer than the window: SN37's check generates after the whole padded window, so
    // short documents (all pads at the end) would give two identical generations.
    let fineweb: Vec<Value> = (0..400)
        .map(|i| {
            // A lead of 1 to 7 words, so that windows end at different places in a sentence.
            let lead = ["Eve"].repeat(1 + i % 7).join(" ");
            let doc: Vec<String> = (0..6).map(|k| prose(3, i * 6 + k)).collect();
            json!({"text": format!("{lead}. {}", doc.join(" ")), "id": i, "score": 2.5})
        })
        .collect();
    hub_dataset(&cache, "HuggingFaceFW/fineweb-edu-score-2", "", &fineweb);
    let nltk = nltk_data(d);
    let subs = tiny_model_submission(d, 5_000_000, 3, 4_990_000, "finetuning-instruct-8b");
    let strict = repo_root().join("competitions/finetuning-instruct-8b.toml");
    let v = ok_json(&sn37_round(&strict, &subs, &cache, Some(&nltk), d));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "{v}");
    for r in runs {
        let msg = r["failure"]["message"].as_str().unwrap();
        for reason in ["the competition requires BF16", "allows 512 positions"] {
            assert!(msg.contains(reason), "{msg}");
        }
    }

    let relaxed = competition_copy(
        d,
        "finetuning-instruct-8b.toml",
        &[
            (
                "sequence_length = 4096\ndtype = \"bfloat16\"              # no forced tokenizer: the model's own\n",
                "",
            ),
            // Short windows: the tiny model's greedy text after a long context is the same loop
            // whatever the context, which SN37's check (20 tokens after the whole window) refuses.
            ("sequence_length = 4096", "sequence_length = 128"),
            ("max_context_tokens = 4096", "max_context_tokens = 480"),
        ],
    );
    let v = ok_json(&sn37_round(&relaxed, &subs, &cache, Some(&nltk), d));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let by_task = |name: &str| {
        runs.iter()
            .find(|r| r["tasks"].as_array().unwrap().iter().any(|t| t == name))
            .unwrap_or_else(|| panic!("{v}"))
    };
    for r in runs {
        assert_eq!(r["status"], "ok", "{r}");
        assert!(r["output"]["raw_score"].as_f64().unwrap().is_finite(), "{r}");
    }
    let mc = &by_task("synthetic_mmlu")["output"];
    assert!((0.0..=1.0).contains(&mc["raw_score"].as_f64().unwrap()));
    // 700 rows drawn from 800, those with an invalid letter skipped.
    let skipped = mc["metrics"]["skipped"].as_f64().unwrap();
    assert!(skipped > 0.0 && skipped < 30.0, "{mc}");
    assert_eq!(mc["per_sample"].as_array().unwrap().len() as f64, 700.0 - skipped);
    let sorting = &by_task("word_sorting")["output"];
    assert_eq!(sorting["metrics"]["samples"], 400.0);
    let if_eval = &by_task("if_eval_v2")["output"];
    assert_eq!(if_eval["metrics"]["samples"], 20.0, "{if_eval}");
    for s in if_eval["details"]["samples"].as_array().unwrap() {
        let n = s["rules"].as_array().unwrap().len();
        assert!((2..=5).contains(&n), "{s}");
        assert!(s["prompts"][0].as_str().unwrap().starts_with("Please answer the question below"));
    }
    assert!((0.0..=1.0).contains(&if_eval["raw_score"].as_f64().unwrap()));
    assert_eq!(ok_json(&sn37_round(&relaxed, &subs, &cache, Some(&nltk), d))["digest"], v["digest"]);

    // Without NLTK's data the word list is missing: bad input, nothing runs.
    let out = sn37_round(&relaxed, &subs, &cache, None, d);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("nltk:corpora/words/en-basic"), "{}", text(&out));
}

/// SN37's DISTILLED_REASONING_3B from `competitions/`: SYNTHETIC-1-SFT and Codeforces-CoTs rows
/// of the real columns in the hub cache, parsed as SN37 parses them (task types, answers,
/// message counts, the length estimate), 120 of SYNTHETIC-1's rows kept; the forced tokenizer.
#[test]
fn the_sn37_reasoning_competition_runs_from_its_file() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let cache = d.join("hub");
    forced_gpt4_tokenizer(&cache);
    let msgs =
        |q: String, a: String| json!([{"role": "user", "content": q}, {"role": "assistant", "content": a}]);
    let synthetic: Vec<Value> = (0..150)
        .map(|i| {
            let (task, answer) = match i % 10 {
                9 => ("code_generation", "def f(): pass".to_string()),
                k if k % 2 == 0 => {
                    ("verifiable_math", format!("<think>{}</think> so \\boxed{{{i}}}", prose(4, i)))
                }
                _ => (
                    "code_output_prediction",
                    format!("<think>{}</think> {{\"output\": \"{i}\"}}", prose(5, i)),
                ),
            };
            json!({"response_id": format!("r{i}"), "problem_id": format!("p{i}"), "task_type": task,
                   "score": 1, "messages": msgs(prose(6, i), answer)})
        })
        .collect();
    hub_dataset(&cache, "PrimeIntellect/SYNTHETIC-1-SFT-Data", "", &synthetic);
    let codeforces: Vec<Value> = (0..120)
        .map(|i| {
            let mut m = msgs(prose(9, i), format!("  <think>{}</think> print({i})\n", prose(10, i)));
            if i % 12 == 11 {
                m.as_array_mut().unwrap().push(json!({"role": "user", "content": "again"}));
            }
            json!({"id": format!("cf{i}"), "contest_type": "div2", "messages": m})
        })
        .collect();
    hub_dataset(&cache, "open-r1/codeforces-cots", "", &codeforces);
    let subs = tiny_model_submission(d, 5_200_000, 4, 5_190_000, "finetuning-reasoning-3b");
    let strict = repo_root().join("competitions/finetuning-reasoning-3b.toml");
    let v = ok_json(&sn37_round(&strict, &subs, &cache, None, d));
    for r in v["runs"].as_array().unwrap() {
        let msg = r["failure"]["message"].as_str().unwrap();
        for reason in
            ["fewer than the minimum 3200000000", "the competition requires BF16", "allows 512 positions"]
        {
            assert!(msg.contains(reason), "{msg}");
        }
    }
    let relaxed = competition_copy(
        d,
        "finetuning-reasoning-3b.toml",
        &[
            ("min_parameters = 3_200_000_000\n", ""),
            ("max_parameters = 3_400_000_000\n", ""),
            ("sequence_length = 16384\n", ""),
            ("dtype = \"bfloat16\"\n", ""),
        ],
    );
    let v = ok_json(&sn37_round(&relaxed, &subs, &cache, None, d));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        assert_eq!(r["status"], "ok", "{r}");
        let loss = r["output"]["raw_score"].as_f64().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{r}");
    }
    // 135 rows of the two task types, 120 kept; 10 of 120 Codeforces rows have three messages.
    assert_eq!(runs[0]["output"]["metrics"]["samples"], 120.0, "{}", runs[0]);
    assert_eq!(runs[1]["output"]["metrics"]["samples"], 110.0, "{}", runs[1]);
    assert_eq!(ok_json(&sn37_round(&relaxed, &subs, &cache, None, d))["digest"], v["digest"]);
}

/// A unified diff that replaces the one line of `path`.
fn one_line_patch(path: &str, old: &str, new: &str) -> String {
    format!("diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n")
}

/// SN94's replay competition from `competitions/`, on a local task repository shaped like its
/// frontier task (a `solution/` and `configs/` the patches may touch, `benchmark.py` writing
/// `result.json`): in a copy whose repository is local and whose setup needs no package index
/// (and `python3`, the sandbox's interpreter), patches are replayed in the sandbox, one outside
/// the allowed paths is refused, the lowest held-out perplexity wins, and uid 0 keeps 90%.
#[test]
fn the_sn94_competition_runs_from_its_file_on_a_local_task_repository() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let task = d.join("task");
    std::fs::create_dir_all(task.join("solution")).unwrap();
    std::fs::create_dir_all(task.join("configs")).unwrap();
    std::fs::write(task.join("solution/width.txt"), "4\n").unwrap();
    std::fs::write(task.join("configs/train.yaml"), "steps: 10\n").unwrap();
    std::fs::write(task.join("requirements.txt"), "").unwrap();
    // Held-out perplexity falls with the width and the steps: exp(3 / sqrt(width * steps)).
    std::fs::write(
        task.join("benchmark.py"),
        "import json, math\n\
         width = int(open('solution/width.txt').read())\n\
         steps = int(open('configs/train.yaml').read().split(':')[1])\n\
         ppl = math.exp(3 / math.sqrt(width * steps))\n\
         json.dump({'metric_name': 'heldout_ppl', 'metric_value': ppl}, open('result.json', 'w'))\n",
    )
    .unwrap();
    git_commit_all(&task);
    let repo = "https://github.com/AlveusLabs/autoresearch-task-qwen3-27b-binary-frontier";
    let setup = "python -m pip install --no-index -r requirements.txt";
    let comp = competition_copy(
        d,
        "heldout-ppl.toml",
        &[(repo, task.to_str().unwrap()), (setup, "true"), ("python benchmark.py", "python3 benchmark.py")],
    );
    let patches = [
        ("wider", one_line_patch("solution/width.txt", "4", "16")),
        ("longer", one_line_patch("configs/train.yaml", "steps: 10", "steps: 40")),
        ("rigged", one_line_patch("benchmark.py", "import json, math", "import json, math  # ppl = 1")),
    ];
    let mut subs = Vec::new();
    for (i, (name, patch)) in patches.iter().enumerate() {
        let dir = d.join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("patch.diff"), patch).unwrap();
        subs.push(json!({"uid": i + 1, "hotkey": name, "block": 10 * (i + 1), "competition": "heldout-ppl", "path": dir}));
    }
    replay_plugin();
    let v = round_json(d, &comp, &json!({"block": 100, "submissions": subs}), &["--jobs", "3"]);
    let raw = v["raw"]["submissions"].as_array().unwrap();
    let ppl = |width: f64, steps: f64| (3.0 / (width * steps).sqrt()).exp();
    assert!((raw[0]["tasks"]["heldout_ppl"].as_f64().unwrap() - ppl(16.0, 10.0)).abs() < 1e-12, "{v:#}");
    assert!((raw[1]["tasks"]["heldout_ppl"].as_f64().unwrap() - ppl(4.0, 40.0)).abs() < 1e-12, "{v:#}");
    assert_eq!(raw[2]["tasks"]["heldout_ppl"], Value::Null);
    let f = &v["runs"][2]["failure"];
    assert_eq!(f["kind"], "invalid_submission");
    assert!(f["message"].as_str().unwrap().contains("`benchmark.py` is outside the allowed paths"), "{f}");
    // Both patches reach the same perplexity (width × steps = 160): the earlier wins the tie
    // under the 0.02-nat epsilon; 90% to uid 0, 10% to the winner (u16: 65535 and 65535/9).
    assert_eq!(paid(&v), vec![(0, 65535), (1, 7282)]);
}
