//! `detector`: SN34-style detectors of synthetic media as an arena plugin, on burn.
//!
//! gasbench runs a miner's own `model.py`; this plugin runs no submitted code. A submission is a
//! directory with `model_config.yaml` (gasbench's layout, the architecture named from this
//! plugin's list) and safetensors weights under PyTorch's tensor names, so weights trained with
//! torchvision load as they are.
//!
//! Task kinds `image`, `video`, `audio`: every sample is a media file with its dataset and media
//! type; the plugin
//! draws the per-dataset subset gasbench draws (full benchmark caps, or the entrance exam's small
//! sample), preprocesses as gasbench does, runs the network on the host's device (CPU through
//! burn's Flex backend, wgpu, or CUDA in builds with the `cuda` feature), and pools gasbench's
//! metrics: accuracy, binary MCC, Brier, cross-entropy and the sn34 score, with a per-dataset
//! breakdown. A sample that fails to decode, or a batch whose inference fails, is recorded as an
//! error and left out of the metrics; the run goes on.

pub mod arch;
pub mod config;
pub mod cpu;
pub mod metrics;
pub mod preprocess;
pub mod synth;
mod task;
pub mod train;
pub mod weights;

use std::path::Path;

use arena_plugin_api::{
    DeviceKind, EvalTask, Plugin, PluginError, PluginInfo, TaskKindInfo, TaskSpec, export_plugin,
};
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

pub use arch::Network;
pub use config::{Architecture, Modality, ModelConfig};
pub use task::{DetectParams, ExamParams, Mode, ScoreMetric};
pub use weights::{Naming, Source, WeightMap};

/// What went wrong, by whose fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DetectorError {
    /// The submission is at fault (config, weights).
    Submission(String),
    /// One sample is at fault (unreadable media); the sample is recorded as an error.
    Sample(String),
    /// The task's parameters are wrong.
    Parameters(String),
    /// The plugin or its environment failed.
    Internal(String),
}

impl std::fmt::Display for DetectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectorError::Submission(m)
            | DetectorError::Sample(m)
            | DetectorError::Parameters(m)
            | DetectorError::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DetectorError {}

impl From<DetectorError> for PluginError {
    fn from(e: DetectorError) -> PluginError {
        match e {
            DetectorError::Submission(m) | DetectorError::Sample(m) => PluginError::invalid_submission(m),
            DetectorError::Parameters(m) => PluginError::invalid_parameters(m),
            DetectorError::Internal(m) => PluginError::internal(m),
        }
    }
}

/// The burn device for an arena device: Flex (pure-Rust CPU), wgpu's default adapter, or a CUDA
/// ordinal (builds with the `cuda` feature).
pub fn burn_device(device: arena_plugin_api::Device) -> Result<burn::tensor::Device, DetectorError> {
    match device {
        arena_plugin_api::Device::Cpu => Ok(burn::tensor::Device::flex()),
        arena_plugin_api::Device::Wgpu => {
            started("wgpu", burn::tensor::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
        }
        #[cfg(feature = "cuda")]
        arena_plugin_api::Device::Cuda(n) => cuda_device(n as usize),
        #[cfg(not(feature = "cuda"))]
        arena_plugin_api::Device::Cuda(_) => Err(DetectorError::Parameters(
            "this build of the detector plugin has no CUDA backend (feature `cuda`)".into(),
        )),
    }
}

/// A CUDA device that has been seen to work. burn's CUDA runtime loads the driver library on a
/// worker thread and panics there when it is missing, which reaches the caller only as a closed
/// channel; the driver and the ordinal are therefore checked here, with the reason in the error.
#[cfg(feature = "cuda")]
fn cuda_device(n: usize) -> Result<burn::tensor::Device, DetectorError> {
    // SAFETY: loading the NVIDIA driver library runs its initialisers, as cudarc's own load does.
    if let Err(e) = unsafe { libloading::Library::new("libcuda.so.1") } {
        return Err(DetectorError::Parameters(format!(
            "--device cuda:{n}: the CUDA driver library (libcuda.so.1, installed with the NVIDIA driver) cannot be loaded: {e}"
        )));
    }
    started(&format!("cuda:{n}"), burn::tensor::Device::cuda(n))
}

/// `device` once a tensor has made a round trip through it. burn's GPU runtimes start on a
/// worker thread and panic there when there is no adapter or driver, which reaches the caller
/// only as a closed channel: that becomes an error naming the device.
fn started(name: &str, device: burn::tensor::Device) -> Result<burn::tensor::Device, DetectorError> {
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Tensor::<1>::from_data(TensorData::from([1.0f32]), &device).into_data()
    }));
    match probe {
        Ok(_) => Ok(device),
        Err(panic) => Err(DetectorError::Parameters(format!(
            "--device {name}: burn's runtime did not start on it (no adapter or driver? its reason is on stderr): {}",
            task::panic_message(&panic)
        ))),
    }
}

