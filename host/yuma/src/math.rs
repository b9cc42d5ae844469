//! The fixed-point helpers of subtensor's epoch (`pallets/subtensor/src/epoch/math.rs`),
//! reimplemented operation for operation on `substrate-fixed` so every result is the chain's bits.
//!
//! Conventions the chain follows, and these functions with it:
//! - division by zero (or an overflowing quotient) gives 0 (`safe_div`);
//! - products and sums saturate, except plain vector sums, which wrap like the runtime's release
//!   build (they never come near the range with normalized inputs);
//! - sparse rows are `(column, value)` lists in the order the chain keeps them.

use substrate_fixed::transcendental::exp;
use substrate_fixed::types::{I32F32, I64F64};

pub type Fx = I32F32;
pub type Fx64 = I64F64;
/// One `(column, value)` list per row.
pub type Sparse = Vec<Vec<(u16, Fx)>>;

pub fn zero() -> Fx {
    Fx::from_num(0)
}

pub fn one() -> Fx {
    Fx::from_num(1)
}

/// `safe_div`: 0 when the divisor is 0 or the quotient overflows.
pub fn div(a: Fx, b: Fx) -> Fx {
    a.checked_div(b).unwrap_or_default()
}

fn div64(a: Fx64, b: Fx64) -> Fx64 {
    a.checked_div(b).unwrap_or_default()
}

pub fn u16_max() -> Fx {
    Fx::saturating_from_num(u16::MAX)
}

/// `x / 65535` (kappa, bonds penalty, alpha bounds).
pub fn u16_proportion(x: u16) -> Fx {
    div(Fx::saturating_from_num(x), u16_max())
}

/// `x · 65535`, truncated to u16 (how the chain stores proportions).
pub fn proportion_to_u16(x: Fx) -> u16 {
    x.saturating_mul(u16_max()).saturating_to_num::<u16>()
}

pub fn sum(x: &[Fx]) -> Fx {
    x.iter().fold(zero(), |acc, v| acc.wrapping_add(*v))
}

fn sum64(x: &[Fx64]) -> Fx64 {
    x.iter().fold(Fx64::from_num(0), |acc, v| acc.wrapping_add(*v))
}

pub fn is_zero(x: &[Fx]) -> bool {
    sum(x) == zero()
}

/// Divide by the sum, unless the sum is 0.
pub fn normalize(x: &mut [Fx]) {
    let s = sum(x);
    normalize_using_sum(x, s);
}

pub fn normalize_using_sum(x: &mut [Fx], s: Fx) {
    if s == zero() {
        return;
    }
    for v in x.iter_mut() {
        *v = div(*v, s);
    }
}

pub fn normalize64(x: &mut [Fx64]) {
    let s = sum64(x);
    if s == Fx64::from_num(0) {
        return;
    }
    for v in x.iter_mut() {
        *v = div64(*v, s);
    }
}

/// Scale so the largest entry is 65535, rounding half away from zero (`vec_max_upscale_to_u16`).
pub fn max_upscale_to_u16(v: &[Fx]) -> Vec<u16> {
    let m = u16_max();
    let threshold = Fx::saturating_from_num(32768);
    let Some(&max) = v.iter().max() else { return Vec::new() };
    if max == zero() {
        return v.iter().map(|e| e.saturating_mul(m).saturating_to_num::<u16>()).collect();
    }
    if max > threshold {
        let scale = div(m, max);
        return v.iter().map(|e| e.saturating_mul(scale).round().saturating_to_num::<u16>()).collect();
    }
    v.iter().map(|e| div(e.saturating_mul(m), max).round().saturating_to_num::<u16>()).collect()
}

/// How `set_weights` stores a row of u16 values.
pub fn u16_max_upscale(values: &[u16]) -> Vec<u16> {
    max_upscale_to_u16(&values.iter().map(|&e| Fx::saturating_from_num(e)).collect::<Vec<_>>())
}

