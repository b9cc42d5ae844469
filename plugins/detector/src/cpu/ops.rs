//! The pieces ConvNeXt and the vision transformer are made of, on rows of channels (NHWC pixels
//! or tokens): linear layers as tiled products on packed weights ([`super::packed`]) with their
//! epilogue applied to each block of rows while it is in cache, LayerNorm, exact GELU, the 7×7 depthwise convolution, and `exp`.

use rayon::prelude::*;

use super::packed::Packed;
use super::{L, Lane, SyncPtr};

/// Output tiles of a linear layer: this many rows by this many columns (fewer at the edges).
/// Fixed sizes, so the work split never depends on the thread count.
const TILE_ROWS: usize = 256;
const TILE_COLS: usize = 384;

/// A linear layer: `[d_in, d_out]` weight (PyTorch's `[out, in]` transposed) and bias.
pub struct Linear {
    pub d_in: usize,
    pub d_out: usize,
    w: Packed,
    pub bias: Vec<f32>,
}

/// What a linear layer does to each output value after the bias.
#[derive(Clone, Copy)]
pub enum Then {
    /// Nothing: `W·x + b`.
    Nothing,
    /// `gelu(W·x + b)`.
    Gelu,
    /// Adds `W·x + b` into this buffer (`rows × d_out`, row-major), which is the result; the
    /// layer's own output buffer is scratch.
    AddInto(SyncPtr),
}

impl Linear {
    /// From the `[d_in, d_out]` layout (burn's).
    pub fn new(w: Vec<f32>, bias: Vec<f32>, d_in: usize, d_out: usize) -> Linear {
        assert_eq!(w.len(), d_in * d_out, "linear weight size");
        assert_eq!(bias.len(), d_out, "linear bias size");
        Linear { d_in, d_out, w: Packed::new(&w, d_in, d_out), bias }
    }

    /// Output channel `o` multiplied by `scale[o]`, weight and bias (a layer scale folded in,
    /// in f64).
    pub fn scaled(mut self, scale: &[f32]) -> Linear {
        assert_eq!(scale.len(), self.d_out, "layer scale size");
        self.w.scale_columns(scale);
        for (b, &s) in self.bias.iter_mut().zip(scale) {
            *b = (*b as f64 * s as f64) as f32;
        }
        self
    }

    /// `out` (`rows × d_out`) = `x` (`rows × d_in`) · W + b, then `then`. Tiles run in parallel,
    /// each on one thread.
    pub fn forward(&self, x: &[f32], out: &mut [f32], then: Then) {
        let (k, n) = (self.d_in, self.d_out);
        let rows = x.len() / k;
        assert_eq!(x.len(), rows * k, "linear input size");
        let out = &mut out[..rows * n];
        let (row_tiles, col_tiles) = (rows.div_ceil(TILE_ROWS), n.div_ceil(TILE_COLS));
        let dst = SyncPtr(out.as_mut_ptr());
        (0..row_tiles * col_tiles).into_par_iter().for_each(|tile| {
            let (r0, c0) = ((tile / col_tiles) * TILE_ROWS, (tile % col_tiles) * TILE_COLS);
            let (nr, nc) = (TILE_ROWS.min(rows - r0), TILE_COLS.min(n - c0));
            let bias = &self.bias[c0..c0 + nc];
            // SAFETY: the tile's rows of `x`, and its own block of `out` (tiles do not overlap);
            // the accumulator's block of the same rows and columns, which only this tile touches.
            unsafe {
                let d = dst.get().add(r0 * n + c0);
                self.w.product(nr, x.as_ptr().add(r0 * k), k, d, n, c0..c0 + nc, |r, seg| match then {
                    Then::Nothing => add_bias(seg, bias),
                    Then::Gelu => gelu_biased(seg, bias),
                    Then::AddInto(acc) => add_into(
                        std::slice::from_raw_parts_mut(acc.get().add((r0 + r) * n + c0), nc),
                        seg,
                        bias,
                    ),
                });
            }
        });
    }
}

/// Rows per block of [`Linear::gelu_into`].
pub const FUSED_ROWS: usize = 256;

