//! M5 (Dai et al. 2017, "Very deep convolutional neural networks for raw waveforms"), as
//! torchaudio's speech-command tutorial writes it (`conv1`..`conv4`, `bn1`..`bn4`, `fc1`): four
//! (Conv1d, BatchNorm, ReLU, MaxPool 4) stages on the raw 16 kHz waveform, a mean over time and a
//! linear head. `width` is the tutorial's `n_channel` (32), `stride` the first convolution's (16).

use burn::module::Module;
use burn::nn::conv::Conv1d;
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{BatchNorm, Linear, PaddingConfig1d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::layers::{batch_norm, linear};
use crate::DetectorError;
use crate::weights::{Layout, Source};

fn conv1d(
    src: &mut Source,
    name: &str,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
) -> Result<Conv1d, DetectorError> {
    Ok(Conv1d {
        weight: src.param(&format!("{name}.weight"), [cout, cin, k], Layout::AsIs)?,
        bias: Some(src.param(&format!("{name}.bias"), [cout], Layout::AsIs)?),
        stride,
        kernel_size: k,
        dilation: 1,
        groups: 1,
        padding: PaddingConfig1d::Valid,
    })
}

#[derive(Module, Debug)]
pub struct M5 {
    convs: Vec<Conv1d>,
    bns: Vec<BatchNorm>,
    pool: MaxPool1d,
    fc1: Linear,
}

impl M5 {
    pub fn load(
        src: &mut Source,
        width: usize,
        stride: usize,
        num_classes: usize,
    ) -> Result<M5, DetectorError> {
        let chans = [
            (1, width, 80, stride),
            (width, width, 3, 1),
            (width, 2 * width, 3, 1),
            (2 * width, 2 * width, 3, 1),
        ];
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for (i, &(cin, cout, k, s)) in chans.iter().enumerate() {
            convs.push(conv1d(src, &format!("conv{}", i + 1), cin, cout, k, s)?);
            bns.push(batch_norm(src, &format!("bn{}", i + 1), cout)?);
        }
        let fc1 = linear(src, "fc1", 2 * width, num_classes, true)?;
        Ok(M5 { convs, bns, pool: MaxPool1dConfig::new(4).init(), fc1 })
    }

    /// `[B, T]` waveforms to `[B, classes]` logits.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [b, t] = x.dims();
        let mut x = x.reshape([b, 1, t]);
        for (conv, bn) in self.convs.iter().zip(&self.bns) {
            x = self.pool.forward(relu(bn.forward(conv.forward(x))));
        }
        let c = x.dims()[1];
        self.fc1.forward(x.mean_dim(2).reshape([b, c]))
    }

    /// Shortest waveform the network accepts (every stage must keep at least one step).
    pub fn min_samples(stride: usize) -> usize {
        // Work backwards from one output step: pool ×4 then conv (k=3) three times, then the stem.
        let mut n = 1;
        for _ in 0..3 {
            n = n * 4 + 2;
        }
        (n * 4 - 1) * stride + 80
    }
}
