//! gasbench's scoring, exactly (`benchmarks/utils/inference.py`, `benchmarks/utils/metrics.py`,
//! `benchmarks/recording.py`, `dataset/config.py` at 2e3ee30): model outputs to predictions and
//! P(synthetic), per-dataset sampling caps, provenance weights, and the pooled metrics of one
//! modality run. Pure functions over plain data.

use arena_plugin_api::metrics::{binary_mcc, brier, confusion, sn34_score};
use serde::Serialize;

/// `MEDIA_TYPE_TO_LABEL`: real 0, synthetic and semisynthetic 1.
pub fn label_of(media_type: &str) -> Option<bool> {
    match media_type {
        "real" => Some(false),
        "synthetic" | "semisynthetic" => Some(true),
        _ => None,
    }
}

/// `process_model_output` plus `Metrics.update`'s choice of P(synthetic): one logit is a
/// sigmoid (`p > 0.5`), two or three a softmax (two: argmax; three: real only when class 0
/// wins), all in float32 as numpy computes them. Returns (predicted synthetic, P(synthetic)),
/// or `None` for an output gasbench cannot use: a length other than 1 to 3, or a non-finite
/// logit (whose probabilities would be NaN and poison the pooled Brier score; the sample is
/// recorded as an inference error instead).
pub fn prediction(logits: &[f32]) -> Option<(bool, f64)> {
    if logits.iter().any(|v| !v.is_finite()) {
        return None;
    }
    match logits.len() {
        1 => {
            let p = 1.0f32 / (1.0 + (-logits[0]).exp());
            Some((p > 0.5, p as f64))
        }
        2 | 3 => {
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            let probs: Vec<f32> = exp.iter().map(|e| e / sum).collect();
            // numpy's argmax: the first maximum.
            let argmax =
                probs.iter().enumerate().fold(0, |best, (i, p)| if *p > probs[best] { i } else { best });
            if logits.len() == 2 {
                Some((argmax == 1, probs[1] as f64))
            } else {
                Some((argmax != 0, (1.0f32 - probs[0]) as f64))
            }
        }
        _ => None,
    }
}

/// gasbench's per-dataset sample caps (`calculate_weighted_dataset_sampling`): datasets whose
/// name contains "gasstation" weigh `gasstation_weight`, caps clamped to [100, 2000] (regular) and
/// [500, 10000] (gasstation), minimums shrunk to an even share on small budgets.
pub fn dataset_caps(names: &[&str], target_total: usize, gasstation_weight: f64) -> Vec<usize> {
    const REGULAR_MIN: usize = 100;
    const REGULAR_MAX: usize = 2000;
    const GS_MIN: usize = 500;
    const GS_MAX: usize = 10000;
    if names.is_empty() {
        return Vec::new();
    }
    let is_gs: Vec<bool> = names.iter().map(|n| n.to_lowercase().contains("gasstation")).collect();
    let n_gs = is_gs.iter().filter(|g| **g).count();
    let n_regular = names.len() - n_gs;
    if n_gs == 0 {
        let cap = (target_total / names.len()).min(REGULAR_MAX);
        return vec![cap; names.len()];
    }
    let total_weight = n_regular as f64 + n_gs as f64 * gasstation_weight;
    let per_unit = target_total as f64 / total_weight;
    let regular_cap = per_unit as usize;
    let gs_cap = (per_unit * gasstation_weight) as usize;
    let even_share = (target_total / (n_regular + n_gs)).max(1);
    let regular_min = REGULAR_MIN.min(even_share);
    let gs_min = GS_MIN.min(((even_share as f64 * gasstation_weight) as usize).max(1));
    let regular_cap = REGULAR_MAX.min(regular_min.max(regular_cap));
    let gs_cap = GS_MAX.min(gs_min.max(gs_cap));
    is_gs.iter().map(|g| if *g { gs_cap } else { regular_cap }).collect()
}

/// The provenance class of a dataset (`derive_provenance_weights`): holdout, gasstation, public.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Provenance {
    Public,
    Holdout,
    Gasstation,
}

pub fn provenance(dataset: &str) -> Provenance {
    if dataset.contains("-holdout-") {
        Provenance::Holdout
    } else if dataset.contains("gasstation") {
        Provenance::Gasstation
    } else {
        Provenance::Public
    }
}

/// Sample weights with each provenance class's share of the total (`public = 1 - holdout -
/// gasstation`): `w_c = share_c / Σ shares present · N / n_c`, so the mean weight is 1.
pub fn provenance_weights(datasets: &[&str], holdout_share: f64, gasstation_share: f64) -> Vec<f64> {
    let classes: Vec<Provenance> = datasets.iter().map(|d| provenance(d)).collect();
    let share = |c: Provenance| match c {
        Provenance::Public => 1.0 - holdout_share - gasstation_share,
        Provenance::Holdout => holdout_share,
        Provenance::Gasstation => gasstation_share,
    };
    let count = |c: Provenance| classes.iter().filter(|x| **x == c).count();
    let present: f64 = [Provenance::Public, Provenance::Holdout, Provenance::Gasstation]
        .into_iter()
        .filter(|c| count(*c) > 0)
        .map(share)
        .sum();
    let n = classes.len() as f64;
    classes
        .iter()
        .map(|c| if present > 0.0 { share(*c) / present * n / count(*c) as f64 } else { 1.0 })
        .collect()
}