thread_local! {
    /// [`Linear::gelu_into`]'s hidden and output rows, kept between blocks and passes.
    static FUSED: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Linear {
    /// `acc += next(gelu(self(x)))`, [`FUSED_ROWS`] rows at a time, each block on one thread, so
    /// that the hidden rows stay in cache instead of going to memory and back: the bits of
    /// `self.forward(x, hidden, Gelu)` then `next.forward(hidden, _, AddInto(acc))`. It reads
    /// both weight matrices (`2·d_in·h` values) once per block instead of writing and reading the
    /// hidden rows (`2·h` values a row), so by that count it moves less data when
    /// `self.d_in < FUSED_ROWS` (a model, not a measurement).
    pub fn gelu_into(&self, next: &Linear, x: &[f32], acc: &mut [f32]) {
        let (k, h, n) = (self.d_in, self.d_out, next.d_out);
        assert_eq!(next.d_in, h, "hidden width");
        let rows = x.len() / k;
        assert_eq!((x.len(), acc.len()), (rows * k, rows * n), "fused rows");
        acc.par_chunks_mut(FUSED_ROWS * n).zip(x.par_chunks(FUSED_ROWS * k)).for_each(|(acc, x)| {
            let nr = x.len() / k;
            let mut buf = FUSED.take();
            buf.resize(buf.len().max(nr * (h + n)), 0.0);
            let (hidden, out) = buf.split_at_mut(nr * h);
            // SAFETY: `x` is nr×k, `hidden` nr×h and `out` nr×n, all row-major and disjoint.
            unsafe {
                self.w.product(nr, x.as_ptr(), k, hidden.as_mut_ptr(), h, 0..h, |_, seg| {
                    gelu_biased(seg, &self.bias)
                });
                next.w.product(nr, hidden.as_ptr(), h, out.as_mut_ptr(), n, 0..n, |r, seg| {
                    add_into(&mut acc[r * n..(r + 1) * n], seg, &next.bias)
                });
            }
            FUSED.set(buf);
        });
    }
}

vectorized! {
    /// `v += b`.
    fn add_bias(v: &mut [f32], bias: &[f32]) = add_bias_body;
}

#[inline(always)]
fn add_bias_body(v: &mut [f32], bias: &[f32]) {
    v.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
}

vectorized! {
    /// `acc += v + b`.
    fn add_into(acc: &mut [f32], v: &[f32], bias: &[f32]) = add_into_body;
}

#[inline(always)]
fn add_into_body(acc: &mut [f32], v: &[f32], bias: &[f32]) {
    for ((a, v), b) in acc.iter_mut().zip(v).zip(bias) {
        *a += *v + b;
    }
}

/// LayerNorm's affine part and epsilon.
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f64,
}

impl Norm {
    /// Every row of `x` (rows of `gamma.len()` values) normalised into the same row of `out`.
    pub fn rows(&self, x: &[f32], out: &mut [f32]) {
        let c = self.gamma.len();
        let piece = (16_384 / c).max(1) * c;
        out[..x.len()]
            .par_chunks_mut(piece)
            .zip(x.par_chunks(piece))
            .for_each(|(o, x)| norm_rows(self, x, o));
    }

    /// Every row of `x`, in place.
    pub fn rows_in_place(&self, x: &mut [f32]) {
        let c = self.gamma.len();
        let piece = (16_384 / c).max(1) * c;
        x.par_chunks_mut(piece).for_each(|p| norm_rows_in_place(self, p));
    }

    /// `(x − mean) / √(var + ε) · γ + β`, the mean and (biased) variance over the row.
    #[inline(always)]
    pub fn row(&self, x: &[f32], out: &mut [f32]) {
        let (mean, inv) = moments(x, self.eps);
        for (((o, &v), g), b) in out.iter_mut().zip(x).zip(&self.gamma).zip(&self.beta) {
            *o = (v - mean) * inv * g + b;
        }
    }

