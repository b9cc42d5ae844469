//! The perplexity plugin through the `arena` binary: in-process and isolated runs give the same
//! numbers as the independent transformers reference, and a broken model fails its own job.

use arena_e2e::*;
use serde_json::Value;

fn run(isolated: bool, bad_model: &std::path::Path) -> Value {
    let fx = repo_root().join("tests/fixtures/lm-protocols");
    let mut args = vec![
        "--params".to_string(),
        r#"{"protocol": "sn9_packed", "sequence_length": 64}"#.to_string(),
        "--samples".to_string(),
        fx.join("docs.jsonl").display().to_string(),
        "--json".to_string(),
    ];
    for m in [fx.join("llama-40"), fx.join("qwen2-120"), bad_model.to_path_buf()] {
        args.push("--submission".into());
        args.push(m.display().to_string());
    }
    if isolated {
        args.extend(["--isolated", "--timeout", "300", "--memory", "8GiB"].map(String::from));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = eval(&perplexity_plugin(), "text_loss", &args);
    // One failed job: exit status 1, the other results still reported.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    stdout_json(&out)
}

#[test]
fn text_loss_in_process_and_isolated_matches_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken-model");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/fixtures/lm-protocols/expected.json")).unwrap(),
    )
    .unwrap();
    let in_process = run(false, &bad);
    let isolated = run(true, &bad);
    for v in [&in_process, &isolated] {
        let r = v["results"].as_array().unwrap();
        for (i, m) in ["llama-40", "qwen2-120"].iter().enumerate() {
            let got = r[i]["output"]["raw_score"].as_f64().unwrap();
            let want = expected[m]["sn9_loss"].as_f64().unwrap();
            assert!((got - want).abs() / want <= 1e-4, "{m}: {got} vs {want}");
        }
        assert_eq!(r[2]["status"], "failed");
        assert_eq!(r[2]["failure"]["kind"], "invalid_submission", "{v}");
        assert!(r[2]["failure"]["message"].as_str().unwrap().contains("hidden_size"), "{v}");
    }
    // Bit-identical across the two ways of running.
    for i in 0..2 {
        assert_eq!(in_process["results"][i]["output"], isolated["results"][i]["output"]);
    }
}

#[test]
fn samples_come_from_parquet_with_a_seeded_draw() {
    let fx = repo_root().join("tests/fixtures");
    let run = |seed: &str| {
        let out = eval(
            &perplexity_plugin(),
            "heldout_ppl",
            &[
                "--samples",
                fx.join("datasets/rows.zstd.parquet").to_str().unwrap(),
                "--sample-rows",
                "4",
                "--seed",
                seed,
                "--json",
                "--submission",
                fx.join("lm-protocols/llama-40").to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        stdout_json(&out)["results"][0]["output"].clone()
    };
    let a = run("3");
    assert_eq!(a["per_sample"].as_array().unwrap().len(), 4);
    assert!(a["raw_score"].as_f64().unwrap() > 1.0);
    assert_eq!(a, run("3"), "same seed, same draw, same numbers");
    assert_ne!(a["per_sample"], run("4")["per_sample"], "another seed draws other rows");
}

#[test]
fn model_constraints_are_checked_before_the_plugin_runs() {
    let fx = repo_root().join("tests/fixtures");
    let out = eval(
        &perplexity_plugin(),
        "heldout_ppl",
        &[
            "--competition",
            repo_root().join("competitions/demo-llm.toml").to_str().unwrap(),
            "--samples",
            fx.join("lm-protocols/docs.jsonl").to_str().unwrap(),
            "--json",
            "--submission",
            fx.join("lm-protocols/llama-40").to_str().unwrap(),
            "--submission",
            fx.join("llm/gemma2").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = stdout_json(&out);
    assert_eq!(v["results"][0]["status"], "ok", "{v}");
    let f = &v["results"][1]["failure"];
    assert_eq!(f["kind"], "invalid_submission");
    let msg = f["message"].as_str().unwrap();
    // Refused by the host: the plugin would have failed on the missing tokenizer instead.
    assert!(msg.starts_with("model constraints:") && msg.contains("Gemma2ForCausalLM"), "{msg}");
}
