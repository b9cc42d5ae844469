//! `vibe`: SN11's vibe score (`scoring/vibe_score.py` at 2e3de7f, removed in Feb 2025).
//!
//! Greedy generation after each context, with a budget per batch of 8 samples of
//! `min(int(1.5 * longest reference in the batch), 200)` new tokens, where the "longest" is
//! measured in characters (the reference uses a character count as a token count); each sample
//! scores `exp(-2 |len(generated) - len(reference)| / len(reference))` in characters (0 when the
//! reference is empty); the score is the mean.
//!
//! What the reference compares against: its `zip(*sampled_data)` unpacks the dataset's tuples
//! `(context, target, last_user_message)` as `(contexts, last_user_messages, expected_outputs)`,
//! so the "last user message" it measures is the target, the reply with the EOS string appended.
//! `length_reference = "target"` (the default) reproduces that; `"last_user_message"` measures
//! what the reference's names say it meant.

use std::collections::BTreeMap;

use arena_plugin_api::{EvalOutput, EvalRequest, PluginError, Progress};
use serde_json::json;

use crate::data::py_len;
use crate::eval::streamed_draw;
use crate::lm::Lm;
use crate::{LengthReference, VibeParams};

/// One sample's score: `exp(-k |gen - reference| / reference)` in characters, 0 for an empty
/// reference.
pub fn length_score(generated: usize, reference: usize, steepness: f64) -> f64 {
    if reference == 0 {
        return 0.0;
    }
    let diff = (generated as f64 - reference as f64).abs();
    (-diff * steepness / reference as f64).exp()
}

/// The new-token budget of each batch: `min(int(longest * (1 + leeway)), max_new)`.
pub fn budgets(lengths: &[usize], batch: usize, leeway: f64, max_new: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(lengths.len());
    for chunk in lengths.chunks(batch.max(1)) {
        let longest = chunk.iter().copied().max().unwrap_or(0);
        let b = ((longest as f64 * (1.0 + leeway)) as usize).min(max_new);
        out.extend(std::iter::repeat_n(b, chunk.len()));
    }
    out
}

/// What [`generate_scores`] computed, per sample.
pub struct Generated {
    pub scores: Vec<f64>,
    pub ids: Vec<Vec<u32>>,
    pub texts: Vec<String>,
    pub generated_chars: Vec<usize>,
    pub reference_chars: Vec<usize>,
    pub budgets: Vec<usize>,
}

/// Generates after each (context, reference) pair in order and scores the lengths.
pub fn generate_scores(
    p: &VibeParams,
    lm: &Lm,
    drawn: &[(String, String)],
    progress: &dyn Progress,
) -> Result<Generated, PluginError> {
    let references: Vec<&String> = drawn.iter().map(|(_, r)| r).collect();
    let lengths: Vec<usize> = references.iter().map(|r| py_len(r)).collect();
    let budget = budgets(&lengths, p.budget_batch, p.leeway, p.max_new_tokens);
    let mut scores = Vec::with_capacity(drawn.len());
    let mut generated = Vec::with_capacity(drawn.len());
    let mut ids = Vec::with_capacity(drawn.len());
    let mut texts = Vec::with_capacity(drawn.len());
    for (k, (ctx, _)) in drawn.iter().enumerate() {
        if progress.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let prompt = lm.encode(ctx, true, None)?;
        if prompt.len() >= lm.max_positions() {
            return Err(PluginError::invalid_submission(format!(
                "sample {k}: the prompt is {} tokens, more than the model's window of {}",
                prompt.len(),
                lm.max_positions()
            )));
        }
        let (new_ids, text) = lm.generate(&prompt, budget[k], None, &[], 0)?;
        ids.push(new_ids);
        texts.push(text.clone());
        scores.push(length_score(py_len(&text), lengths[k], p.length_diff_penalty_steepness));
        generated.push(py_len(&text));
        progress.report(k as u64 + 1, drawn.len() as u64, "generating replies");
    }
    Ok(Generated {
        scores,
        ids,
        texts,
        generated_chars: generated,
        reference_chars: lengths,
        budgets: budget,
    })
}

pub(crate) fn run(
    p: &VibeParams,
    lm: &Lm,
    req: &EvalRequest,
    seed: u64,
    progress: &dyn Progress,
) -> Result<EvalOutput, PluginError> {
    let (samples, drawn, _, _) = streamed_draw(lm, req, p.max_input_len, p.samples, seed, "generate from")?;
    let references: Vec<String> = drawn
        .iter()
        .map(|(i, _, target)| match p.length_reference {
            LengthReference::Target => target.clone(),
            LengthReference::LastUserMessage => samples[*i].last_user_message.clone(),
        })
        .collect();
    let pairs: Vec<(String, String)> =
        drawn.iter().zip(&references).map(|((_, c, _), r)| (c.clone(), r.clone())).collect();
    let g = generate_scores(p, lm, &pairs, progress)?;
    let (scores, generated, lengths, budget) = (g.scores, g.generated_chars, g.reference_chars, g.budgets);
    let examples: Vec<String> = g.texts.iter().take(3).map(|t| crate::coherence::clip(t)).collect();
    let vibe = scores.iter().sum::<f64>() / scores.len() as f64;
    Ok(EvalOutput {
        raw_score: vibe,
        metrics: BTreeMap::from([
            ("vibe".to_string(), vibe),
            ("samples".to_string(), scores.len() as f64),
            (
                "mean_generated_chars".to_string(),
                generated.iter().sum::<usize>() as f64 / scores.len() as f64,
            ),
            ("mean_reference_chars".to_string(), lengths.iter().sum::<usize>() as f64 / scores.len() as f64),
        ]),
        per_sample: scores,
        details: json!({
            "template": lm.template_name(),
            "order": drawn.iter().map(|d| d.0).collect::<Vec<_>>(),
            "budgets": budget,
            "generated_chars": generated,
            "examples": examples,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_score_is_exponential_in_the_relative_difference() {
        assert_eq!(length_score(10, 10, 2.0), 1.0);
        assert!((length_score(5, 10, 2.0) - (-1.0f64).exp()).abs() < 1e-15);
        assert_eq!(length_score(3, 0, 2.0), 0.0);
    }

    #[test]
    fn budgets_follow_the_longest_of_each_batch_of_eight() {
        let lens = [10, 20, 4, 4, 4, 4, 4, 4, 300];
        let b = budgets(&lens, 8, 0.5, 200);
        assert_eq!(b[..8], [30; 8]);
        assert_eq!(b[8], 200);
    }
}
