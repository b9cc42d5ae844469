//! The task kinds: parameters, validation, and evaluation.

use std::collections::BTreeMap;
use std::path::Path;

use arena_llm::chat::{ChatTemplate, Message};
use arena_llm::generate::{GenerationConfig, generate};
use arena_llm::protocols::{self, UNSCORED, Window};
use arena_llm::{CausalLm, DType, LlmError, LoadedModel, ModelConfig, Tensor};
use arena_plugin_api::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ifeval;
use crate::sn37;
use crate::{HELDOUT_PPL, IF_EVAL, MULTIPLE_CHOICE, ModelOptions, REFERENCE_LOSS, TEXT_LOSS, WORD_SORTING};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// SN9: documents + EOS packed into windows, remainder dropped; mean of window means.
    Sn9Packed,
    /// SN37 FineWeb: one document per window, truncated and padded; pads scored.
    Sn37Padded,
    /// lm-eval-harness rolling windows: every token scored once; corpus-level sums.
    Rolling,
    /// Hugging Face strided windows over the joined corpus.
    Strided,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Left,
    Right,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The protocol's loss (mean cross-entropy in nats).
    #[default]
    Loss,
    Perplexity,
    BitsPerByte,
    NllSum,
}

/// The "reasonable output" gate SN9 and SN37 run before text loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonableOutputCheck {
    /// Tokens of the first two windows used as prompts (SN9: 100; SN37 uses the whole window).
    #[serde(default)]
    pub prompt_tokens: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextLossParams {
    pub protocol: Protocol,
    /// Window length in tokens (default: the model's max_position_embeddings, at most 4096).
    #[serde(default)]
    pub sequence_length: Option<usize>,
    /// `strided`: tokens between window starts (default: half the sequence length).
    #[serde(default)]
    pub stride: Option<usize>,
    /// Whether the tokenizer adds its special tokens (BOS) to each document. Default: true,
    /// except for `rolling` (lm-eval's default before 0.4.10: the prefix token is the only context).
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
    /// `sn37_padded`: which end of a long document is cut.
    #[serde(default = "default_side")]
    pub truncation_side: Side,
    /// `sn37_padded`: the pad id (default: config pad_token_id, else EOS).
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    /// Keep at most this many windows: Python's `random.Random(seed).shuffle` of the windows,
    /// then the first ones (SN9 keeps 50).
    #[serde(default)]
    pub max_windows: Option<usize>,
    /// `strided`: the string joining documents into one stream.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// The sample field holding the text.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// The metric reported as the raw score.
    #[serde(default)]
    pub metric: Metric,
    #[serde(default)]
    pub reasonable_output_check: Option<ReasonableOutputCheck>,
    #[serde(default)]
    pub model: ModelOptions,
}

fn default_side() -> Side {
    Side::Right
}
fn default_separator() -> String {
    "\n\n".into()
}
fn default_text_field() -> String {
    "text".into()
}
fn default_context_field() -> String {
    "context".into()
}
fn default_reference_field() -> String {
    "reference".into()
}
fn default_task_types() -> Vec<String> {
    vec!["verifiable_math".into(), "code_output_prediction".into()]
}
fn default_prompt_field() -> String {
    "prompt".into()
}
fn default_answer_field() -> String {
    "answer".into()
}
fn default_if_version() -> u8 {
    2
}
fn default_if_samples() -> usize {
    20
}
fn default_if_new_tokens() -> usize {
    200
}
fn default_if_penalty() -> f32 {
    1.2
}
fn default_challenge_field() -> String {
    "challenge".into()
}
fn default_word_samples() -> usize {
    400
}
fn default_min_words() -> usize {
    2
}
fn default_max_words() -> usize {
    20
}
fn default_min_word_length() -> usize {
    3
}
fn default_true() -> bool {
    true
}
fn default_choices() -> Vec<String> {
    ["A", "B", "C", "D"].map(String::from).to_vec()
}
fn default_max_new_tokens() -> usize {
    20
}
fn default_mc_penalty() -> f32 {
    1.1
}

