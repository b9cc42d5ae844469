//! `judge`: SN11's judge score (`scoring/judge_score.py`, V-C: the only score from March 2025).
//!
//! Conversations are cut as `StreamedSyntheticPartialDataset` cuts them ([`data::partial`]),
//! visited in the seeded order, and the first `samples` kept whose messages number at most
//! `max_messages` and whose rendered prompt is at most `max_prompt_tokens` tokens (and fits the
//! model's window). The model continues each at the reference's temperature: `random() * 0.2`,
//! drawn once per process in the reference (three draws at import: the default, gemma2's,
//! mistral's), here drawn the same way from the run's seed, then sampled with a seed per sample.
//! gemma2 and mistral add the reference's stop ids (107 and 2).
//!
//! The judge sees the reference's system prompt (the character card inside it) and user message,
//! "original" first (the dataset's reply with the EOS string the reference appends to it) and
//! "generated" second, at temperature 0, and is asked for structured output; its answer is read
//! as `json.loads`. An answer that is not JSON, or an empty object, is an error; one missing a
//! verdict key is skipped, as the reference skips it. `win rate = "generated" verdicts /
//! (3 * valid answers)`; more than `max_error_rate` of the samples in errors fails the run.
//!
//! Where arena differs, on purpose: a verdict that is not "original", "generated" or "tie" makes
//! the reference's tally raise and the whole run fail; here that answer is skipped like one with
//! a key missing.

use std::collections::BTreeMap;

use arena_plugin_api::pyrandom::PyRandom;
use arena_plugin_api::splitmix::SplitMix64;
use arena_plugin_api::{EvalOutput, EvalRequest, PluginError, Progress};
use serde_json::{Value, json};

use crate::coherence::clip;
use crate::data::{self, Turn};
use crate::judge::Judge;
use crate::lm::Lm;
use crate::{JudgeParams, records_of};

pub const SYSTEM_PROMPT: &str = include_str!("../prompts/judge_system.txt");
pub const USER_PROMPT: &str = include_str!("../prompts/judge_user.txt");
pub const CATEGORIES: [&str; 3] = ["realism_win", "entertainment_win", "coherency_win"];

/// The JSON Schema of the reference's `JudgeScore` (pydantic), sent as the response format.
pub fn verdict_schema() -> Value {
    let choice = json!({"type": "string", "enum": ["original", "generated", "tie"]});
    json!({
        "type": "object",
        "properties": {
            "realism_win": choice, "entertainment_win": choice, "coherency_win": choice,
            "realism_win_reasoning": {"type": "string"},
            "entertainment_win_reasoning": {"type": "string"},
            "coherency_win_reasoning": {"type": "string"},
        },
        "required": ["realism_win", "entertainment_win", "coherency_win",
                     "realism_win_reasoning", "entertainment_win_reasoning", "coherency_win_reasoning"],
        "additionalProperties": false,
    })
}

/// What the judge said of one sample.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// "generated" wins among the three categories.
    Valid(usize),
    /// Parsed, but a category is missing or has another value: not counted.
    Skipped(String),
    Error(String),
}

/// Reads a judge's answer as the reference does.
pub fn parse_verdict(answer: &str) -> Verdict {
    let v: Value = match serde_json::from_str(answer) {
        Ok(v) => v,
        Err(e) => return Verdict::Error(format!("the judge's answer is not JSON ({e}): {:?}", clip(answer))),
    };
    let Some(obj) = v.as_object().filter(|o| !o.is_empty()) else {
        return Verdict::Error(format!(
            "the judge's answer is not a JSON object with verdicts: {:?}",
            clip(answer)
        ));
    };
    let mut wins = 0;
    for c in CATEGORIES {
        match obj.get(c).and_then(Value::as_str) {
            Some("generated") => wins += 1,
            Some("original" | "tie") => {}
            Some(other) => return Verdict::Skipped(format!("{c} is {other:?}")),
            None => return Verdict::Skipped(format!("no {c}")),
        }
    }
    Verdict::Valid(wins)
}

