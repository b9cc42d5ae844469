//! A small synthetic benchmark for tests and the demo, generated deterministically from a seed.
//!
//! "Real" images are procedural textures with the statistics of natural images: fractal value
//! noise (a 1/f-like spectrum) through a random colour palette, a lighting gradient and a little
//! sensor noise. "Synthetic" images carry the traces generators leave:
//! - `gan-upsample`: the texture rendered at half resolution and upsampled ×2 by zero insertion
//!   and a fixed 3×3 kernel (the checkerboard of transposed convolutions), without sensor noise;
//! - `latent-grid`: a faint period-8 grid, as an 8× latent decoder leaves;
//! - `inpainted` (semisynthetic): a real texture with a rectangle regenerated the GAN way.
//!
//! Every image has a short side of 64 pixels (the long side 64 to 96), so with a 64×64 model
//! input the preprocessing only crops and the traces survive.

use std::path::Path;

use crate::DetectorError;

pub use arena_plugin_api::splitmix::SplitMix64 as Rng;

/// A float RGB image, HWC, values in [0, 255].
struct Canvas {
    h: usize,
    w: usize,
    px: Vec<f32>,
}

/// Fractal value noise in [0, 1], `h × w`.
fn fractal(rng: &mut Rng, h: usize, w: usize, base_period: f32, octaves: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; h * w];
    let mut amp = 1.0f32;
    let mut period = base_period;
    let mut total = 0.0f32;
    for _ in 0..octaves {
        let gh = (h as f32 / period).ceil() as usize + 2;
        let gw = (w as f32 / period).ceil() as usize + 2;
        let lattice: Vec<f32> = (0..gh * gw).map(|_| rng.next_f32()).collect();
        let (oy, ox) = (rng.next_f32(), rng.next_f32());
        for y in 0..h {
            let fy = y as f32 / period + oy;
            let (y0, ty) = (fy.floor() as usize, fy - fy.floor());
            let sy = ty * ty * (3.0 - 2.0 * ty);
            for x in 0..w {
                let fx = x as f32 / period + ox;
                let (x0, tx) = (fx.floor() as usize, fx - fx.floor());
                let sx = tx * tx * (3.0 - 2.0 * tx);
                let l = |yy: usize, xx: usize| lattice[yy.min(gh - 1) * gw + xx.min(gw - 1)];
                let top = l(y0, x0) * (1.0 - sx) + l(y0, x0 + 1) * sx;
                let bottom = l(y0 + 1, x0) * (1.0 - sx) + l(y0 + 1, x0 + 1) * sx;
                out[y * w + x] += amp * (top * (1.0 - sy) + bottom * sy);
            }
        }
        total += amp;
        amp *= 0.55;
        period = (period / 2.0).max(1.5);
    }
    out.iter_mut().for_each(|v| *v /= total);
    out
}

/// A natural-looking texture: fractal noise through a three-colour palette, lit by a gradient.
fn texture(rng: &mut Rng, h: usize, w: usize) -> Canvas {
    let period = 12.0 + 24.0 * rng.next_f32();
    let n = fractal(rng, h, w, period, 5);
    let palette: Vec<[f32; 3]> =
        (0..3).map(|_| [rng.next_f32() * 255.0, rng.next_f32() * 255.0, rng.next_f32() * 255.0]).collect();
    let (gy, gx) = (rng.next_f32() - 0.5, rng.next_f32() - 0.5);
    let mut px = vec![0.0f32; h * w * 3];
    for y in 0..h {
        for x in 0..w {
            let t = (n[y * w + x] * 1.6 - 0.3).clamp(0.0, 1.0) * 2.0;
            let (a, b, f) =
                if t < 1.0 { (palette[0], palette[1], t) } else { (palette[1], palette[2], t - 1.0) };
            let light = 1.0 + 0.4 * (gy * (y as f32 / h as f32 - 0.5) + gx * (x as f32 / w as f32 - 0.5));
            for c in 0..3 {
                px[(y * w + x) * 3 + c] = (a[c] * (1.0 - f) + b[c] * f) * light;
            }
        }
    }
    Canvas { h, w, px }
}

