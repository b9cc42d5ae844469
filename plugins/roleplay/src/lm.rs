//! A miner's model as Dippy's scoring sees it: the weights on a device, the tokenizer with its
//! BOS, EOS and pad tokens (tokenizer_config.json, as `AutoTokenizer` reads them), and the Dippy
//! chat template the miner committed.

use std::path::Path;

use arena_llm::generate::{GenerationConfig, generate};
use arena_llm::{DType, LlmError, LoadedModel, ModelConfig, Tensor};
use arena_plugin_api::{Device, PluginError, Submission};
use serde_json::Value;

use crate::ModelOptions;
use crate::templates::Template;

pub fn llm_err(e: LlmError) -> PluginError {
    if e.is_submission_fault() {
        PluginError::invalid_submission(e.to_string())
    } else {
        PluginError::internal(e.to_string())
    }
}

/// Which chat template a model is prompted with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chat {
    /// One of Dippy's, by name (how miners' models are scored).
    Dippy(String),
    /// The model directory's own (a local judge or user simulator).
    Own,
    /// None (a task that prompts nothing: latency).
    None,
}

enum Rendering {
    Dippy(Template),
    Own(arena_llm::chat::ChatTemplate),
    None,
}

/// A loaded model with what Dippy's tokenization needs.
pub struct Lm {
    pub lm: LoadedModel,
    rendering: Rendering,
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub eos_id: Option<u32>,
    /// The pad id: the tokenizer's pad token, else its EOS (Dippy: `pad_token = eos_token`).
    pub pad_id: Option<u32>,
    clean_up_spaces: bool,
}

fn token_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The chat template a submission is scored with: the task's override, else the
/// commitment's `chat_template` (SN11 commits it), else an error naming both.
pub fn template_name<'a>(opts: &'a ModelOptions, sub: &'a Submission) -> Result<&'a str, PluginError> {
    if let Some(t) = opts.chat_template.as_deref() {
        return Ok(t);
    }
    sub.metadata.get("chat_template").and_then(Value::as_str).ok_or_else(|| {
        PluginError::invalid_submission(
            "the submission names no chat template (SN11's commitment carries one: \
             namespace:name:chat_template:hotkey:hash:competition_id)",
        )
    })
}

/// Opens the task's device.
pub fn device(d: Device) -> Result<arena_llm::Device, PluginError> {
    let (kind, ordinal) = match d {
        Device::Cpu => ("cpu", 0),
        Device::Cuda(n) => ("cuda", n as usize),
        Device::Wgpu => {
            return Err(PluginError::internal("the roleplay plugin runs on cpu or cuda, not wgpu"));
        }
    };
    arena_llm::open_device(kind, ordinal).map_err(llm_err)
}

/// The dtype of `opts` on `device`: `auto` is f32 on the CPU and the checkpoint's dtype (else
/// bf16) on CUDA.
pub fn dtype(
    opts: &ModelOptions,
    cfg: &ModelConfig,
    device: &arena_llm::Device,
) -> Result<DType, PluginError> {
    match opts.dtype.as_str() {
        "auto" if device.is_cpu() => Ok(DType::F32),
        "auto" => Ok(cfg
            .declared_dtype
            .as_deref()
            .and_then(|d| arena_llm::parse_dtype(d).ok())
            .unwrap_or(DType::BF16)),
        d => arena_llm::parse_dtype(d)
            .map_err(|e| PluginError::invalid_parameters(format!("model.dtype: {e}"))),
    }
}

