//! Media to model input, as gasbench prepares it (`processing/media.py`, `processing/transforms.py`
//! at 2e3ee30).
//!
//! Images: decoded and converted to RGB as PIL's `convert("RGB")` does (alpha dropped, grey
//! replicated, palettes expanded); centre-cropped to the target aspect ratio
//! (`ResizeShortestEdge`); resized to exactly H×W with OpenCV's `INTER_LINEAR` on uint8, whose
//! fixed-point arithmetic is reproduced here bit for bit (checked against cv2 on fixtures);
//! handed to the model as uint8 CHW. The plugin then applies `pixel / 255` and the config's
//! normalisation (gasbench leaves that to the model's `forward`).

use std::path::Path;

use crate::DetectorError;

/// Largest decoded image accepted (pixels); larger images fail their own sample.
pub const MAX_PIXELS: u64 = 64 << 20;

/// An RGB image, HWC, uint8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb {
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

/// Decodes an image file to RGB (format from the content, not the extension). The decoder's
/// limits refuse oversized images before their pixels are allocated.
pub fn decode_image(path: &Path) -> Result<Rgb, DetectorError> {
    let bad = |m: String| DetectorError::Sample(format!("{}: {m}", path.display()));
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| bad(format!("cannot open: {e}")))?
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(u16::MAX as u32);
    limits.max_image_height = Some(u16::MAX as u32);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| bad(format!("cannot decode: {e}")))?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    if (width as u64) * (height as u64) > MAX_PIXELS {
        return Err(bad(format!("{width}x{height} is larger than the {MAX_PIXELS} pixels accepted")));
    }
    if width == 0 || height == 0 {
        return Err(bad("empty image".into()));
    }
    Ok(Rgb { height, width, data: img.into_rgb8().into_raw() })
}

/// gasbench's `ResizeShortestEdge`: the largest centred crop with the target's aspect ratio,
/// resized to exactly `target_h × target_w`.
pub fn resize_shortest_edge(img: &Rgb, target_h: usize, target_w: usize) -> Rgb {
    let (h, w) = (img.height, img.width);
    let scale = (h as f64 / target_h as f64).min(w as f64 / target_w as f64);
    // Python's round() rounds halves to even.
    let crop_h = ((scale * target_h as f64).round_ties_even() as usize).min(h).max(1);
    let crop_w = ((scale * target_w as f64).round_ties_even() as usize).min(w).max(1);
    let top = (h - crop_h) / 2;
    let left = (w - crop_w) / 2;
    resize_linear(img, top, left, crop_h, crop_w, target_h, target_w)
}

const COEF_BITS: u32 = 11;
const COEF_SCALE: i32 = 1 << COEF_BITS;

/// Per output coordinate along one axis, as OpenCV's `resize` computes it for INTER_LINEAR:
/// `f = (float)((d + 0.5) * scale - 0.5)` with `scale = 1 / (dst / src)` in double, the source
/// index `floor(f)` and the fraction `f - floor(f)` in float.
fn raw_taps(src: usize, dst: usize) -> impl Iterator<Item = (i64, f32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst).map(move |d| {
        let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let s = f.floor();
        (s as i64, f - s)
    })
}

/// Fixed-point weights of a fraction: `saturate_cast<short>` of `(1 - f)·2048` and `f·2048`.
fn weights(frac: f32) -> (i32, i32) {
    (sat_i16((1.0 - frac) * COEF_SCALE as f32), sat_i16(frac * COEF_SCALE as f32))
}

/// `saturate_cast<short>(float)`: round half to even, then clamp.
fn sat_i16(v: f32) -> i32 {
    (v.round_ties_even() as i32).clamp(i16::MIN as i32, i16::MAX as i32)
}

