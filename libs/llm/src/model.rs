//! One decoder for every supported family, returning hidden states or logits for every position.
//!
//! The arithmetic follows transformers' eager implementations: RMS norms computed in f32 (Llama
//! casts before the weight, Gemma multiplies by `1 + weight` in f32), rotary tables in f32 cast
//! to the model dtype, attention scores in the model dtype with the softmax in f32, logits
//! up-cast to f32 before any loss.

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::LlmError;
use crate::config::{Activation, Family, ModelConfig, RopeScaling};
use crate::cpu;

type Result<T> = std::result::Result<T, LlmError>;

/// Positions of queries processed together in attention, bounded so a long sequence does not
/// allocate a `heads × T × T` score tensor at once.
const ATTENTION_SCORE_BUDGET: usize = 1 << 22;

#[derive(Debug)]
struct RmsNorm {
    /// The weight as the checkpoint stores it (Llama-style) or `1 + weight` in f32 (Gemma).
    weight: Tensor,
    eps: f64,
    gemma: bool,
}

impl RmsNorm {
    fn new(size: usize, eps: f64, gemma: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get(size, "weight")?;
        let weight = if gemma { (weight.to_dtype(DType::F32)? + 1.0)? } else { weight };
        Ok(RmsNorm { weight, eps, gemma })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let dtype = x.dtype();
        if !train && dtype == DType::F32 && x.is_contiguous() {
            return Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)?);
        }
        let xf = x.to_dtype(DType::F32)?;
        let var = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = xf.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        Ok(if self.gemma {
            normed.broadcast_mul(&self.weight)?.to_dtype(dtype)?
        } else {
            normed.to_dtype(dtype)?.broadcast_mul(&self.weight)?
        })
    }
}

/// A projection `x W^T + b`.
#[derive(Debug)]
enum Proj {
    /// The weight `[out, in]` as the checkpoint stores it (GPUs, training, half precision).
    Linear(Linear),
    /// The weight transposed once at load, `[in, out]` contiguous, for f32 inference on the CPU:
    /// gemm reads it as its column-major operand as it lies, where a `[out, in]` weight is packed
    /// anew, whole, on every call (a fifth of the text-loss profile).
    Transposed { wt: Tensor, bias: Option<Tensor> },
}

impl Proj {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Proj::Linear(l) => Ok(l.forward(x)?),
            Proj::Transposed { wt, bias } => {
                let (k, n) = wt.dims2()?;
                let mut dims = x.dims().to_vec();
                let rows = x.elem_count() / k.max(1);
                let y = x.reshape((rows, k))?.matmul(wt)?;
                let y = match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                };
                if let Some(last) = dims.last_mut() {
                    *last = n;
                }
                Ok(y.reshape(dims)?)
            }
        }
    }
}

/// Whether projections are stored transposed ([`Proj::Transposed`]).
fn transposes(vb: &VarBuilder, train: bool) -> bool {
    vb.device().is_cpu() && vb.dtype() == DType::F32 && !train
}

fn linear(inp: usize, out: usize, bias: bool, transpose: bool, vb: VarBuilder) -> Result<Proj> {
    if transpose {
        let wt = vb.get((out, inp), "weight")?.t()?.contiguous()?;
        let bias = if bias { Some(vb.get(out, "bias")?) } else { None };
        return Ok(Proj::Transposed { wt, bias });
    }
    Ok(Proj::Linear(if bias {
        candle_nn::linear(inp, out, vb)?
    } else {
        candle_nn::linear_no_bias(inp, out, vb)?
    }))
}

#[derive(Debug)]
enum Qkv {
    Separate { q: Proj, k: Proj, v: Proj },
    Fused(Proj),
}

#[derive(Debug)]
struct Attention {
    qkv: Qkv,
    o: Proj,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
}

#[derive(Debug)]
enum Mlp {
    Separate { gate: Proj, up: Proj, down: Proj, act: Activation },
    Fused { gate_up: Proj, down: Proj, act: Activation, inter: usize },
}

fn activate(x: &Tensor, act: Activation) -> Result<Tensor> {
    Ok(match act {
        Activation::Silu => candle_nn::ops::silu(x)?,
        Activation::GeluTanh => x.gelu()?,
        Activation::Gelu => x.gelu_erf()?,
    })
}