impl Lm {
    pub fn load(dir: &Path, chat: Chat, opts: &ModelOptions, device: Device) -> Result<Lm, PluginError> {
        let rendering = match chat {
            Chat::Dippy(name) => {
                Rendering::Dippy(Template::named(&name).map_err(PluginError::invalid_submission)?)
            }
            Chat::Own => match arena_llm::chat::ChatTemplate::from_dir(dir).map_err(llm_err)? {
                Some(t) => Rendering::Own(t),
                None => return Err(PluginError::invalid_submission("the model has no chat template")),
            },
            Chat::None => Rendering::None,
        };
        let dev = self::device(device)?;
        let cfg = ModelConfig::from_file(&dir.join("config.json")).map_err(llm_err)?;
        let dt = dtype(opts, &cfg, &dev)?;
        let lm = LoadedModel::with_config(dir, &cfg, dt, &dev).map_err(llm_err)?;
        let tc_path = dir.join("tokenizer_config.json");
        let tc: Value = match std::fs::read_to_string(&tc_path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| {
                PluginError::invalid_submission(format!("{}: not valid JSON: {e}", tc_path.display()))
            })?,
            Err(_) => Value::Null,
        };
        let bos = token_text(tc.get("bos_token"));
        let eos = token_text(tc.get("eos_token"));
        let pad = token_text(tc.get("pad_token"));
        let id = |t: &Option<String>| t.as_deref().and_then(|t| lm.tokenizer.token_to_id(t));
        let eos_id = id(&eos).or_else(|| lm.model.config().eos_token_ids.first().copied());
        let pad_id = id(&pad).or(eos_id);
        let clean_up_spaces =
            tc.get("clean_up_tokenization_spaces").and_then(Value::as_bool).unwrap_or(false);
        Ok(Lm { lm, rendering, bos, eos, eos_id, pad_id, clean_up_spaces })
    }

    pub fn max_positions(&self) -> usize {
        self.lm.model.config().max_position_embeddings
    }

    /// Token ids, with the tokenizer's special tokens or without, cut to `max` on the right as
    /// transformers' `truncation=True` cuts (room kept for the special tokens).
    pub fn encode(&self, text: &str, special: bool, max: Option<usize>) -> Result<Vec<u32>, PluginError> {
        match max {
            None => arena_llm::encode(&self.lm.tokenizer, text, special).map_err(llm_err),
            Some(m) => encode_with(&self.truncating(m)?, text, special),
        }
    }

    /// The tokenizer with right-side truncation to `max` tokens; build it once for many texts.
    pub fn truncating(&self, max: usize) -> Result<tokenizers::Tokenizer, PluginError> {
        let mut tok = self.lm.tokenizer.clone();
        tok.with_truncation(Some(tokenizers::TruncationParams { max_length: max, ..Default::default() }))
            .map_err(|e| PluginError::internal(format!("tokenizer truncation: {e}")))?;
        Ok(tok)
    }

    /// `decode(ids, skip_special_tokens=True)`, with transformers' space clean-up when the
    /// tokenizer's config asks for it.
    pub fn decode(&self, ids: &[u32]) -> String {
        let text = self.lm.tokenizer.decode(ids, true).unwrap_or_default();
        if self.clean_up_spaces { clean_up_tokenization(&text) } else { text }
    }

    /// The template's name, for reports.
    pub fn template_name(&self) -> &str {
        match &self.rendering {
            Rendering::Dippy(t) => &t.name,
            Rendering::Own(_) => "the model's own",
            Rendering::None => "none",
        }
    }

    /// The rendered context of `messages` (Dippy's `__getitem__`: EOS cut from the end, BOS put
    /// in front), or the model's own template with its generation prompt.
    pub fn context(&self, messages: &[crate::data::Turn]) -> Result<String, String> {
        match &self.rendering {
            Rendering::Dippy(t) => t.context(messages, self.bos.as_deref(), self.eos.as_deref()),
            Rendering::Own(t) => {
                let msgs: Vec<arena_llm::chat::Message> = messages
                    .iter()
                    .map(|m| arena_llm::chat::Message { role: m.role.clone(), content: m.content.clone() })
                    .collect();
                t.render(&msgs, true).map_err(|e| e.to_string())
            }
            Rendering::None => Err("this task renders no prompt".into()),
        }
    }

    /// A prompt for a judge or simulator: the same rendering.
    pub fn prompt(&self, messages: &[crate::data::Turn]) -> Result<String, String> {
        self.context(messages)
    }

    /// Whether prompts are tokenized with the tokenizer's special tokens: Dippy's contexts are
    /// (vLLM and its eval add them), a model's own template already holds them (transformers'
    /// `apply_chat_template`).
    pub fn prompt_special_tokens(&self) -> bool {
        matches!(self.rendering, Rendering::Dippy(_))
    }

    /// Generates after `prompt` (ids), stopping at EOS and `extra_stops`; returns the new ids
    /// without the stop token and the decoded text.
    pub fn generate(
        &self,
        prompt: &[u32],
        max_new: usize,
        temperature: Option<f32>,
        extra_stops: &[u32],
        seed: u64,
    ) -> Result<(Vec<u32>, String), PluginError> {
        let mut stops: Vec<u32> = self.eos_id.into_iter().collect();
        stops.extend(self.lm.model.config().eos_token_ids.iter().copied());
        stops.extend_from_slice(extra_stops);
        let cfg = GenerationConfig {
            max_new_tokens: max_new,
            temperature,
            stop_tokens: stops.clone(),
            max_length: Some(self.max_positions()),
            seed,
            ..Default::default()
        };
        if max_new == 0 {
            return Ok((Vec::new(), String::new()));
        }
        let mut ids = generate(&self.lm.model, prompt, &cfg).map_err(llm_err)?;
        if ids.last().is_some_and(|t| stops.contains(t)) {
            ids.pop();
        }
        let text = self.decode(&ids);
        Ok((ids, text))
    }

    /// Logits `[n, vocab]` (f32, row-major) of positions `start..start + n` of `ids`.
    pub fn logits_at(&self, ids: &[u32], start: usize, n: usize) -> Result<Vec<Vec<f32>>, PluginError> {
        let model = &self.lm.model;
        let t =
            Tensor::from_vec(ids.to_vec(), (1, ids.len()), model.device()).map_err(|e| llm_err(e.into()))?;
        let hidden = model.forward_hidden(&t, None, None).map_err(llm_err)?;
        let h = hidden.narrow(1, start, n).map_err(|e| llm_err(e.into()))?;
        let logits = model.logits(&h).map_err(llm_err)?;
        logits.squeeze(0).and_then(|l| l.to_vec2::<f32>()).map_err(|e| llm_err(e.into()))
    }
}

/// Token ids of `text` with `tok` (from [`Lm::truncating`]).
pub fn encode_with(tok: &tokenizers::Tokenizer, text: &str, special: bool) -> Result<Vec<u32>, PluginError> {
    arena_llm::encode(tok, text, special).map_err(llm_err)
}

/// transformers' `clean_up_tokenization`.
fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}
