//! The plugin's task kinds against the independent Python reference
//! (`tests/reference/lm_protocols.py`, transformers f32) on the project's tiny models.

use std::path::PathBuf;

use arena_perplexity::PerplexityPlugin;
use arena_plugin_api::*;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lm-protocols")
}

fn rows(name: &str) -> Vec<Sample> {
    std::fs::read_to_string(fixtures().join(name))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Sample { data: serde_json::from_str(l).unwrap(), files: Vec::new() })
        .collect()
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap()
}

fn run(kind: &str, params: Value, model: &str, samples: Vec<Sample>) -> Result<EvalOutput, PluginError> {
    let mut task =
        PerplexityPlugin::create_task(TaskSpec { kind: kind.into(), params, device: Device::Cpu, seed: 7 })?;
    let req = EvalRequest {
        submission: Submission { id: model.into(), path: fixtures().join(model), metadata: Value::Null },
        samples,
        limits: Limits::default(),
    };
    task.evaluate(&req, &NoProgress)
}

fn close(got: f64, want: f64, what: &str) {
    let rel = (got - want).abs() / want.abs().max(1e-12);
    assert!(rel <= 1e-4, "{what}: arena {got}, reference {want} (relative error {rel:e})");
}

const MODELS: [&str; 2] = ["llama-40", "qwen2-120"];

#[test]
fn sn9_packed_loss_matches_the_reference() {
    let exp = expected();
    for m in MODELS {
        let out =
            run("text_loss", json!({"protocol": "sn9_packed", "sequence_length": 64}), m, rows("docs.jsonl"))
                .unwrap();
        close(out.raw_score, exp[m]["sn9_loss"].as_f64().unwrap(), &format!("{m} sn9"));
        assert_eq!(out.metrics["windows"], exp[m]["sn9_windows"].as_f64().unwrap());
    }
}

#[test]
fn sn9_keeps_the_windows_pythons_shuffle_keeps() {
    let exp = expected();
    for m in MODELS {
        let params = json!({"protocol": "sn9_packed", "sequence_length": 64, "max_windows": 3});
        let out = run("text_loss", params, m, rows("docs.jsonl")).unwrap();
        assert_eq!(out.metrics["windows"], 3.0);
        close(out.raw_score, exp[m]["sn9_max3_loss"].as_f64().unwrap(), &format!("{m} sn9 max_windows"));
    }
}

#[test]
fn sn37_padded_loss_matches_the_reference_on_both_truncation_sides() {
    let exp = expected();
    for m in MODELS {
        for side in ["left", "right"] {
            let params = json!({"protocol": "sn37_padded", "sequence_length": 48, "truncation_side": side});
            let out = run("text_loss", params, m, rows("docs.jsonl")).unwrap();
            close(
                out.raw_score,
                exp[m][format!("sn37_{side}_loss")].as_f64().unwrap(),
                &format!("{m} sn37 {side}"),
            );
            if side == "left" {
                for (i, (g, w)) in
                    out.per_sample.iter().zip(exp[m]["sn37_left_per_doc"].as_array().unwrap()).enumerate()
                {
                    close(*g, w.as_f64().unwrap(), &format!("{m} sn37 doc {i}"));
                }
            }
        }
    }
}

#[test]
fn rolling_windows_match_lm_eval() {
    let exp = expected();
    for m in MODELS {
        let out = run(
            "text_loss",
            json!({"protocol": "rolling", "sequence_length": 32, "metric": "bits_per_byte"}),
            m,
            rows("docs.jsonl"),
        )
        .unwrap();
        close(
            out.metrics["nll_sum"],
            exp[m]["rolling_nll_sum"].as_f64().unwrap(),
            &format!("{m} rolling nll"),
        );
        assert_eq!(out.metrics["tokens"], exp[m]["rolling_tokens"].as_f64().unwrap());
        close(
            out.raw_score,
            exp[m]["rolling_bits_per_byte"].as_f64().unwrap(),
            &format!("{m} bits per byte"),
        );
        close(
            out.metrics["word_perplexity"],
            exp[m]["rolling_word_perplexity"].as_f64().unwrap(),
            &format!("{m} word ppl"),
        );
        close(
            out.metrics["byte_perplexity"],
            exp[m]["rolling_byte_perplexity"].as_f64().unwrap(),
            &format!("{m} byte ppl"),
        );
    }
}

#[test]
fn strided_loss_matches_the_hugging_face_recipe() {
    let exp = expected();
    for m in MODELS {
        for batch in [1, 3] {
            let params = json!({"protocol": "strided", "sequence_length": 32, "stride": 12, "model": {"batch_size": batch}});
            let out = run("text_loss", params, m, rows("docs.jsonl")).unwrap();
            close(
                out.raw_score,
                exp[m]["strided_loss"].as_f64().unwrap(),
                &format!("{m} strided batch {batch}"),
            );
        }
    }
}

#[test]
fn heldout_ppl_matches_the_reference() {
    let exp = expected();
    for m in MODELS {
        let out = run("heldout_ppl", json!({"sequence_length": 40}), m, rows("docs.jsonl")).unwrap();
        close(out.raw_score, exp[m]["heldout_ppl"].as_f64().unwrap(), &format!("{m} heldout ppl"));
        close(
            out.metrics["heldout_cross_entropy_nats"],
            exp[m]["heldout_cross_entropy_nats"].as_f64().unwrap(),
            m,
        );
    }
}

#[test]
fn reference_loss_matches_the_reference() {
    let exp = expected();
    for m in MODELS {
        let out = run("reference_loss", json!({}), m, rows("reference.jsonl")).unwrap();
        close(out.raw_score, exp[m]["reference_loss"].as_f64().unwrap(), &format!("{m} reference loss"));
        for (i, (g, w)) in
            out.per_sample.iter().zip(exp[m]["reference_per_sample"].as_array().unwrap()).enumerate()
        {
            close(*g, w.as_f64().unwrap(), &format!("{m} reference sample {i}"));
        }
    }
}

#[test]
fn multiple_choice_generates_what_transformers_generates() {
    let exp = expected();
    for m in MODELS {
        let out = run("multiple_choice", json!({}), m, rows("multiple_choice.jsonl")).unwrap();
        let want: Vec<f64> =
            exp[m]["mc_wrong"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        assert_eq!(out.per_sample, want, "{m}");
        let responses = &out.details["responses"];
        assert_eq!(responses, &exp[m]["mc_responses"], "{m} responses");
    }
}

#[test]
fn the_tokenizer_encodes_as_transformers_does() {
    let exp = expected();
    for m in MODELS {
        let tok = arena_llm::load_tokenizer(&fixtures().join(m).join("tokenizer.json")).unwrap();
        let text = rows("docs.jsonl")[0].data["text"].as_str().unwrap().to_string();
        let ids = arena_llm::encode(&tok, &text, true).unwrap();
        let want: Vec<u32> = exp[m]["encode_first_doc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, want, "{m}");
    }
}