    #[inline(always)]
    pub fn row_in_place(&self, x: &mut [f32]) {
        let (mean, inv) = moments(x, self.eps);
        for ((v, g), b) in x.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

vectorized! {
    /// [`Norm::row`] on every row of `x` into the same row of `out`.
    fn norm_rows(norm: &Norm, x: &[f32], out: &mut [f32]) = norm_rows_body;
}

#[inline(always)]
fn norm_rows_body(norm: &Norm, x: &[f32], out: &mut [f32]) {
    let c = norm.gamma.len();
    out.chunks_exact_mut(c).zip(x.chunks_exact(c)).for_each(|(o, x)| norm.row(x, o));
}

vectorized! {
    /// [`Norm::row_in_place`] on every row of `x`.
    fn norm_rows_in_place(norm: &Norm, x: &mut [f32]) = norm_rows_in_place_body;
}

#[inline(always)]
fn norm_rows_in_place_body(norm: &Norm, x: &mut [f32]) {
    x.chunks_exact_mut(norm.gamma.len()).for_each(|row| norm.row_in_place(row));
}

/// The mean of `x` and `1 / √(var + ε)`, both sums by [`lane_sum`].
#[inline(always)]
fn moments(x: &[f32], eps: f64) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = lane_sum_of(x, |v| v) / n;
    let var = lane_sum_of(x, |v| (v - mean) * (v - mean)) / n;
    (mean, (1.0 / (var as f64 + eps).sqrt()) as f32)
}

/// The sum of `x`: `L` lanes, then the remainder and the lanes in order (a fixed order, so the
/// same on every CPU).
#[inline(always)]
pub fn lane_sum(x: &[f32]) -> f32 {
    lane_sum_of(x, |v| v)
}

#[inline(always)]
fn lane_sum_of(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; L];
    let mut chunks = x.chunks_exact(L);
    for ch in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += f(v);
        }
    }
    chunks.remainder().iter().map(|&v| f(v)).sum::<f32>() + acc.iter().sum::<f32>()
}

vectorized! {
    /// `gelu(v + b)` in place, the exact GELU `x·Φ(x)` (PyTorch's default, not the tanh form).
    fn gelu_biased(v: &mut [f32], bias: &[f32]) = gelu_biased_body;
}

#[inline(always)]
fn gelu_biased_body(v: &mut [f32], bias: &[f32]) {
    let mut vs = v.chunks_exact_mut(BLOCK);
    let mut bs = bias.chunks_exact(BLOCK);
    for (v, b) in (&mut vs).zip(&mut bs) {
        let v: &mut [f32; BLOCK] = v.try_into().expect("a block");
        let b: &[f32; BLOCK] = b.try_into().expect("a block");
        *v = gelu_block(each!(BLOCK, |i| v[i] + b[i]));
    }
    for (v, b) in vs.into_remainder().iter_mut().zip(bs.remainder()) {
        *v = gelu(*v + b);
    }
}

/// Values per call of the block forms ([`gelu_block`], [`exp_block`]): eight lanes. One value at
/// a time, a loop of GELUs is bound by the latency of its ~40 dependent steps; in a block, each
/// step is a short loop over independent vectors, which the CPU overlaps (on a Zen 1 core,
/// 4.5 ns per value one at a time, 2.6 ns in blocks of 128, with Estrin's scheme and FMA).
const BLOCK: usize = 8 * L;

/// `x·Φ(x) = ½·x·erfc(−x/√2)`, as [`gelu_block`] computes it.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    gelu_block([x])[0]
}

/// Numerical Recipes' Chebyshev fit of erfc: `P(t) = Σ ERFC_FIT[k]·t^k`.
const ERFC_FIT: [f32; 10] = [
    -1.265_512_2,
    1.000_023_7,
    0.374_091_95,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_08,
    -1.135_204,
    1.488_515_9,
    -0.822_152_26,
    0.170_872_76,
];

