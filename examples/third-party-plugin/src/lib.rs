//! `logreg-probe`: a third-party arena plugin.
//!
//! Task kind `logistic-regression`. The submission is a directory with `model.json`:
//! `{"weights": [w1, …, wd], "bias": b}`. Each sample is `{"features": [x1, …, xd], "label": 0|1}`.
//! The raw score is the mean binary cross-entropy (lower is better), with probabilities
//! clipped to `[eps, 1 - eps]`; metrics add accuracy at `threshold`. Per-sample scores are the
//! per-sample losses. The computation is deterministic: samples are summed in order.

use std::collections::BTreeMap;

use arena_plugin_api::*;
use serde::Deserialize;
use serde_json::json;

pub struct LogRegProbe;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Probability clipping, as sklearn's log_loss used to do.
    #[serde(default = "default_eps")]
    eps: f64,
    /// Decision threshold for accuracy.
    #[serde(default = "default_threshold")]
    threshold: f64,
}

fn default_eps() -> f64 {
    1e-15
}
fn default_threshold() -> f64 {
    0.5
}

#[derive(Deserialize)]
struct Model {
    weights: Vec<f64>,
    bias: f64,
}

impl Plugin for LogRegProbe {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "logreg-probe".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: String::new(),
            tasks: vec![TaskKindInfo {
                name: "logistic-regression".into(),
                description: "Mean log-loss and accuracy of a submitted logistic-regression model".into(),
                devices: vec![DeviceKind::Cpu],
                params_schema: json!({
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "eps": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5, "default": 1e-15},
                        "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}
                    }
                }),
            }],
        }
    }

    fn create_task(spec: TaskSpec) -> Result<Box<dyn EvalTask>, PluginError> {
        if spec.kind != "logistic-regression" {
            return Err(PluginError::invalid_parameters(format!("unknown task kind `{}`", spec.kind)));
        }
        let p: Params = parse_params(&spec.params)?;
        if !(p.eps > 0.0 && p.eps < 0.5) {
            return Err(PluginError::invalid_parameters("eps: must be in (0, 0.5)"));
        }
        if !(0.0..=1.0).contains(&p.threshold) {
            return Err(PluginError::invalid_parameters("threshold: must be in [0, 1]"));
        }
        Ok(Box::new(p))
    }
}

impl EvalTask for Params {
    fn evaluate(&mut self, req: &EvalRequest, progress: &dyn Progress) -> Result<EvalOutput, PluginError> {
        let path = req.submission.path.join("model.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| PluginError::invalid_submission(format!("{}: {e}", path.display())))?;
        let model: Model = serde_json::from_str(&text)
            .map_err(|e| PluginError::invalid_submission(format!("{}: {e}", path.display())))?;
        if req.samples.is_empty() {
            return Err(PluginError::invalid_parameters("no samples to evaluate on"));
        }
        let n = req.samples.len();
        let mut losses = Vec::with_capacity(n);
        let mut correct = 0usize;
        for (i, s) in req.samples.iter().enumerate() {
            if progress.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let x: Vec<f64> = serde_json::from_value(s.data["features"].clone())
                .map_err(|e| PluginError::invalid_parameters(format!("sample {i}: features: {e}")))?;
            let y = s.data["label"]
                .as_u64()
                .filter(|&y| y <= 1)
                .ok_or_else(|| PluginError::invalid_parameters(format!("sample {i}: label must be 0 or 1")))?;
            if x.len() != model.weights.len() {
                return Err(PluginError::invalid_submission(format!(
                    "model has {} weights, sample {i} has {} features",
                    model.weights.len(),
                    x.len()
                )));
            }
            let z = model.bias + model.weights.iter().zip(&x).map(|(w, v)| w * v).sum::<f64>();
            let p = (1.0 / (1.0 + (-z).exp())).clamp(self.eps, 1.0 - self.eps);
            let loss = if y == 1 { -p.ln() } else { -(1.0 - p).ln() };
            losses.push(loss);
            if (p >= self.threshold) == (y == 1) {
                correct += 1;
            }
            progress.report(i as u64 + 1, n as u64, "scoring samples");
        }
        let mean = losses.iter().sum::<f64>() / n as f64;
        let metrics = BTreeMap::from([
            ("log_loss".to_string(), mean),
            ("accuracy".to_string(), correct as f64 / n as f64),
        ]);
        Ok(EvalOutput { raw_score: mean, metrics, per_sample: losses, details: json!({"samples": n}) })
    }
}

export_plugin!(LogRegProbe);
