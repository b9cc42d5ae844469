//! torchvision's ResNet-18/34/50 (v1.5: the stride of a bottleneck on its 3×3 convolution), with
//! torchvision's tensor names, so a `torchvision.models.resnet*` state dict loads as is.
//! `width` scales the base planes (64 in torchvision); other widths are this project's.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::layers::{batch_norm, conv2d, cpu_conv, cpu_dense, linear};
use crate::DetectorError;
use crate::cpu;
use crate::weights::Source;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    R18,
    R34,
    R50,
}

impl Depth {
    fn blocks(self) -> [usize; 4] {
        match self {
            Depth::R18 => [2, 2, 2, 2],
            Depth::R34 | Depth::R50 => [3, 4, 6, 3],
        }
    }
    fn bottleneck(self) -> bool {
        self == Depth::R50
    }
}

#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    bn: BatchNorm,
}

#[derive(Module, Debug)]
pub struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    /// Bottlenecks only.
    conv3: Option<Conv2d>,
    bn3: Option<BatchNorm>,
    downsample: Option<Downsample>,
}

impl Block {
    fn load(
        src: &mut Source,
        name: &str,
        inplanes: usize,
        planes: usize,
        stride: usize,
        bottleneck: bool,
    ) -> Result<(Block, usize), DetectorError> {
        let expansion = if bottleneck { 4 } else { 1 };
        let out = planes * expansion;
        let p = |s: &str| format!("{name}.{s}");
        let block = if bottleneck {
            Block {
                conv1: conv2d(src, &p("conv1"), inplanes, planes, 1, 1, 0, 1, false)?,
                bn1: batch_norm(src, &p("bn1"), planes)?,
                conv2: conv2d(src, &p("conv2"), planes, planes, 3, stride, 1, 1, false)?,
                bn2: batch_norm(src, &p("bn2"), planes)?,
                conv3: Some(conv2d(src, &p("conv3"), planes, out, 1, 1, 0, 1, false)?),
                bn3: Some(batch_norm(src, &p("bn3"), out)?),
                downsample: None,
            }
        } else {
            Block {
                conv1: conv2d(src, &p("conv1"), inplanes, planes, 3, stride, 1, 1, false)?,
                bn1: batch_norm(src, &p("bn1"), planes)?,
                conv2: conv2d(src, &p("conv2"), planes, planes, 3, 1, 1, 1, false)?,
                bn2: batch_norm(src, &p("bn2"), planes)?,
                conv3: None,
                bn3: None,
                downsample: None,
            }
        };
        let downsample = if stride != 1 || inplanes != out {
            Some(Downsample {
                conv: conv2d(src, &p("downsample.0"), inplanes, out, 1, stride, 0, 1, false)?,
                bn: batch_norm(src, &p("downsample.1"), out)?,
            })
        } else {
            None
        };
        Ok((Block { downsample, ..block }, out))
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => d.bn.forward(d.conv.forward(x.clone())),
            None => x.clone(),
        };
        let mut y = relu(self.bn1.forward(self.conv1.forward(x)));
        y = self.bn2.forward(self.conv2.forward(y));
        if let (Some(c3), Some(b3)) = (&self.conv3, &self.bn3) {
            y = b3.forward(c3.forward(relu(y)));
        }
        relu(y + identity)
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    maxpool: MaxPool2d,
    layers: Vec<Vec<Block>>,
    fc: Linear,
}

impl ResNet {
    pub fn load(
        src: &mut Source,
        depth: Depth,
        width: usize,
        num_classes: usize,
    ) -> Result<ResNet, DetectorError> {
        let conv1 = conv2d(src, "conv1", 3, width, 7, 2, 3, 1, false)?;
        let bn1 = batch_norm(src, "bn1", width)?;
        let maxpool = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        let mut inplanes = width;
        let mut layers = Vec::new();
        for (i, &n) in depth.blocks().iter().enumerate() {
            let planes = width << i;
            let mut blocks = Vec::new();
            for b in 0..n {
                let stride = if b == 0 && i > 0 { 2 } else { 1 };
                let (block, out) = Block::load(
                    src,
                    &format!("layer{}.{b}", i + 1),
                    inplanes,
                    planes,
                    stride,
                    depth.bottleneck(),
                )?;
                inplanes = out;
                blocks.push(block);
            }
            layers.push(blocks);
        }
        let fc = linear(src, "fc", inplanes, num_classes, true)?;
        Ok(ResNet { conv1, bn1, maxpool, layers, fc })
    }

    /// `[B, 3, H, W]` normalised pixels to pooled features `[B, C]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.maxpool.forward(relu(self.bn1.forward(self.conv1.forward(x))));
        for layer in &self.layers {
            for block in layer {
                x = block.forward(x);
            }
        }
        // Global average pool, as adaptive_avg_pool2d to 1×1 then flatten.
        let [b, c, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([b, c])
    }

    pub fn head(&self, f: Tensor<2>) -> Tensor<2> {
        self.fc.forward(f)
    }

    /// The same network for the CPU path (batch norms folded into the convolutions).
    pub fn cpu(&self) -> Result<cpu::ResNet, DetectorError> {
        let mut blocks = Vec::new();
        for block in self.layers.iter().flatten() {
            let mut convs =
                vec![cpu_conv(&block.conv1, Some(&block.bn1))?, cpu_conv(&block.conv2, Some(&block.bn2))?];
            if let (Some(c3), Some(b3)) = (&block.conv3, &block.bn3) {
                convs.push(cpu_conv(c3, Some(b3))?);
            }
            let downsample = block.downsample.as_ref().map(|d| cpu_conv(&d.conv, Some(&d.bn))).transpose()?;
            blocks.push(cpu::Block { convs, downsample });
        }
        Ok(cpu::ResNet {
            stem: cpu_conv(&self.conv1, Some(&self.bn1))?,
            blocks,
            fc: cpu_dense(&self.fc)?,
            pool: cpu::Pool::default(),
            per_image: cpu::PerImage::default(),
        })
    }
}
