//! Tiny language models made by the project, deterministically: a generated corpus, a byte-level
//! BPE tokenizer trained on it, and llama- or qwen2-architecture models in Hugging Face layout,
//! randomly initialised and trained for a chosen number of steps (more steps, lower loss).
//!
//! Everything derives from one seed. Training runs on the CPU with candle's autograd; results
//! are bit-identical across runs on one machine (thread partitioning of matrix products can
//! differ between machines with different core counts).

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use candle_nn::{VarBuilder, VarMap};
use serde_json::{Value, json};
use tokenizers::SplitDelimiterBehavior;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::LlmError;
use crate::config::{Family, ModelConfig};
use crate::generate::SplitMix64;
use crate::model::CausalLm;
use crate::protocols;

pub const PAD: &str = "<pad>";
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
/// Qwen 2's pre-tokenization regex.
pub const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// ChatML, as Qwen uses it.
pub const CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const ADJ: [&str; 12] =
    ["red", "small", "quiet", "bright", "old", "green", "heavy", "quick", "tall", "warm", "dark", "soft"];
const NOUN: [&str; 12] =
    ["cat", "river", "stone", "garden", "bird", "lamp", "forest", "boat", "child", "window", "road", "tree"];
const VERB: [&str; 10] =
    ["sees", "follows", "finds", "near", "moves", "watches", "holds", "passes", "meets", "likes"];
const NAME: [&str; 8] = ["Ada", "Bo", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana"];
const THING: [&str; 6] = ["apples", "books", "coins", "shells", "cards", "pears"];

fn pick<'a>(rng: &mut SplitMix64, xs: &[&'a str]) -> &'a str {
    xs[(rng.next_u64() % xs.len() as u64) as usize]
}

/// One generated document: 3 to 8 sentences of a small grammar with arithmetic facts, so a
/// model's loss falls as it learns the grammar and the sums.
pub fn document(rng: &mut SplitMix64) -> String {
    let n = 3 + (rng.next_u64() % 6) as usize;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let s = if rng.next_u64().is_multiple_of(3) {
            let name = pick(rng, &NAME);
            let thing = pick(rng, &THING);
            let a = rng.next_u64() % 10;
            let b = rng.next_u64() % 10;
            format!("{name} has {a} {thing} and gets {b} more, so {name} has {} {thing}.", a + b)
        } else {
            format!(
                "The {} {} {} the {} {}.",
                pick(rng, &ADJ),
                pick(rng, &NOUN),
                pick(rng, &VERB),
                pick(rng, &ADJ),
                pick(rng, &NOUN)
            )
        };
        out.push(s);
    }
    out.join(" ")
}

/// `count` documents from `seed`.
pub fn corpus(seed: u64, count: usize) -> Vec<String> {
    let mut rng = SplitMix64::new(seed);
    (0..count).map(|_| document(&mut rng)).collect()
}

/// A ChatML conversation, as the chat template renders it.
pub fn chat(user: &str, assistant: &str) -> String {
    format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{assistant}<|im_end|>\n")
}