/// `x·Φ(x) = ½·x·erfc(−x/√2)` for each value. erfc of `|z|` by Numerical Recipes' Chebyshev fit
/// (`t·exp(−z² + P(t))`, `t = 1/(1 + z/2)`, relative error below 1.2e-7 for every `z`), then
/// `erfc(−|z|) = 2 − erfc(|z|)`: no cancellation in the negative tail, where `1 + erf` would lose
/// every digit. `P` by Estrin's scheme (4 dependent steps instead of Horner's 9: a GELU's
/// latency, not its arithmetic, bounds a loop of them), every product-and-sum one fused
/// multiply-add (`mul_add`, the same rounding on every CPU and vector width). Each step over
/// the whole block; value by value the same operations, so any block size gives the same bits.
#[inline(always)]
pub fn gelu_block<const N: usize>(x: [f32; N]) -> [f32; N] {
    let c = &ERFC_FIT;
    let z = each!(N, |i| x[i].abs() * std::f32::consts::FRAC_1_SQRT_2);
    let t = each!(N, |i| 1.0 / 0.5f32.mul_add(z[i], 1.0));
    let t2 = each!(N, |i| t[i] * t[i]);
    let t4 = each!(N, |i| t2[i] * t2[i]);
    let p = each!(N, |i| {
        let (t, t2, t4) = (t[i], t2[i], t4[i]);
        let lo = c[3].mul_add(t, c[2]).mul_add(t2, c[1].mul_add(t, c[0]));
        let hi = c[7].mul_add(t, c[6]).mul_add(t2, c[5].mul_add(t, c[4]));
        let top = c[9].mul_add(t, c[8]);
        top.mul_add(t4 * t4, hi.mul_add(t4, lo))
    });
    let e = exp_block(each!(N, |i| (-z[i]).mul_add(z[i], p[i])));
    each!(N, |i| {
        let e = t[i] * e[i];
        0.5 * x[i] * if x[i] > 0.0 { 2.0 - e } else { e }
    })
}

/// `exp(x)` for `x ≤ 0`, as [`exp_block`] computes it.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_block([x])[0]
}

/// Cephes' degree-5 minimax polynomial for `(e^r − 1 − r) / r² = Σ EXP_FIT[k]·r^k`.
const EXP_FIT: [f32; 6] = [0.5, 0.166_666_66, 4.166_579_6e-2, 8.333_452e-3, 1.398_199_9e-3, 1.987_569_1e-4];

/// `exp(x)` for each `x ≤ 0` (0 below −87, where f32 would be subnormal):
/// `2^n · e^r` with `n = round(x / ln 2)`, `r` reduced in two parts of ln 2, and Cephes'
/// polynomial (relative error below 1e-7) by Estrin's scheme. Fused multiply-adds as written,
/// each step over the block.
#[inline(always)]
pub fn exp_block<const N: usize>(arg: [f32; N]) -> [f32; N] {
    let c = &EXP_FIT;
    let x = each!(N, |i| arg[i].clamp(-87.0, 0.0));
    // Rounding to the nearest integer by adding 1.5·2^23: `n` in the low mantissa bits.
    let shifted = each!(N, |i| x[i].mul_add(std::f32::consts::LOG2_E, 12_582_912.0));
    let r = each!(N, |i| {
        let n = shifted[i] - 12_582_912.0;
        n.mul_add(2.121_944_4e-4, (-n).mul_add(0.693_359_4, x[i]))
    });
    each!(N, |i| {
        let (r, r2) = (r[i], r[i] * r[i]);
        let p =
            c[5].mul_add(r, c[4]).mul_add(r2 * r2, c[3].mul_add(r, c[2]).mul_add(r2, c[1].mul_add(r, c[0])));
        let e = p.mul_add(r2, r) + 1.0;
        // 2^n from n's bits (integer arithmetic only, no float-to-int conversion).
        let exponent = (shifted[i].to_bits() as i32 - 0x4B40_0000 + 127) as u32;
        let v = e * f32::from_bits(exponent << 23);
        if arg[i] < -87.0 { 0.0 } else { v }
    })
}

/// A depthwise 7×7 convolution, padding 3, stride 1, with bias: `[49][C]` taps.
pub struct Depthwise {
    taps: Vec<f32>,
    bias: Vec<f32>,
}

