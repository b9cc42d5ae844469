//! Fused CPU kernels for inference in f32, used by the decoder where candle's generic ops would
//! allocate large intermediates or run single-threaded: attention (block-wise with an online
//! softmax, masks applied as rules), the masked softmax, `silu(g) * u`, and per-row NLL from
//! logits. Matrix products inside go through `gemm`, the crate candle itself uses.

use candle_core::Tensor;

use crate::LlmError;

type Result<T> = std::result::Result<T, LlmError>;

/// The slice of a contiguous f32 CPU tensor.
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let n = t.elem_count();
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        return Err(LlmError::Device("a fused CPU kernel got a non-CPU tensor".into()));
    };
    let start = layout.start_offset();
    f(&cpu.as_slice::<f32>()?[start..start + n])
}

/// The mask rules of one attention call: queries are positions `q_offset..q_offset + T` (keys
/// `0..S`); a query sees keys at or before itself, within `window`, and not padded (`key_mask`),
/// and always itself.
#[derive(Clone, Copy)]
pub(crate) struct MaskRules<'a> {
    pub q_offset: usize,
    pub window: Option<usize>,
    pub key_mask: Option<&'a [Vec<u8>]>,
}

const QB: usize = 64;
const KB: usize = 256;

/// Attention for `q` `[B, H, T, D]`, `k` and `v` `[B, KV, S, D]` (H a multiple of KV; query head
/// `h` uses key/value head `h / (H / KV)`), scores scaled by `scale` and soft-capped by `softcap`,
/// masked by `rules`. Returns `[B, T, H * D]`. Query blocks run in parallel; each walks the key
/// blocks its queries may see with an online softmax, so no `T × S` matrix exists.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f32,
    softcap: Option<f32>,
    rules: MaskRules<'_>,
) -> Result<Tensor> {
    use rayon::prelude::*;
    let (b, h, t, d) = q.dims4()?;
    let (_, kv, s, _) = k.dims4()?;
    let rep = h / kv;
    let blocks = t.div_ceil(QB);
    let out = with_slice(q, |qd| {
        with_slice(k, |kd| {
            with_slice(v, |vd| {
                let tiles: Vec<(usize, usize, usize, Vec<f32>)> = (0..b * h * blocks)
                    .into_par_iter()
                    .map(|task| {
                        let (bh, blk) = (task / blocks, task % blocks);
                        let (bi, hi) = (bh / h, bh % h);
                        let q0 = blk * QB;
                        let rows = QB.min(t - q0);
                        let qm = &qd[((bi * h + hi) * t + q0) * d..][..rows * d];
                        let kvh = (bi * kv + hi / rep) * s * d;
                        let (km, vm) = (&kd[kvh..kvh + s * d], &vd[kvh..kvh + s * d]);
                        let acc = attend_block(qm, km, vm, rows, s, d, scale, softcap, rules, bi, q0);
                        (bi, hi, q0, acc)
                    })
                    .collect();
                let mut out = vec![0f32; b * t * h * d];
                for (bi, hi, q0, acc) in tiles {
                    for (r, row) in acc.chunks_exact(d).enumerate() {
                        let at = ((bi * t + q0 + r) * h + hi) * d;
                        out[at..at + d].copy_from_slice(row);
                    }
                }
                Ok(out)
            })
        })
    })?;
    Ok(Tensor::from_vec(out, (b, t, h * d), q.device())?)
}

