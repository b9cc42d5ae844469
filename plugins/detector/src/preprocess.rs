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

/// Decodes an image file to RGB (format from the content, not the extension).
pub fn decode_image(path: &Path) -> Result<Rgb, DetectorError> {
    let bad = |m: String| DetectorError::Sample(format!("{}: {m}", path.display()));
    let reader = image::ImageReader::open(path)
        .map_err(|e| bad(format!("cannot open: {e}")))?
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(MAX_PIXELS * 8);
    let mut reader = reader;
    reader.limits(decoder_limits);
    let (w, h) = reader.into_dimensions().map_err(|e| bad(format!("cannot decode: {e}")))?;
    if (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(bad(format!("{w}x{h} is larger than the {MAX_PIXELS} pixels accepted")));
    }
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| bad(format!("cannot read: {e}")))?
        .decode()
        .map_err(|e| bad(format!("cannot decode: {e}")))?;
    let rgb = img.into_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    if width == 0 || height == 0 {
        return Err(bad("empty image".into()));
    }
    Ok(Rgb { height, width, data: rgb.into_raw() })
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