impl Depthwise {
    /// From PyTorch's `[C, 1, 7, 7]` weight.
    pub fn new(weight: &[f32], bias: &[f32]) -> Depthwise {
        let c = bias.len();
        assert_eq!(weight.len(), c * 49, "depthwise weight size");
        let mut taps = vec![0f32; 49 * c];
        for ch in 0..c {
            for t in 0..49 {
                taps[t * c + ch] = weight[ch * 49 + t];
            }
        }
        Depthwise { taps, bias: bias.to_vec() }
    }

    /// `x` NHWC `[n, h, w, C]` into `out`, then `norm` on every output pixel while it is in
    /// cache. Output rows (one image row each) run in parallel.
    pub fn forward_norm(&self, x: &[f32], (h, w): (usize, usize), out: &mut [f32], norm: &Norm) {
        let c = self.bias.len();
        out[..x.len()]
            .par_chunks_mut(w * c)
            .enumerate()
            .for_each(|(row, o)| depthwise_row(self, x, (h, w), row, o, norm));
    }
}

vectorized! {
    /// One output row of [`Depthwise::forward_norm`].
    fn depthwise_row(dw: &Depthwise, x: &[f32], hw: (usize, usize), row: usize, o: &mut [f32], norm: &Norm) = depthwise_row_body;
}

#[inline(always)]
fn depthwise_row_body(
    dw: &Depthwise,
    x: &[f32],
    (h, w): (usize, usize),
    row: usize,
    o: &mut [f32],
    norm: &Norm,
) {
    let c = dw.bias.len();
    let (b, oy) = (row / h, row % h);
    // The kernel rows and columns inside the image, so the taps loop has no tests.
    let ky = (3usize.saturating_sub(oy), (h + 3 - oy).min(7));
    let kx = |ox: usize| (3usize.saturating_sub(ox), (w + 3 - ox).min(7));
    // One lane of channels across the whole row, then the next: the lane's input window and
    // taps stay in L1. Pixels whose 7 kernel columns are all inside the image go `PIXELS` at a
    // time, so that a tap is loaded once for all of them.
    let whole = c / L * L;
    for c0 in (0..whole).step_by(L) {
        let mut ox = 0;
        while ox < w {
            ox += if ox >= 3 && ox + PIXELS + 3 <= w {
                depthwise_interior(dw, x, (h, w), (b, oy), ky, ox, c0, o);
                PIXELS
            } else {
                depthwise_lane(dw, x, (h, w), (b, oy), ky, (ox, kx(ox)), c0, o);
                1
            };
        }
    }
    // The channels past the last whole lane.
    for ox in 0..w {
        let (kx0, kx1) = kx(ox);
        for ch in whole..c {
            let mut acc = dw.bias[ch];
            for ky in ky.0..ky.1 {
                for kx in kx0..kx1 {
                    let v = x[((b * h + oy + ky - 3) * w + ox + kx - 3) * c + ch];
                    acc = v.mul_add(dw.taps[(ky * 7 + kx) * c + ch], acc);
                }
            }
            o[ox * c + ch] = acc;
        }
    }
    for px in o.chunks_exact_mut(c) {
        norm.row_in_place(px);
    }
}

/// Output pixels at once in [`depthwise_row_body`].
const PIXELS: usize = 4;

/// Channels `c0..c0 + L` of output pixel `ox` of image `b`'s row `oy` into the row `out`,
/// summing kernel rows `ky` and columns `kx` (those inside the image): the bias, then the taps
/// row by row. The accumulator stays in a register over the taps.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn depthwise_lane(
    dw: &Depthwise,
    x: &[f32],
    (h, w): (usize, usize),
    (b, oy): (usize, usize),
    (ky0, ky1): (usize, usize),
    (ox, (kx0, kx1)): (usize, (usize, usize)),
    c0: usize,
    out: &mut [f32],
) {
    let c = dw.bias.len();
    let mut acc: Lane = dw.bias[c0..c0 + L].try_into().expect("a lane");
    for ky in ky0..ky1 {
        for kx in kx0..kx1 {
            let tv: &Lane = dw.taps[(ky * 7 + kx) * c + c0..][..L].try_into().expect("a lane");
            let at = ((b * h + oy + ky - 3) * w + ox + kx - 3) * c + c0;
            let xv: &Lane = x[at..][..L].try_into().expect("a lane");
            for l in 0..L {
                acc[l] = xv[l].mul_add(tv[l], acc[l]);
            }
        }
    }
    out[ox * c + c0..][..L].copy_from_slice(&acc);
}

