//! `latency`: SN11's latency score (`warmup_model` in `scoring/eval_score.py`).
//!
//! `passes` forward passes (all-position logits, as `model(input_ids, attention_mask)` computes
//! them) of `batch_size` sequences of random token ids, each `min(max_position_embeddings,
//! sequence_length)` long, timed one by one with no separate warm-up; NaN logits fail the
//! submission. The raw score is the mean in milliseconds; `latency_score` is the reference's
//! `1 - 0.95 * mean / 10000` (`MAX_AVG_LATENCY`).
//!
//! Timing is not deterministic: two validators measure different numbers, and the reference
//! timed on a GPU. A competition that needs validators to agree bit for bit leaves this kind out
//! or gives it weight 0; the ids drawn are the seed's, so the work is the same everywhere.

use std::collections::BTreeMap;
use std::time::Instant;

use arena_llm::Tensor;
use arena_plugin_api::splitmix::SplitMix64;
use arena_plugin_api::{EvalOutput, PluginError, Progress};
use serde_json::json;

use crate::LatencyParams;
use crate::lm::{Lm, llm_err};

pub(crate) fn run(
    p: &LatencyParams,
    lm: &Lm,
    seed: u64,
    progress: &dyn Progress,
) -> Result<EvalOutput, PluginError> {
    let model = &lm.lm.model;
    let vocab = model.config().vocab_size as u64;
    let t = lm.max_positions().min(p.sequence_length);
    let mut rng = SplitMix64::new(seed);
    let mut ms = Vec::with_capacity(p.passes);
    for k in 0..p.passes {
        if progress.is_cancelled() {
            return Err(PluginError::cancelled());
        }
        let ids: Vec<u32> = (0..p.batch_size * t).map(|_| (rng.next_u64() % vocab) as u32).collect();
        let ids = Tensor::from_vec(ids, (p.batch_size, t), model.device()).map_err(|e| llm_err(e.into()))?;
        let started = Instant::now();
        let logits = model.forward(&ids, None).map_err(llm_err)?;
        // Reading the logits back is the synchronisation (the reference syncs CUDA).
        let nan = logits
            .flatten_all()
            .and_then(|l| l.to_vec1::<f32>())
            .map_err(|e| llm_err(e.into()))?
            .iter()
            .any(|x| x.is_nan());
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if nan {
            return Err(PluginError::invalid_submission("NaN values detected in the logits tensor"));
        }
        progress.report(k as u64 + 1, p.passes as u64, "timing forward passes");
    }
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    Ok(EvalOutput {
        raw_score: mean,
        metrics: BTreeMap::from([
            ("latency_ms".to_string(), mean),
            ("latency_score".to_string(), 1.0 - 0.95 * mean / 10_000.0),
            ("sequence_length".to_string(), t as f64),
        ]),
        per_sample: ms.clone(),
        details: json!({ "passes_ms": ms, "batch_size": p.batch_size, "deterministic": false }),
    })
}