/// The devices this build supports.
pub fn devices() -> Vec<DeviceKind> {
    let mut d = vec![DeviceKind::Cpu, DeviceKind::Wgpu];
    if cfg!(feature = "cuda") {
        d.push(DeviceKind::Cuda);
    }
    d
}

/// A loaded detector: its config and network on a device.
#[derive(Debug)]
pub struct Detector {
    pub config: ModelConfig,
    pub network: Network,
    pub naming: Naming,
    device: burn::tensor::Device,
    /// The CPU path of the network, when the device is the CPU and the architecture has one.
    fast: Option<cpu::Net>,
    /// The CPU path's input buffer, kept between passes.
    inputs: cpu::Pool,
}

impl Detector {
    /// Loads a submission directory (`model_config.yaml` and its weights file).
    pub fn load(dir: &Path, device: &burn::tensor::Device) -> Result<Detector, DetectorError> {
        let config = ModelConfig::load(dir)?;
        let weights_path = config.weights_path(dir);
        let weights = WeightMap::open(&weights_path)?;
        Self::from_source(config, Source::file(weights, device))
    }

    /// Builds `config`'s architecture from a weights source.
    pub fn from_source(config: ModelConfig, source: Source) -> Result<Detector, DetectorError> {
        let device = source.device().clone();
        let (network, naming) = Network::build(&config, source)?;
        let fast = match &network {
            _ if device != burn::tensor::Device::flex() => None,
            Network::ResNet(m) => Some(cpu::Net::ResNet(m.cpu()?)),
            Network::ConvNext(m) => Some(cpu::Net::ConvNext(m.cpu()?)),
            Network::Vit(m) => Some(cpu::Net::Vit(m.cpu()?)),
            Network::M5(_) => None,
        };
        Ok(Detector { config, network, naming, device, fast, inputs: cpu::Pool::default() })
    }

    /// Runs everything through burn, even where the CPU path exists (comparisons, benchmarks).
    pub fn burn_only(mut self) -> Detector {
        self.fast = None;
        self
    }

    /// Whether forward passes take the CPU path ([`cpu`]) rather than burn.
    pub fn uses_cpu_path(&self) -> bool {
        self.fast.is_some()
    }

    pub fn device(&self) -> &burn::tensor::Device {
        &self.device
    }

    /// `pixel / 255`, then the config's normalisation, in f32 (the order torch uses).
    pub fn normalise(&self, chw: &[u8], out: &mut Vec<f32>) {
        let [h, w] = self.config.input_size();
        let plane = h * w;
        out.extend(chw.iter().enumerate().map(|(i, &v)| self.pixel(v, i / plane)));
    }

    /// One value of channel `ch`: `v / 255`, then the config's normalisation.
    #[inline]
    fn pixel(&self, v: u8, ch: usize) -> f32 {
        let x = v as f32 / 255.0;
        match &self.config.preprocessing.normalize {
            Some(n) => (x - n.mean[ch]) / n.std[ch],
            None => x,
        }
    }

    /// Logits of a batch of uint8 CHW images of the config's input size.
    pub fn image_logits(&self, images: &[Vec<u8>]) -> Result<Vec<Vec<f32>>, DetectorError> {
        let [h, w] = self.config.input_size();
        if let Some(net) = &self.fast {
            let x = self.cpu_input(images.iter().map(Vec::as_slice).collect())?;
            let features = net.features(&x);
            self.inputs.keep(vec![x.data]);
            return Ok(net.head(&features));
        }
        let input = self.normalised(images.iter().map(Vec::as_slice), 3 * h * w)?;
        let x = Tensor::<4>::from_data(TensorData::new(input, [images.len(), 3, h, w]), &self.device);
        rows(self.network.forward_images(x))
    }

    /// Logits of a batch of videos, each `num_frames` uint8 CHW frames of the input size.
    pub fn video_logits(&self, videos: &[Vec<Vec<u8>>]) -> Result<Vec<Vec<f32>>, DetectorError> {
        let [h, w] = self.config.input_size();
        let t = self.config.num_frames();
        if let Some(v) = videos.iter().find(|v| v.len() != t) {
            return Err(DetectorError::Internal(format!("a video of {} frames, expected {t}", v.len())));
        }
        if let Some(net) = &self.fast {
            if videos.is_empty() {
                return Ok(Vec::new());
            }
            let x = self.cpu_input(videos.iter().flatten().map(Vec::as_slice).collect())?;
            let f = net.features(&x);
            self.inputs.keep(vec![x.data]);
            let d = f.len() / (videos.len() * t);
            // The mean over frames, as burn's `mean_dim`: the sum, then one division.
            let pooled: Vec<f32> = (0..videos.len() * d)
                .map(|i| {
                    let (v, j) = (i / d, i % d);
                    (0..t).map(|k| f[(v * t + k) * d + j]).sum::<f32>() / t as f32
                })
                .collect();
            return Ok(net.head(&pooled));
        }
        let input = self.normalised(videos.iter().flatten().map(Vec::as_slice), 3 * h * w)?;
        let x = Tensor::<5>::from_data(TensorData::new(input, [videos.len(), t, 3, h, w]), &self.device);
        rows(self.network.forward_video(x))
    }