/// How a reference-loss sample's context and reference are read from its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceFormat {
    /// Two string fields (`context_field`, `reference_field`).
    #[default]
    Fields,
    /// SN37's PrimeIntellect/SYNTHETIC-1-SFT-Data rows: `messages` [user, assistant] and
    /// `task_type`; the final answer (`\boxed{…}`, `{"output": …}`) re-attached to the trace.
    #[serde(rename = "synthetic_1")]
    Synthetic1,
    /// SN37's open-r1/codeforces-cots rows: exactly two `messages`; the trace is the reference.
    CodeforcesCots,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceLossParams {
    #[serde(default)]
    pub format: ReferenceFormat,
    #[serde(default = "default_context_field")]
    pub context_field: String,
    #[serde(default = "default_reference_field")]
    pub reference_field: String,
    /// `synthetic_1`: the task types kept (SN37: verifiable_math and code_output_prediction).
    #[serde(default = "default_task_types")]
    pub task_types: Vec<String>,
    /// Drop rows whose `len(text) // 4` per part, plus 10, exceeds this (SN37's length
    /// estimate; Codeforces: 16384).
    #[serde(default)]
    pub max_sequence_length: Option<usize>,
    /// Keep the first this many parsed rows, in page order (SN37: 120 of SYNTHETIC-1's 150;
    /// SN37 fetches more pages when fewer parse, arena scores the ones drawn).
    #[serde(default)]
    pub target_size: Option<usize>,
    /// Render the context as a user message with the model's chat template (generation prompt on).
    #[serde(default = "default_true")]
    pub chat_template: bool,
    /// A system message before the user message (default: SN37's reasoning prompt for the
    /// `synthetic_1` and `codeforces_cots` formats, none otherwise).
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Whether the tokenizer adds special tokens to the (rendered) context.
    #[serde(default)]
    pub context_special_tokens: bool,
    /// Whether the tokenizer adds special tokens to the reference (SN37: yes).
    #[serde(default = "default_true")]
    pub reference_special_tokens: bool,
    /// Cut the context from the left to at most this many tokens.
    #[serde(default)]
    pub max_context_tokens: Option<usize>,
    #[serde(default)]
    pub model: ModelOptions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultipleChoiceParams {
    /// The sample field holding the prompt (SN37's macrobench rows: `challenge`).
    #[serde(default = "default_prompt_field")]
    pub prompt_field: String,
    /// The sample field holding the right label (macrobench: `reference`). Rows whose label is
    /// not one of `choices` are skipped, as SN37 skips them.
    #[serde(default = "default_answer_field")]
    pub answer_field: String,
    /// The answer labels; the first whole word of the response that is one of them is the answer.
    #[serde(default = "default_choices")]
    pub choices: Vec<String>,
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    #[serde(default = "default_mc_penalty")]
    pub repetition_penalty: f32,
    /// Render the prompt with the model's chat template (generation prompt on).
    #[serde(default = "default_true")]
    pub chat_template: bool,
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Total length limit (prompt, cut from the left, plus new tokens).
    #[serde(default)]
    pub sequence_length: Option<usize>,
    #[serde(default)]
    pub model: ModelOptions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IfEvalParams {
    /// SN37's IF-eval version: 1 (7 rules, 1–4 per sample) or 2 (13 rules, 2–5 per sample).
    #[serde(default = "default_if_version")]
    pub version: u8,
    /// At most this many samples, each from two consecutive usable rows (SN37: 20, from 40 rows).
    #[serde(default = "default_if_samples")]
    pub max_samples: usize,
    /// Override the version's rule counts.
    #[serde(default)]
    pub min_rules: Option<usize>,
    #[serde(default)]
    pub max_rules: Option<usize>,
    #[serde(default = "default_if_new_tokens")]
    pub max_new_tokens: usize,
    #[serde(default = "default_if_penalty")]
    pub repetition_penalty: f32,
    /// The fields of an SN1 multiple-choice row: the challenge and its right letter.
    #[serde(default = "default_challenge_field")]
    pub challenge_field: String,
    #[serde(default = "default_reference_field")]
    pub answer_field: String,
    #[serde(default = "default_true")]
    pub chat_template: bool,
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// Total length limit (prompt, cut from the left, plus new tokens).
    #[serde(default)]
    pub sequence_length: Option<usize>,
    /// NLTK's `averaged_perceptron_tagger_eng` folder, for the keyword rules (default: NLTK's
    /// data path: `$NLTK_DATA`, `~/nltk_data`, `/usr/share/nltk_data`, …).
    #[serde(default)]
    pub tagger: Option<String>,
    #[serde(default)]
    pub model: ModelOptions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WordSortingParams {
    /// Challenges generated (SN37: 400).
    #[serde(default = "default_word_samples")]
    pub samples: usize,
    #[serde(default = "default_min_words")]
    pub min_words: usize,
    #[serde(default = "default_max_words")]
    pub max_words: usize,
    /// Corpus words shorter than this are not used (SN37: 3).
    #[serde(default = "default_min_word_length")]
    pub min_word_length: usize,
    /// The sample field holding one corpus word (a `.txt` word list gives `text`).
    #[serde(default = "default_text_field")]
    pub word_field: String,
    /// Cut the templated challenge from the left to at most this many tokens (SN37: the
    /// sequence length).
    #[serde(default)]
    pub max_context_tokens: Option<usize>,
    #[serde(default)]
    pub model: ModelOptions,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeldoutPplParams {
    /// Window length (default: the model's max_position_embeddings, at most 4096).
    #[serde(default)]
    pub sequence_length: Option<usize>,
    #[serde(default = "default_true")]
    pub add_special_tokens: bool,
    #[serde(default = "default_text_field")]
    pub text_field: String,
    #[serde(default)]
    pub model: ModelOptions,
}

enum Kind {
    Text(TextLossParams),
    Reference(ReferenceLossParams),
    Choice(MultipleChoiceParams),
    Heldout(HeldoutPplParams),
    IfEval(IfEvalParams),
    WordSorting(WordSortingParams),
}

impl Kind {
    fn model(&self) -> &ModelOptions {
        match self {
            Kind::Text(p) => &p.model,
            Kind::Reference(p) => &p.model,
            Kind::Choice(p) => &p.model,
            Kind::Heldout(p) => &p.model,
            Kind::IfEval(p) => &p.model,
            Kind::WordSorting(p) => &p.model,
        }
    }
}

pub(crate) fn create(spec: TaskSpec) -> Result<Box<dyn EvalTask>, PluginError> {
    let kind = match spec.kind.as_str() {
        TEXT_LOSS => Kind::Text(parse_params(&spec.params)?),
        REFERENCE_LOSS => Kind::Reference(parse_params(&spec.params)?),
        MULTIPLE_CHOICE => Kind::Choice(parse_params(&spec.params)?),
        HELDOUT_PPL => Kind::Heldout(parse_params(&spec.params)?),
        IF_EVAL => Kind::IfEval(parse_params(&spec.params)?),
        WORD_SORTING => Kind::WordSorting(parse_params(&spec.params)?),
        other => return Err(PluginError::invalid_parameters(format!("unknown task kind `{other}`"))),
    };
    let bad = |m: &str| Err(PluginError::invalid_parameters(m.to_string()));
    let m = kind.model();
    if m.batch_size == 0 {
        return bad("model.batch_size: must be at least 1");
    }
    if m.dtype != "auto" {
        arena_llm::parse_dtype(&m.dtype)
            .map_err(|e| PluginError::invalid_parameters(format!("model.dtype: {e}")))?;
    }
    if let Some(n) = &m.weight_norms
        && !(n.soft > 0.0 && n.hard >= n.soft && (0.0..=1.0).contains(&n.soft_fraction))
    {
        return bad("model.weight_norms: needs 0 < soft <= hard and soft_fraction in [0, 1]");
    }
    match &kind {
        Kind::Text(p) => {
            if p.sequence_length.is_some_and(|s| s < 2) {
                return bad("sequence_length: must be at least 2");
            }
            if p.stride == Some(0) {
                return bad("stride: must be at least 1");
            }
            if p.stride.is_some() && p.protocol != Protocol::Strided {
                return bad("stride: only the `strided` protocol uses a stride");
            }
            if p.max_windows == Some(0) {
                return bad("max_windows: must be at least 1");
            }
        }
        Kind::Choice(p) => {
            if p.choices.is_empty() || p.choices.iter().any(|c| c.is_empty()) {
                return bad("choices: needs at least one non-empty label");
            }
            if p.max_new_tokens == 0 {
                return bad("max_new_tokens: must be at least 1");
            }
            if p.repetition_penalty.is_nan() || p.repetition_penalty <= 0.0 {
                return bad("repetition_penalty: must be positive");
            }
        }
        Kind::Heldout(p) => {
            if p.sequence_length.is_some_and(|s| s < 2) {
                return bad("sequence_length: must be at least 2");
            }
        }
        Kind::Reference(p) => {
            if p.target_size == Some(0) {
                return bad("target_size: must be at least 1");
            }
            if p.format == ReferenceFormat::Synthetic1 && p.task_types.is_empty() {
                return bad("task_types: needs at least one task type");
            }
        }
        Kind::IfEval(p) => {
            let Some((lo, hi)) = ifeval::rule_counts(p.version) else {
                return bad("version: SN37's IF-eval has versions 1 and 2");
            };
            let (lo, hi) = (p.min_rules.unwrap_or(lo), p.max_rules.unwrap_or(hi));
            let available = if p.version >= 2 { 13 } else { 7 };
            if lo == 0 || lo > hi || hi > available {
                return bad(&format!(
                    "min_rules/max_rules: need 1 <= min <= max <= {available} (version {})",
                    p.version
                ));
            }
            if p.max_samples == 0 || p.max_new_tokens == 0 {
                return bad("max_samples and max_new_tokens: must be at least 1");
            }
            if p.repetition_penalty.is_nan() || p.repetition_penalty <= 0.0 {
                return bad("repetition_penalty: must be positive");
            }
        }
        Kind::WordSorting(p) => {
            if p.samples == 0 || p.min_words == 0 || p.min_words > p.max_words {
                return bad(
                    "samples, min_words, max_words: need samples >= 1 and 1 <= min_words <= max_words",
                );
            }
        }
    }
    Ok(Box::new(LmTask { kind, device: spec.device, seed: spec.seed }))
}

/// How a reference-loss context is rendered and tokenized.
struct ContextOptions<'a> {
    chat_template: bool,
    system: Option<&'a str>,
    context_special_tokens: bool,
    reference_special_tokens: bool,
    max_context_tokens: Option<usize>,
}

struct LmTask {
    kind: Kind,
    device: Device,
    seed: u64,
}

fn llm_err(e: LlmError) -> PluginError {
    if e.is_submission_fault() {
        PluginError::invalid_submission(e.to_string())
    } else {
        PluginError::internal(e.to_string())
    }
}

/// What a model directory gave: the loaded model and its chat template.
struct Ready {
    lm: LoadedModel,
    chat: Option<ChatTemplate>,
    /// tokenizer_config.json's `clean_up_tokenization_spaces` (transformers' default: false).
    clean_up_spaces: bool,
}

impl Ready {
    fn cfg(&self) -> &ModelConfig {
        self.lm.model.config()
    }

    fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, PluginError> {
        arena_llm::encode(&self.lm.tokenizer, text, special).map_err(llm_err)
    }

    fn eos(&self) -> Result<u32, PluginError> {
        self.cfg()
            .eos_token_ids
            .first()
            .copied()
            .ok_or_else(|| PluginError::invalid_submission("config.json declares no eos_token_id"))
    }

    /// The tokens generation stops at, as SN37's `GenerationConfig(eos_token_id =
    /// tokenizer.eos_token_id)`: the tokenizer's EOS when its config names one the vocabulary
    /// has, else config.json's EOS ids.
    fn stop_tokens(&self) -> Vec<u32> {
        self.chat
            .as_ref()
            .and_then(|c| self.lm.tokenizer.token_to_id(&c.eos_token))
            .map(|id| vec![id])
            .unwrap_or_else(|| self.cfg().eos_token_ids.clone())
    }

    /// `tokenizer.decode(ids, skip_special_tokens=True)` as transformers does it, including its
    /// space clean-up when the tokenizer's config asks for it.
    fn decode(&self, ids: &[u32]) -> String {
        let text = self.lm.tokenizer.decode(ids, true).unwrap_or_default();
        if self.clean_up_spaces { clean_up_tokenization(&text) } else { text }
    }

    fn default_len(&self) -> usize {
        self.cfg().max_position_embeddings.min(4096)
    }

    fn render(&self, system: Option<&str>, user: &str) -> Result<String, PluginError> {
        let chat = self
            .chat
            .as_ref()
            .ok_or_else(|| PluginError::invalid_submission("the model has no chat template"))?;
        let mut msgs = Vec::new();
        if let Some(s) = system {
            msgs.push(Message::system(s));
        }
        msgs.push(Message::user(user));
        chat.render(&msgs, true).map_err(llm_err)
    }
}

fn text_of<'a>(s: &'a Sample, field: &str, i: usize) -> Result<&'a str, PluginError> {
    s.data
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| PluginError::invalid_parameters(format!("sample {i}: no string field `{field}`")))
}