/// The training corpus: `count` documents plus, one for every four, a chat-formatted
/// multiple-choice question or sum completion (so instruction-style tasks have something to
/// measure).
pub fn training_corpus(seed: u64, count: usize) -> Vec<String> {
    let mut docs = corpus(seed, count);
    let extra = count / 4;
    let mc = multiple_choice(seed.wrapping_add(100), extra / 2);
    let refs = reference_pairs(seed.wrapping_add(101), extra - extra / 2);
    for q in &mc {
        docs.push(chat(q["prompt"].as_str().unwrap_or_default(), q["answer"].as_str().unwrap_or_default()));
    }
    for r in &refs {
        let (c, a) = (r["context"].as_str().unwrap_or_default(), r["reference"].as_str().unwrap_or_default());
        docs.push(chat(c, a));
    }
    // Interleave deterministically so every training window mixes both kinds.
    let mut rng = SplitMix64::new(seed.wrapping_add(102));
    for i in (1..docs.len()).rev() {
        docs.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    docs
}

/// Trains a byte-level BPE tokenizer of `vocab_size` on `docs`. Ids 0, 1, 2 are `<pad>`, `<s>`,
/// `</s>`; with `add_bos`, encoding with special tokens prepends `<s>` (Llama style).
pub fn train_tokenizer(docs: &[String], vocab_size: usize, add_bos: bool) -> Result<Tokenizer, LlmError> {
    let terr = |e: tokenizers::Error| LlmError::Tokenizer(e.to_string());
    let specials: Vec<AddedToken> = [PAD, BOS, EOS, "<|im_start|>", "<|im_end|>"]
        .iter()
        .map(|s| AddedToken::from(s.to_string(), true))
        .collect();
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut trainer = tokenizers::models::TrainerWrapper::BpeTrainer(trainer);
    let mut tok = Tokenizer::new(BPE::default());
    if add_bos {
        tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    } else {
        // Qwen 2's pre-tokenizer (which transformers' Qwen2Tokenizer rebuilds whatever
        // tokenizer.json says): NFC, split by its regex, then bytes without a regex.
        let split =
            Split::new(SplitPattern::Regex(QWEN2_SPLIT.into()), SplitDelimiterBehavior::Isolated, false)
                .map_err(terr)?;
        tok.with_normalizer(Some(NFC)).map_err(terr)?;
        tok.with_pre_tokenizer(Some(Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, false, false).into(),
        ])));
    }
    tok.with_decoder(Some(ByteLevel::default()));
    tok.train(&mut trainer, docs.iter()).map_err(terr)?;
    if add_bos {
        let bos_id = tok.token_to_id(BOS).ok_or_else(|| LlmError::Tokenizer("no <s> token".into()))?;
        let post = TemplateProcessing::builder()
            .try_single(format!("{BOS} $A"))
            .and_then(|b| b.try_pair(format!("{BOS} $A {BOS} $B")))
            .map_err(|e| LlmError::Tokenizer(e.to_string()))?
            .special_tokens(vec![(BOS, bos_id)])
            .build()
            .map_err(|e| LlmError::Tokenizer(e.to_string()))?;
        tok.with_post_processor(Some(post));
    }
    Ok(tok)
}

/// The shape of a tiny model.
#[derive(Clone, Copy, Debug)]
pub struct TinySpec {
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub max_position_embeddings: usize,
}

impl TinySpec {
    pub fn new(family: Family) -> TinySpec {
        TinySpec {
            family,
            vocab_size: 512,
            hidden_size: 64,
            intermediate_size: 128,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            max_position_embeddings: 512,
        }
    }

    /// The config.json transformers would write for this model.
    pub fn config_json(&self) -> Value {
        let tie = self.family == Family::Qwen2;
        let mut v = json!({
            "architectures": [self.family.architecture()],
            "model_type": self.family.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_act": "silu",
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "tie_word_embeddings": tie,
            "initializer_range": 0.02,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 0,
            "torch_dtype": "float32",
            "use_cache": true,
        });
        if self.family == Family::Llama {
            v["attention_bias"] = json!(false);
            v["mlp_bias"] = json!(false);
        }
        v
    }
}

fn normal(rng: &mut SplitMix64, n: usize, std: f64) -> Vec<f32> {
    // Box-Muller on the generator's uniforms.
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1 = rng.next_f64().max(f64::MIN_POSITIVE);
        let u2 = rng.next_f64();
        let r = (-2.0 * u1.ln()).sqrt() * std;
        let a = 2.0 * std::f64::consts::PI * u2;
        out.push((r * a.cos()) as f32);
        out.push((r * a.sin()) as f32);
    }
    out.truncate(n);
    out
}

/// Names and shapes of every tensor of the checkpoint, in a fixed order.
fn tensor_shapes(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let q = cfg.num_heads * cfg.head_dim;
    let kv = cfg.num_kv_heads * cfg.head_dim;
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
    for l in 0..cfg.num_layers {
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("self_attn.q_proj.weight", vec![q, h]),
            ("self_attn.k_proj.weight", vec![kv, h]),
            ("self_attn.v_proj.weight", vec![kv, h]),
            ("self_attn.o_proj.weight", vec![h, q]),
            ("mlp.gate_proj.weight", vec![i, h]),
            ("mlp.up_proj.weight", vec![i, h]),
            ("mlp.down_proj.weight", vec![h, i]),
            ("input_layernorm.weight", vec![h]),
            ("post_attention_layernorm.weight", vec![h]),
        ] {
            out.push((format!("{p}.{name}"), shape));
        }
        if cfg.qkv_bias {
            out.push((format!("{p}.self_attn.q_proj.bias"), vec![q]));
            out.push((format!("{p}.self_attn.k_proj.bias"), vec![kv]));
            out.push((format!("{p}.self_attn.v_proj.bias"), vec![kv]));
        }
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, h]));
    }
    out
}