/// True for the k largest entries that are non-zero (ascending stable sort; the n-k first lose).
pub fn is_topk_nonzero(x: &[Fx], k: usize) -> Vec<bool> {
    let mut out: Vec<bool> = x.iter().map(|v| *v != zero()).collect();
    if x.len() < k {
        return out;
    }
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by_key(|&i| x[i]);
    for &i in idx.iter().take(x.len() - k) {
        out[i] = false;
    }
    out
}

/// Zero the entries whose mask is true (a missing mask entry masks).
pub fn mask_vector(mask: &[bool], x: &mut [Fx]) {
    if mask.is_empty() {
        return;
    }
    for (i, v) in x.iter_mut().enumerate() {
        if mask.get(i).copied().unwrap_or(true) {
            *v = zero();
        }
    }
}

pub fn mask_rows_sparse(mask: &[bool], m: &[Vec<(u16, Fx)>]) -> Sparse {
    m.iter()
        .enumerate()
        .map(|(i, row)| if mask.get(i).copied().unwrap_or(true) { Vec::new() } else { row.clone() })
        .collect()
}

/// Drop the diagonal; with `keep`, that one uid keeps its self-weight (the subnet owner).
pub fn mask_diag_sparse(m: &[Vec<(u16, Fx)>], keep: Option<u16>) -> Sparse {
    m.iter()
        .enumerate()
        .map(|(i, row)| row.iter().filter(|(j, _)| i != *j as usize || keep == Some(*j)).copied().collect())
        .collect()
}

/// Drop entry (i, j) when `drop(row_value[i], col_value[j])`; a missing value reads as 0.
pub fn mask_sparse_by(
    m: &[Vec<(u16, Fx)>],
    row_value: &[u64],
    col_value: &[u64],
    drop: impl Fn(u64, u64) -> bool,
) -> Sparse {
    m.iter()
        .enumerate()
        .map(|(i, row)| {
            let r = row_value.get(i).copied().unwrap_or(0);
            row.iter()
                .filter(|(j, _)| !drop(r, col_value.get(*j as usize).copied().unwrap_or(0)))
                .copied()
                .collect()
        })
        .collect()
}

pub fn row_normalize_sparse(m: &mut [Vec<(u16, Fx)>]) {
    for row in m.iter_mut() {
        let s = row.iter().fold(zero(), |a, (_, v)| a.wrapping_add(*v));
        if s > zero() {
            for (_, v) in row.iter_mut() {
                *v = div(*v, s);
            }
        }
    }
}

pub fn col_normalize_sparse(m: &mut [Vec<(u16, Fx)>], columns: usize) {
    let mut col = vec![zero(); columns];
    for row in m.iter() {
        for &(j, v) in row {
            if let Some(c) = col.get_mut(j as usize) {
                *c = c.saturating_add(v);
            }
        }
    }
    for row in m.iter_mut() {
        for (j, v) in row.iter_mut() {
            let d = col.get(*j as usize).copied().unwrap_or(zero());
            if d != zero() {
                *v = div(*v, d);
            }
        }
    }
}

pub fn col_max_upscale_sparse(m: &mut [Vec<(u16, Fx)>], columns: usize) {
    let mut col = vec![zero(); columns];
    for row in m.iter() {
        for &(j, v) in row {
            if let Some(c) = col.get_mut(j as usize)
                && *c < v
            {
                *c = v;
            }
        }
    }
    for row in m.iter_mut() {
        for (j, v) in row.iter_mut() {
            let d = col.get(*j as usize).copied().unwrap_or(zero());
            if d != zero() {
                *v = div(*v, d);
            }
        }
    }
}

pub fn row_sum_sparse(m: &[Vec<(u16, Fx)>]) -> Vec<Fx> {
    m.iter().map(|row| row.iter().fold(zero(), |a, (_, v)| a.wrapping_add(*v))).collect()
}

