//! Generation with a KV cache: greedy (as transformers' `do_sample=False`) or sampled from a
//! seeded generator, with transformers' repetition penalty and stop tokens.

use candle_core::Tensor;

use crate::LlmError;
use crate::model::{CausalLm, KvCache};

#[derive(Clone, Debug, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    /// transformers' `repetition_penalty` (1.0: none): each token already in the prompt or the
    /// output has its logit divided by the penalty when positive, multiplied when negative.
    pub repetition_penalty: f32,
    /// Sampling temperature; `None` is greedy decoding.
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    /// Generation stops after any of these tokens (which is kept in the output).
    pub stop_tokens: Vec<u32>,
    /// Total length limit (prompt + new tokens), transformers' `max_length`.
    pub max_length: Option<usize>,
    pub seed: u64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 20,
            repetition_penalty: 1.0,
            temperature: None,
            top_k: None,
            top_p: None,
            stop_tokens: Vec::new(),
            max_length: None,
            seed: 0,
        }
    }
}

pub use arena_plugin_api::splitmix::SplitMix64;

/// transformers' `RepetitionPenaltyLogitsProcessor` on one row of logits.
pub fn apply_repetition_penalty(logits: &mut [f32], seen: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut done = std::collections::HashSet::new();
    for &t in seen {
        if let Some(x) = logits.get_mut(t as usize)
            && done.insert(t)
        {
            *x = if *x < 0.0 { *x * penalty } else { *x / penalty };
        }
    }
}

/// The first index of the maximum (torch's `argmax` on CPU).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn sample(logits: &[f32], cfg: &GenerationConfig, rng: &mut SplitMix64) -> u32 {
    let Some(temp) = cfg.temperature.filter(|t| *t > 0.0) else { return argmax(logits) };
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if let Some(k) = cfg.top_k.filter(|k| *k > 0) {
        idx.truncate(k);
    }
    let max = logits[idx[0]] as f64;
    let mut probs: Vec<f64> = idx.iter().map(|&i| ((logits[i] as f64 - max) / temp as f64).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if let Some(top_p) = cfg.top_p.filter(|p| *p < 1.0) {
        let mut acc = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if acc >= top_p as f64 {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
    }
    let r = rng.next_f64();
    let mut acc = 0.0;
    for (i, p) in probs.iter().enumerate() {
        acc += p;
        if r < acc {
            return idx[i] as u32;
        }
    }
    idx[probs.len() - 1] as u32
}

/// Generates from `prompt`; returns the new tokens only.
pub fn generate(model: &CausalLm, prompt: &[u32], cfg: &GenerationConfig) -> Result<Vec<u32>, LlmError> {
    if prompt.is_empty() {
        return Err(LlmError::Input("generation needs a non-empty prompt".into()));
    }
    let mut cache = KvCache::default();
    let mut rng = SplitMix64::new(cfg.seed);
    let mut seen = prompt.to_vec();
    let mut out = Vec::new();
    let limit = match cfg.max_length {
        Some(m) => cfg.max_new_tokens.min(m.saturating_sub(prompt.len())),
        None => cfg.max_new_tokens,
    };
    let mut next_input = prompt.to_vec();
    while out.len() < limit {
        let ids = Tensor::from_vec(next_input.clone(), (1, next_input.len()), model.device())?;
        let hidden = model.forward_hidden(&ids, None, Some(&mut cache))?;
        let last = hidden.narrow(1, next_input.len() - 1, 1)?;
        let mut logits: Vec<f32> = model.logits(&last)?.squeeze(0)?.squeeze(0)?.to_vec1()?;
        apply_repetition_penalty(&mut logits, &seen, cfg.repetition_penalty);
        let tok = sample(&logits, cfg, &mut rng);
        out.push(tok);
        seen.push(tok);
        if cfg.stop_tokens.contains(&tok) {
            break;
        }
        next_input = vec![tok];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_penalty_matches_transformers() {
        let mut l = vec![2.0, -2.0, 1.0];
        apply_repetition_penalty(&mut l, &[0, 1, 1], 2.0);
        assert_eq!(l, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }

    #[test]
    fn sampling_depends_on_the_seed_only() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let cfg = GenerationConfig {
            temperature: Some(1.0),
            top_k: Some(20),
            top_p: Some(0.9),
            ..Default::default()
        };
        let draw = |seed| {
            let mut r = SplitMix64::new(seed);
            (0..20).map(|_| sample(&logits, &cfg, &mut r)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
