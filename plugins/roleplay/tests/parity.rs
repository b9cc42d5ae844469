//! The roleplay plugin against the Python reference (`tests/reference/roleplay_reference.py`,
//! which reproduces Dippy's code with transformers and jinja2 and renders Dippy's own template
//! files): the sample rules, the ten templates byte for byte, the token ids, `roleplay_eval`'s
//! eval score and creativity per batch (relative 1e-4) and `vibe`'s greedy generations (the same
//! ids) and score, on two tiny models of different families.

use std::path::{Path, PathBuf};

use arena_plugin_api::NoProgress;
use arena_roleplay::data::{self, Turn};
use arena_roleplay::lm::{Chat, Lm};
use arena_roleplay::templates::Template;
use arena_roleplay::{EvalParams, ModelOptions, VibeParams, eval, vibe};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/roleplay")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("expected.json")).unwrap()).unwrap()
}

fn turns(v: &Value) -> Vec<Turn> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| Turn::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect()
}

fn records() -> Vec<data::Record> {
    std::fs::read_to_string(root().join("conversations.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| data::record(&serde_json::from_str(l).unwrap()).unwrap())
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-30)
}

#[test]
fn the_kept_samples_are_the_references() {
    let e = expected();
    let max = e["constants"]["max_input_len"].as_u64().unwrap() as usize;
    let (kept, _) = data::streamed(&records(), max);
    // The reference also drops, at sampling, a sample whose message stripping left empty.
    let kept: Vec<_> =
        kept.into_iter().filter(|s| s.messages.iter().all(|m| !m.content.is_empty())).collect();
    let want = e["samples"].as_array().unwrap();
    assert_eq!(kept.len(), want.len());
    for (k, w) in kept.iter().zip(want) {
        assert_eq!(k.messages, turns(&w["messages"]));
        assert_eq!(k.character_response, w["character_response"].as_str().unwrap());
        assert_eq!(k.last_user_message, w["last_user_message"].as_str().unwrap());
    }
}

#[test]
fn the_templates_render_what_dippys_files_render() {
    let e = expected();
    let samples = e["samples"].as_array().unwrap();
    for (name, t) in e["templates"].as_object().unwrap() {
        let tmpl = Template::named(name).unwrap();
        let (bos, eos) = (t["bos_token"].as_str(), t["eos_token"].as_str());
        for (row, s) in t["rows"].as_array().unwrap().iter().zip(samples) {
            let msgs = turns(&s["messages"]);
            assert_eq!(tmpl.render(&msgs, bos, eos).unwrap(), row["rendered"].as_str().unwrap(), "{name}");
            assert_eq!(tmpl.context(&msgs, bos, eos).unwrap(), row["context"].as_str().unwrap(), "{name}");
        }
    }
}

fn load(model: &str, template: &str) -> Lm {
    Lm::load(
        &root().join("models").join(model),
        Chat::Dippy(template.into()),
        &ModelOptions::default(),
        arena_plugin_api::Device::Cpu,
    )
    .unwrap()
}

fn runs() -> Vec<(String, String, Value)> {
    let e = expected();
    let mut out = Vec::new();
    for (model, m) in e["models"].as_object().unwrap() {
        for (template, run) in m["runs"].as_object().unwrap() {
            out.push((model.clone(), template.clone(), run.clone()));
        }
    }
    out
}

/// A run's (context, target) pairs, in the fixture's order.
fn pairs(run: &Value) -> Vec<(String, String)> {
    run["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["context"].as_str().unwrap().to_string(), s["target"].as_str().unwrap().to_string()))
        .collect()
}

fn eval_params() -> EvalParams {
    serde_json::from_value(serde_json::json!({"max_input_len": 1000})).unwrap()
}

#[test]
fn contexts_targets_and_token_ids_are_the_references() {
    let e = expected();
    let samples = e["samples"].as_array().unwrap();
    for (model, template, run) in runs() {
        let lm = load(&model, &template);
        let max_len = e["models"][&model]["max_len"].as_u64().unwrap() as usize;
        for (s, w) in samples.iter().zip(run["samples"].as_array().unwrap()) {
            let ctx = lm.context(&turns(&s["messages"])).unwrap();
            assert_eq!(ctx, w["context"].as_str().unwrap(), "{model}/{template}");
            let ids = lm.encode(&ctx, true, Some(max_len - 200)).unwrap();
            let want: Vec<u32> = serde_json::from_value(w["context_ids"].clone()).unwrap();
            assert_eq!(ids, want, "{model}/{template}: context ids");
            let tgt = lm.encode(w["target"].as_str().unwrap(), false, Some(200)).unwrap();
            let want: Vec<u32> = serde_json::from_value(w["target_ids"].clone()).unwrap();
            assert_eq!(tgt, want, "{model}/{template}: target ids");
        }
    }
}

#[test]
fn the_eval_score_and_creativity_match_per_batch() {
    for (model, template, run) in runs() {
        let lm = load(&model, &template);
        let pairs = pairs(&run);
        let got = eval::score(&eval_params(), &lm, &pairs, &NoProgress).unwrap();
        let want = &run["eval"];
        let batches = want["batches"].as_array().unwrap();
        assert_eq!(got.batches.len(), batches.len());
        for (g, w) in got.batches.iter().zip(batches) {
            assert_eq!(
                g.2 as u64,
                w["token_count"].as_u64().unwrap(),
                "{model}/{template}: scored positions"
            );
            let (ng, se) = (w["n_gram_prob"].as_f64().unwrap(), w["scaled_entropy"].as_f64().unwrap());
            assert!(rel(g.0, ng) <= 1e-4, "{model}/{template}: n-gram {} vs {ng}", g.0);
            assert!(rel(g.1, se) <= 1e-4, "{model}/{template}: scaled entropy {} vs {se}", g.1);
        }
        let (q, c) = (want["average_prob"].as_f64().unwrap(), want["average_entropy"].as_f64().unwrap());
        assert!(rel(got.quality, q) <= 1e-4, "{model}/{template}: eval {} vs {q}", got.quality);
        assert!(rel(got.creativity, c) <= 1e-4, "{model}/{template}: creativity {} vs {c}", got.creativity);
    }
}

#[test]
fn scores_do_not_depend_on_the_scoring_order_of_other_samples() {
    // Each sample is one forward pass: its per-sample score is the same alone or among others.
    let (model, template, run) = runs().remove(0);
    let lm = load(&model, &template);
    let pairs = pairs(&run);
    let all = eval::score(&eval_params(), &lm, &pairs, &NoProgress).unwrap();
    let last = eval::score(&eval_params(), &lm, &pairs[pairs.len() - 1..], &NoProgress).unwrap();
    assert_eq!(all.per_sample.last().unwrap().to_bits(), last.per_sample[0].to_bits());
}

#[test]
fn vibe_generates_the_references_tokens_and_score() {
    for (model, template, run) in runs() {
        let lm = load(&model, &template);
        let samples = run["vibe"]["samples"].as_array().unwrap();
        let pairs: Vec<(String, String)> = run["samples"]
            .as_array()
            .unwrap()
            .iter()
            .zip(samples)
            .map(|(s, v)| {
                (s["context"].as_str().unwrap().to_string(), v["compared_with"].as_str().unwrap().to_string())
            })
            .collect();
        let p: VibeParams = serde_json::from_value(serde_json::json!({})).unwrap();
        let got = vibe::generate_scores(&p, &lm, &pairs, &NoProgress).unwrap();
        for (k, v) in samples.iter().enumerate() {
            let want: Vec<u32> = serde_json::from_value(v["generated_ids"].clone()).unwrap();
            let mut ids = got.ids[k].clone();
            if v["ended_with_eos"].as_bool() == Some(true) {
                ids.push(lm.eos_id.unwrap());
            }
            assert_eq!(ids, want, "{model}/{template} sample {k}: generated ids");
            assert_eq!(
                got.generated_chars[k] as u64,
                v["generated_chars"].as_u64().unwrap(),
                "{model}/{template} {k}"
            );
            let s = v["score"].as_f64().unwrap();
            assert!(
                (got.scores[k] - s).abs() <= 1e-6 * s.max(1e-3),
                "{model}/{template} {k}: {} vs {s}",
                got.scores[k]
            );
        }
        let mean = got.scores.iter().sum::<f64>() / got.scores.len() as f64;
        let want = run["vibe"]["vibe_score"].as_f64().unwrap();
        assert!(rel(mean, want) <= 1e-4, "{model}/{template}: vibe {mean} vs {want}");
    }
}