/// Stake-weighted median of `score` over the indices in `partition`: the chain's deterministic
/// mid-pivot search (pivot at `len/2`, ties excluded from both sides).
pub fn weighted_median(
    stake: &[Fx],
    score: &[Fx],
    partition: &[usize],
    minority: Fx,
    mut lo: Fx,
    mut hi: Fx,
) -> Fx {
    if stake.len() != score.len() {
        return zero();
    }
    let at = |v: &[Fx], i: usize| v.get(i).copied().unwrap_or(zero());
    let mut current = partition.to_vec();
    let limit = partition.len();
    let mut iterations = 0usize;
    loop {
        match current.len() {
            0 => return zero(),
            1 => return at(score, current[0]),
            _ => {}
        }
        let pivot = at(score, current[current.len() / 2]);
        let (mut lo_stake, mut hi_stake) = (zero(), zero());
        let (mut lower, mut upper) = (Vec::new(), Vec::new());
        for &i in &current {
            let s = at(score, i);
            if s == pivot {
                continue;
            }
            if s < pivot {
                lo_stake = lo_stake.saturating_add(at(stake, i));
                lower.push(i);
            } else {
                hi_stake = hi_stake.saturating_add(at(stake, i));
                upper.push(i);
            }
        }
        if minority < lo.saturating_add(lo_stake) && !lower.is_empty() {
            current = lower;
            hi = lo.saturating_add(lo_stake);
        } else if hi.saturating_sub(hi_stake) <= minority && !upper.is_empty() {
            current = upper;
            lo = hi.saturating_sub(hi_stake);
        } else {
            return pivot;
        }
        iterations += 1;
        if iterations > limit {
            return zero();
        }
    }
}

/// Per column, the median over the rows with positive stake (stake renormalized over them;
/// a row without an entry in the column counts 0). `majority` is kappa.
pub fn weighted_median_col_sparse(
    stake: &[Fx],
    score: &[Vec<(u16, Fx)>],
    columns: usize,
    majority: Fx,
) -> Vec<Fx> {
    let mut use_stake: Vec<Fx> = stake.iter().copied().filter(|s| *s > zero()).collect();
    normalize(&mut use_stake);
    let stake_sum = sum(&use_stake);
    let minority = stake_sum.saturating_sub(majority);
    let idx: Vec<usize> = (0..use_stake.len()).collect();
    let mut cols = vec![vec![zero(); use_stake.len()]; columns];
    let mut k = 0usize;
    for (&s, row) in stake.iter().zip(score) {
        if s > zero() {
            for &(c, v) in row {
                if let Some(cell) = cols.get_mut(c as usize).and_then(|col| col.get_mut(k)) {
                    *cell = v;
                }
            }
            k += 1;
        }
    }
    cols.iter().map(|col| weighted_median(&use_stake, col, &idx, minority, zero(), stake_sum)).collect()
}

/// `min(w_ij, c_j)`; an entry clipped to a non-positive threshold is dropped.
pub fn col_clip_sparse(m: &[Vec<(u16, Fx)>], threshold: &[Fx]) -> Sparse {
    m.iter()
        .map(|row| {
            row.iter()
                .filter_map(|&(j, v)| {
                    let t = threshold.get(j as usize).copied().unwrap_or(zero());
                    if t < v { (t > zero()).then_some((j, t)) } else { Some((j, v)) }
                })
                .collect()
        })
        .collect()
}

/// `r_j = Σ_i x_i · m_ij`.
pub fn matmul_sparse(m: &[Vec<(u16, Fx)>], x: &[Fx], columns: usize) -> Vec<Fx> {
    let mut out = vec![zero(); columns];
    for (i, row) in m.iter().enumerate() {
        let s = x.get(i).copied().unwrap_or(zero());
        for &(j, v) in row {
            if let Some(r) = out.get_mut(j as usize) {
                *r = r.saturating_add(s.saturating_mul(v));
            }
        }
    }
    out
}