/// Sensor noise: a triangular distribution of about ±3 levels.
fn add_sensor_noise(rng: &mut Rng, c: &mut Canvas) {
    for v in &mut c.px {
        *v += (rng.next_f32() + rng.next_f32() - 1.0) * 3.0;
    }
}

/// ×2 upsampling by zero insertion and a fixed 3×3 kernel (a transposed convolution with
/// uneven overlap: the checkerboard trace).
fn upsample2(src: &Canvas, h: usize, w: usize) -> Canvas {
    const K: [[f32; 3]; 3] = [[0.30, 0.55, 0.25], [0.60, 1.00, 0.50], [0.20, 0.45, 0.30]];
    let mut px = vec![0.0f32; h * w * 3];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f32; 3];
            for (ky, row) in K.iter().enumerate() {
                for (kx, k) in row.iter().enumerate() {
                    let (yy, xx) = (y as i64 + ky as i64 - 1, x as i64 + kx as i64 - 1);
                    if yy < 0 || xx < 0 || yy % 2 != 0 || xx % 2 != 0 {
                        continue;
                    }
                    let (sy, sx) = ((yy / 2) as usize, (xx / 2) as usize);
                    if sy >= src.h || sx >= src.w {
                        continue;
                    }
                    let at = (sy * src.w + sx) * 3;
                    for (a, v) in acc.iter_mut().zip(&src.px[at..at + 3]) {
                        *a += k * v;
                    }
                }
            }
            // A fixed gain, not the taps hit: pixels on even and odd positions get uneven energy.
            for c in 0..3 {
                px[(y * w + x) * 3 + c] = acc[c] / 1.5;
            }
        }
    }
    Canvas { h, w, px }
}

fn gan_like(rng: &mut Rng, h: usize, w: usize) -> Canvas {
    let small = texture(rng, h.div_ceil(2), w.div_ceil(2));
    upsample2(&small, h, w)
}

fn latent_grid(rng: &mut Rng, h: usize, w: usize) -> Canvas {
    let mut c = texture(rng, h, w);
    let phase = (rng.below(8), rng.below(8));
    let amp = 4.0 + 3.0 * rng.next_f32();
    for y in 0..h {
        for x in 0..w {
            let on = (y + phase.0).is_multiple_of(8) || (x + phase.1).is_multiple_of(8);
            if on {
                for k in 0..3 {
                    c.px[(y * w + x) * 3 + k] += amp;
                }
            }
        }
    }
    add_sensor_noise(rng, &mut c);
    c
}

fn inpainted(rng: &mut Rng, h: usize, w: usize) -> Canvas {
    let mut c = texture(rng, h, w);
    add_sensor_noise(rng, &mut c);
    let (rh, rw) = (h / 2 + rng.below(h / 4), w / 2 + rng.below(w / 4));
    let (ry, rx) = (rng.below(h - rh), rng.below(w - rw));
    let patch = gan_like(rng, rh, rw);
    for y in 0..rh {
        for x in 0..rw {
            for k in 0..3 {
                c.px[((ry + y) * w + rx + x) * 3 + k] = patch.px[(y * rw + x) * 3 + k];
            }
        }
    }
    c
}

/// The kinds of image the generator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Real,
    GanUpsample,
    LatentGrid,
    Inpainted,
}

/// Renders one image of `kind` as RGB bytes (`h × w × 3`).
pub fn render(kind: Kind, rng: &mut Rng, h: usize, w: usize) -> Vec<u8> {
    let c = match kind {
        Kind::Real => {
            let mut c = texture(rng, h, w);
            add_sensor_noise(rng, &mut c);
            c
        }
        Kind::GanUpsample => gan_like(rng, h, w),
        Kind::LatentGrid => latent_grid(rng, h, w),
        Kind::Inpainted => inpainted(rng, h, w),
    };
    debug_assert_eq!(c.px.len(), c.h * c.w * 3);
    c.px.iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect()
}

/// One dataset of the benchmark.
#[derive(Clone, Copy, Debug)]
pub struct DatasetSpec {
    pub name: &'static str,
    pub media_type: &'static str,
    pub kind: Kind,
}