/// A freshly initialised model's variables: weights N(0, 0.02), norms 1, biases 0.
pub fn init_vars(cfg: &ModelConfig, seed: u64) -> Result<VarMap, LlmError> {
    let mut rng = SplitMix64::new(seed);
    let map = VarMap::new();
    {
        let mut data = map.data().lock().map_err(|_| LlmError::Input("variable map poisoned".into()))?;
        for (name, shape) in tensor_shapes(cfg) {
            let n: usize = shape.iter().product();
            let values = if name.ends_with("norm.weight") {
                vec![1.0f32; n]
            } else if name.ends_with(".bias") {
                vec![0.0f32; n]
            } else {
                normal(&mut rng, n, 0.02)
            };
            let t = Tensor::from_vec(values, shape, &Device::Cpu)?;
            data.insert(name, Var::from_tensor(&t)?);
        }
    }
    Ok(map)
}

#[allow(clippy::too_many_arguments)]
/// Trains `vars` for `steps` AdamW steps on windows of `seq_len` tokens packed from `docs`
/// (taken in order, cycling), `batch` windows per step. Returns the loss of each step.
pub fn train(
    cfg: &ModelConfig,
    vars: &VarMap,
    docs: &[Vec<u32>],
    eos: u32,
    steps: usize,
    seq_len: usize,
    batch: usize,
    lr: f64,
) -> Result<Vec<f32>, LlmError> {
    let windows = protocols::sn9_packed(docs, eos, seq_len + 1);
    if windows.is_empty() && steps > 0 {
        return Err(LlmError::Input("the training corpus is shorter than one window".into()));
    }
    let vb = VarBuilder::from_varmap(vars, DType::F32, &Device::Cpu);
    let model = CausalLm::new(cfg, vb, true)?;
    let params = ParamsAdamW { lr, weight_decay: 0.0, ..Default::default() };
    // Each variable's update is independent of the others, so their order does not matter.
    let mut opt = AdamW::new(vars.all_vars(), params)?;
    let mut losses = Vec::with_capacity(steps);
    let mut next = 0;
    for _ in 0..steps {
        let mut inp = Vec::with_capacity(batch * seq_len);
        let mut tgt = Vec::with_capacity(batch * seq_len);
        for _ in 0..batch {
            let w = &windows[next % windows.len()].ids;
            next += 1;
            inp.extend_from_slice(&w[..seq_len]);
            tgt.extend_from_slice(&w[1..]);
        }
        let x = Tensor::from_vec(inp, (batch, seq_len), &Device::Cpu)?;
        let y = Tensor::from_vec(tgt, batch * seq_len, &Device::Cpu)?;
        let hidden = model.forward_hidden(&x, None, None)?;
        let logits = model.logits(&hidden)?.reshape((batch * seq_len, cfg.vocab_size))?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        opt.backward_step(&loss)?;
        losses.push(loss.to_scalar::<f32>()?);
    }
    Ok(losses)
}

/// Writes `rows` as JSON lines.
pub fn write_jsonl(path: &Path, rows: impl IntoIterator<Item = Value>) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in rows {
        writeln!(f, "{r}")?;
    }
    f.flush()
}

/// What [`make_model`] produced.
#[derive(Clone, Debug)]
pub struct MadeModel {
    pub name: String,
    pub steps: usize,
    pub final_train_loss: Option<f32>,
}

/// Writes a complete model directory: config.json, model.safetensors, tokenizer.json,
/// tokenizer_config.json (with the ChatML chat template). Trained in windows of 64 tokens, 8 per
/// step.
pub fn make_model(
    dir: &Path,
    spec: &TinySpec,
    tokenizer: &Tokenizer,
    train_docs: &[String],
    steps: usize,
    seed: u64,
) -> Result<MadeModel, LlmError> {
    make_model_with(dir, spec, tokenizer, train_docs, steps, 64, 8, seed)
}

