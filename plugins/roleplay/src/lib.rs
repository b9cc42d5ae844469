//! `roleplay`: SN11's (Dippy's) roleplay-LLM scoring as an arena plugin, on candle through
//! `arena-llm`, CPU and CUDA.
//!
//! A submission is a model directory in Hugging Face layout plus the name of one of Dippy's ten
//! chat templates: the commitment's `chat_template` (SN11 commits it), or `model.chat_template`
//! in the task's parameters. Samples are Dippy's records (`system_prompt` + `messages`), from
//! JSON, JSONL or Parquet files or the hub cache; PersonaHub's augmented records for `coherence`.
//!
//! Task kinds ([`data`] holds the sample rules, [`templates`] the templates):
//! - `roleplay_eval` ([`eval`]): the probability of the reference reply (1–4-gram score over
//!   top-k-truncated probabilities) and creativity (entropy), metrics `quality` and `creativity`
//!   of one run;
//! - `vibe` ([`vibe`]): the length match of greedy replies;
//! - `coherence` ([`coherence`]): multi-turn conversations with a user simulator, judged 1/0;
//! - `judge` ([`compare`]): an LLM judge's comparison of the model's reply with the original;
//! - `latency` ([`latency`]): timed forward passes (not deterministic).
//!
//! Every random choice derives from the task's seed (Python's `random` where the reference uses
//! it, so the draws are the reference's algorithm on arena's seed).

pub mod coherence;
pub mod compare;
pub mod data;
pub mod eval;
pub mod judge;
pub mod latency;
pub mod lm;
pub mod templates;
pub mod tiny;
pub mod vibe;

use arena_plugin_api::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::judge::{Judge, JudgeSpec};
use crate::lm::{Chat, Lm};

pub struct RoleplayPlugin;

pub const ROLEPLAY_EVAL: &str = "roleplay_eval";
pub const VIBE: &str = "vibe";
pub const COHERENCE: &str = "coherence";
pub const JUDGE: &str = "judge";
pub const LATENCY: &str = "latency";

/// How the miner's model is loaded and prompted (`params.model`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelOptions {
    /// `f32`, `bf16`, `f16`, or `auto` (f32 on the CPU; the checkpoint's dtype, else bf16, on CUDA).
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// One of Dippy's template names, for every submission; default: the submission's
    /// commitment (`chat_template` in its metadata).
    #[serde(default)]
    pub chat_template: Option<String>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions { dtype: default_dtype(), chat_template: None }
    }
}

