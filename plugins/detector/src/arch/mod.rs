//! The architectures a submission may declare, built from its weights.

pub mod convnext;
pub mod layers;
pub mod m5;
pub mod resnet;
pub mod vit;

use burn::module::Module;
use burn::prelude::*;

use crate::DetectorError;
use crate::config::{Architecture, ModelConfig};
use crate::weights::{Naming, Source};

/// A built detector of any architecture.
#[derive(Module, Debug)]
pub enum Network {
    ResNet(resnet::ResNet),
    ConvNext(convnext::ConvNext),
    Vit(vit::Vit),
    M5(m5::M5),
}

impl Network {
    /// Builds the architecture `cfg` declares, taking every tensor from `src`.
    pub fn build(cfg: &ModelConfig, mut src: Source) -> Result<(Network, Naming), DetectorError> {
        let classes = cfg.model.num_classes;
        let width = cfg.model.width;
        let src_ = &mut src;
        let resnet = |depth, src: &mut Source| resnet::ResNet::load(src, depth, width.unwrap_or(64), classes);
        let net = match cfg.model.architecture {
            Architecture::Resnet18 => Network::ResNet(resnet(resnet::Depth::R18, src_)?),
            Architecture::Resnet34 => Network::ResNet(resnet(resnet::Depth::R34, src_)?),
            Architecture::Resnet50 => Network::ResNet(resnet(resnet::Depth::R50, src_)?),
            Architecture::ConvnextTiny => Network::ConvNext(convnext::ConvNext::load(src_, classes)?),
            Architecture::Vit => {
                Network::Vit(vit::Vit::load(src_, cfg.vit_shape(), cfg.input_size(), classes)?)
            }
            Architecture::M5 => {
                Network::M5(m5::M5::load(src_, width.unwrap_or(32), cfg.model.stride.unwrap_or(16), classes)?)
            }
        };
        Ok((net, src.finish()?))
    }

    /// Pooled image features `[B, F]` (image architectures).
    fn features(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Network::ResNet(m) => m.features(x),
            Network::ConvNext(m) => m.features(x),
            Network::Vit(m) => m.features(x),
            Network::M5(_) => unreachable!("M5 takes waveforms; the config check keeps images away from it"),
        }
    }

    fn head(&self, f: Tensor<2>) -> Tensor<2> {
        match self {
            Network::ResNet(m) => m.head(f),
            Network::ConvNext(m) => m.head(f),
            Network::Vit(m) => m.head(f),
            Network::M5(_) => unreachable!("M5 takes waveforms; the config check keeps images away from it"),
        }
    }

    /// Normalised images `[B, 3, H, W]` to logits `[B, classes]`.
    pub fn forward_images(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }

    /// Normalised frames `[B, T, 3, H, W]` to logits: per-frame features averaged over time.
    pub fn forward_video(&self, x: Tensor<5>) -> Tensor<2> {
        let [b, t, c, h, w] = x.dims();
        let f = self.features(x.reshape([b * t, c, h, w]));
        let d = f.dims()[1];
        self.head(f.reshape([b, t, d]).mean_dim(1).reshape([b, d]))
    }

    /// Waveforms `[B, T]` to logits (audio architectures).
    pub fn forward_audio(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Network::M5(m) => m.forward(x),
            _ => unreachable!("image architectures take no waveforms; the config check keeps audio away"),
        }
    }
}