/// [`depthwise_lane`] for `PIXELS` pixels whose 7 kernel columns are all inside the image: a
/// kernel row's `PIXELS + 6` input pixels are loaded once for all 7 taps and the pixels, and the
/// loops have constant bounds, so they unroll into registers. The sums are in the same order.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn depthwise_interior(
    dw: &Depthwise,
    x: &[f32],
    (h, w): (usize, usize),
    (b, oy): (usize, usize),
    (ky0, ky1): (usize, usize),
    ox: usize,
    c0: usize,
    out: &mut [f32],
) {
    let c = dw.bias.len();
    let bias: Lane = dw.bias[c0..c0 + L].try_into().expect("a lane");
    let mut acc = [bias; PIXELS];
    for ky in ky0..ky1 {
        let first = ((b * h + oy + ky - 3) * w + ox - 3) * c + c0;
        let xs: [Lane; PIXELS + 6] =
            std::array::from_fn(|j| x[first + j * c..][..L].try_into().expect("a lane"));
        let taps = &dw.taps[ky * 7 * c + c0..];
        for kx in 0..7 {
            let tv: Lane = taps[kx * c..][..L].try_into().expect("a lane");
            for (p, acc) in acc.iter_mut().enumerate() {
                for l in 0..L {
                    acc[l] = xs[p + kx][l].mul_add(tv[l], acc[l]);
                }
            }
        }
    }
    for (p, acc) in acc.iter().enumerate() {
        out[(ox + p) * c + c0..][..L].copy_from_slice(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gelu_f64(x: f64) -> f64 {
        0.5 * x * erfc_f64(-x / std::f64::consts::SQRT_2)
    }

    /// erfc in f64: the Taylor series of erf for |z| < 2, the continued fraction beyond.
    fn erfc_f64(z: f64) -> f64 {
        if z.abs() < 2.0 {
            let mut term = z;
            let mut sum = z;
            for n in 1..200 {
                term *= -z * z / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            1.0 - sum * 2.0 / std::f64::consts::PI.sqrt()
        } else if z > 0.0 {
            // erfc(z) = exp(−z²)/√π · 1/(z + (1/2)/(z + (2/2)/(z + (3/2)/(z + ...)))).
            let mut f = z;
            for k in (1..200).rev() {
                f = z + (k as f64 / 2.0) / f;
            }
            (-z * z).exp() / std::f64::consts::PI.sqrt() / f
        } else {
            2.0 - erfc_f64(-z)
        }
    }

    #[test]
    fn exp_is_accurate_to_a_few_ulp() {
        let mut x = -87.0f32;
        while x <= 0.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!((got - want).abs() <= 2.5e-7 * want, "exp({x}) = {got}, want {want}");
            x += 0.0137;
        }
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn gelu_is_the_exact_one() {
        // Relative error: 1e-6 from −2 up; in the negative tail, where the value is below
        // 0.03·|x| and f32's rounding of z² dominates, 5e-6 down to −5 and 3e-5 beyond.
        let mut x = -12.0f32;
        while x <= 12.0 {
            let want = gelu_f64(x as f64);
            let got = gelu(x) as f64;
            let rel = if x >= -2.0 {
                1e-6
            } else if x >= -5.0 {
                5e-6
            } else {
                3e-5
            };
            assert!((got - want).abs() <= rel * want.abs(), "gelu({x}) = {got}, want {want}");
            x += 0.000_731;
        }
        assert_eq!(gelu(0.0), 0.0);
        assert_eq!(gelu(-100.0), 0.0);
        assert_eq!(gelu(100.0), 100.0);
    }

    #[test]
    fn block_forms_give_the_scalar_bits() {
        let x: [f32; BLOCK] = std::array::from_fn(|i| (i as f32 - 15.5) * 0.61);
        let (g, e) = (gelu_block(x), exp_block(x.map(|v| -v.abs() * 3.0)));
        for i in 0..BLOCK {
            assert_eq!(g[i].to_bits(), gelu(x[i]).to_bits(), "gelu({})", x[i]);
            assert_eq!(e[i].to_bits(), exp(-x[i].abs() * 3.0).to_bits(), "exp");
        }
        // Through the vectorized entry point, with a remainder past the last block.
        let bias: Vec<f32> = (0..BLOCK + 7).map(|i| i as f32 * 0.03 - 0.4).collect();
        let mut v: Vec<f32> = (0..BLOCK + 7).map(|i| (i as f32 - 20.0) * 0.37).collect();
        let want: Vec<u32> = v.iter().zip(&bias).map(|(v, b)| gelu(v + b).to_bits()).collect();
        gelu_biased(&mut v, &bias);
        assert_eq!(v.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
    }

    #[test]
    fn layer_norm_rows() {
        let norm =
            Norm { gamma: vec![1.0, 2.0, 0.5, -1.0, 1.5], beta: vec![0.0, 0.1, -0.2, 0.3, 0.0], eps: 1e-6 };
        let x: Vec<f32> = (0..35).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7).collect();
        let mut out = vec![0f32; 35];
        norm.rows(&x, &mut out);
        for (xr, or) in x.chunks(5).zip(out.chunks(5)) {
            let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / 5.0;
            let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 5.0;
            for i in 0..5 {
                let want =
                    (xr[i] as f64 - mean) / (var + 1e-6).sqrt() * norm.gamma[i] as f64 + norm.beta[i] as f64;
                assert!((or[i] as f64 - want).abs() < 1e-6, "{} vs {want}", or[i]);
            }
        }
    }

    #[test]
    fn linear_tiles_and_epilogues() {
        // More rows and columns than one tile, and odd sizes.
        let (rows, d_in, d_out) = (300, 7, 261);
        let w: Vec<f32> = (0..d_in * d_out).map(|i| ((i * 7919 % 103) as f32 - 51.0) / 64.0).collect();
        let b: Vec<f32> = (0..d_out).map(|i| (i % 5) as f32 * 0.25 - 0.5).collect();
        let x: Vec<f32> = (0..rows * d_in).map(|i| ((i * 104_729 % 89) as f32 - 44.0) / 32.0).collect();
        let lin = Linear::new(w.clone(), b.clone(), d_in, d_out);
        let want = |r: usize, o: usize| {
            b[o] as f64 + (0..d_in).map(|i| x[r * d_in + i] as f64 * w[i * d_out + o] as f64).sum::<f64>()
        };
        let mut out = vec![0f32; rows * d_out];
        lin.forward(&x, &mut out, Then::Nothing);
        let mut gel = vec![0f32; rows * d_out];
        lin.forward(&x, &mut gel, Then::Gelu);
        let mut acc: Vec<f32> = (0..rows * d_out).map(|i| (i % 3) as f32).collect();
        let mut scratch = vec![0f32; rows * d_out];
        lin.forward(&x, &mut scratch, Then::AddInto(SyncPtr(acc.as_mut_ptr())));
        for r in 0..rows {
            for o in 0..d_out {
                let (i, v) = (r * d_out + o, want(r, o));
                assert!((out[i] as f64 - v).abs() < 1e-5, "{r},{o}: {} vs {v}", out[i]);
                assert!((gel[i] as f64 - gelu_f64(v)).abs() < 1e-5, "gelu {r},{o}");
                assert!((acc[i] as f64 - (v + (i % 3) as f64)).abs() < 1e-5, "add {r},{o}");
            }
        }
    }

    #[test]
    fn fused_mlp_gives_the_bits_of_its_two_layers() {
        // More than one block of rows, the last one partial.
        let (rows, c, h) = (FUSED_ROWS + 45, 24, 100);
        let vals = |n: usize, m: usize| -> Vec<f32> {
            (0..n).map(|i| ((i * m % 97) as f32 - 48.0) / 50.0).collect()
        };
        let fc1 = Linear::new(vals(c * h, 7919), vals(h, 31), c, h);
        let fc2 = Linear::new(vals(h * c, 104_729), vals(c, 17), h, c);
        let x = vals(rows * c, 13);
        let start = vals(rows * c, 29);
        let (mut want, mut hidden, mut scratch) = (start.clone(), vec![0f32; rows * h], vec![0f32; rows * c]);
        fc1.forward(&x, &mut hidden, Then::Gelu);
        fc2.forward(&hidden, &mut scratch, Then::AddInto(SyncPtr(want.as_mut_ptr())));
        let mut got = start.clone();
        fc1.gelu_into(&fc2, &x, &mut got);
        assert!(got != start);
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn interior_pixels_give_the_one_pixel_bits() {
        let (h, w, c) = (7, 11, 2 * L);
        let x: Vec<f32> = (0..h * w * c).map(|i| ((i * 7919 % 101) as f32 - 50.0) / 40.0).collect();
        let wt: Vec<f32> = (0..c * 49).map(|i| ((i * 104_729 % 97) as f32 - 48.0) / 60.0).collect();
        let bias: Vec<f32> = (0..c).map(|i| i as f32 * 0.01).collect();
        let dw = Depthwise::new(&wt, &bias);
        let (mut grouped, mut single) = (vec![0f32; w * c], vec![0f32; w * c]);
        for c0 in (0..c).step_by(L) {
            depthwise_interior(&dw, &x, (h, w), (0, 3), (0, 7), 3, c0, &mut grouped);
            for ox in 3..3 + PIXELS {
                depthwise_lane(&dw, &x, (h, w), (0, 3), (0, 7), (ox, (0, 7)), c0, &mut single);
            }
        }
        let bits = |v: &[f32]| v[3 * c..(3 + PIXELS) * c].iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&grouped), bits(&single));
        assert!(grouped[3 * c..(3 + PIXELS) * c].iter().all(|&v| v != 0.0));
    }

    #[test]
    fn depthwise_matches_a_direct_sum() {
        let (n, h, w, c) = (2, 5, 19, 19);
        let x: Vec<f32> = (0..n * h * w * c).map(|i| ((i * 7919 % 101) as f32 - 50.0) / 40.0).collect();
        let wt: Vec<f32> = (0..c * 49).map(|i| ((i * 104_729 % 97) as f32 - 48.0) / 60.0).collect();
        let bias: Vec<f32> = (0..c).map(|i| i as f32 * 0.01).collect();
        let dw = Depthwise::new(&wt, &bias);
        let norm = Norm { gamma: vec![1.0; c], beta: vec![0.0; c], eps: 1e-6 };
        let mut out = vec![0f32; x.len()];
        dw.forward_norm(&x, (h, w), &mut out, &norm);
        for b in 0..n {
            for oy in 0..h {
                for ox in 0..w {
                    let px: Vec<f64> = (0..c)
                        .map(|ch| {
                            let mut s = bias[ch] as f64;
                            for ky in 0..7 {
                                for kx in 0..7 {
                                    let (iy, ix) = (oy as isize + ky - 3, ox as isize + kx - 3);
                                    if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                                        let v = x[((b * h + iy as usize) * w + ix as usize) * c + ch];
                                        s += v as f64 * wt[ch * 49 + (ky * 7 + kx) as usize] as f64;
                                    }
                                }
                            }
                            s
                        })
                        .collect();
                    let mean = px.iter().sum::<f64>() / c as f64;
                    let var = px.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
                    for ch in 0..c {
                        let want = (px[ch] - mean) / (var + 1e-6).sqrt();
                        let got = out[((b * h + oy) * w + ox) * c + ch] as f64;
                        assert!((got - want).abs() < 1e-4, "{b},{oy},{ox},{ch}: {got} vs {want}");
                    }
                }
            }
        }
    }
}