fn default_dtype() -> String {
    "auto".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalParams {
    /// Records are dropped once the characters of the messages before one exceed this
    /// (SN11: 4096 - 200 - 200).
    #[serde(default = "default_eval_input")]
    pub max_input_len: usize,
    /// Target tokens: the reply plus EOS is cut to this and padded to it (SN11: 200).
    #[serde(default = "default_gen")]
    pub max_generation_length: usize,
    /// The window is `min(max_position_embeddings, this)` (SN11: 4096).
    #[serde(default = "default_seq")]
    pub max_seq_len: usize,
    /// Logits outside the top this many are dropped before the softmax (SN11: 10).
    #[serde(default = "default_topk")]
    pub vocab_truncation: usize,
    /// A token outside the top this many of the truncated softmax scores 1e-9 (SN11: 10).
    #[serde(default = "default_topk")]
    pub prob_top_k: usize,
    /// Samples per scoring batch: the n-gram score and creativity are per batch, then averaged
    /// (SN11: 2 per GPU).
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// Samples drawn (in the seeded order) from the records kept; default: all.
    #[serde(default)]
    pub samples: Option<usize>,
    #[serde(default)]
    pub model: ModelOptions,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LengthReference {
    /// The reply with the EOS string appended: what the reference's tuple unpacking measures.
    #[default]
    Target,
    /// The last user message: what the reference's variable names say.
    LastUserMessage,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VibeParams {
    /// SN11: 2048 - 200 - 200 characters.
    #[serde(default = "default_vibe_input")]
    pub max_input_len: usize,
    /// The largest budget, in new tokens (SN11: 200).
    #[serde(default = "default_gen")]
    pub max_new_tokens: usize,
    /// The budget is `(1 + leeway)` times the batch's longest reference, in characters (SN11: 0.5).
    #[serde(default = "default_leeway")]
    pub leeway: f64,
    /// Samples sharing one budget (SN11: 8).
    #[serde(default = "default_budget_batch")]
    pub budget_batch: usize,
    /// `exp(-steepness * |Δ| / len)` (SN11: 2).
    #[serde(default = "default_steepness")]
    pub length_diff_penalty_steepness: f64,
    #[serde(default)]
    pub length_reference: LengthReference,
    /// Samples drawn (SN11: 128); default: all.
    #[serde(default)]
    pub samples: Option<usize>,
    #[serde(default)]
    pub model: ModelOptions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoherenceParams {
    /// The judge of finished conversations (SN11: `openai/gpt-4o-2024-11-20` on OpenRouter).
    pub judge: JudgeSpec,
    /// Who writes the user's turns (SN11: the same model as the judge).
    pub user_simulator: JudgeSpec,
    /// Turns per conversation: `randint(min_turns, max_turns)` (SN11: 2, 4).
    #[serde(default = "default_min_turns")]
    pub min_turns: usize,
    #[serde(default = "default_max_turns")]
    pub max_turns: usize,
    /// The model's reply length, in tokens (SN11: 1024).
    #[serde(default = "default_coherence_tokens")]
    pub max_new_tokens: usize,
    /// SN11: 0.5.
    #[serde(default = "default_sim_temperature")]
    pub simulator_temperature: f64,
    #[serde(default = "default_sim_tokens")]
    pub simulator_max_new_tokens: usize,
    #[serde(default = "default_judge_tokens")]
    pub judge_max_new_tokens: usize,
    /// Conversations (SN11: 256 at 2e3de7f, 128 later); default: all.
    #[serde(default)]
    pub samples: Option<usize>,
    /// More errors than this fraction of the conversations fails the run (SN11: 0.1).
    #[serde(default = "default_error_rate")]
    pub max_error_rate: f64,
    #[serde(default)]
    pub model: ModelOptions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgeParams {
    pub judge: JudgeSpec,
    /// SN11: 512; default: all.
    #[serde(default)]
    pub samples: Option<usize>,
    /// Messages kept (system included) before the cut, and the most a sample may have (SN11: 6).
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
    /// The chance a conversation is cut early (SN11: 1).
    #[serde(default = "default_cut")]
    pub cut_message_chain_early: f64,
    /// Rendered prompts longer than this are skipped (SN11: 8192).
    #[serde(default = "default_prompt_tokens")]
    pub max_prompt_tokens: usize,
    /// SN11: 8192 (within the model's window).
    #[serde(default = "default_prompt_tokens")]
    pub max_new_tokens: usize,
    /// The model's sampling temperature; default: the reference's `random() * 0.2`, drawn from
    /// the seed.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Extra stop ids; default: the reference's (gemma2: 107, mistral: 2).
    #[serde(default)]
    pub stop_token_ids: Option<Vec<u32>>,
    /// SN11's JUDGE_MAX_TOKENS: 2048.
    #[serde(default = "default_judge_answer")]
    pub judge_max_new_tokens: usize,
    #[serde(default = "default_error_rate")]
    pub max_error_rate: f64,
    #[serde(default)]
    pub model: ModelOptions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyParams {
    /// SN11: 10.
    #[serde(default = "default_passes")]
    pub passes: usize,
    /// SN11: 2.
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
    /// `min(max_position_embeddings, this)` tokens per sequence (SN11: 4096).
    #[serde(default = "default_seq")]
    pub sequence_length: usize,
    #[serde(default)]
    pub model: ModelOptions,
}

fn default_eval_input() -> usize {
    3696
}
fn default_vibe_input() -> usize {
    1648
}
fn default_gen() -> usize {
    200
}
fn default_seq() -> usize {
    4096
}
fn default_topk() -> usize {
    10
}
fn default_eval_batch() -> usize {
    2
}
fn default_leeway() -> f64 {
    0.5
}
fn default_budget_batch() -> usize {
    8
}
fn default_steepness() -> f64 {
    2.0
}
fn default_min_turns() -> usize {
    2
}
fn default_max_turns() -> usize {
    4
}
fn default_coherence_tokens() -> usize {
    1024
}
fn default_sim_temperature() -> f64 {
    0.5
}
fn default_sim_tokens() -> usize {
    256
}
fn default_judge_tokens() -> usize {
    16
}
fn default_error_rate() -> f64 {
    0.1
}
fn default_max_messages() -> usize {
    6
}
fn default_cut() -> f64 {
    1.0
}
fn default_prompt_tokens() -> usize {
    8192
}
fn default_judge_answer() -> usize {
    2048
}
fn default_passes() -> usize {
    10
}

fn schema<T: JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default()
}

enum Kind {
    Eval(EvalParams),
    Vibe(VibeParams),
    Coherence(CoherenceParams),
    Judge(JudgeParams),
    Latency(LatencyParams),
}

impl Kind {
    fn model(&self) -> &ModelOptions {
        match self {
            Kind::Eval(p) => &p.model,
            Kind::Vibe(p) => &p.model,
            Kind::Coherence(p) => &p.model,
            Kind::Judge(p) => &p.model,
            Kind::Latency(p) => &p.model,
        }
    }
}

fn check(kind: &Kind) -> Result<(), String> {
    let m = kind.model();
    if m.dtype != "auto" {
        arena_llm::parse_dtype(&m.dtype).map_err(|e| format!("model.dtype: {e}"))?;
    }
    if let Some(t) = &m.chat_template {
        templates::Template::named(t).map_err(|e| format!("model.chat_template: {e}"))?;
    }
    let positive =
        |v: usize, name: &str| if v == 0 { Err(format!("{name}: must be at least 1")) } else { Ok(()) };
    let rate = |r: f64| {
        if (0.0..=1.0).contains(&r) {
            Ok(())
        } else {
            Err("max_error_rate: must be within [0, 1]".to_string())
        }
    };
    match kind {
        Kind::Eval(p) => {
            positive(p.max_generation_length, "max_generation_length")?;
            positive(p.vocab_truncation, "vocab_truncation")?;
            positive(p.prob_top_k, "prob_top_k")?;
            positive(p.batch_size, "batch_size")?;
            if p.max_seq_len <= p.max_generation_length {
                return Err("max_seq_len: must exceed max_generation_length".into());
            }
            positive(p.samples.unwrap_or(1), "samples")?;
        }
        Kind::Vibe(p) => {
            positive(p.budget_batch, "budget_batch")?;
            if !(p.leeway.is_finite() && p.leeway >= 0.0) {
                return Err("leeway: must be a non-negative number".into());
            }
            if !(p.length_diff_penalty_steepness.is_finite() && p.length_diff_penalty_steepness > 0.0) {
                return Err("length_diff_penalty_steepness: must be positive".into());
            }
            positive(p.samples.unwrap_or(1), "samples")?;
        }
        Kind::Coherence(p) => {
            p.judge.check("judge")?;
            p.user_simulator.check("user_simulator")?;
            if p.min_turns == 0 || p.min_turns > p.max_turns {
                return Err("min_turns, max_turns: need 1 <= min_turns <= max_turns".into());
            }
            positive(p.max_new_tokens, "max_new_tokens")?;
            if !(p.simulator_temperature.is_finite() && p.simulator_temperature >= 0.0) {
                return Err("simulator_temperature: must be a non-negative number".into());
            }
            rate(p.max_error_rate)?;
            positive(p.samples.unwrap_or(1), "samples")?;
        }
        Kind::Judge(p) => {
            p.judge.check("judge")?;
            if p.max_messages < 2 {
                return Err("max_messages: must be at least 2 (the system prompt and a user turn)".into());
            }
            if !(0.0..=1.0).contains(&p.cut_message_chain_early) {
                return Err("cut_message_chain_early: must be within [0, 1]".into());
            }
            if p.temperature.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
                return Err("temperature: must be a non-negative number".into());
            }
            positive(p.max_new_tokens, "max_new_tokens")?;
            rate(p.max_error_rate)?;
            positive(p.samples.unwrap_or(1), "samples")?;
        }
        Kind::Latency(p) => {
            positive(p.passes, "passes")?;
            positive(p.batch_size, "batch_size")?;
            positive(p.sequence_length, "sequence_length")?;
        }
    }
    Ok(())
}

impl Plugin for RoleplayPlugin {
    fn info() -> PluginInfo {
        let devices = if cfg!(feature = "cuda") {
            vec![DeviceKind::Cpu, DeviceKind::Cuda]
        } else {
            vec![DeviceKind::Cpu]
        };
        let kind = |name: &str, description: &str, params_schema| TaskKindInfo {
            name: name.into(),
            description: description.into(),
            devices: devices.clone(),
            params_schema,
        };
        PluginInfo {
            name: "roleplay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: String::new(),
            tasks: vec![
                kind(
                    ROLEPLAY_EVAL,
                    "SN11's eval score and creativity in one pass: 1-4-gram probability of the reference reply \
                     under top-k truncation (metric `quality`, the raw score) and the truncated distribution's \
                     scaled entropy (metric `creativity`).",
                    schema::<EvalParams>(),
                ),
                kind(
                    VIBE,
                    "SN11's vibe score: greedy replies, exp(-2 |len difference| / len) in characters against the \
                     reference's length budget.",
                    schema::<VibeParams>(),
                ),
                kind(
                    COHERENCE,
                    "SN11's coherence: 2-4 turn conversations with a user simulator, judged coherent (1) or not (0) \
                     by an LLM judge (local model or OpenAI-compatible endpoint); judge errors are excluded up to \
                     max_error_rate.",
                    schema::<CoherenceParams>(),
                ),
                kind(
                    JUDGE,
                    "SN11's judge score (V-C): replies to cut conversations compared with the originals by an LLM \
                     judge on realism, entertainment and coherency; the win rate of `generated` over valid verdicts.",
                    schema::<JudgeParams>(),
                ),
                kind(
                    LATENCY,
                    "SN11's latency: mean milliseconds of forward passes on random ids (latency_score = \
                     1 - 0.95 ms / 10000). Timing is not deterministic: validators will differ; weight it 0 or \
                     leave it out where scores must be bit-identical.",
                    schema::<LatencyParams>(),
                ),
            ],
        }
    }

    fn create_task(spec: TaskSpec) -> Result<Box<dyn EvalTask>, PluginError> {
        let kind = match spec.kind.as_str() {
            ROLEPLAY_EVAL => Kind::Eval(parse_params(&spec.params)?),
            VIBE => Kind::Vibe(parse_params(&spec.params)?),
            COHERENCE => Kind::Coherence(parse_params(&spec.params)?),
            JUDGE => Kind::Judge(parse_params(&spec.params)?),
            LATENCY => Kind::Latency(parse_params(&spec.params)?),
            other => return Err(PluginError::invalid_parameters(format!("unknown task kind `{other}`"))),
        };
        check(&kind).map_err(PluginError::invalid_parameters)?;
        Ok(Box::new(RoleplayTask { kind, device: spec.device, seed: spec.seed, judges: None }))
    }
}

struct RoleplayTask {
    kind: Kind,
    device: Device,
    seed: u64,
    /// The judge and the user simulator, opened on first use and kept for later submissions.
    judges: Option<(Judge, Option<Judge>)>,
}

/// The request's samples as Dippy records; rows that are not records are reported, not scored.
pub(crate) fn records_of(req: &EvalRequest) -> Result<(Vec<data::Record>, Vec<String>), PluginError> {
    if req.samples.is_empty() {
        return Err(PluginError::invalid_parameters(
            "the dataset is empty (Dippy's \"incoherent\" zeros came from an empty dataset: arena refuses to score on none)",
        ));
    }
    let mut records = Vec::with_capacity(req.samples.len());
    let mut bad = Vec::new();
    for (i, s) in req.samples.iter().enumerate() {
        match data::record(&s.data) {
            Ok(r) => records.push(r),
            Err(e) => bad.push(format!("row {i}: {e}")),
        }
    }
    if records.is_empty() {
        return Err(PluginError::invalid_parameters(format!(
            "no row of the dataset is a Dippy record ({} rows; {})",
            req.samples.len(),
            bad.first().map_or("", String::as_str)
        )));
    }
    Ok((records, bad))
}

impl RoleplayTask {
    fn open_judges(&mut self) -> Result<(), PluginError> {
        if self.judges.is_some() {
            return Ok(());
        }
        let open = |s: &JudgeSpec| Judge::open(s, self.device).map_err(PluginError::internal);
        self.judges = match &self.kind {
            Kind::Coherence(p) => Some((open(&p.judge)?, Some(open(&p.user_simulator)?))),
            Kind::Judge(p) => Some((open(&p.judge)?, None)),
            _ => None,
        };
        Ok(())
    }
}

impl EvalTask for RoleplayTask {
    fn evaluate(
        &mut self,
        request: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let opts = self.kind.model().clone();
        let chat = match self.kind {
            Kind::Latency(_) => Chat::None,
            _ => Chat::Dippy(lm::template_name(&opts, &request.submission)?.to_string()),
        };
        // Judges first: a missing key or judge model fails before the miner's model is loaded.
        self.open_judges()?;
        let lm = Lm::load(&request.submission.path, chat, &opts, self.device)?;
        let seed = self.seed;
        match (&self.kind, &self.judges) {
            (Kind::Eval(p), _) => eval::run(p, &lm, request, seed, progress),
            (Kind::Vibe(p), _) => vibe::run(p, &lm, request, seed, progress),
            (Kind::Coherence(p), Some((judge, Some(sim)))) => {
                coherence::run(p, &lm, judge, sim, request, seed, progress)
            }
            (Kind::Judge(p), Some((judge, _))) => compare::run(p, &lm, judge, request, seed, progress),
            (Kind::Latency(p), _) => latency::run(p, &lm, seed, progress),
            _ => Err(PluginError::internal("the task's judges were not opened")),
        }
    }
}

export_plugin!(RoleplayPlugin);