impl LmTask {
    fn load(&self, dir: &Path) -> Result<Ready, PluginError> {
        let opts = self.kind.model();
        let (kind, ordinal) = match self.device {
            Device::Cpu => ("cpu", 0),
            Device::Cuda(n) => ("cuda", n as usize),
            Device::Wgpu => {
                return Err(PluginError::internal("the perplexity plugin runs on cpu or cuda, not wgpu"));
            }
        };
        let device = arena_llm::open_device(kind, ordinal).map_err(llm_err)?;
        let cfg = ModelConfig::from_file(&dir.join("config.json")).map_err(llm_err)?;
        let dtype = match (opts.dtype.as_str(), kind) {
            ("auto", "cpu") => DType::F32,
            ("auto", _) => cfg
                .declared_dtype
                .as_deref()
                .and_then(|d| arena_llm::parse_dtype(d).ok())
                .unwrap_or(DType::BF16),
            (d, _) => arena_llm::parse_dtype(d).map_err(llm_err)?,
        };
        let lm = LoadedModel::with_config(dir, &cfg, dtype, &device).map_err(llm_err)?;
        if let Some(n) = &opts.weight_norms {
            let norms = lm.files.projection_norms(lm.model.config()).map_err(llm_err)?;
            arena_llm::weights::check_norms(&norms, n.soft, n.soft_fraction, n.hard)
                .map_err(|m| PluginError::invalid_submission(format!("weight norms: {m}")))?;
        }
        let chat = ChatTemplate::from_dir(dir).map_err(llm_err)?;
        let clean_up_spaces = std::fs::read_to_string(dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|c| c.get("clean_up_tokenization_spaces").and_then(Value::as_bool))
            .unwrap_or(false);
        Ok(Ready { lm, chat, clean_up_spaces })
    }