impl Mlp {
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            Mlp::Separate { gate, up, down, act } => {
                let (g, u) = (gate.forward(x)?, up.forward(x)?);
                if *act == Activation::Silu && g.device().is_cpu() && g.dtype() == DType::F32 && !train {
                    return down.forward(&cpu::silu_mul(&g, &u)?);
                }
                let g = activate(&g, *act)?;
                down.forward(&(g * u)?)
            }
            Mlp::Fused { gate_up, down, act, inter } => {
                let gu = gate_up.forward(x)?;
                let g = activate(&gu.narrow(D::Minus1, 0, *inter)?, *act)?;
                let u = gu.narrow(D::Minus1, *inter, *inter)?;
                down.forward(&(u * g)?)
            }
        }
    }
}

#[derive(Debug)]
struct Layer {
    attn: Attention,
    mlp: Mlp,
    input_norm: RmsNorm,
    post_attn_norm: RmsNorm,
    /// Gemma 2's norms around the MLP.
    pre_ff_norm: Option<RmsNorm>,
    post_ff_norm: Option<RmsNorm>,
    window: Option<usize>,
}

/// Rotary tables for a run of positions: `cos`, `sin` of shape `[T, rotary_dim / 2]`.
#[derive(Debug)]
struct RopeTables {
    cos: Tensor,
    sin: Tensor,
}

/// The key/value cache of a generation: per layer, keys and values after RoPE.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Positions already in the cache.
    pub offset: usize,
}

