//! The vision transformer on the CPU path: tokens are rows (`[N·T, D]`), the patch embedding is
//! the im2col convolution, and every linear layer a tiled product on packed weights with its
//! bias, GELU or residual applied per block of rows. Attention runs per (image, head) on one
//! thread, on the same packed products: `kᵀ` and `v` are packed from the `in_proj` output (q is
//! read where it is), scores `q·kᵀ/√d` with each row's softmax as soon as the row is final, then
//! the weighted values written into that head's columns. So every product of the network is one
//! FMA chain per output, whatever the CPU's vector width.

use rayon::prelude::*;

use super::ops::{Linear, Norm, Then, exp, lane_sum};
use super::packed::Packed;
use super::{Act, Conv, Dense, Pool, SyncPtr, fit};

pub struct Layer {
    pub ln_1: Norm,
    /// `[D, 3D]`: q, k and v, each `heads` blocks of `D / heads` columns.
    pub in_proj: Linear,
    pub out_proj: Linear,
    pub ln_2: Norm,
    pub mlp_0: Linear,
    pub mlp_3: Linear,
    pub heads: usize,
}

pub struct Vit {
    pub patch: Conv,
    /// `[D]`.
    pub class_token: Vec<f32>,
    /// `[T, D]`, T = patches + 1.
    pub pos_embedding: Vec<f32>,
    pub layers: Vec<Layer>,
    pub ln: Norm,
    pub head: Dense,
    /// The pass's buffers, kept for the next.
    pub pool: Pool,
}

impl Vit {
    /// The class token after the encoder and its LayerNorm, `[N, D]`.
    pub fn features(&self, x: &Act) -> Vec<f32> {
        // Buffers of earlier passes, so that a warm pass touches no fresh pages.
        let mut spare = self.pool.take();
        let p = self.patch.forward_in(x, None, false, &mut spare);
        let (n, d) = (p.n, p.c);
        let t = p.h * p.w + 1;
        assert_eq!(self.pos_embedding.len(), t * d, "position embeddings for {t} tokens");
        let rows = n * t;
        // The class token, then the patches in row-major order (torch's flatten(2)), plus the
        // position embeddings.
        let mut xs = fit(&mut spare, rows * d);
        xs.par_chunks_mut(t * d).enumerate().for_each(|(b, img)| {
            img[..d].copy_from_slice(&self.class_token);
            img[d..].copy_from_slice(&p.data[b * (t - 1) * d..(b + 1) * (t - 1) * d]);
            for (v, e) in img.iter_mut().zip(&self.pos_embedding) {
                *v += e;
            }
        });
        spare.push(p.data);
        let mlp = self.layers.iter().map(|l| l.mlp_0.d_out).max().unwrap_or(0);
        // Every value of these is written before it is read.
        let mut y = fit(&mut spare, rows * d);
        let mut qkv = fit(&mut spare, rows * 3 * d);
        let mut att = fit(&mut spare, rows * d);
        let mut hidden = fit(&mut spare, rows * mlp);
        for layer in &self.layers {
            layer.ln_1.rows(&xs, &mut y);
            layer.in_proj.forward(&y, &mut qkv, Then::Nothing);
            attention(&qkv, &mut att, n, t, d, layer.heads);
            layer.out_proj.forward(&att, &mut y, Then::AddInto(SyncPtr(xs.as_mut_ptr())));
            layer.ln_2.rows(&xs, &mut y);
            layer.mlp_0.forward(&y, &mut hidden, Then::Gelu);
            let hid = &hidden[..rows * layer.mlp_0.d_out];
            layer.mlp_3.forward(hid, &mut y, Then::AddInto(SyncPtr(xs.as_mut_ptr())));
        }
        let mut out = vec![0f32; n * d];
        for (b, o) in out.chunks_exact_mut(d).enumerate() {
            self.ln.row(&xs[b * t * d..(b * t + 1) * d], o);
        }
        spare.extend([xs, y, qkv, att, hidden]);
        self.pool.keep(spare);
        out
    }

    pub fn head(&self, features: &[f32]) -> Vec<Vec<f32>> {
        self.head.forward(features)
    }
}

/// One (image, head)'s scratch: scores (`t × t`), row sums, and the packed `kᵀ` and `v`.
struct Head {
    scores: Vec<f32>,
    sums: Vec<f32>,
    kt: Packed,
    vs: Packed,
}

thread_local! {
    /// [`attention`]'s scratch, kept between tasks, layers and passes (no fresh pages each time).
    static HEAD: std::cell::RefCell<Option<Head>> = const { std::cell::RefCell::new(None) };
}

/// Multi-head self-attention of `qkv` (`[N·T, 3D]`) into `out` (`[N·T, D]`).
fn attention(qkv: &[f32], out: &mut [f32], n: usize, t: usize, d: usize, heads: usize) {
    let hd = d / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let dst = SyncPtr(out.as_mut_ptr());
    (0..n * heads).into_par_iter().for_each(|task| {
        let mut own = HEAD.take().unwrap_or_else(|| Head {
            scores: Vec::new(),
            sums: Vec::new(),
            kt: Packed::empty(),
            vs: Packed::empty(),
        });
        let Head { scores, sums, kt, vs } = &mut own;
        scores.resize(t * t, 0.0);
        sums.resize(t, 0.0);
        let (b, h) = (task / heads, task % heads);
        let base = b * t * 3 * d + h * hd;
        // q, k and v of image `b`, head `h`: `t` rows of stride 3D inside `qkv`.
        let (k, v) = (&qkv[base + d..], &qkv[base + 2 * d..]);
        kt.fill(hd, t, k, 1, 3 * d);
        vs.fill(t, hd, v, 3 * d, 1);
        // SAFETY: q is `t` rows of `hd` at stride 3D inside `qkv`, `scores` is `t × t`; the
        // output block (image `b`'s rows, head `h`'s columns) belongs to this task only.
        unsafe {
            // scores (t × t) = scale · q (t × hd) · kᵀ (hd × t), each row's softmax (not yet
            // divided by its sum) as soon as the row is final.
            kt.product(t, qkv.as_ptr().add(base), 3 * d, scores.as_mut_ptr(), t, 0..t, |r, row| {
                row.iter_mut().for_each(|v| *v *= scale);
                sums[r] = softmax_unnormalised(row);
            });
            let o = dst.get().add(b * t * d + h * hd);
            vs.product(t, scores.as_ptr(), t, o, d, 0..hd, |r, row| {
                let inv = 1.0 / sums[r];
                row.iter_mut().for_each(|v| *v *= inv);
            });
        }
        HEAD.set(Some(own));
    });
}

vectorized! {
    /// `exp(x − max)` in place; returns the sum (in `L` lanes, then the lanes in order).
    fn softmax_unnormalised(row: &mut [f32]) -> f32 = softmax_unnormalised_body;
}

#[inline(always)]
fn softmax_unnormalised_body(row: &mut [f32]) -> f32 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    row.iter_mut().for_each(|v| *v = exp(*v - max));
    lane_sum(row)
}