    /// Per-position NLL of each window, `batch` windows per forward pass (right-padded with a
    /// key mask when their lengths differ).
    fn run_windows(
        &self,
        model: &CausalLm,
        windows: &[Window],
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<f32>>, PluginError> {
        let batch = self.kind.model().batch_size;
        let mut out = Vec::with_capacity(windows.len());
        for (k, chunk) in windows.chunks(batch).enumerate() {
            if progress.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let t = chunk.iter().map(|w| w.ids.len()).max().unwrap_or(0);
            if t == 0 {
                out.extend(chunk.iter().map(|_| Vec::new()));
                continue;
            }
            let equal = chunk.iter().all(|w| w.ids.len() == t);
            let mut flat = Vec::with_capacity(chunk.len() * t);
            let mut mask = Vec::new();
            let mut targets = Vec::with_capacity(chunk.len());
            for w in chunk {
                flat.extend_from_slice(&w.ids);
                flat.extend(std::iter::repeat_n(0, t - w.ids.len()));
                let mut tg = w.targets.clone();
                tg.resize(t, UNSCORED);
                targets.push(tg);
                if !equal {
                    mask.push((0..t).map(|j| u8::from(j < w.ids.len())).collect::<Vec<u8>>());
                }
            }
            let ids =
                Tensor::from_vec(flat, (chunk.len(), t), model.device()).map_err(|e| llm_err(e.into()))?;
            let hidden =
                model.forward_hidden(&ids, (!equal).then_some(mask.as_slice()), None).map_err(llm_err)?;
            let nll = model.token_nll(&hidden, &targets).map_err(llm_err)?;
            for (w, mut row) in chunk.iter().zip(nll) {
                row.truncate(w.ids.len());
                out.push(row);
            }
            let done = ((k + 1) * batch).min(windows.len()) as u64;
            progress.report(done, windows.len() as u64, "scoring windows");
        }
        Ok(out)
    }

    fn text_loss(
        &self,
        p: &TextLossParams,
        r: &Ready,
        req: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let texts: Vec<&str> = req
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| text_of(s, &p.text_field, i))
            .collect::<Result<_, _>>()?;
        if texts.is_empty() {
            return Err(PluginError::invalid_parameters("no samples"));
        }
        let seq_len = p.sequence_length.unwrap_or_else(|| r.default_len());
        let special = p.add_special_tokens.unwrap_or(p.protocol != Protocol::Rolling);
        let bytes: usize = texts.iter().map(|t| t.len()).sum();
        let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
        let mut weights: Vec<usize> = Vec::new();
        let (mut windows, content_tokens) = match p.protocol {
            Protocol::Sn9Packed => {
                let docs: Vec<Vec<u32>> =
                    texts.iter().map(|t| r.encode(t, special)).collect::<Result<_, _>>()?;
                let n = docs.iter().map(|d| d.len() + 1).sum::<usize>();
                (protocols::sn9_packed(&docs, r.eos()?, seq_len), n)
            }
            Protocol::Sn37Padded => {
                let mut tok = r.lm.tokenizer.clone();
                let direction = match p.truncation_side {
                    Side::Left => tokenizers::TruncationDirection::Left,
                    Side::Right => tokenizers::TruncationDirection::Right,
                };
                tok.with_truncation(Some(tokenizers::TruncationParams {
                    max_length: seq_len,
                    direction,
                    ..Default::default()
                }))
                .map_err(|e| PluginError::internal(format!("tokenizer truncation: {e}")))?;
                let docs: Vec<Vec<u32>> = texts
                    .iter()
                    .map(|t| arena_llm::encode(&tok, t, special).map_err(llm_err))
                    .collect::<Result<_, _>>()?;
                let pad = match p.pad_token_id.or(r.cfg().pad_token_id) {
                    Some(x) => x,
                    None => r.eos()?,
                };
                let n = docs.iter().map(Vec::len).sum();
                (protocols::sn37_padded(&docs, pad, seq_len), n)
            }
            Protocol::Rolling => {
                let docs: Vec<Vec<u32>> =
                    texts.iter().map(|t| r.encode(t, special)).collect::<Result<_, _>>()?;
                let prefix = match r.cfg().bos_token_id {
                    Some(b) => b,
                    None => r.eos()?,
                };
                let n = docs.iter().map(Vec::len).sum();
                (protocols::rolling(&docs, prefix, seq_len), n)
            }
            Protocol::Strided => {
                let stream = r.encode(&texts.join(&p.separator), special)?;
                let stride = p.stride.unwrap_or((seq_len / 2).max(1));
                let ws = protocols::strided(&stream, seq_len, stride);
                weights = ws.iter().map(|(_, w)| *w).collect();
                (ws.into_iter().map(|(w, _)| w).collect(), stream.len())
            }
        };
        if let Some(max) = p.max_windows
            && windows.len() > max
        {
            // SN9: random.Random(seed).shuffle(batches), then the first `max`.
            let mut order: Vec<usize> = (0..windows.len()).collect();
            arena_plugin_api::pyrandom::PyRandom::new(self.seed).shuffle(&mut order);
            order.truncate(max);
            windows = order.iter().map(|&i| windows[i].clone()).collect();
            weights = if weights.is_empty() { weights } else { order.iter().map(|&i| weights[i]).collect() };
        }
        if windows.is_empty() {
            return Err(PluginError::invalid_parameters(format!(
                "the samples make no window of {seq_len} tokens (SN9 packing drops a partial window)"
            )));
        }
        if let Some(check) = &p.reasonable_output_check {
            reasonable_output(&r.lm.model, &windows, check.prompt_tokens)?;
        }
        let nll = self.run_windows(&r.lm.model, &windows, progress)?;
        let (mut nll_sum, mut tokens) = (0.0f64, 0usize);
        for (w, l) in windows.iter().zip(&nll) {
            let (s, c) = protocols::scored_sum(w, l);
            nll_sum += s;
            tokens += c;
        }
        let loss = match p.protocol {
            Protocol::Sn9Packed | Protocol::Sn37Padded => protocols::mean_of_window_means(&nll, &windows),
            Protocol::Rolling => nll_sum / tokens.max(1) as f64,
            Protocol::Strided => {
                let mut num = 0.0;
                let mut den = 0usize;
                for ((w, l), wt) in windows.iter().zip(&nll).zip(&weights) {
                    let (s, c) = protocols::scored_sum(w, l);
                    num += if c == 0 { 0.0 } else { s / c as f64 } * *wt as f64;
                    den += wt;
                }
                num / den.max(1) as f64
            }
        };
        let bits_per_byte = (nll_sum / tokens.max(1) as f64) * (content_tokens as f64 / bytes.max(1) as f64)
            / std::f64::consts::LN_2;
        let mut metrics = BTreeMap::from([
            ("nll_sum".to_string(), nll_sum),
            ("tokens".to_string(), tokens as f64),
            ("loss".to_string(), loss),
            ("perplexity".to_string(), loss.exp()),
            ("bits_per_byte".to_string(), bits_per_byte),
            ("windows".to_string(), windows.len() as f64),
            ("documents".to_string(), texts.len() as f64),
        ]);
        if p.protocol == Protocol::Rolling {
            metrics.insert("word_perplexity".into(), (nll_sum / words.max(1) as f64).exp());
            metrics.insert("byte_perplexity".into(), (nll_sum / bytes.max(1) as f64).exp());
        }
        let per_sample = match p.protocol {
            Protocol::Sn37Padded | Protocol::Rolling => per_document_means(&windows, &nll, texts.len()),
            _ => Vec::new(),
        };
        let raw_score = match p.metric {
            Metric::Loss => loss,
            Metric::Perplexity => loss.exp(),
            Metric::BitsPerByte => bits_per_byte,
            Metric::NllSum => nll_sum,
        };
        Ok(EvalOutput {
            raw_score,
            metrics,
            per_sample,
            details: json!({ "protocol": p.protocol, "sequence_length": seq_len, "add_special_tokens": special }),
        })
    }