/// How a layer's attention is masked: additive tensors, or the rules themselves (applied by the
/// fused CPU attention without materializing a mask).
#[derive(Clone, Copy)]
enum AttnMask<'a> {
    Tensor(Option<&'a Tensor>),
    Rules { offset: usize, window: Option<usize>, key_mask: Option<&'a [Vec<u8>]> },
}

/// A batch's attention masks, one per distinct sliding window, as additive `[B|1, 1, T, S]`.
struct Masks {
    full: Option<Tensor>,
    windowed: Vec<(usize, Option<Tensor>)>,
}

impl Masks {
    fn get(&self, window: Option<usize>) -> Option<&Tensor> {
        match window {
            None => self.full.as_ref(),
            Some(w) => self.windowed.iter().find(|(x, _)| *x == w).and_then(|(_, m)| m.as_ref()),
        }
    }
}

/// A causal language model.
#[derive(Debug)]
pub struct CausalLm {
    cfg: ModelConfig,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    /// The output projection: `[vocab, hidden]` as stored, or `[hidden, vocab]` where
    /// projections are transposed ([`Proj::Transposed`]; a tied head is then a second copy).
    lm_head: Tensor,
    head_transposed: bool,
    inv_freq: Vec<f32>,
    device: Device,
    dtype: DType,
    /// Differentiable code paths (no fused kernels without backward), for training.
    train: bool,
    /// Attention scores computed at once (elements); longer inputs go in query chunks.
    attention_budget: usize,
}

impl CausalLm {
    /// Builds the model from weights named as in transformers' checkpoints. A tensor whose
    /// shape differs from what the configuration implies is an error naming the tensor.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder, train: bool) -> Result<CausalLm> {
        let gemma = cfg.family == Family::Gemma2;
        let h = cfg.hidden_size;
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let tr = transposes(&vb, train);
        let m = vb.pp("model");
        let embed = m.get((cfg.vocab_size, h), "embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let l = m.pp(format!("layers.{i}"));
            let a = l.pp("self_attn");
            let qkv = if cfg.family == Family::Phi3 {
                Qkv::Fused(linear(h, (nh + 2 * nkv) * hd, false, tr, a.pp("qkv_proj"))?)
            } else {
                Qkv::Separate {
                    q: linear(h, nh * hd, cfg.qkv_bias, tr, a.pp("q_proj"))?,
                    k: linear(h, nkv * hd, cfg.qkv_bias, tr, a.pp("k_proj"))?,
                    v: linear(h, nkv * hd, cfg.qkv_bias, tr, a.pp("v_proj"))?,
                }
            };
            let (q_norm, k_norm) = if cfg.qk_norm {
                (
                    Some(RmsNorm::new(hd, cfg.rms_norm_eps, false, a.pp("q_norm"))?),
                    Some(RmsNorm::new(hd, cfg.rms_norm_eps, false, a.pp("k_norm"))?),
                )
            } else {
                (None, None)
            };
            let scale = match &cfg.gemma {
                Some(g) => 1.0 / g.query_pre_attn_scalar.sqrt(),
                None => 1.0 / (hd as f64).sqrt(),
            };
            let attn = Attention {
                qkv,
                o: linear(nh * hd, h, cfg.o_bias, tr, a.pp("o_proj"))?,
                q_norm,
                k_norm,
                num_heads: nh,
                num_kv_heads: nkv,
                head_dim: hd,
                scale,
                softcap: cfg.gemma.as_ref().and_then(|g| g.attn_logit_softcapping),
            };
            let mp = l.pp("mlp");
            let inter = cfg.intermediate_size;
            let mlp = if cfg.family == Family::Phi3 {
                Mlp::Fused {
                    gate_up: linear(h, 2 * inter, false, tr, mp.pp("gate_up_proj"))?,
                    down: linear(inter, h, false, tr, mp.pp("down_proj"))?,
                    act: cfg.activation,
                    inter,
                }
            } else {
                Mlp::Separate {
                    gate: linear(h, inter, cfg.mlp_bias, tr, mp.pp("gate_proj"))?,
                    up: linear(h, inter, cfg.mlp_bias, tr, mp.pp("up_proj"))?,
                    down: linear(inter, h, cfg.mlp_bias, tr, mp.pp("down_proj"))?,
                    act: cfg.activation,
                }
            };
            let eps = cfg.rms_norm_eps;
            let (pre_ff_norm, post_ff_norm) = if gemma {
                (
                    Some(RmsNorm::new(h, eps, true, l.pp("pre_feedforward_layernorm"))?),
                    Some(RmsNorm::new(h, eps, true, l.pp("post_feedforward_layernorm"))?),
                )
            } else {
                (None, None)
            };
            layers.push(Layer {
                attn,
                mlp,
                input_norm: RmsNorm::new(h, eps, gemma, l.pp("input_layernorm"))?,
                post_attn_norm: RmsNorm::new(h, eps, gemma, l.pp("post_attention_layernorm"))?,
                pre_ff_norm,
                post_ff_norm,
                window: cfg.sliding_window[i],
            });
        }
        let norm = RmsNorm::new(h, cfg.rms_norm_eps, gemma, m.pp("norm"))?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            vb.get((cfg.vocab_size, h), "lm_head.weight")?
        };
        let lm_head = if tr { lm_head.t()?.contiguous()? } else { lm_head };
        Ok(CausalLm {
            cfg: cfg.clone(),
            embed,
            layers,
            norm,
            lm_head,
            head_transposed: tr,
            inv_freq: inv_freq(cfg),
            device: vb.device().clone(),
            dtype: vb.dtype(),
            train,
            attention_budget: ATTENTION_SCORE_BUDGET,
        })
    }

    /// Sets how many attention scores are computed at once (tests force query chunking with it).
    pub fn set_attention_budget(&mut self, elements: usize) {
        self.attention_budget = elements.max(1);
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    fn rope(&self, offset: usize, len: usize) -> Result<RopeTables> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for p in offset..offset + len {
            for f in &self.inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (len, half), &self.device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, (len, half), &self.device)?.to_dtype(self.dtype)?;
        Ok(RopeTables { cos, sin })
    }

    fn apply_rope(&self, x: &Tensor, r: &RopeTables) -> Result<Tensor> {
        let rd = self.cfg.rotary_dim;
        let hd = self.cfg.head_dim;
        let rot = |t: &Tensor| -> Result<Tensor> {
            Ok(if self.train {
                candle_nn::rotary_emb::rope_slow(t, &r.cos, &r.sin)?
            } else {
                candle_nn::rotary_emb::rope(&t.contiguous()?, &r.cos, &r.sin)?
            })
        };
        if rd == hd {
            return rot(x);
        }
        let a = rot(&x.narrow(D::Minus1, 0, rd)?)?;
        let b = x.narrow(D::Minus1, rd, hd - rd)?;
        Ok(Tensor::cat(&[&a, &b], D::Minus1)?)
    }

    /// Embeds `ids` (`[B, T]`, u32) and runs every layer; returns the final-normed hidden states
    /// `[B, T, hidden]`. `key_mask` (`[B][T]`, 1 = real token) masks padded keys; `cache`, when
    /// given, holds earlier positions and receives these.
    pub fn forward_hidden(
        &self,
        ids: &Tensor,
        key_mask: Option<&[Vec<u8>]>,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let offset = cache.as_ref().map_or(0, |c| c.offset);
        if let Some(km) = key_mask
            && (km.len() != b || km.iter().any(|r| r.len() != offset + t))
        {
            return Err(LlmError::Input("attention mask shape differs from the input ids".into()));
        }
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, self.cfg.hidden_size))?;
        if self.cfg.gemma.is_some() {
            let normalizer =
                Tensor::new((self.cfg.hidden_size as f32).sqrt(), &self.device)?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&normalizer)?;
        }
        let rope = self.rope(offset, t)?;
        // On the CPU in f32 the softmax applies the mask rules itself; elsewhere they are tensors.
        let fused = self.device.is_cpu() && !self.train && self.dtype == DType::F32;
        let masks = if fused { None } else { Some(self.masks(b, t, offset, key_mask)?) };
        if let Some(c) = cache.as_deref_mut()
            && c.layers.len() != self.layers.len()
        {
            c.layers = (0..self.layers.len()).map(|_| None).collect();
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let kv = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let mask = match &masks {
                Some(m) => AttnMask::Tensor(m.get(layer.window)),
                None => AttnMask::Rules { offset, window: layer.window, key_mask },
            };
            x = self.layer_forward(layer, &x, &rope, mask, kv)?;
        }
        if let Some(c) = cache {
            c.offset += t;
        }
        self.norm.forward(&x, self.train)
    }

    fn layer_forward(
        &self,
        layer: &Layer,
        x: &Tensor,
        rope: &RopeTables,
        mask: AttnMask<'_>,
        kv: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let residual = x;
        let h = layer.input_norm.forward(x, self.train)?;
        let h = self.attention(&layer.attn, &h, rope, mask, kv)?;
        let x = if layer.pre_ff_norm.is_some() {
            // Gemma 2: a norm after attention, another around the MLP.
            let h = layer.post_attn_norm.forward(&h, self.train)?;
            let x = (residual + h)?;
            let f = layer
                .pre_ff_norm
                .as_ref()
                .map(|n| n.forward(&x, self.train))
                .transpose()?
                .unwrap_or(x.clone());
            let f = layer.mlp.forward(&f, self.train)?;
            let f = match &layer.post_ff_norm {
                Some(n) => n.forward(&f, self.train)?,
                None => f,
            };
            (x + f)?
        } else {
            let x = (residual + h)?;
            let f = layer.mlp.forward(&layer.post_attn_norm.forward(&x, self.train)?, self.train)?;
            (x + f)?
        };
        Ok(x)
    }

    fn attention(
        &self,
        a: &Attention,
        x: &Tensor,
        rope: &RopeTables,
        mask: AttnMask<'_>,
        kv: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (a.num_heads, a.num_kv_heads, a.head_dim);
        let (q, k, v) = match &a.qkv {
            Qkv::Separate { q, k, v } => (q.forward(x)?, k.forward(x)?, v.forward(x)?),
            Qkv::Fused(f) => {
                let qkv = f.forward(x)?;
                (
                    qkv.narrow(D::Minus1, 0, nh * hd)?,
                    qkv.narrow(D::Minus1, nh * hd, nkv * hd)?,
                    qkv.narrow(D::Minus1, (nh + nkv) * hd, nkv * hd)?,
                )
            }
        };
        let mut q = q.reshape((b, t, nh, hd))?;
        let mut k = k.reshape((b, t, nkv, hd))?;
        if let Some(n) = &a.q_norm {
            q = n.forward(&q.contiguous()?, self.train)?;
        }
        if let Some(n) = &a.k_norm {
            k = n.forward(&k.contiguous()?, self.train)?;
        }
        let q = self.apply_rope(&q.transpose(1, 2)?.contiguous()?, rope)?;
        let k = self.apply_rope(&k.transpose(1, 2)?.contiguous()?, rope)?;
        let v = v.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        let (k, v) = match kv {
            Some(slot) => {
                let (k, v) = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                    None => (k, v),
                };
                *slot = Some((k.clone(), v.clone()));
                (k, v)
            }
            None => (k, v),
        };
        if let AttnMask::Rules { offset, window, key_mask } = mask {
            let rules = cpu::MaskRules { q_offset: offset, window, key_mask };
            let out = cpu::attention(&q, &k, &v, a.scale as f32, a.softcap.map(|c| c as f32), rules)?;
            return a.o.forward(&out);
        }
        let AttnMask::Tensor(mask) = mask else { unreachable!("handled above") };
        let s = k.dim(2)?;
        let rep = nh / nkv;
        let chunk = (self.attention_budget / (b * nh * s).max(1)).clamp(1, t.max(1));
        // Grouped queries: the `rep` query heads of one key/value head are adjacent, so when all
        // queries go at once they fold into [B, nkv, rep*T, hd] against the un-repeated keys.
        if rep > 1 && chunk == t && !self.train {
            let qg = q.reshape((b, nkv, rep * t, hd))?;
            let scores = (qg.matmul(&k.t()?)? * a.scale)?;
            let scores = match a.softcap {
                Some(cap) => ((scores / cap)?.tanh()? * cap)?,
                None => scores,
            };
            let scores = scores.to_dtype(DType::F32)?.reshape((b, nh, t, s))?;
            let probs = self.softmax_masked(scores, mask, 0, t)?;
            let probs = probs.to_dtype(self.dtype)?.reshape((b, nkv, rep * t, s))?;
            let out = probs.matmul(&v)?.reshape((b, nh, t, hd))?;
            let out = out.transpose(1, 2)?.reshape((b, t, nh * hd))?;
            return a.o.forward(&out);
        }
        let (k, v) = if rep == 1 {
            (k, v)
        } else {
            let expand = |x: Tensor| -> Result<Tensor> {
                Ok(x.unsqueeze(2)?.expand((b, nkv, rep, s, hd))?.reshape((b, nh, s, hd))?)
            };
            (expand(k)?, expand(v)?)
        };
        let kt = k.t()?;
        let mut outs = Vec::new();
        let mut start = 0;
        while start < t {
            let len = chunk.min(t - start);
            let qc = if len == t { q.clone() } else { q.narrow(2, start, len)? };
            // Causality: these queries see no key after the chunk's last position.
            let kv_len = (s - t + start + len).min(s);
            let (kc, vc) = if kv_len == s {
                (kt.clone(), v.clone())
            } else {
                (kt.narrow(3, 0, kv_len)?, v.narrow(2, 0, kv_len)?)
            };
            let mut scores = (qc.matmul(&kc)? * a.scale)?;
            if let Some(cap) = a.softcap {
                scores = ((scores / cap)?.tanh()? * cap)?;
            }
            let probs = self.softmax_masked(scores.to_dtype(DType::F32)?, mask, start, t)?;
            outs.push(probs.to_dtype(self.dtype)?.matmul(&vc)?);
            start += len;
        }
        let out = if outs.len() == 1 {
            outs.pop().unwrap_or_else(|| unreachable!())
        } else {
            Tensor::cat(&outs, 2)?
        };
        let out = out.transpose(1, 2)?.reshape((b, t, nh * hd))?;
        a.o.forward(&out)
    }

    /// Softmax of f32 scores for the queries `start..start + len` of `t` under `mask`.
    fn softmax_masked(
        &self,
        scores: Tensor,
        mask: Option<&Tensor>,
        start: usize,
        t: usize,
    ) -> Result<Tensor> {
        let (len, kv_len) = (scores.dim(2)?, scores.dim(3)?);
        let scores = match mask {
            Some(m) => {
                let m = if len == t { m.clone() } else { m.narrow(2, start, len)? };
                let m = if kv_len == m.dim(3)? { m } else { m.narrow(3, 0, kv_len)? };
                scores.broadcast_add(&m)?
            }
            None => scores,
        };
        Ok(if self.train {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        })
    }

    /// Additive masks for `t` new positions after `offset` cached ones: causal, the sliding
    /// windows, and padded keys. A query that would see no key at all (a padding position with
    /// left padding) sees itself, so no row is all `-inf`; such positions carry no loss.
    fn masks(&self, b: usize, t: usize, offset: usize, key_mask: Option<&[Vec<u8>]>) -> Result<Masks> {
        let s = offset + t;
        let build = |window: Option<usize>| -> Result<Option<Tensor>> {
            let windowed = window.is_some_and(|w| w < s);
            if t == 1 && key_mask.is_none() && !windowed {
                return Ok(None);
            }
            let rows = if key_mask.is_some() { b } else { 1 };
            let mut data = vec![0f32; rows * t * s];
            for r in 0..rows {
                for i in 0..t {
                    let qpos = offset + i;
                    let row = &mut data[(r * t + i) * s..(r * t + i + 1) * s];
                    for (j, cell) in row.iter_mut().enumerate() {
                        let causal = j <= qpos;
                        let in_window = window.is_none_or(|w| qpos - j.min(qpos) < w);
                        let real = key_mask.is_none_or(|km| km[r][j] != 0 || j == qpos);
                        if !(causal && in_window && real) {
                            *cell = f32::NEG_INFINITY;
                        }
                    }
                }
            }
            Ok(Some(Tensor::from_vec(data, (rows, 1, t, s), &self.device)?))
        };
        let mut windows: Vec<usize> = self.layers.iter().filter_map(|l| l.window).collect();
        windows.sort_unstable();
        windows.dedup();
        let full = if self.layers.iter().any(|l| l.window.is_none()) { build(None)? } else { None };
        let windowed = windows.into_iter().map(|w| Ok((w, build(Some(w))?))).collect::<Result<Vec<_>>>()?;
        Ok(Masks { full, windowed })
    }

    /// Logits `[.., vocab]` in f32 for hidden states `[.., hidden]`, with Gemma 2's final
    /// soft-capping.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let head = if self.head_transposed { self.lm_head.clone() } else { self.lm_head.t()? };
        let logits = hidden.broadcast_matmul(&head)?;
        let mut logits = logits.to_dtype(DType::F32)?;
        if let Some(cap) = self.cfg.gemma.as_ref().and_then(|g| g.final_logit_softcapping) {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }

    /// Logits for every position: `[B, T, vocab]`, f32.
    pub fn forward(&self, ids: &Tensor, key_mask: Option<&[Vec<u8>]>) -> Result<Tensor> {
        let hidden = self.forward_hidden(ids, key_mask, None)?;
        self.logits(&hidden)
    }

    /// The negative log-likelihood of `targets[b][i]` at every position `i` (f32, `[B][T]`),
    /// computed from the hidden states a chunk of positions at a time so that the full
    /// `T × vocab` logits never exist at once. Targets equal to `u32::MAX` give 0.
    pub fn token_nll(&self, hidden: &Tensor, targets: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let (b, t, _) = hidden.dims3()?;
        let chunk = (cpu::LOGITS_BUDGET / self.cfg.vocab_size.max(1)).clamp(1, t.max(1));
        let mut out = vec![Vec::with_capacity(t); b];
        for (row, tg) in targets.iter().enumerate().take(b) {
            let mut start = 0;
            while start < t {
                let len = chunk.min(t - start);
                let h = hidden.narrow(0, row, 1)?.narrow(1, start, len)?.squeeze(0)?;
                let logits = self.logits(&h)?;
                let tgt = &tg[start..start + len];
                let nll = if self.device.is_cpu() && !self.train {
                    cpu::nll(&logits, tgt)?
                } else {
                    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
                    let ids: Vec<u32> = tgt.iter().map(|&x| if x == u32::MAX { 0 } else { x }).collect();
                    let idx = Tensor::from_vec(ids, (len, 1), &self.device)?;
                    let picked: Vec<f32> = logp.gather(&idx, 1)?.squeeze(1)?.to_vec1()?;
                    picked.into_iter().map(|lp| -lp).collect()
                };
                out[row].extend(nll.into_iter().zip(tgt).map(|(l, &x)| if x == u32::MAX { 0.0 } else { l }));
                start += len;
            }
        }
        Ok(out)
    }
}

/// Rotary inverse frequencies as transformers computes them (f32), with its scaling rules.
fn inv_freq(cfg: &ModelConfig) -> Vec<f32> {
    let dim = cfg.rotary_dim;
    let base = cfg.rope_theta as f32;
    let raw: Vec<f32> = (0..dim).step_by(2).map(|i| 1.0 / base.powf(i as f32 / dim as f32)).collect();
    match cfg.rope_scaling {
        RopeScaling::None => raw,
        RopeScaling::Linear { factor } => raw.into_iter().map(|f| f / factor).collect(),
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position } => {
            let low_wavelen = original_max_position / low_freq_factor;
            let high_wavelen = original_max_position / high_freq_factor;
            raw.into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wavelen > low_wavelen { f / factor } else { f };
                    // transformers: neither high- nor low-frequency (finite wavelengths).
                    let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                    if medium {
                        let smooth = (original_max_position / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    }
                })
                .collect()
        }
    }
}
