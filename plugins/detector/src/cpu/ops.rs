//! The pieces ConvNeXt and the vision transformer are made of, on rows of channels (NHWC pixels
//! or tokens): linear layers as tiled matrix products with their epilogue applied while a tile
//! is in cache, LayerNorm, exact GELU, the 7×7 depthwise convolution, and `exp`.

use rayon::prelude::*;

use super::{L, Lane, SyncPtr, matmul, simd};

/// `fn name(args) = body;` defines `name` to run `body` (an `#[inline(always)]` function)
/// compiled for AVX-512, AVX2 or the baseline, whichever the CPU has. Unlike [`simd`] with a
/// closure, the body is sure to be inlined into the wide versions, so its loops vectorize.
macro_rules! vectorized {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),*) = $body:path;) => {
        $(#[$m])*
        fn $name($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($a: $t),*) {
                    $body($($a),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($a: $t),*) {
                    $body($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($a),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { avx2($($a),*) };
                }
            }
            $body($($a),*)
        }
    };
}

/// Output tiles of a linear layer: this many rows by this many columns (fewer at the edges).
/// Fixed sizes, so the work split never depends on the thread count.
const TILE_ROWS: usize = 256;
const TILE_COLS: usize = 256;

/// A linear layer: `[d_in, d_out]` weight (PyTorch's `[out, in]` transposed) and bias.
pub struct Linear {
    pub d_in: usize,
    pub d_out: usize,
    w: Vec<f32>,
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
        Linear { d_in, d_out, w, bias }
    }

    /// Output channel `o` multiplied by `scale[o]`, weight and bias (a layer scale folded in,
    /// in f64).
    pub fn scaled(mut self, scale: &[f32]) -> Linear {
        assert_eq!(scale.len(), self.d_out, "layer scale size");
        for row in self.w.chunks_exact_mut(self.d_out) {
            for (w, &s) in row.iter_mut().zip(scale) {
                *w = (*w as f64 * s as f64) as f32;
            }
        }
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
            // SAFETY: the tile's rows of `x`, its columns of W, and its own block of `out`
            // (tiles do not overlap).
            unsafe {
                let d = dst.get().add(r0 * n + c0);
                matmul(nr, nc, k, d, n, x.as_ptr().add(r0 * k), k, (self.w.as_ptr().add(c0), n, 1), 1.0);
                for r in 0..nr {
                    let seg = std::slice::from_raw_parts_mut(d.add(r * n), nc);
                    let bias = &self.bias[c0..c0 + nc];
                    match then {
                        Then::Nothing => add_bias(seg, bias),
                        Then::Gelu => gelu_biased(seg, bias),
                        Then::AddInto(acc) => add_into(
                            std::slice::from_raw_parts_mut(acc.get().add((r0 + r) * n + c0), nc),
                            seg,
                            bias,
                        ),
                    }
                }
            }
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
        out[..x.len()].par_chunks_mut(piece).zip(x.par_chunks(piece)).for_each(|(o, x)| {
            simd(|| o.chunks_exact_mut(c).zip(x.chunks_exact(c)).for_each(|(o, x)| self.row(x, o)))
        });
    }

    /// Every row of `x`, in place.
    pub fn rows_in_place(&self, x: &mut [f32]) {
        let c = self.gamma.len();
        let piece = (16_384 / c).max(1) * c;
        x.par_chunks_mut(piece)
            .for_each(|p| simd(|| p.chunks_exact_mut(c).for_each(|row| self.row_in_place(row))));
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
    for (v, b) in v.iter_mut().zip(bias) {
        *v = gelu(*v + b);
    }
}

/// `x·Φ(x) = ½·x·erfc(−x/√2)`. erfc of `|z|` by Numerical Recipes' Chebyshev fit
/// (`t·exp(−z² + P(t))`, `t = 1/(1 + z/2)`, relative error below 1.2e-7 for every `z`), then
/// `erfc(−|z|) = 2 − erfc(|z|)`: no cancellation in the negative tail, where `1 + erf` would lose
/// every digit. Plain arithmetic and a select, so it vectorizes.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    // Horner's rule written out: a loop here would keep the caller's loop from vectorizing.
    let p = 0.170_872_76f32;
    let p = p * t - 0.822_152_26;
    let p = p * t + 1.488_515_9;
    let p = p * t - 1.135_204;
    let p = p * t + 0.278_868_08;
    let p = p * t - 0.186_288_06;
    let p = p * t + 0.096_784_18;
    let p = p * t + 0.374_091_95;
    let p = p * t + 1.000_023_7;
    let p = p * t - 1.265_512_2;
    let e = t * exp(p - z * z);
    0.5 * x * if x > 0.0 { 2.0 - e } else { e }
}

/// `exp(x)` for `x ≤ 0` (0 below −87, where f32 would be subnormal):
/// `2^n · e^r` with `n = round(x / ln 2)`, `r` reduced in two parts of ln 2, and Cephes' degree-5
/// minimax polynomial for `e^r − 1 − r` (relative error below 1e-7). Plain arithmetic only.
#[inline(always)]
pub fn exp(arg: f32) -> f32 {
    let x = arg.clamp(-87.0, 0.0);
    // Rounding to the nearest integer by adding 1.5·2^23: `n` in the low mantissa bits.
    let shifted = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let n = shifted - 12_582_912.0;
    let r = (x - n * 0.693_359_4) + n * 2.121_944_4e-4;
    let p = 1.987_569_1e-4f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_66;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^n from n's bits (integer arithmetic only, no float-to-int conversion).
    let exponent = (shifted.to_bits() as i32 - 0x4B40_0000 + 127) as u32;
    let v = e * f32::from_bits(exponent << 23);
    if arg < -87.0 { 0.0 } else { v }
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
    let (ky0, ky1) = (3usize.saturating_sub(oy), (h + 3 - oy).min(7));
    for ox in 0..w {
        let (kx0, kx1) = (3usize.saturating_sub(ox), (w + 3 - ox).min(7));
        let px = &mut o[ox * c..(ox + 1) * c];
        let mut c0 = 0;
        // Whole lanes: the accumulator stays in registers over the 49 taps.
        while c0 + L <= c {
            let mut acc: Lane = dw.bias[c0..c0 + L].try_into().expect("a lane");
            for ky in ky0..ky1 {
                let iy = oy + ky - 3;
                for kx in kx0..kx1 {
                    let at = ((b * h + iy) * w + ox + kx - 3) * c + c0;
                    let xv: &Lane = x[at..at + L].try_into().expect("a lane");
                    let tv: &Lane = dw.taps[(ky * 7 + kx) * c + c0..][..L].try_into().expect("a lane");
                    for ((a, x), t) in acc.iter_mut().zip(xv).zip(tv) {
                        *a += x * t;
                    }
                }
            }
            px[c0..c0 + L].copy_from_slice(&acc);
            c0 += L;
        }
        // The channels past the last whole lane.
        for ch in c0..c {
            let mut acc = dw.bias[ch];
            for ky in ky0..ky1 {
                for kx in kx0..kx1 {
                    acc += x[((b * h + oy + ky - 3) * w + ox + kx - 3) * c + ch]
                        * dw.taps[(ky * 7 + kx) * c + ch];
                }
            }
            px[ch] = acc;
        }
        norm.row_in_place(px);
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
    fn depthwise_matches_a_direct_sum() {
        let (n, h, w, c) = (2, 5, 9, 19);
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