    /// The (context, reference) pairs of a reference-loss task, read in its format.
    fn reference_pairs(
        &self,
        p: &ReferenceLossParams,
        req: &EvalRequest,
    ) -> Result<Vec<(String, String)>, PluginError> {
        let max = p.max_sequence_length;
        let rows: Vec<&Value> = req.samples.iter().map(|s| &s.data).collect();
        let mut pairs = match p.format {
            ReferenceFormat::Synthetic1 => sn37::synthetic_1_pairs(&rows, &p.task_types, max, p.target_size),
            ReferenceFormat::CodeforcesCots => sn37::codeforces_pairs(&rows, max),
            ReferenceFormat::Fields => {
                let mut out = Vec::with_capacity(req.samples.len());
                for (i, s) in req.samples.iter().enumerate() {
                    let (c, r) = (text_of(s, &p.context_field, i)?, text_of(s, &p.reference_field, i)?);
                    if max.is_none_or(|m| sn37::fits(&[c, r], m)) {
                        out.push((c.to_string(), r.to_string()));
                    }
                }
                out
            }
        };
        if let Some(n) = p.target_size {
            pairs.truncate(n);
        }
        Ok(pairs)
    }

    fn reference_loss(
        &self,
        p: &ReferenceLossParams,
        r: &Ready,
        req: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let pairs = self.reference_pairs(p, req)?;
        let system = p.system_prompt.as_deref().or(match p.format {
            ReferenceFormat::Fields => None,
            _ => Some(sn37::REASONING_SYSTEM_PROMPT),
        });
        let opts = ContextOptions {
            chat_template: p.chat_template,
            system,
            context_special_tokens: p.context_special_tokens,
            reference_special_tokens: p.reference_special_tokens,
            max_context_tokens: p.max_context_tokens,
        };
        let mut out = self.reference_output(r, &pairs, &opts, progress)?;
        out.metrics.insert("rows".into(), req.samples.len() as f64);
        Ok(out)
    }

