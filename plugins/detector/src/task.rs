//! The `image`, `video` and `audio` tasks: parameters, the per-dataset draw, batched inference,
//! pooled metrics.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

use arena_plugin_api::pyrandom::PyRandom;
use arena_plugin_api::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::metrics::{self, Scored};
use crate::{Detector, DetectorError, Modality, burn_device, preprocess};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The benchmark: every dataset capped as gasbench caps it (`target_samples`), else all.
    #[default]
    Full,
    /// The entrance exam: a small seeded sample per dataset, a pass mark on accuracy, a
    /// wall-clock limit.
    Exam,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExamParams {
    /// Samples drawn per dataset (gasbench `--small` caches about 100 per dataset).
    #[serde(default = "default_exam_samples")]
    pub samples_per_dataset: usize,
    /// Accuracy needed to pass (SN34: 0.8).
    #[serde(default = "default_pass")]
    pub pass_accuracy: f64,
    /// Wall-clock limit in seconds (SN34: 5100); running out fails the exam.
    #[serde(default = "default_exam_time")]
    pub time_limit_s: f64,
}

impl Default for ExamParams {
    fn default() -> Self {
        ExamParams {
            samples_per_dataset: default_exam_samples(),
            pass_accuracy: default_pass(),
            time_limit_s: default_exam_time(),
        }
    }
}

