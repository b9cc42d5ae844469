//! `roleplay_eval`: SN11's "eval" (qualitative) score and creativity in one pass
//! (`scoring/eval_score.py`, `eval_score_batch`).
//!
//! The reference lays each sample out as `[pad… context | target pad…]`: the context tokenized
//! with the tokenizer's special tokens, cut on the right to `max_len - 200` and left-padded to it;
//! the target (`reply + eos`) without special tokens, cut to 200 and right-padded. It then
//! shifts the target mask and the logits right by one, so the positions scored are the target's
//! tokens after its first, plus the first pad after a target shorter than 200 (the pad id, which
//! is EOS when the tokenizer has no pad token). Each scored position's logits are cut to their
//! top `vocab_truncation`, softmaxed; the entropy is averaged, and the probability of the token
//! is kept when it is among the top `prob_top_k`, else 1e-9. Per batch of `batch_size` samples:
//! `0.25 * sum_n (sum of products of n consecutive probabilities) / scored positions` for n = 1..4,
//! and `1 - exp(-5 * mean entropy / ln 10)`; the scores are means over batches.
//!
//! Pads are masked keys and every family here uses rotary positions, which depend on relative
//! positions only, so each sample is run without its pads (positions from 0): the same numbers
//! to rounding (the parity test checks 1e-4 against the padded reference), in a fraction of the
//! work, one sample per forward pass so that scores do not depend on how samples are grouped.

use std::collections::BTreeMap;

use arena_plugin_api::pyrandom::PyRandom;
use arena_plugin_api::{EvalOutput, EvalRequest, PluginError, Progress};
use serde_json::json;

use crate::data::{self, Sample};
use crate::lm::{Lm, encode_with};
use crate::{EvalParams, records_of};

/// A scored row: the truncated distribution's entropy and the target token's probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub entropy: f64,
    pub prob: f64,
}