    fn word_sorting(
        &self,
        p: &WordSortingParams,
        r: &Ready,
        req: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let corpus: Vec<&str> = req
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| text_of(s, &p.word_field, i))
            .collect::<Result<_, _>>()?;
        let mut rng = arena_plugin_api::pyrandom::PyRandom::new(self.seed);
        let pairs =
            sn37::word_sorting(&corpus, p.min_word_length, (p.min_words, p.max_words), p.samples, &mut rng)
                .map_err(PluginError::invalid_parameters)?;
        let opts = ContextOptions {
            chat_template: true,
            system: None,
            context_special_tokens: false,
            reference_special_tokens: true,
            max_context_tokens: p.max_context_tokens,
        };
        self.reference_output(r, &pairs, &opts, progress)
    }

    /// SN37's REFERENCE_LOSS over (context, reference) pairs: mean cross-entropy over each
    /// reference's tokens after its context, mean over pairs.
    fn reference_output(
        &self,
        r: &Ready,
        pairs: &[(String, String)],
        o: &ContextOptions,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let mut windows = Vec::with_capacity(pairs.len());
        for (i, (context, reference)) in pairs.iter().enumerate() {
            let ctx_text = if o.chat_template { r.render(o.system, context)? } else { context.clone() };
            let mut ctx = r.encode(&ctx_text, o.context_special_tokens)?;
            if let Some(max) = o.max_context_tokens
                && ctx.len() > max
            {
                ctx.drain(..ctx.len() - max);
            }
            let refs = r.encode(reference, o.reference_special_tokens)?;
            if ctx.is_empty() || ctx.len() + refs.len() < 2 {
                return Err(PluginError::invalid_parameters(format!("sample {i}: empty context")));
            }
            let c = ctx.len();
            let mut ids = ctx;
            ids.extend_from_slice(&refs);
            let mut targets = vec![UNSCORED; ids.len()];
            if refs.is_empty() {
                // SN37 takes the last `-0:` positions of the shifted logits: all of them.
                let n = ids.len() - 1;
                targets[..n].copy_from_slice(&ids[1..]);
            } else {
                for j in 0..refs.len() {
                    targets[c - 1 + j] = refs[j];
                }
            }
            windows.push(Window { ids, targets, doc: i });
        }
        if windows.is_empty() {
            return Err(PluginError::invalid_parameters("no samples"));
        }
        let nll = self.run_windows(&r.lm.model, &windows, progress)?;
        let per_sample = per_document_means(&windows, &nll, windows.len());
        let (nll_sum, tokens) = windows.iter().zip(&nll).fold((0.0, 0), |(s, c), (w, l)| {
            let (a, b) = protocols::scored_sum(w, l);
            (s + a, c + b)
        });
        let loss = per_sample.iter().sum::<f64>() / per_sample.len() as f64;
        Ok(EvalOutput {
            raw_score: loss,
            metrics: BTreeMap::from([
                ("loss".to_string(), loss),
                ("nll_sum".to_string(), nll_sum),
                ("tokens".to_string(), tokens as f64),
                ("perplexity".to_string(), (nll_sum / tokens.max(1) as f64).exp()),
                ("samples".to_string(), pairs.len() as f64),
            ]),
            per_sample,
            details: Value::Null,
        })
    }

    /// A greedy response to one prompt (chat-templated when asked), decoded without specials.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &self,
        r: &Ready,
        prompt: &str,
        chat_template: bool,
        system: Option<&str>,
        sequence_length: Option<usize>,
        max_new_tokens: usize,
        repetition_penalty: f32,
    ) -> Result<Result<String, String>, PluginError> {
        let text = if chat_template { r.render(system, prompt)? } else { prompt.to_string() };
        let mut ids = r.encode(&text, !chat_template)?;
        // SN37: the templated prompt truncated from the left to the sequence length; then
        // `max_new_tokens`, which transformers lets win over `max_length`.
        if let Some(max) = sequence_length
            && ids.len() > max
        {
            ids.drain(..ids.len() - max);
        }
        let cfg = GenerationConfig {
            max_new_tokens,
            repetition_penalty,
            stop_tokens: r.stop_tokens(),
            seed: self.seed,
            ..Default::default()
        };
        // A failed generation is the sample's failure, not the task's.
        Ok(match generate(&r.lm.model, &ids, &cfg) {
            Ok(new) => Ok(r.decode(&new)),
            Err(e) => Err(e.to_string()),
        })
    }

    fn if_eval(
        &self,
        p: &IfEvalParams,
        r: &Ready,
        req: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let rows: Vec<(String, String)> = req
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Ok((
                    text_of(s, &p.challenge_field, i)?.to_string(),
                    text_of(s, &p.answer_field, i)?.to_string(),
                ))
            })
            .collect::<Result<_, PluginError>>()?;
        let pairs = ifeval::usable_pairs(&rows);
        let dir = match &p.tagger {
            Some(d) => Some(std::path::PathBuf::from(d)),
            None => ifeval::tagger::find_nltk_data_dir(),
        };
        let dir = dir.ok_or_else(|| {
            PluginError::internal(
                "the keyword rules need NLTK's averaged_perceptron_tagger_eng (python3 -m nltk.downloader \
                 averaged_perceptron_tagger_eng, or params.tagger = its folder)",
            )
        })?;
        let tagger = ifeval::tagger::PerceptronTagger::load(&dir)
            .map_err(|e| PluginError::internal(format!("NLTK tagger {}: {e}", dir.display())))?;
        let tag = |words: &[String]| tagger.tag(&words.iter().map(String::as_str).collect::<Vec<_>>());
        let (lo, hi) = ifeval::rule_counts(p.version).unwrap_or((2, 5));
        let counts = (p.min_rules.unwrap_or(lo), p.max_rules.unwrap_or(hi));
        let mut rng = arena_plugin_api::pyrandom::PyRandom::new(self.seed);
        let samples = ifeval::generate(&pairs, p.max_samples, p.version, counts, &tag, &mut rng);
        if samples.is_empty() {
            return Err(PluginError::invalid_parameters(format!(
                "{} rows give {} usable questions: IF-eval needs at least 2",
                rows.len(),
                pairs.len()
            )));
        }
        let mut responses = Vec::with_capacity(samples.len());
        let mut texts = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            if progress.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let mut two = Vec::with_capacity(2);
            for prompt in &s.prompts {
                two.push(self.respond(
                    r,
                    prompt,
                    p.chat_template,
                    p.system_prompt.as_deref(),
                    p.sequence_length,
                    p.max_new_tokens,
                    p.repetition_penalty,
                )?);
            }
            let ok: Result<Vec<String>, String> = two.into_iter().collect();
            texts.push(match &ok {
                Ok(v) => json!(v),
                Err(e) => json!({ "error": e }),
            });
            responses.push(ok.ok().map(|v| [v[0].clone(), v[1].clone()]));
            progress.report(i as u64 + 1, samples.len() as u64, "answering");
        }
        let scored = ifeval::score(&samples, &responses);
        Ok(EvalOutput {
            raw_score: scored.score,
            metrics: BTreeMap::from([
                ("if_eval".to_string(), scored.score),
                ("rules_met".to_string(), scored.rules_met),
                ("duplicates".to_string(), scored.duplicates as f64),
                ("samples".to_string(), samples.len() as f64),
            ]),
            per_sample: scored.per_sample,
            details: json!({ "samples": samples, "responses": texts }),
        })
    }

    fn multiple_choice(
        &self,
        p: &MultipleChoiceParams,
        r: &Ready,
        req: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let non_word = regex::Regex::new(r"\W").map_err(|e| PluginError::internal(e.to_string()))?;
        let mut per_sample = Vec::with_capacity(req.samples.len());
        let (mut answered, mut skipped) = (0usize, 0usize);
        let mut responses = Vec::new();
        for (i, s) in req.samples.iter().enumerate() {
            if progress.is_cancelled() {
                return Err(PluginError::cancelled());
            }
            let prompt = text_of(s, &p.prompt_field, i)?;
            let answer = text_of(s, &p.answer_field, i)?;
            if !p.choices.iter().any(|c| c == answer) {
                skipped += 1;
                continue;
            }
            let got = self.respond(
                r,
                prompt,
                p.chat_template,
                p.system_prompt.as_deref(),
                p.sequence_length,
                p.max_new_tokens,
                p.repetition_penalty,
            )?;
            // A failure on one sample counts it wrong, as the reference does.
            let (wrong, response) = match got {
                Ok(response) => {
                    let cleaned = non_word.replace_all(&response, " ");
                    let first = cleaned.split_whitespace().find(|w| p.choices.iter().any(|c| c == w));
                    answered += usize::from(first.is_some());
                    (first != Some(answer), response)
                }
                Err(e) => (true, format!("error: {e}")),
            };
            per_sample.push(if wrong { 1.0 } else { 0.0 });
            responses.push(response);
            progress.report(i as u64 + 1, req.samples.len() as u64, "answering");
        }
        if per_sample.is_empty() {
            return Err(PluginError::invalid_parameters(format!(
                "no samples with a label among the choices ({skipped} skipped)"
            )));
        }
        let n = per_sample.len() as f64;
        let wrong = per_sample.iter().sum::<f64>() / n;
        Ok(EvalOutput {
            raw_score: wrong,
            metrics: BTreeMap::from([
                ("fraction_wrong".to_string(), wrong),
                ("accuracy".to_string(), 1.0 - wrong),
                ("answered".to_string(), answered as f64 / n),
                ("skipped".to_string(), skipped as f64),
            ]),
            per_sample,
            details: json!({ "responses": responses }),
        })
    }

    fn heldout_ppl(
        &self,
        p: &HeldoutPplParams,
        r: &Ready,
        req: &EvalRequest,
        progress: &dyn Progress,
    ) -> Result<EvalOutput, PluginError> {
        let docs: Vec<Vec<u32>> = req
            .samples
            .iter()
            .enumerate()
            .map(|(i, s)| r.encode(text_of(s, &p.text_field, i)?, p.add_special_tokens))
            .collect::<Result<_, _>>()?;
        let prefix = match r.cfg().bos_token_id {
            Some(b) => b,
            None => r.eos()?,
        };
        let windows = protocols::rolling(&docs, prefix, p.sequence_length.unwrap_or_else(|| r.default_len()));
        if windows.is_empty() {
            return Err(PluginError::invalid_parameters("no tokens in the held-out rows"));
        }
        let nll = self.run_windows(&r.lm.model, &windows, progress)?;
        let (nll_sum, tokens) = windows.iter().zip(&nll).fold((0.0, 0), |(s, c), (w, l)| {
            let (a, b) = protocols::scored_sum(w, l);
            (s + a, c + b)
        });
        let ce = nll_sum / tokens as f64;
        Ok(EvalOutput {
            raw_score: ce.exp(),
            metrics: BTreeMap::from([
                ("heldout_ppl".to_string(), ce.exp()),
                ("heldout_cross_entropy_nats".to_string(), ce),
                ("nll_sum".to_string(), nll_sum),
                ("tokens".to_string(), tokens as f64),
            ]),
            per_sample: per_document_means(&windows, &nll, docs.len()),
            details: Value::Null,
        })
    }
}

