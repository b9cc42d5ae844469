//! `coherence`: SN11's coherence score (`scoring/coherence_score.py` at 2e3de7f).
//!
//! PersonaHub conversations (the augmented system prompt and the record's first message) are
//! drawn in the seeded order; each gets `randint(min_turns, max_turns)` turns, drawn after the
//! shuffle as the reference draws them. A turn is the model's greedy reply to the conversation so
//! far (rendered with the miner's template) followed by the user simulator's next message
//! (asked with the reference's prompt, the conversation as Python prints a list of dicts, at
//! temperature 0.5, quotes not stripped: the reference strips none). Each finished conversation
//! goes to the judge, stringified (`System Prompt: …`, `Role: …`, `Content: …`), at temperature
//! 0; its answer read as Python's `int()`; below 1 is a penalty.
//! `score = (N - errors - penalties) / (N - errors)`; more than `max_error_rate` of N in errors
//! fails the run.
//!
//! Where arena differs, on purpose: the reference's judge call turns every failure (an expired
//! key, a timeout, an answer that is not a number) into the verdict 0, so its error counter never
//! moves and an outage scores every model "incoherent" (Dippy issues #73, #76). Here a judge or
//! simulator failure is an error of that conversation, counted against `max_error_rate`, and a
//! run with too many fails with the reasons instead of scoring anyone.
//! A conversation that outgrows the model's window ends there and is judged as it stands
//! (`cut_short` counts them); the reference's vLLM window is 8192 tokens.

use std::collections::BTreeMap;

use arena_plugin_api::pyrandom::PyRandom;
use arena_plugin_api::splitmix::SplitMix64;
use arena_plugin_api::{EvalOutput, EvalRequest, PluginError, Progress};
use serde_json::json;

use crate::data::{self, Turn};
use crate::judge::{Judge, py_int};
use crate::lm::Lm;
use crate::{CoherenceParams, records_of};

pub const JUDGE_PROMPT: &str = include_str!("../prompts/coherence_judge.txt");
pub const SIMULATOR_PROMPT: &str = include_str!("../prompts/user_simulator.txt");

/// What became of one conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Verdict(i64),
    Error(String),
}

/// The reference's score and its error rule, from the outcomes.
pub fn score(outcomes: &[Outcome], max_error_rate: f64) -> Result<(f64, usize, usize), String> {
    let n = outcomes.len();
    let errors: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    let penalties = outcomes.iter().filter(|o| matches!(o, Outcome::Verdict(v) if *v < 1)).count();
    if n == 0 || errors.len() as f64 / n as f64 > max_error_rate {
        return Err(format!(
            "{} of {n} conversations could not be judged (more than max_error_rate {max_error_rate}); first: {}",
            errors.len(),
            errors.first().map_or("none", |e| e.as_str())
        ));
    }
    let judged = n - errors.len();
    Ok(((judged - penalties) as f64 / judged as f64, penalties, errors.len()))
}