/// One query block against the keys it may see: `rows` queries (`q`, row-major `rows × d`)
/// starting at query index `q0`; `k`, `v` are `s × d`. Returns the normalized outputs `rows × d`.
#[allow(clippy::too_many_arguments)]
fn attend_block(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rows: usize,
    s: usize,
    d: usize,
    scale: f32,
    softcap: Option<f32>,
    rules: MaskRules<'_>,
    batch: usize,
    q0: usize,
) -> Vec<f32> {
    let first_q = rules.q_offset + q0;
    let last_q = first_q + rows - 1;
    let k_end = (last_q + 1).min(s);
    let k_start = rules.window.map_or(0, |w| (first_q + 1).saturating_sub(w));
    let mut acc = vec![0f32; rows * d];
    let mut m = vec![f32::NEG_INFINITY; rows];
    let mut l = vec![0f32; rows];
    let mut sc = vec![0f32; rows * KB];
    let mut j0 = k_start;
    while j0 < k_end {
        let cols = KB.min(k_end - j0);
        // sc[rows × cols] = q · k[j0..j0+cols]^T
        // SAFETY: every pointer and stride addresses memory inside the slices above.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                d,
                sc.as_mut_ptr(),
                1,
                cols as isize,
                false,
                q.as_ptr(),
                1,
                d as isize,
                k[j0 * d..].as_ptr(),
                d as isize,
                1,
                0.0,
                scale,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for i in 0..rows {
            let qpos = first_q + i;
            let row = &mut sc[i * cols..(i + 1) * cols];
            // Causality and the window allow one contiguous run of this block's keys.
            let lo = rules.window.map_or(0, |w| (qpos + 1).saturating_sub(w)).max(j0) - j0;
            let hi = ((qpos + 1).min(j0 + cols)).saturating_sub(j0);
            if lo >= hi {
                row.fill(0.0);
                continue;
            }
            row[..lo].fill(0.0);
            row[hi..].fill(0.0);
            let run = &mut row[lo..hi];
            if let Some(cap) = softcap {
                run.iter_mut().for_each(|x| *x = (*x / cap).tanh() * cap);
            }
            if let Some(km) = rules.key_mask {
                for (c, x) in run.iter_mut().enumerate() {
                    let j = j0 + lo + c;
                    if km[batch][j] == 0 && j != qpos {
                        *x = f32::NEG_INFINITY;
                    }
                }
            }
            let bmax = max_of(run);
            if bmax == f32::NEG_INFINITY {
                run.fill(0.0);
                continue;
            }
            let m_new = m[i].max(bmax);
            let sum = exp_shift_sum(run, m_new);
            if rules.key_mask.is_some() {
                run.iter_mut().for_each(|x| {
                    if *x < f32::MIN_POSITIVE {
                        *x = 0.0;
                    }
                });
            }
            let correction = if m[i] == f32::NEG_INFINITY { 0.0 } else { exp_approx(m[i] - m_new) };
            l[i] = l[i] * correction + sum;
            m[i] = m_new;
            if correction != 1.0 {
                acc[i * d..(i + 1) * d].iter_mut().for_each(|a| *a *= correction);
            }
        }
        // acc[rows × d] += p[rows × cols] · v[j0..j0+cols]
        // SAFETY: as above.
        unsafe {
            gemm::gemm(
                rows,
                d,
                cols,
                acc.as_mut_ptr(),
                1,
                d as isize,
                true,
                sc.as_ptr(),
                1,
                cols as isize,
                v[j0 * d..].as_ptr(),
                1,
                d as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        j0 += cols;
    }
    for i in 0..rows {
        let inv = if l[i] > 0.0 { 1.0 / l[i] } else { 0.0 };
        acc[i * d..(i + 1) * d].iter_mut().for_each(|a| *a *= inv);
    }
    acc
}

/// Elements of one logits chunk: small enough that the allocator reuses the buffer instead of
/// mapping fresh pages for every chunk.
pub(crate) const LOGITS_BUDGET: usize = 1 << 22;

/// `-log_softmax(logits)[i, target[i]]` for each row, on the CPU, rows in parallel: one pass for
/// the maximum, one for the sum of exponentials (a vectorizable exp, relative error < 2e-7).
pub(crate) fn nll(logits: &Tensor, targets: &[u32]) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    let v = logits.dim(1)?;
    with_slice(logits, |data| {
        Ok(data
            .par_chunks(v)
            .zip(targets.par_iter())
            .map(|(row, &t)| {
                let max = max_of(row);
                let picked = row.get(t as usize).copied().unwrap_or(max);
                max + exp_sum(row, max).ln() - picked
            })
            .collect())
    })
}

/// `silu(g) * u` elementwise on the CPU (f32), in parallel, with [`exp_approx`].
pub(crate) fn silu_mul(g: &Tensor, u: &Tensor) -> Result<Tensor> {
    use rayon::prelude::*;
    let out = with_slice(g, |gd| {
        with_slice(u, |ud| {
            let mut out = vec![0f32; gd.len()];
            out.par_chunks_mut(4096).zip(gd.par_chunks(4096).zip(ud.par_chunks(4096))).for_each(
                |(o, (gg, uu))| {
                    for ((o, &x), &y) in o.iter_mut().zip(gg).zip(uu) {
                        // silu(x) = x / (1 + e^-x); exp_approx takes x <= 0, so use e^-|x| and symmetry.
                        let e = exp_approx(-x.abs());
                        let sig = if x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
                        *o = x * sig * y;
                    }
                },
            );
            Ok(out)
        })
    })?;
    Ok(Tensor::from_vec(out, g.shape().clone(), g.device())?)
}

/// The maximum of `xs` (8 lanes, so it vectorizes).
fn max_of(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            lanes[k] = if c[k] > lanes[k] { c[k] } else { lanes[k] };
        }
    }
    let mut m = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    for l in lanes {
        m = if l > m { l } else { m };
    }
    m
}

/// The sum of `exp(x - shift)` over `xs` (8 lanes).
fn exp_sum(xs: &[f32], shift: f32) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for k in 0..8 {
            lanes[k] += exp_approx(c[k] - shift);
        }
    }
    let rest: f32 = chunks.remainder().iter().map(|&x| exp_approx(x - shift)).sum();
    rest + lanes.iter().sum::<f32>()
}

/// Replaces each `x` by `exp(x - shift)` and returns their sum (8 lanes).
fn exp_shift_sum(xs: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = xs.chunks_exact_mut(8);
    for c in &mut chunks {
        for k in 0..8 {
            c[k] = exp_approx(c[k] - shift);
            lanes[k] += c[k];
        }
    }
    let mut sum: f32 = 0.0;
    for x in chunks.into_remainder() {
        *x = exp_approx(*x - shift);
        sum += *x;
    }
    sum + lanes.iter().sum::<f32>()
}

/// `exp(x)` for `x <= 0` (arguments below -87 give ~0): range reduction by ln 2 with rounding
/// through the 1.5·2^23 trick, a degree-7 Taylor polynomial, and the exponent set by bits. Plain
/// arithmetic only, so the compiler vectorizes it.
#[inline(always)]
pub(crate) fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    let scale = f32::from_bits(((k as i32 + 127) as u32) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_approx_is_accurate_over_the_range_used() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let want = (x as f64).exp();
            let got = super::exp_approx(x) as f64;
            worst = worst.max((got - want).abs() / want);
            x += 0.001_37;
        }
        assert!(worst < 2e-7, "worst relative error {worst:e}");
    }
}