/// transformers' `clean_up_tokenization`: the spaces English tokenizers leave before
/// punctuation and contractions.
fn clean_up_tokenization(text: &str) -> String {
    [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ]
    .iter()
    .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

/// Mean NLL over each document's scored tokens (NaN for a document with none).
fn per_document_means(windows: &[Window], nll: &[Vec<f32>], docs: usize) -> Vec<f64> {
    let mut sums = vec![(0.0f64, 0usize); docs];
    for (w, l) in windows.iter().zip(nll) {
        let (s, c) = protocols::scored_sum(w, l);
        if let Some(slot) = sums.get_mut(w.doc) {
            slot.0 += s;
            slot.1 += c;
        }
    }
    sums.into_iter().map(|(s, c)| if c == 0 { f64::NAN } else { s / c as f64 }).collect()
}

/// SN9/SN37's gate: 20 greedy tokens from each of two prompts (the first windows); the model
/// fails when the two outputs agree in 10 or more positions, or when both repeat one token
/// more than 10 times.
fn reasonable_output(
    model: &CausalLm,
    windows: &[Window],
    prompt_tokens: Option<usize>,
) -> Result<(), PluginError> {
    if windows.len() < 2 {
        return Ok(());
    }
    let cfg = GenerationConfig { max_new_tokens: 20, ..Default::default() };
    let mut outs = Vec::with_capacity(2);
    for w in &windows[..2] {
        let n = prompt_tokens.unwrap_or(w.ids.len()).min(w.ids.len()).max(1);
        outs.push(generate(model, &w.ids[..n], &cfg).map_err(llm_err)?);
    }
    let same = outs[0].iter().zip(&outs[1]).filter(|(a, b)| a == b).count();
    let max_repeat = |xs: &[u32]| {
        let mut counts = BTreeMap::new();
        xs.iter().for_each(|x| *counts.entry(*x).or_insert(0usize) += 1);
        counts.into_values().max().unwrap_or(0)
    };
    if same >= 10 {
        return Err(PluginError::invalid_submission(format!(
            "unreasonable output: the generations for two different prompts agree in {same} of 20 positions"
        )));
    }
    if max_repeat(&outs[0]) > 10 && max_repeat(&outs[1]) > 10 {
        return Err(PluginError::invalid_submission(
            "unreasonable output: both generations repeat one token more than 10 times",
        ));
    }
    Ok(())
}

impl EvalTask for LmTask {
    fn evaluate(&mut self, req: &EvalRequest, progress: &dyn Progress) -> Result<EvalOutput, PluginError> {
        progress.report(0, 1, "loading model");
        let ready = self.load(&req.submission.path)?;
        match &self.kind {
            Kind::Text(p) => self.text_loss(p, &ready, req, progress),
            Kind::Reference(p) => self.reference_loss(p, &ready, req, progress),
            Kind::Choice(p) => self.multiple_choice(p, &ready, req, progress),
            Kind::Heldout(p) => self.heldout_ppl(p, &ready, req, progress),
            Kind::IfEval(p) => self.if_eval(p, &ready, req, progress),
            Kind::WordSorting(p) => self.word_sorting(p, &ready, req, progress),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// transformers' `clean_up_tokenization` on what an English BPE decode leaves behind.
    #[test]
    fn decoding_cleans_spaces_as_transformers_does() {
        assert_eq!(
            clean_up_tokenization(
                "I do n't know , he 's here . Is it ? Yes ! We 're , they 've , I 'm ' x '"
            ),
            "I don't know, he's here. Is it? Yes! We're, they've, I'm'x '"
        );
        assert_eq!(clean_up_tokenization("no change"), "no change");
    }
}