/// (win rate, valid, errors), or the error rule's failure.
pub fn win_rate(verdicts: &[Verdict], max_error_rate: f64) -> Result<(f64, usize, usize), String> {
    let n = verdicts.len();
    let errors: Vec<&String> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    if n == 0 || errors.len() as f64 / n as f64 > max_error_rate {
        return Err(format!(
            "{} of {n} judgements failed (more than max_error_rate {max_error_rate}); first: {}",
            errors.len(),
            errors.first().map_or("none", |e| e.as_str())
        ));
    }
    let valid: Vec<usize> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Valid(w) => Some(*w),
            _ => None,
        })
        .collect();
    let rate =
        if valid.is_empty() { 0.0 } else { valid.iter().sum::<usize>() as f64 / (3 * valid.len()) as f64 };
    Ok((rate, valid.len(), errors.len()))
}

/// The reference's generation temperature for a template: three `random()` draws at import
/// (default, gemma2, mistral), times 0.2.
pub fn reference_temperature(template: &str, rng: &mut PyRandom) -> f64 {
    let draws = [rng.random(), rng.random(), rng.random()];
    0.2 * match template {
        "gemma2" => draws[1],
        "mistral" => draws[2],
        _ => draws[0],
    }
}

pub(crate) fn run(
    p: &JudgeParams,
    lm: &Lm,
    judge: &Judge,
    req: &EvalRequest,
    seed: u64,
    progress: &dyn Progress,
) -> Result<EvalOutput, PluginError> {
    let (records, bad) = records_of(req)?;
    let mut rng = PyRandom::new(seed);
    let drawn_temp = reference_temperature(lm.template_name(), &mut rng);
    let temperature = p.temperature.unwrap_or(drawn_temp);
    let (samples, dropped) = data::partial(&records, p.max_messages, p.cut_message_chain_early, &mut rng);
    let order = data::shuffled(samples.len(), &mut rng);
    let want = p.samples.unwrap_or(samples.len());
    let mut chosen: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for i in order {
        if chosen.len() == want {
            break;
        }
        let s = &samples[i];
        if s.messages.iter().any(|m| m.content.is_empty()) {
            skipped.push(format!("sample {i}: empty message content"));
            continue;
        }
        if s.messages.len() > p.max_messages {
            skipped.push(format!("sample {i}: {} messages", s.messages.len()));
            continue;
        }
        let ctx = match lm.context(&s.messages) {
            Ok(c) => c,
            Err(e) => {
                skipped.push(format!("sample {i}: {e}"));
                continue;
            }
        };
        let ids = lm.encode(&ctx, true, None)?;
        if ids.len() > p.max_prompt_tokens || ids.len() >= lm.max_positions() {
            skipped.push(format!("sample {i}: {} prompt tokens", ids.len()));
            continue;
        }
        chosen.push((i, ids));
    }
    if chosen.is_empty() {
        return Err(PluginError::invalid_parameters(format!(
            "no conversation to continue: {} records, {} without a user turn, {} without a reply after it, \
             {} unusable, {} skipped{}",
            records.len(),
            dropped.no_user_turn,
            dropped.no_reply,
            bad.len(),
            skipped.len(),
            skipped.first().map(|s| format!(" ({s})")).unwrap_or_default()
        )));
    }
    let stops: Vec<u32> = p.stop_token_ids.clone().unwrap_or_else(|| match lm.template_name() {
        "gemma2" => vec![107],
        "mistral" => vec![2],
        _ => Vec::new(),
    });
    let eos = lm.eos.clone().unwrap_or_default();
    let mut gen_rng = SplitMix64::new(seed ^ 0x6a0d_6e5e_u64);
    let mut verdicts = Vec::with_capacity(chosen.len());
    let schema = verdict_schema();
    for (k, (i, ids)) in chosen.iter().enumerate() {
        if progress.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let s = &samples[*i];
        let room = lm.max_positions() - ids.len();
        let temp = (temperature > 0.0).then_some(temperature as f32);
        let (_, text) = lm.generate(ids, p.max_new_tokens.min(room), temp, &stops, gen_rng.next_u64())?;
        let mut generated = s.messages.clone();
        generated.push(Turn::new("assistant", text));
        let mut original = s.messages.clone();
        original.push(Turn::new("assistant", format!("{}{eos}", s.character_response)));
        let system = data::fill(SYSTEM_PROMPT, &[("system_prompt", &original[0].content)]);
        let user = data::fill(
            USER_PROMPT,
            &[
                ("original_stringified", &data::stringify(&original)),
                ("generated_stringified", &data::stringify(&generated)),
            ],
        );
        let v = match judge.ask(
            &[Turn::new("system", system), Turn::new("user", user)],
            0.0,
            p.judge_max_new_tokens,
            Some(&schema),
            0,
        ) {
            Ok(answer) => parse_verdict(&answer),
            Err(e) => Verdict::Error(e),
        };
        verdicts.push(v);
        progress.report(k as u64 + 1, chosen.len() as u64, "generating and judging");
    }
    let (rate, valid, errors) = win_rate(&verdicts, p.max_error_rate).map_err(PluginError::internal)?;
    Ok(EvalOutput {
        raw_score: rate,
        metrics: BTreeMap::from([
            ("judge".to_string(), rate),
            ("samples".to_string(), verdicts.len() as f64),
            ("valid".to_string(), valid as f64),
            ("errors".to_string(), errors as f64),
            ("temperature".to_string(), temperature),
        ]),
        per_sample: verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::Valid(w) => Some(*w as f64 / 3.0),
                _ => None,
            })
            .collect(),
        details: json!({
            "template": lm.template_name(),
            "order": chosen.iter().map(|c| c.0).collect::<Vec<_>>(),
            "skipped": skipped.iter().take(20).collect::<Vec<_>>(),
            "not_counted": verdicts.iter().filter_map(|v| match v {
                Verdict::Skipped(s) | Verdict::Error(s) => Some(s.clone()),
                _ => None,
            }).take(20).collect::<Vec<_>>(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_as_the_reference_reads_them() {
        let ok = r#"{"realism_win": "generated", "entertainment_win": "tie", "coherency_win": "generated",
                     "realism_win_reasoning": "", "entertainment_win_reasoning": "", "coherency_win_reasoning": ""}"#;
        assert_eq!(parse_verdict(ok), Verdict::Valid(2));
        assert!(matches!(parse_verdict("```json\n{}\n```"), Verdict::Error(_)));
        assert!(matches!(parse_verdict("{}"), Verdict::Error(_)));
        assert!(matches!(parse_verdict(r#"{"realism_win": "generated"}"#), Verdict::Skipped(_)));
        assert!(matches!(
            parse_verdict(r#"{"realism_win": "both", "entertainment_win": "tie", "coherency_win": "tie"}"#),
            Verdict::Skipped(_)
        ));
    }

    #[test]
    fn the_win_rate_counts_valid_answers_only() {
        let v = vec![Verdict::Valid(3), Verdict::Valid(0), Verdict::Skipped("no key".into())];
        assert_eq!(win_rate(&v, 0.1).unwrap(), (0.5, 2, 0));
        let v = vec![Verdict::Valid(3), Verdict::Error("429".into())];
        assert!(win_rate(&v, 0.1).unwrap_err().contains("1 of 2"));
    }

    #[test]
    fn the_temperature_follows_the_reference_draw_order() {
        let t = |name| reference_temperature(name, &mut PyRandom::new(5));
        let mut r = PyRandom::new(5);
        let d = [r.random(), r.random(), r.random()];
        assert_eq!(t("chatml"), 0.2 * d[0]);
        assert_eq!(t("gemma2"), 0.2 * d[1]);
        assert_eq!(t("mistral"), 0.2 * d[2]);
    }

    #[test]
    fn the_prompts_are_the_references() {
        assert!(SYSTEM_PROMPT.starts_with(
            "\nAn assistant follows the provided instructions as mentioned:\n=====\n{system_prompt}\n=====\n"
        ));
        assert!(USER_PROMPT.contains("\"original\" :\n{original_stringified}\n\n\n( end of original text )"));
        assert!(
            USER_PROMPT.contains("\"generated\" :\n{generated_stringified}\n\n( end of generated text )")
        );
    }
}