/// One position's logits: entropy of the top-`k` softmax (`-sum p ln(p + 1e-9)`) and the
/// probability of `target` (1e-9 unless it is among the top `top_k` of that softmax).
pub fn score_row(logits: &[f32], target: u32, k: usize, top_k: usize) -> Scored {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    // torch.topk: the largest values; ties by the lower index. Select the top k, then order them.
    let order = |&a: &usize, &b: &usize| logits[b].total_cmp(&logits[a]).then(a.cmp(&b));
    let k = k.clamp(1, logits.len());
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, order);
        idx.truncate(k);
    }
    idx.sort_by(order);
    let max = logits[idx[0]] as f64;
    let exps: Vec<f64> = idx.iter().map(|&i| (logits[i] as f64 - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    let probs: Vec<f64> = exps.iter().map(|e| e / total).collect();
    let entropy = -probs.iter().map(|p| p * (p + 1e-9).ln()).sum::<f64>();
    // The top `top_k` of the truncated distribution (the first `top_k` of `idx`: softmax keeps
    // the order).
    let prob = idx.iter().take(top_k).position(|&i| i as u32 == target).map_or(1e-9, |j| probs[j]);
    Scored { entropy, prob }
}

/// Sum over `n = 1..=4` of the sums of products of `n` consecutive probabilities of a row.
pub fn ngram_sums(probs: &[f64]) -> [f64; 4] {
    let mut out = [0.0; 4];
    for (n, slot) in out.iter_mut().enumerate() {
        let n = n + 1;
        if probs.len() < n {
            continue;
        }
        *slot = (n - 1..probs.len()).map(|end| probs[end + 1 - n..=end].iter().product::<f64>()).sum();
    }
    out
}

/// One batch's (n-gram probability, scaled entropy, scored positions) from its rows.
pub fn batch_scores(rows: &[Vec<Scored>]) -> (f64, f64, usize) {
    let count: usize = rows.iter().map(Vec::len).sum();
    if count == 0 {
        return (0.0, 0.0, 0);
    }
    let mut ngram = 0.0;
    let mut entropy = 0.0;
    for r in rows {
        let probs: Vec<f64> = r.iter().map(|s| s.prob).collect();
        ngram += ngram_sums(&probs).iter().sum::<f64>();
        entropy += r.iter().map(|s| s.entropy).sum::<f64>();
    }
    let mean_entropy = entropy / count as f64;
    let scaled = 1.0 - (-5.0 * mean_entropy / std::f64::consts::LN_10).exp();
    (0.25 * ngram / count as f64, scaled, count)
}

/// The token ids of one sample as the reference lays them out, without the pads: the context,
/// the target, and the targets of the scored positions (`ids.len() - ctx` of them, the last the
/// pad when the target is shorter than `max_gen`).
pub struct Layout {
    pub ids: Vec<u32>,
    pub ctx: usize,
    pub targets: Vec<u32>,
}

pub fn layout(ctx: &[u32], tgt: &[u32], max_gen: usize, pad: u32) -> Layout {
    let mut ids = ctx.to_vec();
    ids.extend_from_slice(tgt);
    let mut targets: Vec<u32> = tgt.iter().skip(1).copied().collect();
    if tgt.len() < max_gen {
        targets.push(pad);
    }
    Layout { ids, ctx: ctx.len(), targets }
}

/// The samples of a Dippy-format task: records read, processed, visited in the seeded order,
/// and the first `n` whose context renders kept (the reference replaces samples that fail).
pub(crate) fn draw(
    lm: &Lm,
    samples: &[Sample],
    n: Option<usize>,
    seed: u64,
) -> (Vec<(usize, String, String)>, Vec<String>) {
    let mut rng = PyRandom::new(seed);
    let order = data::shuffled(samples.len(), &mut rng);
    let want = n.unwrap_or(samples.len());
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for i in order {
        if kept.len() == want {
            break;
        }
        let s = &samples[i];
        if s.messages.iter().any(|m| m.content.is_empty()) {
            skipped.push(format!("sample {i}: empty message content"));
            continue;
        }
        match lm.context(&s.messages) {
            Ok(ctx) => {
                let target = format!("{}{}", s.character_response, lm.eos.as_deref().unwrap_or(""));
                kept.push((i, ctx, target));
            }
            Err(e) => skipped.push(format!("sample {i}: {e}")),
        }
    }
    (kept, skipped)
}

/// What [`score`] computed.
pub struct Scores {
    pub quality: f64,
    pub creativity: f64,
    /// Per batch: (n-gram probability, scaled entropy, scored positions).
    pub batches: Vec<(f64, f64, usize)>,
    /// Each sample's n-gram score on its own.
    pub per_sample: Vec<f64>,
    pub tokens: usize,
    pub max_len: usize,
}

/// Scores (context, target) pairs in their order, batches of `p.batch_size` consecutive ones.
pub fn score(
    p: &EvalParams,
    lm: &Lm,
    drawn: &[(String, String)],
    progress: &dyn Progress,
) -> Result<Scores, PluginError> {
    let max_len = lm.max_positions().min(p.max_seq_len);
    if max_len <= p.max_generation_length {
        return Err(PluginError::invalid_submission(format!(
            "max_position_embeddings {} leaves no room for a context before {} target tokens",
            lm.max_positions(),
            p.max_generation_length
        )));
    }
    // The truncating tokenizers are built once, not cloned for every sample.
    let ctx_tok = lm.truncating(max_len - p.max_generation_length)?;
    let tgt_tok = lm.truncating(p.max_generation_length)?;
    let pad =
        lm.pad_id.ok_or_else(|| PluginError::invalid_submission("the tokenizer has no EOS or pad token"))?;
    let mut rows: Vec<Vec<Scored>> = Vec::with_capacity(drawn.len());
    let mut per_sample = Vec::with_capacity(drawn.len());
    let mut tokens = 0usize;
    for (k, (ctx, target)) in drawn.iter().enumerate() {
        if progress.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let ctx_ids = encode_with(&ctx_tok, ctx, true)?;
        let tgt_ids = encode_with(&tgt_tok, target, false)?;
        let l = layout(&ctx_ids, &tgt_ids, p.max_generation_length, pad);
        let scored: Vec<Scored> = if l.targets.is_empty() {
            Vec::new()
        } else {
            let logits = lm.logits_at(&l.ids, l.ctx, l.targets.len())?;
            if logits.iter().any(|r| r.iter().any(|x| x.is_nan())) {
                return Err(PluginError::invalid_submission("NaN values detected in the logits tensor"));
            }
            logits
                .iter()
                .zip(&l.targets)
                .map(|(row, &t)| score_row(row, t, p.vocab_truncation, p.prob_top_k))
                .collect()
        };
        tokens += l.ids.len();
        per_sample.push(batch_scores(std::slice::from_ref(&scored)).0);
        rows.push(scored);
        progress.report(k as u64 + 1, drawn.len() as u64, "scoring reference replies");
    }
    let batches: Vec<(f64, f64, usize)> = rows.chunks(p.batch_size).map(batch_scores).collect();
    let n = batches.len() as f64;
    let quality = batches.iter().map(|b| b.0).sum::<f64>() / n;
    let creativity = batches.iter().map(|b| b.1).sum::<f64>() / n;
    Ok(Scores { quality, creativity, batches, per_sample, tokens, max_len })
}

/// The records of `req` processed as `StreamedSyntheticDataset` does and drawn in the seeded
/// order: (samples, drawn, drop counts, rows and samples not usable). No sample is an error that
/// says why (`what`: "score", "generate from").
#[allow(clippy::type_complexity)]
pub(crate) fn streamed_draw(
    lm: &Lm,
    req: &EvalRequest,
    max_input_len: usize,
    n: Option<usize>,
    seed: u64,
    what: &str,
) -> Result<(Vec<Sample>, Vec<(usize, String, String)>, data::Dropped, Vec<String>), PluginError> {
    let (records, mut bad) = records_of(req)?;
    let (samples, dropped) = data::streamed(&records, max_input_len);
    let (drawn, skipped) = draw(lm, &samples, n, seed);
    bad.extend(skipped);
    if drawn.is_empty() {
        return Err(PluginError::invalid_parameters(format!(
            "no sample to {what}: {} records, {} too long for max_input_len {max_input_len}, {} without a user \
             turn, {} without an assistant reply, {} unusable{}",
            records.len(),
            dropped.too_long,
            dropped.no_user_turn,
            dropped.no_reply,
            bad.len(),
            bad.first().map(|b| format!(" ({b})")).unwrap_or_default()
        )));
    }
    Ok((samples, drawn, dropped, bad))
}

pub(crate) fn run(
    p: &EvalParams,
    lm: &Lm,
    req: &EvalRequest,
    seed: u64,
    progress: &dyn Progress,
) -> Result<EvalOutput, PluginError> {
    let (_, drawn, dropped, bad) = streamed_draw(lm, req, p.max_input_len, p.samples, seed, "score")?;
    let pairs: Vec<(String, String)> = drawn.iter().map(|(_, c, t)| (c.clone(), t.clone())).collect();
    let r = score(p, lm, &pairs, progress)?;
    let (quality, creativity, batches, per_sample, tokens, max_len) =
        (r.quality, r.creativity, r.batches, r.per_sample, r.tokens, r.max_len);
    let n = batches.len() as f64;
    let metrics = BTreeMap::from([
        ("quality".to_string(), quality),
        ("creativity".to_string(), creativity),
        ("samples".to_string(), drawn.len() as f64),
        ("batches".to_string(), n),
        ("tokens".to_string(), tokens as f64),
        ("dropped_too_long".to_string(), dropped.too_long as f64),
        ("dropped_no_user_turn".to_string(), dropped.no_user_turn as f64),
        ("skipped".to_string(), bad.len() as f64),
    ]);
    Ok(EvalOutput {
        raw_score: quality,
        metrics,
        per_sample,
        details: json!({
            "template": lm.template_name(),
            "max_len": max_len,
            "order": drawn.iter().map(|d| d.0).collect::<Vec<_>>(),
            "skipped": bad.iter().take(20).collect::<Vec<_>>(),
            "batches": batches.iter().map(|b| json!({"n_gram_prob": b.0, "scaled_entropy": b.1, "token_count": b.2})).collect::<Vec<_>>(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_truncation_and_the_floor() {
        // Uniform over the top 2 of 3: entropy ln 2; the third token gets the floor.
        let s = score_row(&[1.0, 1.0, -5.0], 0, 2, 2);
        assert!((s.entropy - std::f64::consts::LN_2).abs() < 1e-8);
        assert!((s.prob - 0.5).abs() < 1e-12);
        assert_eq!(score_row(&[1.0, 1.0, -5.0], 2, 2, 2).prob, 1e-9);
    }

    #[test]
    fn ngrams_are_products_of_consecutive_probabilities() {
        let s = ngram_sums(&[0.5, 0.5, 1.0]);
        assert_eq!(s, [2.0, 0.25 + 0.5, 0.25, 0.0]);
    }

    #[test]
    fn the_layout_scores_after_the_first_target_token_and_the_first_pad() {
        let l = layout(&[1, 5, 6], &[7, 8, 2], 200, 0);
        assert_eq!(l.ids, vec![1, 5, 6, 7, 8, 2]);
        assert_eq!((l.ctx, l.targets.clone()), (3, vec![8, 2, 0]));
        // A full target has no pad after it.
        let l = layout(&[1], &[7, 8], 2, 0);
        assert_eq!(l.targets, vec![8]);
    }

    #[test]
    fn batch_scores_pool_positions_across_the_batch() {
        let row = |p: f64| vec![Scored { entropy: 0.0, prob: p }];
        let (q, c, n) = batch_scores(&[row(1.0), row(0.5)]);
        assert_eq!(n, 2);
        assert!((q - 0.25 * 1.5 / 2.0).abs() < 1e-12);
        assert_eq!(c, 0.0);
    }
}
