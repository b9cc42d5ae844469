//! The roleplay plugin through `arena round`: SN11's V-A competition file (competitions/roleplay.toml)
//! on the tiny world (arena-tiny-roleplay's records and models), with a scripted judge and user
//! simulator on loopback in place of OpenRouter, scored as the independent Python reference
//! scores the same raw numbers.

use std::path::{Path, PathBuf};
use std::process::Command;

use arena_e2e::chat::{ok, serve};
use arena_e2e::{arena_cmd, repo_root, roleplay_plugin, stdout_json, text, tiny_roleplay_bin};
use serde_json::{Value, json};

/// The tiny world (records and chat models, no judge) under `d/world`.
fn world(d: &Path) -> PathBuf {
    let world = d.join("world");
    let out = Command::new(tiny_roleplay_bin())
        .args(["--out", world.to_str().unwrap(), "--judge-steps", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    world
}

/// `competitions/NAME` with each `from` replaced by `to` (each must occur), written to `d/NAME`.
fn patched(d: &Path, name: &str, replacements: &[(&str, String)]) -> PathBuf {
    let mut comp = std::fs::read_to_string(repo_root().join("competitions").join(name)).unwrap();
    for (from, to) in replacements {
        assert!(comp.contains(from), "{from}");
        comp = comp.replace(from, to);
    }
    let path = d.join(name);
    std::fs::write(&path, comp).unwrap();
    path
}

/// `arena round COMP --submissions SUBS --block-hash HASH --json` with the roleplay plugin and
/// `key` in the environment variable `var`; the report, after checking the key never shows.
fn round(d: &Path, comp: &Path, subs: &Value, hash: &str, (var, key): (&str, &str)) -> Value {
    let subs_path = d.join("subs.json");
    std::fs::write(&subs_path, subs.to_string()).unwrap();
    let mut c = arena_cmd(&["round", comp.to_str().unwrap(), "--submissions", subs_path.to_str().unwrap()]);
    c.args(["--jobs", "2", "--block-hash", hash, "--json"]);
    c.args(["--plugin-dir", roleplay_plugin().parent().unwrap().to_str().unwrap()]);
    c.env(var, key);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains(key), "the key leaked");
    stdout_json(&out)
}

#[test]
fn the_v_a_competition_ranks_the_tiny_models_as_the_python_reference_does() {
    let d = tempfile::tempdir().unwrap();
    let world = world(d.path());

    // The judge says "coherent" to everything; the simulator always asks for more.
    let server = serve(|body, _| {
        let prompt = body["messages"][0]["content"].as_str().unwrap_or_default();
        if prompt.contains("You are a human having a conversation") { ok("Tell me more.") } else { ok("1") }
    });

    let data = |f: &str| world.join("data").join(f).display().to_string();
    let comp_path = patched(
        d.path(),
        "roleplay.toml",
        &[
            ("DippyAI/dippy_synthetic_dataset_v1", data("eval.jsonl")),
            ("DippyAI/personahub_augmented_v0", data("personahub.jsonl")),
            ("https://openrouter.ai/api/v1", server.url.clone()),
            ("OPENROUTER_API_KEY", "ARENA_TEST_ROLEPLAY_KEY".into()),
            ("samples = 4096", "samples = 12".into()),
            ("samples = 128", "samples = 12".into()),
            ("samples = 256", "samples = 4".into()),
            ("max_new_tokens = 1024", "max_new_tokens = 12".into()),
            // The tiny models are f32, about 1 MB, with 512 positions.
            ("sequence_length = 4096              # MAX_SEQ_LEN", "sequence_length = 512".into()),
            ("min_bytes = \"10MiB\"", "min_bytes = \"1KiB\"".into()),
            ("dtype = \"bfloat16\"", "dtype = \"float32\"".into()),
        ],
    );

    let models = world.join("models");
    let sub = |uid: u64, name: &str, template: &str| {
        json!({"uid": uid, "hotkey": name, "block": 100 * uid, "competition": "roleplay",
               "path": models.join(name), "metadata": {"chat_template": template}})
    };
    let subs = json!({"block": 1000, "registered": 4, "submissions": [
        sub(1, "rp-untrained", "chatml"),
        sub(2, "rp-llama-30", "chatml"),
        sub(3, "rp-llama-300", "chatml"),
        sub(4, "rp-qwen2-120", "qwen2dot5"),
    ]});
    let v = round(d.path(), &comp_path, &subs, "0x0b", ("ARENA_TEST_ROLEPLAY_KEY", "sk-test-roleplay"));
    let raw = v["raw"]["submissions"].as_array().unwrap();
    let task = |uid: u64, t: &str| {
        raw.iter().find(|s| s["uid"] == uid).unwrap()["tasks"][t]
            .as_f64()
            .unwrap_or_else(|| panic!("{uid} {t}: {v}"))
    };
    // More training, more probability on the reference replies.
    assert!(task(1, "quality") < task(2, "quality"), "{v}");
    assert!(task(2, "quality") < task(3, "quality"), "{v}");
    for uid in 1..=4 {
        assert_eq!(task(uid, "coherence"), 1.0);
        for t in ["quality", "creativity", "vibe"] {
            assert!((0.0..=1.0).contains(&task(uid, t)), "{uid} {t}");
        }
        assert!(task(uid, "latency") > 0.0);
    }
    // The scripted judge saw every conversation, and the key as a bearer token.
    let seen = server.seen.lock().unwrap();
    assert!(seen.iter().all(|s| s.authorization.as_deref() == Some("Bearer sk-test-roleplay")));
    assert_eq!(seen.iter().filter(|s| s.body.to_string().contains("text coherence analyzer")).count(), 16);
    drop(seen);

    // The weights are what the Python reference computes from the same raw scores.
    let report = d.path().join("round.json");
    std::fs::write(&report, v.to_string()).unwrap();
    let py = Command::new("python3")
        .arg(repo_root().join("tests/reference/scoring_reference.py"))
        .args(["--round", report.to_str().unwrap(), "--competition", "roleplay", "--registered", "4"])
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", text(&py));
    let want: Value = serde_json::from_slice(&py.stdout).unwrap();
    let board = &v["competitions"][0]["submissions"];
    for uid in 1..=4u64 {
        let row = board.as_array().unwrap().iter().find(|r| r["uid"] == uid).unwrap();
        let w = &want[uid.to_string()];
        let close = |a: &Value, b: &Value| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 1e-12;
        assert!(close(&row["total"], &w["total"]), "uid {uid}: {row} vs {w}");
        assert!(close(&row["weight"], &w["weight"]), "uid {uid}: {row} vs {w}");
    }
}

#[test]
fn the_v_c_competition_scores_the_judges_win_rate_and_burns_to_the_owner() {
    let d = tempfile::tempdir().unwrap();
    let world = world(d.path());
    // Every verdict: "generated" wins realism and coherency, "original" entertainment.
    let server = serve(|_, _| {
        ok(&json!({"realism_win": "generated", "entertainment_win": "original", "coherency_win": "generated",
                   "realism_win_reasoning": "", "entertainment_win_reasoning": "", "coherency_win_reasoning": ""})
        .to_string())
    });
    let comp_path = patched(
        d.path(),
        "roleplay-judge.toml",
        &[
            ("DippyAI/dippy_synthetic_dataset_v1", world.join("data/eval.jsonl").display().to_string()),
            ("https://openrouter.ai/api/v1", server.url.clone()),
            ("OPENROUTER_API_KEY", "ARENA_TEST_ROLEPLAY_KEY_VC".into()),
            ("samples = 512", "samples = 6".into()),
            ("max_new_tokens = 8192", "max_new_tokens = 12".into()),
            ("min_bytes = \"40MiB\"", "min_bytes = \"1KiB\"".into()),
            ("dtype = \"bfloat16\"", "dtype = \"float32\"".into()),
            ("sequence_length = 8192", "sequence_length = 512".into()),
        ],
    );
    let models = world.join("models");
    let sub = |uid: u64, name: &str| {
        json!({"uid": uid, "hotkey": name, "block": 5_300_000 + uid, "competition": "roleplay-judge",
               "path": models.join(name), "metadata": {"chat_template": "chatml"}})
    };
    let subs = json!({"block": 5_301_000, "registered": 80,
                      "submissions": [sub(1, "rp-llama-300"), sub(2, "rp-qwen2-120")]});
    let v = round(d.path(), &comp_path, &subs, "0x0c", ("ARENA_TEST_ROLEPLAY_KEY_VC", "sk-test-vc"));
    for s in v["raw"]["submissions"].as_array().unwrap() {
        assert!((s["tasks"]["judge"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12, "{v}");
    }
    assert_eq!(server.seen.lock().unwrap().len(), 12, "6 samples for each of 2 models");
    // Equal scores: the earlier commit wins (the later one is x0.97); the owner keeps 0.75.
    // Of 80 registered uids, uid 1 beats 78 (uid 2 and the 77 without a submission), uid 2 beats
    // 77: softmax over win rates at T = 0.075 splits the quarter left after the burn.
    let w: Vec<(u64, f64)> = v["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["uid"].as_u64().unwrap(), x["weight"].as_f64().unwrap()))
        .collect();
    let get = |uid: u64| w.iter().find(|x| x.0 == uid).map_or(0.0, |x| x.1);
    assert!((get(74) - 0.75).abs() < 1e-12, "{w:?}");
    assert!((get(1) + get(2) - 0.25).abs() < 1e-12, "{w:?}");
    let ratio = ((78.0 - 77.0) / 79.0 / 0.075f64).exp();
    assert!((get(1) / get(2) - ratio).abs() < 1e-9, "{w:?}");
}