/// OpenCV `resize(INTER_LINEAR)` of a uint8 3-channel region, bit-exact with its fixed-point
/// path:
/// - columns: a source column left of the image, or at/after its last column, is clamped with a
///   zero fraction; each row is resampled to int as `S[x]·a0 + S[x+1]·a1`;
/// - rows: the two source rows are clipped to the image but keep the unclamped fraction; the
///   vertical pass computes `(((S0>>4)·b0 >> 16) + ((S1>>4)·b1 >> 16) + 2) >> 2` (OpenCV's
///   `VResizeLinear` specialisation for uchar, in its SIMD and scalar parts alike; `S>>4` fits
///   in 16 bits, as its SIMD packing needs).
fn resize_linear(img: &Rgb, top: usize, left: usize, h: usize, w: usize, dh: usize, dw: usize) -> Rgb {
    const CN: usize = 3;
    let xt: Vec<(usize, i32, i32)> = raw_taps(w, dw)
        .map(|(s, f)| {
            let (s, f) = if s < 0 {
                (0, 0.0)
            } else if s >= w as i64 - 1 {
                (w as i64 - 1, 0.0)
            } else {
                (s, f)
            };
            let (a0, a1) = weights(f);
            (s as usize, a0, a1)
        })
        .collect();
    let src_row = |y: usize| {
        let start = ((top + y) * img.width + left) * CN;
        &img.data[start..start + w * CN]
    };
    let hpass = |row: &[u8]| -> Vec<i32> {
        let mut out = vec![0i32; dw * CN];
        for (dx, &(sx, a0, a1)) in xt.iter().enumerate() {
            let next = (sx + 1).min(w - 1);
            for c in 0..CN {
                out[dx * CN + c] = row[sx * CN + c] as i32 * a0 + row[next * CN + c] as i32 * a1;
            }
        }
        out
    };
    let width = dw * CN;
    let clip = |y: i64| y.clamp(0, h as i64 - 1) as usize;
    let mut data = vec![0u8; dh * width];
    for (dy, (sy, fy)) in raw_taps(h, dh).enumerate() {
        let (b0, b1) = weights(fy);
        let s0 = hpass(src_row(clip(sy)));
        let s1 = hpass(src_row(clip(sy + 1)));
        let out = &mut data[dy * width..(dy + 1) * width];
        for x in 0..width {
            let v = (((s0[x] >> 4) * b0) >> 16) + (((s1[x] >> 4) * b1) >> 16) + 2;
            out[x] = (v >> 2).clamp(0, 255) as u8;
        }
    }
    Rgb { height: dh, width: dw, data }
}

/// HWC uint8 to CHW uint8 (gasbench's `np.transpose(img, (2, 0, 1))`).
pub fn to_chw(img: &Rgb) -> Vec<u8> {
    let plane = img.height * img.width;
    let mut out = vec![0u8; 3 * plane];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = px[c];
        }
    }
    out
}

/// Audio clip for the model: decoded to mono at `rate` Hz as float32 in [-1, 1], then
/// centre-cropped or zero-padded at the end to `samples` (gasbench's `process_audio_sample`,
/// `use_random_crop=False`).
pub fn load_audio(path: &Path, rate: u32, samples: usize) -> Result<Vec<f32>, DetectorError> {
    let wave = decode_audio(path, rate)?;
    Ok(fit_length(wave, samples))
}

/// Centre crop (`start = (len - n) // 2`) or zero padding at the end.
pub fn fit_length(mut wave: Vec<f32>, n: usize) -> Vec<f32> {
    if wave.len() > n {
        let start = (wave.len() - n) / 2;
        wave.drain(..start);
        wave.truncate(n);
    } else {
        wave.resize(n, 0.0);
    }
    wave
}

/// Decodes audio to mono float32 at `rate` Hz. A 16-bit PCM WAV that is already mono at `rate`
/// is read directly (`s / 32768`, which is what FFmpeg's s16-to-float conversion computes);
/// anything else goes through the `ffmpeg` command as gasbench's fallback decoder runs it
/// (`-vn -ac 1 -ar RATE -f f32le`), so FFmpeg does the resampling and the mixdown.
pub fn decode_audio(path: &Path, rate: u32) -> Result<Vec<f32>, DetectorError> {
    let bad = |m: String| DetectorError::Sample(format!("{}: {m}", path.display()));
    if let Ok(reader) = hound::WavReader::open(path) {
        let spec = reader.spec();
        if spec.channels == 1
            && spec.sample_rate == rate
            && spec.bits_per_sample == 16
            && spec.sample_format == hound::SampleFormat::Int
        {
            if reader.duration() as u64 > MAX_AUDIO_SAMPLES {
                return Err(bad(format!(
                    "{} samples, more than the {MAX_AUDIO_SAMPLES} accepted",
                    reader.duration()
                )));
            }
            return reader
                .into_samples::<i16>()
                .map(|s| s.map(|v| v as f32 / 32768.0))
                .collect::<Result<Vec<f32>, _>>()
                .map_err(|e| bad(format!("cannot decode: {e}")));
        }
    }
    decode_audio_ffmpeg(path, rate)
}

