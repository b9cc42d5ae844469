//! The architectures a submission may declare, built from its weights.

pub mod layers;
pub mod resnet;

use burn::module::Module;
use burn::prelude::*;

use crate::DetectorError;
use crate::config::{Architecture, ModelConfig};
use crate::weights::{Naming, Source};

/// A built detector of any architecture.
#[derive(Module, Debug)]
pub enum Network {
    ResNet(resnet::ResNet),
}

impl Network {
    /// Builds the architecture `cfg` declares, taking every tensor from `src`.
    pub fn build(cfg: &ModelConfig, mut src: Source) -> Result<(Network, Naming), DetectorError> {
        let classes = cfg.model.num_classes;
        let width = cfg.model.width.unwrap_or(64);
        let net = match cfg.model.architecture {
            Architecture::Resnet18 => {
                Network::ResNet(resnet::ResNet::load(&mut src, resnet::Depth::R18, width, classes)?)
            }
            Architecture::Resnet34 => {
                Network::ResNet(resnet::ResNet::load(&mut src, resnet::Depth::R34, width, classes)?)
            }
            Architecture::Resnet50 => {
                Network::ResNet(resnet::ResNet::load(&mut src, resnet::Depth::R50, width, classes)?)
            }
        };
        Ok((net, src.finish()?))
    }

    /// Normalised images `[B, 3, H, W]` to logits `[B, classes]`.
    pub fn forward_images(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Network::ResNet(m) => m.forward(x),
        }
    }
}