/// `r_i = Σ_j m_ij · x_j`.
pub fn matmul_transpose_sparse(m: &[Vec<(u16, Fx)>], x: &[Fx]) -> Vec<Fx> {
    m.iter()
        .map(|row| {
            row.iter().fold(zero(), |acc, &(j, v)| {
                acc.saturating_add(x.get(j as usize).copied().unwrap_or(zero()).saturating_mul(v))
            })
        })
        .collect()
}

/// `a + ratio·(b - a)` entry-wise, keeping positive results only (ratio 0 and 1 return a or b).
pub fn interpolate_sparse(a: &[Vec<(u16, Fx)>], b: &[Vec<(u16, Fx)>], columns: usize, ratio: Fx) -> Sparse {
    if ratio == zero() {
        return a.to_vec();
    }
    if ratio == one() || a.len() != b.len() {
        return b.to_vec();
    }
    let dense = |row: &[(u16, Fx)]| {
        let mut d = vec![zero(); columns];
        for &(j, v) in row {
            if let Some(e) = d.get_mut(j as usize) {
                *e = v;
            }
        }
        d
    };
    a.iter()
        .zip(b)
        .map(|(ra, rb)| {
            let (da, db) = (dense(ra), dense(rb));
            (0..columns)
                .filter_map(|j| {
                    let v = da[j].saturating_add(ratio.saturating_mul(db[j].saturating_sub(da[j])));
                    (v > zero()).then_some((j as u16, v))
                })
                .collect()
        })
        .collect()
}

/// Entry-wise product; an overflowing product is 0.
pub fn vec_mul(a: &[Fx], b: &[Fx]) -> Vec<Fx> {
    a.iter().zip(b).map(|(x, y)| x.checked_mul(*y).unwrap_or_default()).collect()
}

/// `m_ij · x_j`, keeping non-zero products.
pub fn mat_vec_mul_sparse(m: &[Vec<(u16, Fx)>], x: &[Fx]) -> Sparse {
    m.iter()
        .map(|row| {
            row.iter()
                .filter_map(|&(j, v)| {
                    let xj = x.get(j as usize)?;
                    let p = v.saturating_mul(*xj);
                    (p != zero()).then_some((j, p))
                })
                .collect()
        })
        .collect()
}

/// `m_ij · x_i`.
pub fn row_hadamard_sparse(m: &[Vec<(u16, Fx)>], x: &[Fx]) -> Sparse {
    m.iter().zip(x).map(|(row, s)| row.iter().map(|&(j, v)| (j, v.saturating_mul(*s))).collect()).collect()
}

/// `α·new + (1-α)·old` over dense rows of `new.len()` columns, keeping positive entries.
pub fn mat_ema_sparse(new: &[Vec<(u16, Fx)>], old: &[Vec<(u16, Fx)>], alpha: Fx) -> Sparse {
    let n = new.len();
    let keep = one().saturating_sub(alpha);
    new.iter()
        .enumerate()
        .map(|(i, nrow)| {
            let mut acc = vec![zero(); n];
            for &(j, v) in nrow {
                if let Some(c) = acc.get_mut(j as usize) {
                    *c = c.saturating_add(alpha.saturating_mul(v));
                }
            }
            if let Some(orow) = old.get(i) {
                for &(j, v) in orow {
                    if let Some(c) = acc.get_mut(j as usize) {
                        *c = c.saturating_add(keep.saturating_mul(v));
                    }
                }
            }
            acc.iter().enumerate().filter(|(_, v)| **v > zero()).map(|(j, v)| (j as u16, *v)).collect()
        })
        .collect()
}

