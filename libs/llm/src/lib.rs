//! `arena-llm`: causal language models in Hugging Face layout on candle, for arena's plugins.
//!
//! - [`config`]: config.json normalized into one [`ModelConfig`] (llama, mistral, qwen2, qwen3,
//!   phi3, gemma2);
//! - [`model`]: one decoder returning hidden states, logits or per-token NLL for every position,
//!   with attention masks for padded batches and a KV cache;
//! - [`weights`]: the checkpoint's files, their integrity (finite values) and SN37's weight norms;
//! - [`protocols`]: how text becomes scored windows (SN9 packing, SN37 padding, lm-eval rolling
//!   windows, HF strided), as pure functions over token ids;
//! - [`generate`]: greedy and sampled generation with repetition penalty and stop tokens;
//! - [`LoadedModel`]: model + tokenizer from a directory.

pub mod chat;
pub mod config;
mod cpu;
pub mod generate;
pub mod model;
pub mod protocols;
pub mod tiny;
pub mod weights;

use std::path::Path;

pub use candle_core::{DType, Device, Tensor};
pub use config::{Family, ModelConfig};
pub use model::{CausalLm, KvCache};

/// Errors of this crate. [`LlmError::is_submission_fault`] tells a broken model from a broken
/// environment.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model configuration: {0}")]
    Config(String),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("weights: {0}")]
    Weights(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("input: {0}")]
    Input(String),
    #[error("device: {0}")]
    Device(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl LlmError {
    /// True when the model's own files are at fault (scores as a failed submission).
    pub fn is_submission_fault(&self) -> bool {
        match self {
            LlmError::Config(_)
            | LlmError::Unsupported(_)
            | LlmError::Weights(_)
            | LlmError::Tokenizer(_) => true,
            // Candle errors while building the model are shape mismatches and missing tensors.
            LlmError::Candle(e) => {
                let s = e.to_string();
                s.contains("shape mismatch")
                    || s.contains("cannot find tensor")
                    || s.contains("unexpected dtype")
            }
            LlmError::Input(_) | LlmError::Device(_) => false,
        }
    }
}

/// Parses a dtype name as used in configs and task parameters.
pub fn parse_dtype(s: &str) -> Result<DType, LlmError> {
    match s {
        "float32" | "f32" => Ok(DType::F32),
        "bfloat16" | "bf16" => Ok(DType::BF16),
        "float16" | "f16" => Ok(DType::F16),
        other => Err(LlmError::Input(format!("dtype `{other}` (expected f32, bf16 or f16)"))),
    }
}

/// Opens a device by name: `cpu`, `cuda` or `cuda:N`.
pub fn open_device(kind: &str, ordinal: usize) -> Result<Device, LlmError> {
    match kind {
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if !candle_core::utils::cuda_is_available() {
                return Err(LlmError::Device(
                    "this build has no CUDA support (build with `--features cuda`)".into(),
                ));
            }
            Device::new_cuda(ordinal).map_err(|e| LlmError::Device(format!("cuda:{ordinal}: {e}")))
        }
        other => Err(LlmError::Device(format!("device `{other}` is not supported by candle"))),
    }
}

/// A model directory loaded for evaluation: configuration, weights, tokenizer.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: CausalLm,
    pub tokenizer: tokenizers::Tokenizer,
    pub files: weights::WeightFiles,
}

impl LoadedModel {
    /// Loads `dir` (config.json, model.safetensors or a sharded index, tokenizer.json) in
    /// `dtype` on `device`. Weights are memory-mapped; every tensor is checked for NaN/Inf
    /// before the model is built.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<LoadedModel, LlmError> {
        LoadedModel::with_config(dir, &ModelConfig::from_file(&dir.join("config.json"))?, dtype, device)
    }

    /// As [`LoadedModel::load`], with config.json already read.
    pub fn with_config(
        dir: &Path,
        cfg: &ModelConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<LoadedModel, LlmError> {
        let files = weights::WeightFiles::open(dir)?;
        files.check_finite()?;
        let model = files.build(cfg, dtype, device)?;
        let tokenizer = load_tokenizer(&dir.join("tokenizer.json"))?;
        Ok(LoadedModel { model, tokenizer, files })
    }
}

/// Reads a tokenizer.json (bounded in size).
pub fn load_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer, LlmError> {
    let meta =
        std::fs::metadata(path).map_err(|e| LlmError::Tokenizer(format!("{}: {e}", path.display())))?;
    if meta.len() > 64 << 20 {
        return Err(LlmError::Tokenizer(format!("{}: larger than 64 MiB", path.display())));
    }
    tokenizers::Tokenizer::from_file(path)
        .map_err(|e| LlmError::Tokenizer(format!("{}: {e}", path.display())))
}

/// Token ids of `text`, with or without the tokenizer's special tokens (BOS and the like).
pub fn encode(
    tok: &tokenizers::Tokenizer,
    text: &str,
    add_special_tokens: bool,
) -> Result<Vec<u32>, LlmError> {
    tok.encode(text, add_special_tokens)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| LlmError::Tokenizer(e.to_string()))
}
