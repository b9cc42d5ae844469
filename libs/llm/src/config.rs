//! A Hugging Face `config.json` read into one normalized description of a decoder.
//!
//! The supported families differ in a handful of switches (biases, fused projections, norms on
//! queries and keys, Gemma 2's soft-capping and extra norms, sliding windows, RoPE variants);
//! everything else is the same decoder, so the model code reads these switches and nothing else.

use std::path::Path;

use serde_json::Value;

use crate::LlmError;

/// The model families arena implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Phi3,
    Gemma2,
}

impl Family {
    pub const ALL: [Family; 6] =
        [Family::Llama, Family::Mistral, Family::Qwen2, Family::Qwen3, Family::Phi3, Family::Gemma2];

    /// The `model_type` of config.json.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Phi3 => "phi3",
            Family::Gemma2 => "gemma2",
        }
    }

    /// The transformers class a checkpoint of this family declares in `architectures`.
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Mistral => "MistralForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Qwen3 => "Qwen3ForCausalLM",
            Family::Phi3 => "Phi3ForCausalLM",
            Family::Gemma2 => "Gemma2ForCausalLM",
        }
    }

    pub fn from_model_type(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.model_type() == s)
    }
}

/// The MLP's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`, `gelu_new`).
    GeluTanh,
    /// Exact GELU (erf).
    Gelu,
}

/// How rotary frequencies are adjusted for long contexts.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor`.
    Linear {
        factor: f32,
    },
    /// Llama 3.1's frequency-dependent scaling.
    Llama3 {
        factor: f32,
        low_freq_factor: f32,
        high_freq_factor: f32,
        original_max_position: f32,
    },
}

/// Gemma 2's extras.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmaExtras {
    pub query_pre_attn_scalar: f64,
    pub attn_logit_softcapping: Option<f64>,
    pub final_logit_softcapping: Option<f64>,
}

/// A decoder-only causal language model, as arena runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    /// Dimensions of each head that are rotated (`head_dim` unless `partial_rotary_factor`).
    pub rotary_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Biases on the q, k and v projections.
    pub qkv_bias: bool,
    /// Bias on the output projection.
    pub o_bias: bool,
    /// Biases on the MLP projections.
    pub mlp_bias: bool,
    /// RMS norms on each head's queries and keys (Qwen 3).
    pub qk_norm: bool,
    pub activation: Activation,
    /// For each layer, the sliding window it attends within (None: full causal attention).
    pub sliding_window: Vec<Option<usize>>,
    pub gemma: Option<GemmaExtras>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
    /// The dtype the checkpoint declares (`torch_dtype` or `dtype`).
    pub declared_dtype: Option<String>,
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|x| !x.is_null())
}

fn usize_field(v: &Value, name: &str) -> Result<Option<usize>, LlmError> {
    match field(v, name) {
        None => Ok(None),
        Some(x) => x
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| LlmError::Config(format!("config.json: `{name}` must be a non-negative integer"))),
    }
}

fn req_usize(v: &Value, name: &str) -> Result<usize, LlmError> {
    usize_field(v, name)?.ok_or_else(|| LlmError::Config(format!("config.json: `{name}` is missing")))
}

fn f64_field(v: &Value, name: &str) -> Result<Option<f64>, LlmError> {
    match field(v, name) {
        None => Ok(None),
        Some(x) => x
            .as_f64()
            .map(Some)
            .ok_or_else(|| LlmError::Config(format!("config.json: `{name}` must be a number"))),
    }
}

fn bool_field(v: &Value, name: &str, default: bool) -> Result<bool, LlmError> {
    match field(v, name) {
        None => Ok(default),
        Some(x) => {
            x.as_bool().ok_or_else(|| LlmError::Config(format!("config.json: `{name}` must be a boolean")))
        }
    }
}

fn token_ids(v: &Value, name: &str) -> Result<Vec<u32>, LlmError> {
    let bad = || LlmError::Config(format!("config.json: `{name}` must be a token id or a list of them"));
    match field(v, name) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => {
            a.iter().map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)).collect()
        }
        Some(x) => Ok(vec![x.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?]),
    }
}

/// Upper bounds on a configuration's sizes, so a hostile config.json cannot ask for absurd
/// allocations before a single weight is read.
const MAX_DIM: usize = 1 << 20;
const MAX_LAYERS: usize = 1024;
const MAX_VOCAB: usize = 1 << 22;