/// Per-entry EMA `min((1-α_ij)·old_ij + max(α_ij·new_ij, 0), 1)`. Only the columns present in the
/// *new* row are emitted, as the chain does: an old bond to a column the new row omits is dropped.
pub fn mat_ema_alpha_sparse(new: &[Vec<(u16, Fx)>], old: &[Vec<(u16, Fx)>], alpha: &[Vec<Fx>]) -> Sparse {
    if new.len() != old.len() || new.len() != alpha.len() {
        return new.to_vec();
    }
    new.iter()
        .zip(old)
        .zip(alpha)
        .map(|((nrow, orow), arow)| {
            let mut decayed = vec![zero(); arow.len()];
            for &(j, v) in orow {
                if let (Some(a), Some(c)) = (arow.get(j as usize), decayed.get_mut(j as usize)) {
                    *c = one().saturating_sub(*a).saturating_mul(v);
                }
            }
            nrow.iter()
                .filter_map(|&(j, v)| {
                    let (a, d) = (arow.get(j as usize)?, decayed.get(j as usize)?);
                    let val = d.saturating_add(a.saturating_mul(v).max(zero())).min(one());
                    (val > zero()).then_some((j, val))
                })
                .collect()
        })
        .collect()
}

pub fn clamp(v: Fx, low: Fx, high: Fx) -> Fx {
    v.min(high).max(low)
}

/// `exp` with the input clamped to ±20; an overflow gives 0 or the maximum.
pub fn exp_safe(x: Fx) -> Fx {
    let x = clamp(x, Fx::saturating_from_num(-20), Fx::saturating_from_num(20));
    match exp::<Fx, Fx>(x) {
        Ok(v) => v,
        Err(()) if x <= zero() => zero(),
        Err(()) => Fx::max_value(),
    }
}

/// Liquid alpha for one (validator, miner) pair: a sigmoid of how far the weight runs ahead of
/// consensus (buying) or the bond ahead of the weight (selling), mapped into `[low, high]`.
pub fn alpha_sigmoid(consensus: Fx, weight: Fx, bond: Fx, low: Fx, high: Fx, steepness: Fx) -> Fx {
    let buy = clamp(weight.saturating_sub(consensus), zero(), one());
    let sell = clamp(bond.saturating_sub(weight), zero(), one());
    let diff = if weight >= bond { buy } else { sell };
    let half = Fx::from_num(0.5);
    let e = exp_safe(steepness.saturating_div(Fx::from_num(-100)).saturating_mul(diff.saturating_sub(half)));
    let sigmoid = one().saturating_div(one().saturating_add(e));
    clamp(low.saturating_add(sigmoid.saturating_mul(high.saturating_sub(low))), low, high)
}

/// The dense `[rows][columns]` matrix of liquid alphas. Rows are walked as the chain walks
/// them, a cursor per row that only moves forward: an entry is found only if the row lists its
/// columns in ascending order up to it, otherwise it reads as 0.
pub fn liquid_alphas(
    weights: &[Vec<(u16, Fx)>],
    bonds: &[Vec<(u16, Fx)>],
    consensus: &[Fx],
    low: Fx,
    high: Fx,
    steepness: Fx,
) -> Vec<Vec<Fx>> {
    fn take(row: &[(u16, Fx)], pos: &mut usize, j: u16) -> Fx {
        while let Some(&(c, v)) = row.get(*pos) {
            if c < j {
                *pos += 1;
            } else {
                return if c == j { v } else { zero() };
            }
        }
        zero()
    }
    weights
        .iter()
        .zip(bonds)
        .map(|(w, b)| {
            let (mut wp, mut bp) = (0usize, 0usize);
            consensus
                .iter()
                .enumerate()
                .map(|(j, c)| {
                    let weight = take(w, &mut wp, j as u16);
                    let bond = take(b, &mut bp, j as u16);
                    alpha_sigmoid(*c, weight, bond, low, high, steepness)
                })
                .collect()
        })
        .collect()
}

pub fn to_f64(x: Fx) -> f64 {
    x.to_num::<f64>()
}