    /// Logits of a batch of waveforms of the config's clip length.
    pub fn audio_logits(&self, clips: &[Vec<f32>]) -> Result<Vec<Vec<f32>>, DetectorError> {
        let n = self.config.audio_samples();
        if let Some(c) = clips.iter().find(|c| c.len() != n) {
            return Err(DetectorError::Internal(format!("a clip of {} samples, expected {n}", c.len())));
        }
        let input: Vec<f32> = clips.iter().flatten().copied().collect();
        let x = Tensor::<2>::from_data(TensorData::new(input, [clips.len(), n]), &self.device);
        rows(self.network.forward_audio(x))
    }

    /// The CPU path's input: each CHW image of the input size normalised as
    /// [`normalise`](Detector::normalise) does, straight into NHWC, the images in parallel, in the
    /// buffer an earlier pass kept.
    fn cpu_input(&self, images: Vec<&[u8]>) -> Result<cpu::Act, DetectorError> {
        let [h, w] = self.config.input_size();
        let plane = h * w;
        check_sizes(&images, 3 * plane)?;
        let mut data = cpu::fit(&mut self.inputs.take(), images.len() * 3 * plane);
        data.par_chunks_mut(3 * plane).zip(&images).for_each(|(img, chw)| {
            for (p, px) in img.chunks_exact_mut(3).enumerate() {
                for (ch, v) in px.iter_mut().enumerate() {
                    *v = self.pixel(chw[ch * plane + p], ch);
                }
            }
        });
        Ok(cpu::Act { n: images.len(), h, w, c: 3, data })
    }

    /// burn's input: the images normalised, CHW, one after another.
    fn normalised<'a>(
        &self,
        items: impl Iterator<Item = &'a [u8]>,
        len: usize,
    ) -> Result<Vec<f32>, DetectorError> {
        let items: Vec<&[u8]> = items.collect();
        check_sizes(&items, len)?;
        let mut out = Vec::with_capacity(items.len() * len);
        for chw in items {
            self.normalise(chw, &mut out);
        }
        Ok(out)
    }
}

/// Every image `len` bytes.
fn check_sizes(images: &[&[u8]], len: usize) -> Result<(), DetectorError> {
    match images.iter().find(|chw| chw.len() != len) {
        Some(chw) => Err(DetectorError::Internal(format!("an image of {} bytes, expected {len}", chw.len()))),
        None => Ok(()),
    }
}

/// A `[B, C]` tensor as B rows.
fn rows(logits: Tensor<2>) -> Result<Vec<Vec<f32>>, DetectorError> {
    let [b, c] = logits.dims();
    let flat = logits
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| DetectorError::Internal(format!("reading logits: {e:?}")))?;
    Ok((0..b).map(|i| flat[i * c..(i + 1) * c].to_vec()).collect())
}

pub const IMAGE: &str = "image";
pub const VIDEO: &str = "video";
pub const AUDIO: &str = "audio";

pub struct DetectorPlugin;

fn schema<T: schemars::JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default()
}

impl Plugin for DetectorPlugin {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "detector".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            abi_version: String::new(),
            tasks: [
                (IMAGE, "images: shortest-edge crop and OpenCV bilinear resize to the model's input"),
                (VIDEO, "videos (files through ffmpeg, or folders of frames): num_frames frames, each resized as images"),
                (AUDIO, "audio: mono 16 kHz (ffmpeg unless already so), centre-cropped or zero-padded to 6 s"),
            ]
            .into_iter()
            .map(|(name, what)| TaskKindInfo {
                name: name.into(),
                description: format!(
                    "Real-vs-synthetic detection of {what}, scored as gasbench scores it (SN34): accuracy, \
                     binary MCC, Brier, sn34 score, per dataset; full benchmark or entrance exam."
                ),
                devices: devices(),
                params_schema: schema::<DetectParams>(),
            })
            .collect(),
        }
    }

    fn create_task(spec: TaskSpec) -> Result<Box<dyn EvalTask>, PluginError> {
        task::create(spec)
    }
}

export_plugin!(DetectorPlugin);