impl ModelConfig {
    pub fn from_file(path: &Path) -> Result<ModelConfig, LlmError> {
        let meta =
            std::fs::metadata(path).map_err(|e| LlmError::Config(format!("{}: {e}", path.display())))?;
        if meta.len() > 4 << 20 {
            return Err(LlmError::Config(format!("{}: larger than 4 MiB", path.display())));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| LlmError::Config(format!("{}: {e}", path.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| LlmError::Config(format!("{}: not valid JSON: {e}", path.display())))?;
        ModelConfig::from_json(&v)
    }

    pub fn from_json(v: &Value) -> Result<ModelConfig, LlmError> {
        let model_type = field(v, "model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| LlmError::Config("config.json: `model_type` is missing".into()))?;
        let family = Family::from_model_type(model_type).ok_or_else(|| {
            LlmError::Unsupported(format!(
                "model_type `{model_type}` (supported: {})",
                Family::ALL.map(Family::model_type).join(", ")
            ))
        })?;
        let hidden_size = req_usize(v, "hidden_size")?;
        let num_heads = req_usize(v, "num_attention_heads")?;
        let num_layers = req_usize(v, "num_hidden_layers")?;
        let vocab_size = req_usize(v, "vocab_size")?;
        let intermediate_size = req_usize(v, "intermediate_size")?;
        let num_kv_heads = usize_field(v, "num_key_value_heads")?.unwrap_or(num_heads);
        if num_heads == 0 || num_kv_heads == 0 || hidden_size == 0 || vocab_size == 0 {
            return Err(LlmError::Config("config.json: sizes and head counts must be positive".into()));
        }
        if hidden_size > MAX_DIM
            || intermediate_size > MAX_DIM
            || num_layers > MAX_LAYERS
            || vocab_size > MAX_VOCAB
        {
            return Err(LlmError::Config("config.json: sizes beyond any supported model".into()));
        }
        if num_heads % num_kv_heads != 0 {
            return Err(LlmError::Config(format!(
                "config.json: num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}"
            )));
        }
        let head_dim = match usize_field(v, "head_dim")? {
            Some(d) => d,
            None => {
                if hidden_size % num_heads != 0 {
                    return Err(LlmError::Config(format!(
                        "config.json: hidden_size {hidden_size} is not a multiple of num_attention_heads {num_heads}"
                    )));
                }
                hidden_size / num_heads
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 || head_dim > MAX_DIM {
            return Err(LlmError::Config(format!(
                "config.json: head_dim {head_dim} must be even and positive"
            )));
        }
        let partial = f64_field(v, "partial_rotary_factor")?.unwrap_or(1.0);
        let rotary_dim = ((head_dim as f64 * partial) as usize) & !1;
        if rotary_dim == 0 || rotary_dim > head_dim {
            return Err(LlmError::Config("config.json: `partial_rotary_factor` out of (0, 1]".into()));
        }

        // transformers 5 writes `rope_parameters`; older checkpoints `rope_theta` + `rope_scaling`.
        let rope_params = field(v, "rope_parameters");
        let rope_theta = match rope_params.and_then(|p| p.get("rope_theta")).and_then(Value::as_f64) {
            Some(t) => t,
            None => f64_field(v, "rope_theta")?.unwrap_or(10_000.0),
        };
        let scaling = rope_params.or_else(|| field(v, "rope_scaling"));
        let rope_scaling = parse_rope_scaling(scaling, v)?;

        let max_position_embeddings = usize_field(v, "max_position_embeddings")?.unwrap_or(4096);
        let act_name = field(v, "hidden_activation")
            .or_else(|| field(v, "hidden_act"))
            .and_then(Value::as_str)
            .unwrap_or("silu");
        let activation = match act_name {
            "silu" | "swish" => Activation::Silu,
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Activation::GeluTanh,
            "gelu" => Activation::Gelu,
            other => return Err(LlmError::Unsupported(format!("activation `{other}`"))),
        };

        let (default_tie, qkv_default, qk_norm) = match family {
            Family::Llama | Family::Mistral | Family::Phi3 => (false, false, false),
            Family::Qwen2 => (false, true, false),
            Family::Qwen3 => (false, false, true),
            Family::Gemma2 => (true, false, false),
        };
        let tie_word_embeddings = bool_field(v, "tie_word_embeddings", default_tie)?;
        let attention_bias = bool_field(v, "attention_bias", false)?;
        let (qkv_bias, o_bias) = match family {
            Family::Qwen2 => (qkv_default, false),
            Family::Phi3 => (false, false),
            _ => (attention_bias, attention_bias),
        };
        let mlp_bias = matches!(family, Family::Llama) && bool_field(v, "mlp_bias", false)?;

        let window = usize_field(v, "sliding_window")?;
        let sliding_window: Vec<Option<usize>> = match family {
            Family::Mistral | Family::Phi3 => vec![window; num_layers],
            Family::Gemma2 => match field(v, "layer_types").and_then(Value::as_array) {
                Some(types) if types.len() == num_layers => types
                    .iter()
                    .map(|t| if t.as_str() == Some("sliding_attention") { window } else { None })
                    .collect(),
                Some(_) => {
                    return Err(LlmError::Config("config.json: `layer_types` must name every layer".into()));
                }
                None => (0..num_layers).map(|i| if i % 2 == 0 { window } else { None }).collect(),
            },
            Family::Qwen2 | Family::Qwen3 => {
                if bool_field(v, "use_sliding_window", false)? {
                    return Err(LlmError::Unsupported("use_sliding_window = true".into()));
                }
                vec![None; num_layers]
            }
            Family::Llama => vec![None; num_layers],
        };
        let gemma = match family {
            Family::Gemma2 => Some(GemmaExtras {
                query_pre_attn_scalar: f64_field(v, "query_pre_attn_scalar")?.unwrap_or(head_dim as f64),
                attn_logit_softcapping: f64_field(v, "attn_logit_softcapping")?,
                final_logit_softcapping: f64_field(v, "final_logit_softcapping")?,
            }),
            _ => None,
        };
        let declared_dtype =
            field(v, "torch_dtype").or_else(|| field(v, "dtype")).and_then(Value::as_str).map(str::to_string);
        Ok(ModelConfig {
            family,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            rotary_dim,
            rms_norm_eps: f64_field(v, "rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            rope_scaling,
            max_position_embeddings,
            tie_word_embeddings,
            qkv_bias,
            o_bias,
            mlp_bias,
            qk_norm,
            activation,
            sliding_window,
            gemma,
            bos_token_id: token_ids(v, "bos_token_id")?.first().copied(),
            eos_token_ids: token_ids(v, "eos_token_id")?,
            pad_token_id: token_ids(v, "pad_token_id")?.first().copied(),
            declared_dtype,
        })
    }

    /// The number of parameters the configuration implies (embeddings counted once when tied).
    pub fn parameter_count(&self) -> u64 {
        let h = self.hidden_size as u64;
        let q = (self.num_heads * self.head_dim) as u64;
        let kv = (self.num_kv_heads * self.head_dim) as u64;
        let i = self.intermediate_size as u64;
        let mut layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h;
        if self.qkv_bias {
            layer += q + 2 * kv;
        }
        if self.o_bias {
            layer += h;
        }
        if self.mlp_bias {
            layer += 2 * i + h;
        }
        if self.qk_norm {
            layer += 2 * self.head_dim as u64;
        }
        if self.gemma.is_some() {
            layer += 2 * h;
        }
        let embed = self.vocab_size as u64 * h;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        self.num_layers as u64 * layer + embed + head + h
    }
}

fn parse_rope_scaling(scaling: Option<&Value>, v: &Value) -> Result<RopeScaling, LlmError> {
    let Some(s) = scaling else { return Ok(RopeScaling::None) };
    let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str).unwrap_or("default");
    let num = |name: &str| -> Result<f32, LlmError> {
        s.get(name)
            .and_then(Value::as_f64)
            .map(|x| x as f32)
            .ok_or_else(|| LlmError::Config(format!("config.json: rope scaling `{kind}` needs `{name}`")))
    };
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear { factor: num("factor")? }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position: match s.get("original_max_position_embeddings").and_then(Value::as_f64) {
                Some(x) => x as f32,
                None => usize_field(v, "max_position_embeddings")?.unwrap_or(8192) as f32,
            },
        }),
        other => Err(LlmError::Unsupported(format!("rope scaling `{other}`"))),
    }
}
