//! torchvision's ConvNeXt-T (`convnext_tiny`), with its tensor names: a 4×4 stem with a
//! channels-first LayerNorm, four stages of (7×7 depthwise conv, LayerNorm, 4× MLP with GELU,
//! layer scale, residual) with 2×2 downsampling between them, global average pool, LayerNorm and
//! a linear head. LayerNorm eps 1e-6; stochastic depth is the identity at inference.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::activation::gelu;

use super::layers::{conv2d, cpu_conv, cpu_dense, cpu_linear, cpu_norm, layer_norm, linear, values};
use crate::DetectorError;
use crate::cpu;
use crate::weights::{Layout, Source};

/// (channels, blocks) per stage of ConvNeXt-T.
const STAGES: [(usize, usize); 4] = [(96, 3), (192, 3), (384, 9), (768, 3)];
const EPS: f64 = 1e-6;

/// LayerNorm over the channels of an NCHW tensor (torchvision's `LayerNorm2d`).
fn norm2d(ln: &LayerNorm, x: Tensor<4>) -> Tensor<4> {
    ln.forward(x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
}

#[derive(Module, Debug)]
pub struct CnBlock {
    dwconv: Conv2d,
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    layer_scale: Param<Tensor<3>>,
}

impl CnBlock {
    fn load(src: &mut Source, name: &str, dim: usize) -> Result<CnBlock, DetectorError> {
        Ok(CnBlock {
            dwconv: conv2d(src, &format!("{name}.block.0"), dim, dim, 7, 1, 3, dim, true)?,
            norm: layer_norm(src, &format!("{name}.block.2"), dim, EPS)?,
            fc1: linear(src, &format!("{name}.block.3"), dim, 4 * dim, true)?,
            fc2: linear(src, &format!("{name}.block.5"), 4 * dim, dim, true)?,
            layer_scale: src.param(&format!("{name}.layer_scale"), [dim, 1, 1], Layout::AsIs)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.dwconv.forward(x.clone()).permute([0, 2, 3, 1]);
        let y = self.fc2.forward(gelu(self.fc1.forward(self.norm.forward(y))));
        let y = y.permute([0, 3, 1, 2]);
        x + self.layer_scale.val().unsqueeze::<4>() * y
    }
}

#[derive(Module, Debug)]
pub struct Downsample {
    norm: LayerNorm,
    conv: Conv2d,
}

#[derive(Module, Debug)]
pub struct ConvNext {
    stem: Conv2d,
    stem_norm: LayerNorm,
    stages: Vec<Vec<CnBlock>>,
    downsamples: Vec<Downsample>,
    head_norm: LayerNorm,
    head: Linear,
}

impl ConvNext {
    pub fn load(src: &mut Source, num_classes: usize) -> Result<ConvNext, DetectorError> {
        let stem = conv2d(src, "features.0.0", 3, STAGES[0].0, 4, 4, 0, 1, true)?;
        let stem_norm = layer_norm(src, "features.0.1", STAGES[0].0, EPS)?;
        let mut stages = Vec::new();
        let mut downsamples = Vec::new();
        for (i, &(dim, n)) in STAGES.iter().enumerate() {
            let idx = 1 + 2 * i;
            stages.push(
                (0..n)
                    .map(|b| CnBlock::load(src, &format!("features.{idx}.{b}"), dim))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            if let Some(&(next, _)) = STAGES.get(i + 1) {
                downsamples.push(Downsample {
                    norm: layer_norm(src, &format!("features.{}.0", idx + 1), dim, EPS)?,
                    conv: conv2d(src, &format!("features.{}.1", idx + 1), dim, next, 2, 2, 0, 1, true)?,
                });
            }
        }
        let last = STAGES[3].0;
        let head_norm = layer_norm(src, "classifier.0", last, EPS)?;
        let head = linear(src, "classifier.2", last, num_classes, true)?;
        Ok(ConvNext { stem, stem_norm, stages, downsamples, head_norm, head })
    }

    /// Pooled features `[B, 768]` of normalised images.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = norm2d(&self.stem_norm, self.stem.forward(x));
        for (i, stage) in self.stages.iter().enumerate() {
            for block in stage {
                x = block.forward(x);
            }
            if let Some(d) = self.downsamples.get(i) {
                x = d.conv.forward(norm2d(&d.norm, x));
            }
        }
        let [b, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([b, c])
    }

    pub fn head(&self, f: Tensor<2>) -> Tensor<2> {
        self.head.forward(self.head_norm.forward(f))
    }

    /// The same network for the CPU path.
    pub fn cpu(&self) -> Result<cpu::convnext::ConvNext, DetectorError> {
        let block = |b: &CnBlock| -> Result<cpu::convnext::Block, DetectorError> {
            let bias = match &b.dwconv.bias {
                Some(bias) => values(bias.val())?,
                None => vec![0.0; b.dwconv.weight.val().dims()[0]],
            };
            Ok(cpu::convnext::Block {
                dwconv: cpu::ops::Depthwise::new(&values(b.dwconv.weight.val())?, &bias),
                norm: cpu_norm(&b.norm, EPS)?,
                fc1: cpu_linear(&b.fc1)?,
                fc2: cpu_linear(&b.fc2)?.scaled(&values(b.layer_scale.val())?),
            })
        };
        Ok(cpu::convnext::ConvNext {
            stem: cpu_conv(&self.stem, None)?,
            stem_norm: cpu_norm(&self.stem_norm, EPS)?,
            stages: self
                .stages
                .iter()
                .map(|s| s.iter().map(block).collect::<Result<Vec<_>, _>>())
                .collect::<Result<_, _>>()?,
            downsamples: self
                .downsamples
                .iter()
                .map(|d| {
                    Ok(cpu::convnext::Downsample {
                        norm: cpu_norm(&d.norm, EPS)?,
                        conv: cpu_conv(&d.conv, None)?,
                    })
                })
                .collect::<Result<_, DetectorError>>()?,
            head_norm: cpu_norm(&self.head_norm, EPS)?,
            head: cpu_dense(&self.head)?,
            pool: cpu::Pool::default(),
        })
    }
}