/// One scored sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub label: bool,
    pub predicted: bool,
    pub p_synthetic: f64,
    pub weight: f64,
}

/// The pooled metrics of one modality run (`compute_metrics_from_df`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub samples: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub binary_mcc: f64,
    pub binary_brier: f64,
    pub binary_cross_entropy: f64,
    pub sn34_score: f64,
}

/// Pools samples into gasbench's metrics. `weighted_accuracy`: accuracy as `np.average` with the
/// sample weights (when provenance weights are on) rather than the plain mean.
pub fn summarize(samples: &[Scored], weighted_accuracy: bool) -> Summary {
    let labels: Vec<bool> = samples.iter().map(|s| s.label).collect();
    let preds: Vec<bool> = samples.iter().map(|s| s.predicted).collect();
    let probs: Vec<f64> = samples.iter().map(|s| s.p_synthetic).collect();
    let weights: Vec<f64> = samples.iter().map(|s| s.weight).collect();
    let correct = samples.iter().filter(|s| s.label == s.predicted).count();
    let accuracy = if samples.is_empty() {
        0.0
    } else if weighted_accuracy {
        let (num, den) = samples.iter().fold((0.0, 0.0), |(n, d), s| {
            (n + if s.label == s.predicted { s.weight } else { 0.0 }, d + s.weight)
        });
        if den > 0.0 { num / den } else { 0.0 }
    } else {
        correct as f64 / samples.len() as f64
    };
    let mcc = binary_mcc(&confusion(&preds, &labels, &weights));
    let b = brier(&probs, &labels, &weights);
    Summary {
        samples: samples.len(),
        correct,
        accuracy,
        binary_mcc: mcc,
        binary_brier: b,
        binary_cross_entropy: cross_entropy(&probs, &labels, &weights),
        sn34_score: sn34_score(mcc, b),
    }
}

/// Weighted binary cross-entropy of P(synthetic), clipped to [1e-7, 1 - 1e-7].
fn cross_entropy(p: &[f64], y: &[bool], w: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for ((&p, &y), &w) in p.iter().zip(y).zip(w) {
        let p = p.clamp(1e-7, 1.0 - 1e-7);
        num += w * -(if y { p.ln() } else { (1.0 - p).ln() });
        den += w;
    }
    if den == 0.0 { 0.0 } else { num / den }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_follow_gasbench() {
        assert_eq!(prediction(&[0.0]).map(|p| p.0), Some(false)); // sigmoid(0) = 0.5, not > 0.5
        assert_eq!(prediction(&[1.0, 1.0]).map(|p| p.0), Some(false)); // tie: first maximum
        assert_eq!(prediction(&[0.0, 2.0, 1.0]).map(|p| p.0), Some(true));
        assert_eq!(prediction(&[3.0, 2.0, 2.5]).map(|p| p.0), Some(false));
        assert_eq!(prediction(&[1.0, 2.0, 3.0, 4.0]), None);
        assert_eq!(prediction(&[f32::NAN]), None);
        assert_eq!(prediction(&[f32::INFINITY, 0.0]), None);
        let (_, p) = prediction(&[0.0, 0.0, 0.0]).unwrap();
        assert!((p - 2.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn caps_match_the_worked_examples() {
        // 171 image datasets, one gasstation, full mode (55000): 314 / 1571.
        let mut names: Vec<String> = (0..170).map(|i| format!("d{i}")).collect();
        names.push("gasstation-images".into());
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let caps = dataset_caps(&refs, 55000, 5.0);
        assert_eq!((caps[0], caps[170]), (314, 1571));
        // 106 audio datasets, no gasstation, full (37000): 349 each.
        let audio: Vec<&str> = refs[..106].to_vec();
        assert!(dataset_caps(&audio, 37000, 5.0).iter().all(|c| *c == 349));
    }

    #[test]
    fn provenance_weights_average_one() {
        let d = ["a", "b", "x-holdout-1234", "gasstation-v4", "gasstation-v4"];
        let w = provenance_weights(&d, 0.3, 0.2);
        assert!((w.iter().sum::<f64>() / 5.0 - 1.0).abs() < 1e-12);
        assert!((w[2] - 0.3 * 5.0).abs() < 1e-12);
        assert!((w[0] - 0.5 * 5.0 / 2.0).abs() < 1e-12);
    }
}