/// The benchmark's image datasets: two real, two synthetic, one semisynthetic, and a
/// gasstation-named synthetic one (weighted ×5 in gasbench's caps).
pub const IMAGE_DATASETS: [DatasetSpec; 6] = [
    DatasetSpec { name: "textures-real", media_type: "real", kind: Kind::Real },
    DatasetSpec { name: "scenes-real", media_type: "real", kind: Kind::Real },
    DatasetSpec { name: "gan-upsample", media_type: "synthetic", kind: Kind::GanUpsample },
    DatasetSpec { name: "latent-grid", media_type: "synthetic", kind: Kind::LatentGrid },
    DatasetSpec { name: "inpainted", media_type: "semisynthetic", kind: Kind::Inpainted },
    DatasetSpec { name: "gasstation-images", media_type: "synthetic", kind: Kind::GanUpsample },
];

/// Writes `per_dataset` PNG images per dataset under `dir/<dataset>/` and a gasbench-style
/// registry `dir/registry.yaml`. Deterministic in `seed`.
pub fn write_benchmark(dir: &Path, per_dataset: usize, seed: u64) -> Result<(), DetectorError> {
    let io = |e: std::io::Error| DetectorError::Internal(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut registry = String::from(
        "# Generated by arena-tiny-detect: a procedural real-vs-synthetic image benchmark.\ndatasets:\n",
    );
    for (d, spec) in IMAGE_DATASETS.iter().enumerate() {
        let sub = dir.join(spec.name);
        std::fs::create_dir_all(&sub).map_err(io)?;
        for i in 0..per_dataset {
            let mut rng = Rng::new(seed ^ ((d as u64) << 32) ^ i as u64);
            let long = 64 + rng.below(33);
            let (h, w) = if rng.below(2) == 0 { (64, long) } else { (long, 64) };
            let px = render(spec.kind, &mut rng, h, w);
            let path = sub.join(format!("{i:04}.png"));
            image::save_buffer(&path, &px, w as u32, h as u32, image::ExtendedColorType::Rgb8)
                .map_err(|e| DetectorError::Internal(format!("{}: {e}", path.display())))?;
        }
        registry.push_str(&format!(
            "  - name: {}\n    modality: image\n    media_type: {}\n    path: {}\n",
            spec.name, spec.media_type, spec.name
        ));
    }
    std::fs::write(dir.join("registry.yaml"), registry).map_err(io)
}

/// Audio datasets: one real, one synthetic. Clips are 16 kHz mono 16-bit WAV of `seconds`.
/// Real: pink-ish noise under a slow envelope with a few vibrato tones. Synthetic: the same kind
/// of signal rendered at 8 kHz and upsampled by sample repetition (the spectral images a cheap
/// vocoder leaves above 4 kHz).
pub const AUDIO_DATASETS: [(&str, &str); 2] = [("speech-real", "real"), ("tts-upsampled", "synthetic")];

fn natural_audio(rng: &mut Rng, n: usize, rate: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    let (mut b0, mut b1, mut b2) = (0.0f32, 0.0f32, 0.0f32);
    let tones: Vec<(f32, f32, f32)> = (0..3)
        .map(|_| (120.0 + rng.next_f32() * 600.0, 0.05 + rng.next_f32() * 0.15, rng.next_f32() * 6.0))
        .collect();
    let env_rate = 1.0 + rng.next_f32() * 3.0;
    for (i, v) in out.iter_mut().enumerate() {
        let t = i as f32 / rate;
        let white = rng.next_f32() * 2.0 - 1.0;
        // Paul Kellet's economy pink filter.
        b0 = 0.99765 * b0 + white * 0.0990460;
        b1 = 0.96300 * b1 + white * 0.2965164;
        b2 = 0.57000 * b2 + white * 1.0526913;
        let pink = (b0 + b1 + b2 + white * 0.1848) * 0.05;
        let env = 0.6 + 0.4 * (std::f32::consts::TAU * env_rate * t).sin();
        let mut tone = 0.0;
        for &(f, a, vib) in &tones {
            tone += a * (std::f32::consts::TAU * f * t + 0.3 * (std::f32::consts::TAU * vib * t).sin()).sin();
        }
        *v = (pink + tone) * env * 0.5;
    }
    out
}

/// Writes `per_dataset` WAV clips per audio dataset under `dir/<dataset>/` and `dir/registry.yaml`.
pub fn write_audio_benchmark(
    dir: &Path,
    per_dataset: usize,
    seconds: f32,
    seed: u64,
) -> Result<(), DetectorError> {
    let io = |e: String| DetectorError::Internal(format!("{}: {e}", dir.display()));
    let mut registry = String::from(
        "# Generated by arena-tiny-detect: a procedural real-vs-synthetic audio benchmark.\ndatasets:\n",
    );
    let n = (16000.0 * seconds) as usize;
    for (d, (name, media_type)) in AUDIO_DATASETS.iter().enumerate() {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).map_err(|e| io(e.to_string()))?;
        for i in 0..per_dataset {
            let mut rng = Rng::new(seed ^ ((d as u64 + 16) << 32) ^ i as u64);
            let wave = if *media_type == "real" {
                natural_audio(&mut rng, n, 16000.0)
            } else {
                let half = natural_audio(&mut rng, n.div_ceil(2), 8000.0);
                (0..n).map(|k| half[k / 2]).collect()
            };
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 16000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let path = sub.join(format!("{i:04}.wav"));
            let mut w = hound::WavWriter::create(&path, spec).map_err(|e| io(e.to_string()))?;
            for v in wave {
                w.write_sample((v.clamp(-1.0, 1.0) * 32767.0).round() as i16)
                    .map_err(|e| io(e.to_string()))?;
            }
            w.finalize().map_err(|e| io(e.to_string()))?;
        }
        registry.push_str(&format!(
            "  - name: {name}\n    modality: audio\n    media_type: {media_type}\n    path: {name}\n"
        ));
    }
    std::fs::write(dir.join("registry.yaml"), registry).map_err(|e| io(e.to_string()))
}

