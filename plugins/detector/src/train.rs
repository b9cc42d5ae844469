//! Training the project's tiny detectors (burn autodiff on the CPU, Adam, cross-entropy), for
//! tests and the demo. Deterministic: initial weights from the counter-based generator, batches
//! from a seeded stream (two runs of `arena-tiny-detect` write byte-identical files).

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::config::ModelConfig;
use crate::synth::Rng;
use crate::{Detector, DetectorError, Source};

/// Labelled training images: uint8 CHW at the config's input size, label 1 = synthetic.
#[derive(Clone, Debug, Default)]
pub struct TrainSet {
    pub images: Vec<Vec<u8>>,
    pub labels: Vec<bool>,
}

/// Trains `config`'s architecture from the generator's initial weights (`init_seed`) for
/// `steps` Adam steps of `batch` images drawn with `seed`. Returns the detector on `device`.
pub fn train(
    config: &ModelConfig,
    data: &TrainSet,
    steps: usize,
    batch: usize,
    learning_rate: f64,
    init_seed: u64,
    seed: u64,
) -> Result<Detector, DetectorError> {
    let device = burn::tensor::Device::flex().autodiff();
    let mut det = Detector::from_source(config.clone(), Source::synthetic(init_seed, &device))?;
    if steps == 0 || data.images.is_empty() {
        return Ok(det);
    }
    let [h, w] = config.input_size();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut optim = AdamConfig::new().init();
    let mut rng = Rng::new(seed);
    let mut network = det.network.clone();
    for _ in 0..steps {
        let idx: Vec<usize> = (0..batch).map(|_| rng.below(data.images.len())).collect();
        let mut input = Vec::with_capacity(batch * 3 * h * w);
        for &i in &idx {
            det.normalise(&data.images[i], &mut input);
        }
        let x = Tensor::<4>::from_data(TensorData::new(input, [batch, 3, h, w]), &device);
        let y: Vec<i64> = idx.iter().map(|&i| i64::from(data.labels[i])).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [batch]), &device);
        let logits = network.forward_images(x);
        let loss = loss_fn.forward(logits, y);
        let grads = GradientsParams::from_grads(loss.backward(), &network);
        network = optim.step(learning_rate, network, grads);
    }
    det.network = network.no_grad();
    Ok(det)
}
