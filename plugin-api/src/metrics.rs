//! Classification metrics with the exact arithmetic of the reference subnets, for plugins that
//! report them (gasbench SN34: binary MCC on the weighted confusion matrix, weighted Brier).
//! Sums run left to right over the samples, as the reference's Python does.

/// The weighted confusion matrix of a binary classifier (positive = synthetic).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Confusion {
    pub tp: f64,
    pub tn: f64,
    pub fp: f64,
    pub fn_: f64,
}

/// Weighted confusion matrix of predictions against labels.
pub fn confusion(predicted: &[bool], labels: &[bool], weights: &[f64]) -> Confusion {
    let mut c = Confusion::default();
    for ((&p, &y), &w) in predicted.iter().zip(labels).zip(weights) {
        match (p, y) {
            (true, true) => c.tp += w,
            (false, false) => c.tn += w,
            (true, false) => c.fp += w,
            (false, true) => c.fn_ += w,
        }
    }
    c
}

/// Matthews correlation coefficient; 0 when any marginal is empty.
pub fn binary_mcc(c: &Confusion) -> f64 {
    let denom = ((c.tp + c.fp) * (c.tp + c.fn_) * (c.tn + c.fp) * (c.tn + c.fn_)).sqrt();
    if denom == 0.0 { 0.0 } else { (c.tp * c.tn - c.fp * c.fn_) / denom }
}

/// Weighted Brier score of P(synthetic), probabilities clipped to [1e-7, 1 - 1e-7]; 0.25 (the
/// score of a constant 0.5) when there are no samples.
pub fn brier(probabilities: &[f64], labels: &[bool], weights: &[f64]) -> f64 {
    let mut num = 0.0;
    let mut den = 0.0;
    for ((&p, &y), &w) in probabilities.iter().zip(labels).zip(weights) {
        let d = p.clamp(1e-7, 1.0 - 1e-7) - if y { 1.0 } else { 0.0 };
        num += w * (d * d);
        den += w;
    }
    if den == 0.0 { 0.25 } else { num / den }
}

/// gasbench's default `sn34_score` ("geomean"): `sqrt(max(1e-12, mcc_norm^1.2 * brier_norm^1.8))`
/// with `mcc_norm = clamp((mcc + 1) / 2, 0, 1)` and `brier_norm = max(0, (0.25 - brier) / 0.25)`.
pub fn sn34_score(mcc: f64, brier: f64) -> f64 {
    let mcc_norm = ((mcc + 1.0) / 2.0).clamp(0.0, 1.0).powf(1.2);
    let brier_norm = ((0.25 - brier) / 0.25).max(0.0).powf(1.8);
    (mcc_norm * brier_norm).max(1e-12).powf(0.5).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_inverted_classifiers() {
        let y = [true, false, true, false];
        let w = [1.0; 4];
        assert_eq!(binary_mcc(&confusion(&y, &y, &w)), 1.0);
        let inv: Vec<bool> = y.iter().map(|b| !b).collect();
        assert_eq!(binary_mcc(&confusion(&inv, &y, &w)), -1.0);
        assert_eq!(binary_mcc(&confusion(&[true; 4], &y, &w)), 0.0);
        assert_eq!(brier(&[], &[], &[]), 0.25);
        let p = [1.0, 0.0, 1.0, 0.0];
        assert!(brier(&p, &y, &w) < 1e-13);
        assert!((sn34_score(1.0, 0.0) - 1.0).abs() < 1e-15);
        assert!((sn34_score(-1.0, 1.0) - 1e-6).abs() < 1e-18);
    }
}