fn default_exam_samples() -> usize {
    100
}
fn default_pass() -> f64 {
    0.8
}
fn default_exam_time() -> f64 {
    5100.0
}
fn default_gs_weight() -> f64 {
    5.0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreMetric {
    Sn34Score,
    Accuracy,
    BinaryMcc,
    BinaryBrier,
    BinaryCrossEntropy,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectParams {
    #[serde(default)]
    pub mode: Mode,
    /// Full mode: the modality's total sample budget, split into per-dataset caps as gasbench
    /// does (its full image benchmark: 55000). Absent: every sample.
    #[serde(default)]
    pub target_samples: Option<usize>,
    /// Weight of datasets named "gasstation" in the caps (gasbench: 5).
    #[serde(default = "default_gs_weight")]
    pub gasstation_weight: f64,
    #[serde(default)]
    pub exam: ExamParams,
    /// Score composition: the share of the total weight given to holdout datasets (named
    /// `-holdout-`) and gasstation datasets; the rest goes to public ones. Absent: unweighted.
    #[serde(default)]
    pub holdout_share: Option<f64>,
    #[serde(default)]
    pub gasstation_share: Option<f64>,
    /// Samples per forward pass (default gasbench's: 32 images, 4 videos, 16 audio clips).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// The raw score: default sn34_score (full) or accuracy (exam).
    #[serde(default)]
    pub metric: Option<ScoreMetric>,
}

impl DetectParams {
    fn check(&self) -> Result<(), DetectorError> {
        let bad = |m: &str| Err(DetectorError::Parameters(m.into()));
        if self.batch_size.is_some_and(|b| b == 0 || b > 4096) {
            return bad("batch_size: must be within 1..=4096");
        }
        if !(self.gasstation_weight.is_finite() && self.gasstation_weight > 0.0) {
            return bad("gasstation_weight: must be positive");
        }
        if self.exam.samples_per_dataset == 0 {
            return bad("exam.samples_per_dataset: must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.exam.pass_accuracy) {
            return bad("exam.pass_accuracy: must be within [0, 1]");
        }
        if !(self.exam.time_limit_s.is_finite() && self.exam.time_limit_s > 0.0) {
            return bad("exam.time_limit_s: must be positive");
        }
        let h = self.holdout_share.unwrap_or(0.0);
        let g = self.gasstation_share.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&h) || !(0.0..=1.0).contains(&g) || h + g > 1.0 {
            return bad("holdout_share, gasstation_share: each within [0, 1], together at most 1");
        }
        Ok(())
    }

    fn metric(&self) -> ScoreMetric {
        self.metric.unwrap_or(match self.mode {
            Mode::Full => ScoreMetric::Sn34Score,
            Mode::Exam => ScoreMetric::Accuracy,
        })
    }
}

pub fn create(spec: TaskSpec) -> Result<Box<dyn EvalTask>, PluginError> {
    let modality = match spec.kind.as_str() {
        crate::IMAGE => Modality::Image,
        crate::VIDEO => Modality::Video,
        crate::AUDIO => Modality::Audio,
        other => {
            return Err(PluginError::invalid_parameters(format!(
                "unknown task kind `{other}` (known: image, video, audio)"
            )));
        }
    };
    let params: DetectParams = parse_params(&spec.params)?;
    params.check()?;
    burn_device(spec.device)?;
    Ok(Box::new(DetectTask { params, modality, device: spec.device, seed: spec.seed }))
}

struct DetectTask {
    params: DetectParams,
    modality: Modality,
    device: Device,
    seed: u64,
}

/// One preprocessed sample.
enum Input {
    Image(Vec<u8>),
    Video(Vec<Vec<u8>>),
    Audio(Vec<f32>),
}

/// Reads and preprocesses one sample for `detector`'s input.
fn load(detector: &Detector, modality: Modality, path: &std::path::Path) -> Result<Input, DetectorError> {
    let cfg = &detector.config;
    let [h, w] = cfg.input_size();
    Ok(match modality {
        Modality::Image => Input::Image(preprocess::to_chw(&preprocess::resize_shortest_edge(
            &preprocess::decode_image(path)?,
            h,
            w,
        ))),
        Modality::Video => Input::Video(
            preprocess::load_frames(path, cfg.num_frames(), cfg.preprocessing.frame_rate)?
                .iter()
                .map(|f| preprocess::to_chw(&preprocess::resize_shortest_edge(f, h, w)))
                .collect(),
        ),
        Modality::Audio => Input::Audio(preprocess::load_audio(
            path,
            cfg.preprocessing.sample_rate.unwrap_or(16000),
            cfg.audio_samples(),
        )?),
    })
}

/// Logits of a batch of inputs of one modality.
fn infer(detector: &Detector, batch: Vec<Input>) -> Result<Vec<Vec<f32>>, DetectorError> {
    let mut images = Vec::new();
    let mut videos = Vec::new();
    let mut clips = Vec::new();
    for input in batch {
        match input {
            Input::Image(i) => images.push(i),
            Input::Video(v) => videos.push(v),
            Input::Audio(a) => clips.push(a),
        }
    }
    if !images.is_empty() {
        detector.image_logits(&images)
    } else if !videos.is_empty() {
        detector.video_logits(&videos)
    } else {
        detector.audio_logits(&clips)
    }
}

/// One evaluation sample: its media file, dataset, label and optional weight.
#[derive(Clone, Debug)]
struct Item {
    path: PathBuf,
    dataset: String,
    media_type: String,
    label: bool,
    weight: Option<f64>,
}

/// The sample's media, dataset and label; `None` for a sample of another modality.
fn item(i: usize, s: &Sample, modality: Modality) -> Result<Option<Item>, DetectorError> {
    let bad = |m: String| DetectorError::Parameters(format!("sample {i}: {m}"));
    let field = |k: &str| s.data.get(k).and_then(Value::as_str).map(str::to_string);
    if field("modality").is_some_and(|m| m != modality.as_str()) {
        return Ok(None);
    }
    let dataset = field("dataset").ok_or_else(|| bad("no `dataset` name".into()))?;
    let media_type = field("media_type").ok_or_else(|| bad("no `media_type`".into()))?;
    let label = metrics::label_of(&media_type)
        .ok_or_else(|| bad(format!("media_type `{media_type}` is not real, synthetic or semisynthetic")))?;
    let path = match (s.files.first(), field("path")) {
        (Some(f), _) => f.clone(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => return Err(bad("no media file".into())),
    };
    let weight = match s.data.get("weight") {
        None | Some(Value::Null) => None,
        Some(w) => match w.as_f64() {
            Some(w) if w.is_finite() && w >= 0.0 => Some(w),
            _ => return Err(bad(format!("weight {w} is not a finite non-negative number"))),
        },
    };
    Ok(Some(Item { path, dataset, media_type, label, weight }))
}

/// gasbench's draw: per dataset (in order of first appearance), `random.Random(seed).shuffle`
/// of its samples, then the first `cap`.
fn draw(items: Vec<Item>, caps: &dyn Fn(&[&str]) -> Vec<usize>, seed: u64) -> Vec<Item> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for it in items {
        if !groups.contains_key(&it.dataset) {
            order.push(it.dataset.clone());
        }
        groups.entry(it.dataset.clone()).or_default().push(it);
    }
    let names: Vec<&str> = order.iter().map(String::as_str).collect();
    let caps = caps(&names);
    let mut out = Vec::new();
    for (name, cap) in order.iter().zip(caps) {
        let mut g = groups.remove(name).unwrap_or_default();
        PyRandom::new(seed).shuffle(&mut g);
        g.truncate(cap);
        out.extend(g);
    }
    out
}

#[derive(Default, Serialize)]
struct DatasetReport {
    media_type: String,
    correct: usize,
    total: usize,
    errors: usize,
    accuracy: f64,
    predictions: BTreeMap<&'static str, usize>,
}

impl EvalTask for DetectTask {
    fn evaluate(
        &mut self,
        request: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let started = Instant::now();
        let p = &self.params;
        let modality = self.modality;
        let items: Vec<Item> = request
            .samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| item(i, s, modality).transpose())
            .collect::<Result<_, _>>()?;
        let drawn = match p.mode {
            Mode::Exam => draw(items, &|n: &[&str]| vec![p.exam.samples_per_dataset; n.len()], self.seed),
            Mode::Full => match p.target_samples {
                Some(t) => {
                    draw(items, &|n: &[&str]| metrics::dataset_caps(n, t, p.gasstation_weight), self.seed)
                }
                None => draw(items, &|n: &[&str]| vec![usize::MAX; n.len()], self.seed),
            },
        };
        if drawn.is_empty() {
            return Err(PluginError::invalid_parameters(format!("no {modality} samples to evaluate")));
        }

        let device = burn_device(self.device)?;
        let detector = Detector::load(&request.submission.path, &device)?;
        if detector.config.modality != modality {
            return Err(PluginError::invalid_submission(format!(
                "model_config.yaml: modality `{}`, but this task scores {modality}",
                detector.config.modality
            )));
        }
        let batch_size = p.batch_size.unwrap_or(match modality {
            Modality::Image => 32,
            Modality::Video => 4,
            Modality::Audio => 16,
        });

        let total = drawn.len() as u64;
        let mut outcome: Vec<Option<Result<(bool, f64), String>>> = vec![None; drawn.len()];
        let mut inference_errors = 0usize;
        let mut timed_out = false;
        for (b, chunk) in drawn.chunks(batch_size).enumerate() {
            if progress.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            if p.mode == Mode::Exam && started.elapsed().as_secs_f64() > p.exam.time_limit_s {
                timed_out = true;
                break;
            }
            let base = b * batch_size;
            let mut batch = Vec::new();
            let mut slots = Vec::new();
            for (k, it) in chunk.iter().enumerate() {
                match load(&detector, modality, &it.path) {
                    Ok(input) => {
                        batch.push(input);
                        slots.push(base + k);
                    }
                    Err(e) => outcome[base + k] = Some(Err(format!("decode: {e}"))),
                }
            }
            if !batch.is_empty() {
                let run = catch_unwind(AssertUnwindSafe(|| infer(&detector, batch)));
                let result = match run {
                    Ok(Ok(logits)) => Ok(logits),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(panic) => Err(panic_message(&panic)),
                };
                match result {
                    Ok(logits) => {
                        for (slot, l) in slots.iter().zip(logits) {
                            outcome[*slot] = Some(
                                metrics::prediction(&l)
                                    .ok_or_else(|| format!("inference-failed: unusable output {l:?}")),
                            );
                        }
                    }
                    Err(e) => {
                        inference_errors += slots.len();
                        for slot in &slots {
                            outcome[*slot] = Some(Err(format!("inference-failed: {e}")));
                        }
                    }
                }
            }
            let done = (base + chunk.len()) as u64;
            progress.report(done, total, &format!("{done}/{total} {modality} samples"));
        }

        // Weights: provenance shares over the scored samples, else each sample's own `weight`
        // (default 1); accuracy is weighted whenever weights are.
        let ok_idx: Vec<usize> = (0..drawn.len()).filter(|i| matches!(outcome[*i], Some(Ok(_)))).collect();
        let by_provenance = p.holdout_share.is_some() || p.gasstation_share.is_some();
        let weighted = by_provenance || ok_idx.iter().any(|i| drawn[*i].weight.is_some());
        let weights = if by_provenance {
            let names: Vec<&str> = ok_idx.iter().map(|i| drawn[*i].dataset.as_str()).collect();
            metrics::provenance_weights(
                &names,
                p.holdout_share.unwrap_or(0.0),
                p.gasstation_share.unwrap_or(0.0),
            )
        } else {
            ok_idx.iter().map(|i| drawn[*i].weight.unwrap_or(1.0)).collect()
        };
        let scored: Vec<Scored> = ok_idx
            .iter()
            .zip(&weights)
            .map(|(i, w)| {
                let Some(Ok((predicted, p_synthetic))) = outcome[*i] else { unreachable!() };
                Scored { label: drawn[*i].label, predicted, p_synthetic, weight: *w }
            })
            .collect();

        let errors: Vec<String> = outcome
            .iter()
            .zip(&drawn)
            .filter_map(|(o, it)| match o {
                Some(Err(e)) => Some(format!("{}: {e}", it.path.display())),
                _ => None,
            })
            .collect();
        if scored.is_empty() && !timed_out {
            let first = errors.first().cloned().unwrap_or_default();
            return Err(if inference_errors > 0 {
                PluginError::invalid_submission(format!("no sample could be scored: {first}"))
            } else {
                PluginError::invalid_parameters(format!("no sample could be read: {first}"))
            });
        }
        let summary = metrics::summarize(&scored, weighted);

        let mut per_dataset: BTreeMap<String, DatasetReport> = BTreeMap::new();
        for (it, o) in drawn.iter().zip(&outcome) {
            let r = per_dataset.entry(it.dataset.clone()).or_default();
            r.media_type = it.media_type.clone();
            match o {
                Some(Ok((pred, _))) => {
                    r.total += 1;
                    r.correct += usize::from(*pred == it.label);
                    *r.predictions.entry(if *pred { "synthetic" } else { "real" }).or_default() += 1;
                }
                Some(Err(_)) => r.errors += 1,
                None => {}
            }
        }
        for r in per_dataset.values_mut() {
            r.accuracy = if r.total > 0 { r.correct as f64 / r.total as f64 } else { 0.0 };
        }

        let mut m = BTreeMap::new();
        m.insert("accuracy".into(), summary.accuracy);
        m.insert("binary_mcc".into(), summary.binary_mcc);
        m.insert("binary_brier".into(), summary.binary_brier);
        m.insert("binary_cross_entropy".into(), summary.binary_cross_entropy);
        m.insert("sn34_score".into(), summary.sn34_score);
        m.insert("samples".into(), drawn.len() as f64);
        m.insert("samples_ok".into(), scored.len() as f64);
        m.insert("samples_error".into(), errors.len() as f64);
        let mut details = json!({
            "mode": p.mode,
            "model": {
                "name": detector.config.name,
                "architecture": detector.config.model.architecture.as_str(),
                "input": detector.config.input_size(),
            },
            "per_dataset": per_dataset,
            "errors": errors.iter().take(20).collect::<Vec<_>>(),
        });
        if p.mode == Mode::Exam {
            let passed = !timed_out && summary.accuracy >= p.exam.pass_accuracy;
            m.insert("exam_passed".into(), if passed { 1.0 } else { 0.0 });
            details["exam"] = json!({
                "passed": passed,
                "accuracy": summary.accuracy,
                "pass_accuracy": p.exam.pass_accuracy,
                "timed_out": timed_out,
                "time_limit_s": p.exam.time_limit_s,
            });
        }
        let raw_score = match p.metric() {
            ScoreMetric::Sn34Score => summary.sn34_score,
            ScoreMetric::Accuracy => summary.accuracy,
            ScoreMetric::BinaryMcc => summary.binary_mcc,
            ScoreMetric::BinaryBrier => summary.binary_brier,
            ScoreMetric::BinaryCrossEntropy => summary.binary_cross_entropy,
        };
        Ok(EvalOutput { raw_score, metrics: m, per_sample: Vec::new(), details })
    }
}

pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}
