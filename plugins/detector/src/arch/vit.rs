//! torchvision's `VisionTransformer`, with its tensor names, at any size (a small one by default):
//! patches by a strided convolution, a class token, learned position embeddings, pre-norm
//! encoder blocks (multi-head self-attention with a packed `in_proj`, GELU MLP), a final
//! LayerNorm and a linear head on the class token. LayerNorm eps 1e-6.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};

use super::layers::{conv2d, cpu_conv, cpu_dense, cpu_linear, cpu_norm, layer_norm, linear, values};
use crate::DetectorError;
use crate::cpu;
use crate::weights::{Layout, Source};

const EPS: f64 = 1e-6;

/// The transformer's shape (`model:` keys of model_config.yaml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VitShape {
    pub patch_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub hidden_dim: usize,
    pub mlp_dim: usize,
}

#[derive(Module, Debug)]
pub struct EncoderBlock {
    ln_1: LayerNorm,
    /// `[D, 3D]` (burn layout of PyTorch's `in_proj_weight` `[3D, D]`).
    in_proj_weight: Param<Tensor<2>>,
    in_proj_bias: Param<Tensor<1>>,
    out_proj: Linear,
    ln_2: LayerNorm,
    mlp_0: Linear,
    mlp_3: Linear,
    heads: usize,
}

impl EncoderBlock {
    fn load(src: &mut Source, name: &str, s: VitShape) -> Result<EncoderBlock, DetectorError> {
        let d = s.hidden_dim;
        let p = |x: &str| format!("{name}.{x}");
        Ok(EncoderBlock {
            ln_1: layer_norm(src, &p("ln_1"), d, EPS)?,
            in_proj_weight: src.param(&p("self_attention.in_proj_weight"), [3 * d, d], Layout::Transposed)?,
            in_proj_bias: src.param(&p("self_attention.in_proj_bias"), [3 * d], Layout::AsIs)?,
            out_proj: linear(src, &p("self_attention.out_proj"), d, d, true)?,
            ln_2: layer_norm(src, &p("ln_2"), d, EPS)?,
            mlp_0: linear(src, &p("mlp.0"), d, s.mlp_dim, true)?,
            mlp_3: linear(src, &p("mlp.3"), s.mlp_dim, d, true)?,
            heads: s.num_heads,
        })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let y = self.ln_1.forward(x.clone());
        let qkv =
            y.matmul(self.in_proj_weight.val().unsqueeze::<3>()) + self.in_proj_bias.val().unsqueeze::<3>();
        // [B, N, 3, H, hd] -> three [B, H, N, hd]
        let qkv = qkv.reshape([b, n, 3, h, hd]).permute([2, 0, 3, 1, 4]);
        let part = |i: usize| qkv.clone().narrow(0, i, 1).reshape([b, h, n, hd]);
        let (q, k, v) = (part(0), part(1), part(2));
        let scores = q.matmul(k.swap_dims(2, 3)) / (hd as f64).sqrt();
        let attn = softmax(scores, 3).matmul(v);
        let attn = attn.swap_dims(1, 2).reshape([b, n, d]);
        let x = x + self.out_proj.forward(attn);
        let y = self.mlp_3.forward(gelu(self.mlp_0.forward(self.ln_2.forward(x.clone()))));
        x + y
    }
}

#[derive(Module, Debug)]
pub struct Vit {
    conv_proj: Conv2d,
    class_token: Param<Tensor<3>>,
    pos_embedding: Param<Tensor<3>>,
    layers: Vec<EncoderBlock>,
    ln: LayerNorm,
    head: Linear,
    hidden: usize,
}

impl Vit {
    pub fn load(
        src: &mut Source,
        s: VitShape,
        input: [usize; 2],
        num_classes: usize,
    ) -> Result<Vit, DetectorError> {
        let d = s.hidden_dim;
        let tokens = (input[0] / s.patch_size) * (input[1] / s.patch_size) + 1;
        let conv_proj = conv2d(src, "conv_proj", 3, d, s.patch_size, s.patch_size, 0, 1, true)?;
        let class_token = src.param("class_token", [1, 1, d], Layout::AsIs)?;
        let pos_embedding = src.param("encoder.pos_embedding", [1, tokens, d], Layout::AsIs)?;
        let layers = (0..s.num_layers)
            .map(|i| EncoderBlock::load(src, &format!("encoder.layers.encoder_layer_{i}"), s))
            .collect::<Result<Vec<_>, _>>()?;
        let ln = layer_norm(src, "encoder.ln", d, EPS)?;
        let head = linear(src, "heads.head", d, num_classes, true)?;
        Ok(Vit { conv_proj, class_token, pos_embedding, layers, ln, head, hidden: d })
    }

    /// The class token after the encoder, `[B, D]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let b = x.dims()[0];
        let d = self.hidden;
        let p = self.conv_proj.forward(x); // [B, D, h, w]
        let [_, _, h, w] = p.dims();
        let p = p.reshape([b, d, h * w]).swap_dims(1, 2);
        let cls = self.class_token.val().expand([b, 1, d]);
        let mut x = Tensor::cat(vec![cls, p], 1) + self.pos_embedding.val();
        for layer in &self.layers {
            x = layer.forward(x);
        }
        let x = self.ln.forward(x);
        x.narrow(1, 0, 1).reshape([b, d])
    }

    pub fn head(&self, f: Tensor<2>) -> Tensor<2> {
        self.head.forward(f)
    }

    /// The same network for the CPU path.
    pub fn cpu(&self) -> Result<cpu::vit::Vit, DetectorError> {
        let layer = |l: &EncoderBlock| -> Result<cpu::vit::Layer, DetectorError> {
            let [d, d3] = l.in_proj_weight.val().dims();
            Ok(cpu::vit::Layer {
                ln_1: cpu_norm(&l.ln_1, EPS)?,
                in_proj: cpu::ops::Linear::new(
                    values(l.in_proj_weight.val())?,
                    values(l.in_proj_bias.val())?,
                    d,
                    d3,
                ),
                out_proj: cpu_linear(&l.out_proj)?,
                ln_2: cpu_norm(&l.ln_2, EPS)?,
                mlp_0: cpu_linear(&l.mlp_0)?,
                mlp_3: cpu_linear(&l.mlp_3)?,
                heads: l.heads,
            })
        };
        Ok(cpu::vit::Vit {
            patch: cpu_conv(&self.conv_proj, None)?,
            class_token: values(self.class_token.val())?,
            pos_embedding: values(self.pos_embedding.val())?,
            layers: self.layers.iter().map(layer).collect::<Result<_, _>>()?,
            ln: cpu_norm(&self.ln, EPS)?,
            head: cpu_dense(&self.head)?,
            pool: cpu::Pool::default(),
        })
    }
}