/// [`make_model`] with the training window and batch chosen.
#[allow(clippy::too_many_arguments)]
pub fn make_model_with(
    dir: &Path,
    spec: &TinySpec,
    tokenizer: &Tokenizer,
    train_docs: &[String],
    steps: usize,
    window: usize,
    batch: usize,
    seed: u64,
) -> Result<MadeModel, LlmError> {
    let io = |e: std::io::Error| LlmError::Input(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let config = spec.config_json();
    let cfg = ModelConfig::from_json(&config)?;
    let vars = init_vars(&cfg, seed)?;
    let eos = tokenizer.token_to_id(EOS).ok_or_else(|| LlmError::Tokenizer("no </s> token".into()))?;
    let docs: Vec<Vec<u32>> =
        train_docs.iter().map(|d| crate::encode(tokenizer, d, false)).collect::<Result<_, _>>()?;
    let losses = train(&cfg, &vars, &docs, eos, steps, window, batch, 3e-3)?;
    vars.save(dir.join("model.safetensors"))?;
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    std::fs::write(dir.join("config.json"), pretty(&config)).map_err(io)?;
    tokenizer
        .save(dir.join("tokenizer.json"), true)
        .map_err(|e| LlmError::Tokenizer(format!("saving tokenizer.json: {e}")))?;
    let tok_cfg = json!({
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": PAD,
        "add_bos_token": spec.family == Family::Llama,
        "model_max_length": spec.max_position_embeddings,
        "chat_template": CHAT_TEMPLATE,
        "tokenizer_class": "PreTrainedTokenizerFast",
    });
    std::fs::write(dir.join("tokenizer_config.json"), pretty(&tok_cfg)).map_err(io)?;
    Ok(MadeModel {
        name: dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        steps,
        final_train_loss: losses.last().copied(),
    })
}

/// Multiple-choice questions about sums, SN37-style: the prompt lists options A to D and the
/// answer is a letter.
pub fn multiple_choice(seed: u64, count: usize) -> Vec<Value> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            let a = rng.next_u64() % 10;
            let b = rng.next_u64() % 10;
            let right = a + b;
            let slot = (rng.next_u64() % 4) as usize;
            let mut options = Vec::with_capacity(4);
            let mut wrong = (right + 1 + rng.next_u64() % 5) % 19;
            for i in 0..4 {
                if i == slot {
                    options.push(right);
                } else {
                    while wrong == right || options.contains(&wrong) {
                        wrong = (wrong + 3) % 19;
                    }
                    options.push(wrong);
                    wrong = (wrong + 7) % 19;
                }
            }
            let letters = ["A", "B", "C", "D"];
            let listed: Vec<String> = options.iter().zip(letters).map(|(o, l)| format!("{l}. {o}")).collect();
            json!({
                "prompt": format!("What is {a} plus {b}? {} Answer with a letter.", listed.join(" ")),
                "answer": letters[slot],
            })
        })
        .collect()
}

/// Context/reference pairs in the style of SN37's word sorting: the reference continues the
/// context with the sum.
pub fn reference_pairs(seed: u64, count: usize) -> Vec<Value> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            let name = pick(&mut rng, &NAME);
            let thing = pick(&mut rng, &THING);
            let a = rng.next_u64() % 10;
            let b = rng.next_u64() % 10;
            json!({
                "context": format!("{name} has {a} {thing} and gets {b} more, so"),
                "reference": format!(" {name} has {} {thing}.", a + b),
            })
        })
        .collect()
}

/// Writes config.json and a randomly initialised model.safetensors (no tokenizer): a model of
/// any size for benchmarks.
pub fn write_random_model(dir: &Path, spec: &TinySpec, seed: u64) -> Result<ModelConfig, LlmError> {
    let io = |e: std::io::Error| LlmError::Input(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let config = spec.config_json();
    let cfg = ModelConfig::from_json(&config)?;
    init_vars(&cfg, seed)?.save(dir.join("model.safetensors"))?;
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap_or_default() + "\n")
        .map_err(io)?;
    Ok(cfg)
}