/// Decodes audio through `ffmpeg` (`-vn -ac 1 -ar RATE -f f32le`), whatever its format.
pub fn decode_audio_ffmpeg(path: &Path, rate: u32) -> Result<Vec<f32>, DetectorError> {
    let bad = |m: String| DetectorError::Sample(format!("{}: {m}", path.display()));
    let out = ffmpeg(&[
        "-i",
        &path.display().to_string(),
        "-vn",
        "-ac",
        "1",
        "-ar",
        &rate.to_string(),
        "-f",
        "f32le",
        "pipe:1",
    ])
    .map_err(bad)?;
    if out.len() as u64 > MAX_AUDIO_SAMPLES * 4 {
        return Err(bad("decoded audio is too long".into()));
    }
    Ok(out.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Longest decoded clip accepted (samples): ten minutes at 16 kHz.
pub const MAX_AUDIO_SAMPLES: u64 = 16_000 * 600;

/// Runs `ffmpeg -nostdin -v error ARGS`, returning its stdout.
fn ffmpeg(args: &[&str]) -> Result<Vec<u8>, String> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ffmpeg (needed for this media format): {e}"))?;
    if !out.status.success() {
        return Err(format!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

/// Image file extensions read as video frames.
const FRAME_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// A video's frames as gasbench picks them (`process_video_bytes_sample`,
/// `process_video_frames_sample`): from a folder of frames, the first `num_frames` files in name
/// order; from a video file (decoded by `ffmpeg`, as decord decodes with FFmpeg), every
/// `round(fps / frame_rate)`-th frame when `frame_rate` is set, else the first `num_frames`;
/// short videos repeat their last frame.
pub fn load_frames(
    path: &Path,
    num_frames: usize,
    frame_rate: Option<f64>,
) -> Result<Vec<Rgb>, DetectorError> {
    let bad = |m: String| DetectorError::Sample(format!("{}: {m}", path.display()));
    let mut frames = if path.is_dir() {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
            .map_err(|e| bad(format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| FRAME_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        files.truncate(num_frames);
        files.iter().map(|f| decode_image(f)).collect::<Result<Vec<_>, _>>()?
    } else {
        decode_video(path, num_frames, frame_rate).map_err(bad)?
    };
    let Some(last) = frames.last().cloned() else {
        return Err(bad("no frames".into()));
    };
    frames.resize(num_frames, last);
    Ok(frames)
}

fn probe(path: &Path) -> Result<(usize, usize, f64), String> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,avg_frame_rate",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run ffprobe (needed for video files): {e}"))?;
    if !out.status.success() {
        return Err(format!("ffprobe failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field =
        |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or("").to_string();
    let width: usize = field("width").parse().map_err(|_| "no video stream".to_string())?;
    let height: usize = field("height").parse().map_err(|_| "no video stream".to_string())?;
    // decord's get_avg_fps(); gasbench falls back to 30 when it is missing or not positive.
    let fps = match field("avg_frame_rate").split_once('/') {
        Some((n, d)) => n.parse::<f64>().unwrap_or(0.0) / d.parse::<f64>().unwrap_or(0.0),
        None => 0.0,
    };
    let fps = if fps.is_finite() && fps > 0.0 { fps } else { 30.0 };
    Ok((width, height, fps))
}

fn decode_video(path: &Path, num_frames: usize, frame_rate: Option<f64>) -> Result<Vec<Rgb>, String> {
    let (width, height, fps) = probe(path)?;
    if width == 0 || height == 0 || (width as u64) * (height as u64) > MAX_PIXELS {
        return Err(format!("{width}x{height} frames are not accepted"));
    }
    let step = match frame_rate {
        Some(r) => ((fps / r).round_ties_even() as usize).max(1),
        None => 1,
    };
    let needed = (num_frames - 1) * step + 1;
    let raw = ffmpeg(&[
        "-i",
        &path.display().to_string(),
        "-map",
        "0:v:0",
        "-frames:v",
        &needed.to_string(),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ])?;
    let size = width * height * 3;
    Ok(raw
        .chunks_exact(size)
        .step_by(step)
        .take(num_frames)
        .map(|f| Rgb { height, width, data: f.to_vec() })
        .collect())
}