pub(crate) fn run(
    p: &CoherenceParams,
    lm: &Lm,
    judge: &Judge,
    simulator: &Judge,
    req: &EvalRequest,
    seed: u64,
    progress: &dyn Progress,
) -> Result<EvalOutput, PluginError> {
    let (records, bad) = records_of(req)?;
    let (convs, dropped) = data::persona(&records);
    let mut rng = PyRandom::new(seed);
    let order = data::shuffled(convs.len(), &mut rng);
    let chosen: Vec<usize> = order.into_iter().take(p.samples.unwrap_or(convs.len())).collect();
    if chosen.is_empty() {
        return Err(PluginError::invalid_parameters(format!(
            "no conversation to hold: {} records, {} without a first message, {} unusable",
            records.len(),
            dropped.no_user_turn,
            bad.len()
        )));
    }
    let turns: Vec<usize> =
        chosen.iter().map(|_| rng.randint(p.min_turns as i64, p.max_turns as i64) as usize).collect();
    let mut conversations: Vec<Vec<Turn>> = chosen.iter().map(|&i| convs[i].clone()).collect();
    let mut failed: Vec<Option<String>> = vec![None; chosen.len()];
    let mut cut_short = 0usize;
    let mut live: Vec<bool> = vec![true; chosen.len()];
    let mut sim_rng = SplitMix64::new(seed ^ 0x5eed_0f51_u64);
    let total_turns: usize = turns.iter().sum();
    let mut done_turns = 0u64;
    for turn in 0..turns.iter().copied().max().unwrap_or(0) {
        for c in 0..conversations.len() {
            if turn >= turns[c] || !live[c] {
                continue;
            }
            if progress.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let prompt = match lm.context(&conversations[c]) {
                Ok(t) => t,
                Err(e) => {
                    failed[c] = Some(format!("rendering: {e}"));
                    live[c] = false;
                    continue;
                }
            };
            let ids = lm.encode(&prompt, true, None)?;
            let room = lm.max_positions().saturating_sub(ids.len());
            if room == 0 {
                cut_short += 1;
                live[c] = false;
                continue;
            }
            let (_, reply) = lm.generate(&ids, p.max_new_tokens.min(room), None, &[], 0)?;
            conversations[c].push(Turn::new("assistant", reply));
            let ask =
                data::fill(SIMULATOR_PROMPT, &[("messages", &data::py_repr_messages(&conversations[c]))]);
            match simulator.ask(
                &[Turn::new("user", ask)],
                p.simulator_temperature,
                p.simulator_max_new_tokens,
                None,
                sim_rng.next_u64(),
            ) {
                Ok(user) => conversations[c].push(Turn::new("user", user)),
                Err(e) => {
                    failed[c] = Some(format!("user simulator: {e}"));
                    live[c] = false;
                }
            }
            done_turns += 1;
            progress.report(done_turns, total_turns as u64 + chosen.len() as u64, "holding conversations");
        }
    }
    let mut outcomes = Vec::with_capacity(conversations.len());
    for (c, conv) in conversations.iter().enumerate() {
        if progress.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let outcome = match &failed[c] {
            Some(e) => Outcome::Error(e.clone()),
            None => {
                let text = data::fill(JUDGE_PROMPT, &[("generated_text", &data::stringify(conv))]);
                match judge.ask(&[Turn::new("user", text)], 0.0, p.judge_max_new_tokens, None, 0) {
                    Ok(answer) => match py_int(&answer) {
                        Some(v) => Outcome::Verdict(v),
                        None => {
                            Outcome::Error(format!("the judge's answer is not 1 or 0: {:?}", clip(&answer)))
                        }
                    },
                    Err(e) => Outcome::Error(e),
                }
            }
        };
        outcomes.push(outcome);
        progress.report(done_turns + c as u64 + 1, total_turns as u64 + chosen.len() as u64, "judging");
    }
    let (coherence, penalties, errors) = score(&outcomes, p.max_error_rate).map_err(PluginError::internal)?;
    Ok(EvalOutput {
        raw_score: coherence,
        metrics: BTreeMap::from([
            ("coherence".to_string(), coherence),
            ("conversations".to_string(), outcomes.len() as f64),
            ("incoherent".to_string(), penalties as f64),
            ("errors".to_string(), errors as f64),
            ("cut_short".to_string(), cut_short as f64),
        ]),
        per_sample: outcomes
            .iter()
            .map(|o| match o {
                Outcome::Verdict(v) => f64::from(u8::from(*v >= 1)),
                Outcome::Error(_) => f64::NAN,
            })
            .filter(|v| !v.is_nan())
            .collect(),
        details: json!({
            "template": lm.template_name(),
            "order": chosen,
            "turns": turns,
            "examples": conversations.iter().take(2).map(|c| data::stringify(c)).collect::<Vec<_>>(),
            "errors": outcomes.iter().filter_map(|o| match o { Outcome::Error(e) => Some(e.clone()), _ => None }).take(20).collect::<Vec<_>>(),
        }),
    })
}

/// At most 200 characters of a judge's answer, for a message.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_excluded_and_bounded() {
        let v = |x| Outcome::Verdict(x);
        let mut o = vec![v(1); 18];
        o.push(v(0));
        o.push(Outcome::Error("timeout".into()));
        let (s, pen, err) = score(&o, 0.1).unwrap();
        assert_eq!((pen, err), (1, 1));
        assert!((s - 18.0 / 19.0).abs() < 1e-15);
        o.push(Outcome::Error("timeout".into()));
        o.push(Outcome::Error("429".into()));
        let e = score(&o, 0.1).unwrap_err();
        assert!(e.contains("3 of 22") && e.contains("timeout"), "{e}");
    }

    #[test]
    fn the_prompts_are_the_references() {
        assert!(JUDGE_PROMPT.starts_with("\n    You are a text coherence analyzer.\n"));
        assert!(JUDGE_PROMPT.contains("    \"\"\"\n    {generated_text}\n    \"\"\"\n"));
        assert!(SIMULATOR_PROMPT.contains("    {messages}\n"));
    }
}
