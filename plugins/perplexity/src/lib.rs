//! `perplexity`: language-model evaluation as an arena plugin, on candle through `arena-llm`.
//!
//! A submission is a model directory in Hugging Face layout (config.json, model.safetensors or a
//! sharded index, tokenizer.json, optionally tokenizer_config.json with a chat template).
//!
//! Task kinds:
//! - `text_loss`: next-token loss on documents (`{"text": …}` samples) under one of four
//!   protocols: `sn9_packed` (tokenize, append EOS, pack into windows, drop the remainder; mean
//!   per window, mean over windows), `sn37_padded` (each document truncated and padded to the
//!   sequence length, pads scored as the reference does), `rolling` (lm-eval-harness
//!   `loglikelihood_rolling`; corpus-level sums), `strided` (Hugging Face's fixed-length
//!   perplexity with a stride). Reports summed NLL, scored tokens, loss, perplexity, bits per
//!   byte; the raw score is the chosen `metric`.
//! - `reference_loss`: SN37's REFERENCE_LOSS: context (chat-templated) and reference tokenized
//!   separately and concatenated; mean cross-entropy over the reference tokens, mean over samples.
//!   Rows are two fields, or SN37's SYNTHETIC-1 or Codeforces-CoTs rows (`format`).
//! - `multiple_choice`: SN37's MULTIPLE_CHOICE: greedy generation with a repetition penalty, the
//!   first whole-word choice letter is the answer; the raw score is the fraction wrong.
//! - `if_eval`: SN37's IF-eval (v1, v2): samples generated from pairs of SN1 multiple-choice
//!   rows, rules drawn with Python's generator, responses checked rule by rule ([`ifeval`]).
//! - `word_sorting`: SN37's generated word-sorting set, scored as `reference_loss` ([`sn37`]).
//!   SN37 seeds it with the whole 256-bit block-hash digest; a plugin receives the low 64 bits
//!   (ABI 1), so the challenges are SN37's algorithm on that seed: the same for every arena
//!   validator, not SN37's own draw for the block.
//!
//! A task whose rows give no sample (a SYNTHETIC-1 page without the kept task types) fails for
//! every model alike; SN37 drops such a task and renormalizes the other weights.
//! - `heldout_ppl`: SN94's held-out perplexity: every token of every row scored once (rolling
//!   windows), exp of the token-weighted mean cross-entropy.

pub mod ifeval;
pub mod sn37;
mod tasks;

use arena_plugin_api::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use tasks::{
    HeldoutPplParams, IfEvalParams, MultipleChoiceParams, ReferenceFormat, ReferenceLossParams,
    TextLossParams, WordSortingParams,
};

pub struct PerplexityPlugin;

pub const TEXT_LOSS: &str = "text_loss";
pub const REFERENCE_LOSS: &str = "reference_loss";
pub const MULTIPLE_CHOICE: &str = "multiple_choice";
pub const HELDOUT_PPL: &str = "heldout_ppl";
pub const IF_EVAL: &str = "if_eval";
pub const WORD_SORTING: &str = "word_sorting";

/// How the model is loaded and run; shared by every task kind (`params.model`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelOptions {
    /// `f32`, `bf16`, `f16`, or `auto` (f32 on the CPU; the checkpoint's dtype, else bf16, on CUDA).
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// Windows per forward pass.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// SN37's weight-norm check, applied before any evaluation.
    #[serde(default)]
    pub weight_norms: Option<NormLimits>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions { dtype: default_dtype(), batch_size: default_batch(), weight_norms: None }
    }
}

fn default_dtype() -> String {
    "auto".into()
}
fn default_batch() -> usize {
    1
}

/// Frobenius-norm limits on each layer's q/k/v/o/up/down projections (SN37).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NormLimits {
    /// A norm above this counts toward the fraction.
    pub soft: f64,
    /// The largest accepted mean (over the 6 projection kinds) of the fraction of layers above `soft`.
    pub soft_fraction: f64,
    /// Any norm above this rejects the model.
    pub hard: f64,
}

fn schema<T: JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default()
}

impl Plugin for PerplexityPlugin {
    fn info() -> PluginInfo {
        // CUDA only in builds with the `cuda` feature, so the host refuses `--device cuda` up front.
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
            name: "perplexity".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: String::new(),
            tasks: vec![
                kind(
                    TEXT_LOSS,
                    "Next-token loss on documents: SN9 packing, SN37 padding, lm-eval rolling windows or \
                     HF strided windows; NLL, tokens, loss, perplexity, bits per byte.",
                    schema::<TextLossParams>(),
                ),
                kind(
                    REFERENCE_LOSS,
                    "Cross-entropy of a reference continuation after a (chat-templated) context (SN37).",
                    schema::<ReferenceLossParams>(),
                ),
                kind(
                    MULTIPLE_CHOICE,
                    "Greedy answer to lettered multiple-choice prompts; raw score is the fraction wrong (SN37).",
                    schema::<MultipleChoiceParams>(),
                ),
                kind(
                    IF_EVAL,
                    "SN37's IF-eval: answers to two questions under 1-5 shared rules (word, sentence and bullet \
                     counts, casing, commas, keywords, endings, quotes); 1 - (rules met)^2, 1 for duplicate answers.",
                    schema::<IfEvalParams>(),
                ),
                kind(
                    WORD_SORTING,
                    "SN37's word sorting: reference loss of the sorted words after a generated challenge drawn from \
                     a word list.",
                    schema::<WordSortingParams>(),
                ),
                kind(
                    HELDOUT_PPL,
                    "Held-out perplexity: exp of the token-weighted mean cross-entropy over rows (SN94).",
                    schema::<HeldoutPplParams>(),
                ),
            ],
        }
    }

    fn create_task(spec: TaskSpec) -> Result<Box<dyn EvalTask>, PluginError> {
        tasks::create(spec)
    }
}

export_plugin!(PerplexityPlugin);