/// Video datasets: one real (a texture panned by the camera, fresh sensor noise per frame), one
/// synthetic (the same with every frame upsampled the GAN way). Each video is a folder of PNG
/// frames, gasbench's pre-extracted layout.
pub const VIDEO_DATASETS: [(&str, &str); 2] = [("camera-real", "real"), ("gan-video", "synthetic")];

/// Writes `per_dataset` videos of `frames` frames (h × w) per video dataset under
/// `dir/<dataset>/<video>/` and `dir/registry.yaml`.
pub fn write_video_benchmark(
    dir: &Path,
    per_dataset: usize,
    frames: usize,
    [h, w]: [usize; 2],
    seed: u64,
) -> Result<(), DetectorError> {
    let io = |e: String| DetectorError::Internal(format!("{}: {e}", dir.display()));
    let mut registry = String::from(
        "# Generated by arena-tiny-detect: a procedural real-vs-synthetic video benchmark.\ndatasets:\n",
    );
    for (d, (name, media_type)) in VIDEO_DATASETS.iter().enumerate() {
        for i in 0..per_dataset {
            let mut rng = Rng::new(seed ^ ((d as u64 + 32) << 32) ^ i as u64);
            let sub = dir.join(name).join(format!("video{i:04}"));
            std::fs::create_dir_all(&sub).map_err(|e| io(e.to_string()))?;
            // One large scene; each frame is a window moved by a few pixels.
            let margin = 2 * frames;
            let scene = if *media_type == "real" {
                texture(&mut rng, h + margin, w + margin)
            } else {
                gan_like(&mut rng, h + margin, w + margin)
            };
            for t in 0..frames {
                let mut frame = Canvas { h, w, px: vec![0.0; h * w * 3] };
                for y in 0..h {
                    for x in 0..w {
                        for c in 0..3 {
                            frame.px[(y * w + x) * 3 + c] = scene.px[((y + t) * scene.w + x + 2 * t) * 3 + c];
                        }
                    }
                }
                if *media_type == "real" {
                    add_sensor_noise(&mut rng, &mut frame);
                }
                let px: Vec<u8> = frame.px.iter().map(|v| v.round().clamp(0.0, 255.0) as u8).collect();
                let path = sub.join(format!("{t:04}.png"));
                image::save_buffer(&path, &px, w as u32, h as u32, image::ExtendedColorType::Rgb8)
                    .map_err(|e| io(e.to_string()))?;
            }
        }
        registry.push_str(&format!(
            "  - name: {name}\n    modality: video\n    media_type: {media_type}\n    path: {name}\n"
        ));
    }
    std::fs::write(dir.join("registry.yaml"), registry).map_err(|e| io(e.to_string()))
}
