//! A submission's `model_config.yaml`, in gasbench's layout (name, version, modality, dtype,
//! preprocessing, model), with the architecture named from this plugin's list instead of a
//! miner's `model.py`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::DetectorError;

/// The submission's config file name.
pub const CONFIG_FILE: &str = "model_config.yaml";
/// gasbench's `MAX_VIDEO_NUM_FRAMES`.
pub const MAX_VIDEO_NUM_FRAMES: usize = 64;
/// Largest accepted side of the model input (pixels).
pub const MAX_SIDE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    Image,
    Video,
    Audio,
}

impl Modality {
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Image => "image",
            Modality::Video => "video",
            Modality::Audio => "audio",
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The architectures this plugin implements. Image architectures also take video: each frame
/// goes through the backbone, the pooled features are averaged over time, then the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// torchvision `resnet18` tensor names.
    Resnet18,
    /// torchvision `resnet34` tensor names.
    Resnet34,
    /// torchvision `resnet50` tensor names.
    Resnet50,
    /// torchvision `convnext_tiny` tensor names.
    ConvnextTiny,
    /// torchvision `VisionTransformer` tensor names; shape from `model:` (`patch_size`,
    /// `num_layers`, `num_heads`, `hidden_dim`, `mlp_dim`; default a small one: 16, 12, 6, 384,
    /// 1536).
    Vit,
    /// M5 raw-waveform CNN (torchaudio tutorial names); `width` (32) and `stride` (16).
    M5,
}

impl Architecture {
    pub const ALL: [Architecture; 6] = [
        Architecture::Resnet18,
        Architecture::Resnet34,
        Architecture::Resnet50,
        Architecture::ConvnextTiny,
        Architecture::Vit,
        Architecture::M5,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Resnet18 => "resnet18",
            Architecture::Resnet34 => "resnet34",
            Architecture::Resnet50 => "resnet50",
            Architecture::ConvnextTiny => "convnext_tiny",
            Architecture::Vit => "vit",
            Architecture::M5 => "m5",
        }
    }

    /// The modalities the architecture takes input of.
    pub fn modalities(self) -> &'static [Modality] {
        match self {
            Architecture::M5 => &[Modality::Audio],
            _ => &[Modality::Image, Modality::Video],
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The declared dtype. Accepted and reported; the networks compute in float32 (gasbench casts the
/// model to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum DType {
    #[default]
    #[serde(rename = "float32", alias = "fp32")]
    Float32,
    #[serde(rename = "float16", alias = "fp16")]
    Float16,
    #[serde(rename = "bfloat16", alias = "bf16")]
    BFloat16,
}

/// A scalar written as a number or a string (`version: 1.0` and `version: "1.0"` both occur).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// `[H, W]` of the model input (images and video frames); gasbench's default is 224×224.
    #[serde(default)]
    pub resize: Option<[usize; 2]>,
    /// Applied by the plugin to `pixel / 255` (gasbench leaves it to the model's `forward`).
    #[serde(default)]
    pub normalize: Option<Normalize>,
    #[serde(default)]
    pub num_frames: Option<usize>,
    #[serde(default)]
    pub frame_rate: Option<f64>,
    #[serde(default)]
    pub sample_rate: Option<u32>,
    #[serde(default)]
    pub duration_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub architecture: Architecture,
    #[serde(default = "default_classes")]
    pub num_classes: usize,
    #[serde(default = "default_weights_file")]
    pub weights_file: String,
    /// ResNet base planes (torchvision: 64); M5 channels (32).
    #[serde(default)]
    pub width: Option<usize>,
    /// M5: stride of the first convolution (16).
    #[serde(default)]
    pub stride: Option<usize>,
    /// ViT shape.
    #[serde(default)]
    pub patch_size: Option<usize>,
    #[serde(default)]
    pub num_layers: Option<usize>,
    #[serde(default)]
    pub num_heads: Option<usize>,
    #[serde(default)]
    pub hidden_dim: Option<usize>,
    #[serde(default)]
    pub mlp_dim: Option<usize>,
}

fn default_classes() -> usize {
    2
}
fn default_weights_file() -> String {
    "model.safetensors".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    #[serde(default)]
    pub version: Option<Scalar>,
    pub modality: Modality,
    #[serde(default)]
    pub dtype: DType,
    #[serde(default)]
    pub preprocessing: Preprocessing,
    pub model: ModelSection,
    /// gasbench submissions may carry a description; kept for reports.
    #[serde(default)]
    pub description: Option<String>,
}

impl ModelConfig {
    /// Parses and checks a config; errors name the file, the line and the field.
    pub fn parse(text: &str, origin: &Path) -> Result<ModelConfig, DetectorError> {
        let bad = |m: String| DetectorError::Submission(format!("{}: {m}", origin.display()));
        let cfg: ModelConfig = serde_saphyr::from_str(text).map_err(|e| bad(e.to_string()))?;
        cfg.check().map_err(bad)?;
        Ok(cfg)
    }

    pub fn load(dir: &Path) -> Result<ModelConfig, DetectorError> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| DetectorError::Submission(format!("{}: cannot read: {e}", path.display())))?;
        ModelConfig::parse(&text, &path)
    }

    fn check(&self) -> Result<(), String> {
        let arch = self.model.architecture;
        if !arch.modalities().contains(&self.modality) {
            return Err(format!("model.architecture: `{arch}` does not take {} input", self.modality));
        }
        if !(1..=3).contains(&self.model.num_classes) {
            return Err(format!(
                "model.num_classes: {} (gasbench reads 1 logit as sigmoid, 2 or 3 as softmax)",
                self.model.num_classes
            ));
        }
        let wf = &self.model.weights_file;
        if wf.is_empty() || wf.contains('/') || wf.contains('\\') || wf == ".." || wf == "." {
            return Err(format!("model.weights_file: `{wf}` must be a plain file name in the submission"));
        }
        let m = &self.model;
        for (field, value, max) in [
            ("width", m.width, 512),
            ("stride", m.stride, 160),
            ("patch_size", m.patch_size, 64),
            ("num_layers", m.num_layers, 48),
            ("num_heads", m.num_heads, 64),
            ("hidden_dim", m.hidden_dim, 4096),
            ("mlp_dim", m.mlp_dim, 16384),
        ] {
            if let Some(v) = value
                && !(1..=max).contains(&v)
            {
                return Err(format!("model.{field}: {v} is outside 1..={max}"));
            }
        }
        let [h, w] = self.input_size();
        if h == 0 || w == 0 || h > MAX_SIDE || w > MAX_SIDE {
            return Err(format!("preprocessing.resize: [{h}, {w}] must be within 1..={MAX_SIDE}"));
        }
        if arch == Architecture::Vit {
            let v = self.vit_shape();
            if h % v.patch_size != 0 || w % v.patch_size != 0 {
                return Err(format!(
                    "preprocessing.resize: [{h}, {w}] is not a multiple of model.patch_size {}",
                    v.patch_size
                ));
            }
            if !v.hidden_dim.is_multiple_of(v.num_heads) {
                return Err(format!(
                    "model.hidden_dim: {} is not a multiple of model.num_heads {}",
                    v.hidden_dim, v.num_heads
                ));
            }
        }
        if self.modality == Modality::Audio {
            let need = crate::arch::m5::M5::min_samples(self.model.stride.unwrap_or(16));
            if self.audio_samples() < need {
                return Err(format!(
                    "preprocessing: {} samples per clip, fewer than the {need} the network needs",
                    self.audio_samples()
                ));
            }
        }
        if let Some(n) = &self.preprocessing.normalize {
            if n.mean.len() != 3 || n.std.len() != 3 {
                return Err("preprocessing.normalize: mean and std need 3 values (R, G, B)".into());
            }
            if n.std.iter().any(|s| !s.is_finite() || *s == 0.0) || n.mean.iter().any(|m| !m.is_finite()) {
                return Err("preprocessing.normalize: values must be finite and std non-zero".into());
            }
        }
        if let Some(n) = self.preprocessing.num_frames
            && n == 0
        {
            return Err("preprocessing.num_frames: must be at least 1".into());
        }
        if let Some(r) = self.preprocessing.frame_rate
            && !(r.is_finite() && r > 0.0)
        {
            return Err(format!("preprocessing.frame_rate: {r} must be positive"));
        }
        Ok(())
    }

    /// `[H, W]` of the model input: `preprocessing.resize`, else gasbench's 224×224.
    pub fn input_size(&self) -> [usize; 2] {
        self.preprocessing.resize.unwrap_or([224, 224])
    }

    /// Frames per video: `preprocessing.num_frames` (default 16), at most 64.
    pub fn num_frames(&self) -> usize {
        self.preprocessing.num_frames.unwrap_or(16).min(MAX_VIDEO_NUM_FRAMES)
    }

    /// Samples per audio clip: gasbench's fixed 16 kHz × 6 s (its benchmark ignores the config's
    /// duration), or `sample_rate × duration_seconds` when both are given.
    pub fn audio_samples(&self) -> usize {
        let rate = self.preprocessing.sample_rate.unwrap_or(16000) as f64;
        let secs = self.preprocessing.duration_seconds.unwrap_or(6.0);
        (rate * secs) as usize
    }

    pub fn vit_shape(&self) -> crate::arch::vit::VitShape {
        let m = &self.model;
        crate::arch::vit::VitShape {
            patch_size: m.patch_size.unwrap_or(16),
            num_layers: m.num_layers.unwrap_or(12),
            num_heads: m.num_heads.unwrap_or(6),
            hidden_dim: m.hidden_dim.unwrap_or(384),
            mlp_dim: m.mlp_dim.unwrap_or(1536),
        }
    }

    pub fn weights_path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.model.weights_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: det\nversion: 1.0\nmodality: image\npreprocessing:\n  resize: [64, 48]\n  normalize:\n    mean: [0.485, 0.456, 0.406]\n    std: [0.229, 0.224, 0.225]\nmodel:\n  architecture: resnet18\n  num_classes: 2\n";

    #[test]
    fn parses_a_gasbench_style_config() {
        let c = ModelConfig::parse(GOOD, Path::new("model_config.yaml")).unwrap();
        assert_eq!(c.model.architecture, Architecture::Resnet18);
        assert_eq!(c.input_size(), [64, 48]);
        assert_eq!(c.model.weights_file, "model.safetensors");
        assert_eq!(c.dtype, DType::Float32);
        assert_eq!(c.version, Some(Scalar::Float(1.0)));
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let text = GOOD.replace("resnet18", "resnet1000");
        let e = ModelConfig::parse(&text, Path::new("sub/model_config.yaml")).unwrap_err().to_string();
        assert!(
            e.contains("sub/model_config.yaml") && e.contains("resnet1000") && e.contains("line 10"),
            "{e}"
        );
        let text = GOOD.replace("num_classes: 2", "num_classes: 7");
        let e = ModelConfig::parse(&text, Path::new("m.yaml")).unwrap_err().to_string();
        assert!(e.contains("model.num_classes"), "{e}");
        let text = GOOD.replace("num_classes: 2", "num_clases: 2");
        let e = ModelConfig::parse(&text, Path::new("m.yaml")).unwrap_err().to_string();
        assert!(e.contains("num_clases"), "{e}");
        let text = GOOD.replace("modality: image", "modality: audio");
        let e = ModelConfig::parse(&text, Path::new("m.yaml")).unwrap_err().to_string();
        assert!(e.contains("does not take audio"), "{e}");
        let text = GOOD.replace("resnet18", "vit").replace("[64, 48]", "[64, 40]");
        let e = ModelConfig::parse(&text, Path::new("m.yaml")).unwrap_err().to_string();
        assert!(e.contains("patch_size"), "{e}");
        let text = GOOD.replace("  num_classes: 2\n", "  weights_file: ../secret.safetensors\n");
        let e = ModelConfig::parse(&text, Path::new("m.yaml")).unwrap_err().to_string();
        assert!(e.contains("plain file name"), "{e}");
    }
}
