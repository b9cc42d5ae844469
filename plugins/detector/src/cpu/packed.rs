//! Matrix products whose right-hand side is a layer's weights: packed once, when the network is
//! built, into panels of `nr` columns (k rows of `nr` values each), so that no product packs
//! them again. A register-blocked kernel (`mr × nr` accumulators) runs over each panel, reading
//! the left-hand side's rows where they are (no packing; only a partial group of rows is copied
//! and padded), BLIS's order: for each block of `kc` steps of k and [`MB`] rows, each panel's
//! slice stays in L1 while the block's row groups run over it. The caller's epilogue runs on a
//! block of rows as soon as its values are final, while they are in L2.
//!
//! Every output value is one chain of fused multiply-adds over k in order, starting from zero,
//! whatever the kernel, the blocking or the tile: the AVX-512, AVX2 and portable kernels give
//! the same bits (the tests check it against a scalar loop).

use std::ops::Range;

/// Rows per block: a panel's slice of `kc` rows is loaded into L1 once per block of rows.
const MB: usize = 96;
const _: () = assert!(
    MB.is_multiple_of(Kernel::Avx512.mr())
        && MB.is_multiple_of(Kernel::Avx2.mr())
        && MB.is_multiple_of(Kernel::Portable.mr())
);
/// The most steps of k per block.
const KC_MAX: usize = 256;
/// The most rows any kernel takes.
const MR_MAX: usize = 12;
/// The widest panel.
const NR_MAX: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// 12 rows × 32 columns (24 zmm accumulators).
    Avx512,
    /// 6 rows × 16 columns (12 ymm accumulators).
    Avx2,
    /// 4 rows × 16 columns, plain Rust (`mul_add`).
    Portable,
}

impl Kernel {
    /// The widest kernel this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::arch::is_x86_feature_detected!("fma");
            if fma && std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            if fma && std::arch::is_x86_feature_detected!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Every kernel this CPU runs.
    #[cfg(test)]
    fn available() -> Vec<Kernel> {
        let best = Kernel::detect();
        [Kernel::Avx512, Kernel::Avx2, Kernel::Portable]
            .into_iter()
            .filter(|k| match k {
                Kernel::Avx512 => best == Kernel::Avx512,
                Kernel::Avx2 => best != Kernel::Portable,
                Kernel::Portable => true,
            })
            .collect()
    }

    const fn mr(self) -> usize {
        match self {
            Kernel::Avx512 => 12,
            Kernel::Avx2 => 6,
            Kernel::Portable => 4,
        }
    }

    /// Steps of k per block: a panel's slice (`kc × nr`) takes 16 KiB, half of a 32 KiB L1.
    const fn kc(self) -> usize {
        match self {
            Kernel::Avx512 => 128,
            Kernel::Avx2 | Kernel::Portable => 256,
        }
    }

    const fn nr(self) -> usize {
        match self {
            Kernel::Avx512 => 32,
            Kernel::Avx2 | Kernel::Portable => 16,
        }
    }
}

/// A `k × n` matrix in panels of the kernel's width.
pub struct Packed {
    k: usize,
    n: usize,
    kernel: Kernel,
    /// Panel `p` is `k` rows of `nr` values: columns `p·nr ..`, zero past `n`. In cache lines,
    /// so that no vector load of a panel row straddles two (0.5–2% on ViT's layers on Zen 3,
    /// paired against panels 16 bytes off).
    data: Vec<Line>,
}

/// 16 values on one 64-byte cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// The values of `lines`, in order.
fn values(lines: &[Line]) -> &[f32] {
    // SAFETY: `Line` is 16 `f32`s and no padding (`repr(C)`, size 64).
    unsafe { std::slice::from_raw_parts(lines.as_ptr().cast(), lines.len() * 16) }
}

fn values_mut(lines: &mut [Line]) -> &mut [f32] {
    // SAFETY: as `values`.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), lines.len() * 16) }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed({}×{}, {:?})", self.k, self.n, self.kernel)
    }
}

impl Packed {
    /// `w`: `k` rows of `n` values, row-major, for this CPU's widest kernel.
    pub fn new(w: &[f32], k: usize, n: usize) -> Packed {
        Packed::for_kernel(w, k, n, Kernel::detect())
    }

    fn for_kernel(w: &[f32], k: usize, n: usize, kernel: Kernel) -> Packed {
        assert_eq!(w.len(), k * n, "packed matrix size");
        let mut p = Packed { k: 0, n: 0, kernel, data: Vec::new() };
        p.fill(k, n, w, n, 1);
        p
    }

    /// An empty matrix for this CPU's widest kernel, to be [`fill`](Packed::fill)ed.
    pub fn empty() -> Packed {
        Packed { k: 0, n: 0, kernel: Kernel::detect(), data: Vec::new() }
    }

    /// Repacks this matrix as `k × n`, element (`r`, `c`) at `src[r·rs + c·cs]`, in its own
    /// storage: for right-hand sides that are activations (attention's `kᵀ` and `v`), packed per
    /// product. The source is read along its unit stride.
    pub fn fill(&mut self, k: usize, n: usize, src: &[f32], rs: usize, cs: usize) {
        let nr = self.kernel.nr();
        let panels = n.div_ceil(nr);
        (self.k, self.n) = (k, n);
        self.data.clear();
        // `nr` is 16 or 32: a panel row is one or two lines.
        self.data.resize(panels * k * nr / 16, Line([0.0; 16]));
        if k == 0 || n == 0 {
            return;
        }
        assert!((k - 1) * rs + (n - 1) * cs < src.len(), "packed source size");
        for (p, panel) in values_mut(&mut self.data).chunks_exact_mut(k * nr).enumerate() {
            let (c0, width) = (p * nr, nr.min(n - p * nr));
            if cs == 1 {
                for (r, dst) in panel.chunks_exact_mut(nr).enumerate() {
                    dst[..width].copy_from_slice(&src[r * rs + c0..r * rs + c0 + width]);
                }
            } else {
                for j in 0..width {
                    let col = (c0 + j) * cs;
                    for r in 0..k {
                        panel[r * nr + j] = src[col + r * rs];
                    }
                }
            }
        }
    }

    /// Column `j` multiplied by `scale[j]` (in f64).
    pub fn scale_columns(&mut self, scale: &[f32]) {
        assert_eq!(scale.len(), self.n, "column scale size");
        let nr = self.kernel.nr();
        for (p, panel) in values_mut(&mut self.data).chunks_exact_mut((self.k * nr).max(1)).enumerate() {
            for row in panel.chunks_exact_mut(nr) {
                for (v, &s) in row.iter_mut().zip(&scale[p * nr..]) {
                    *v = (*v as f64 * s as f64) as f32;
                }
            }
        }
    }

    /// `dst` (`m` rows of stride `ldd`; its column 0 is column `cols.start`, which must be a
    /// multiple of the panel width, 16 or 32) = `lhs` (`m × k`, row stride `lda`) · the columns
    /// `cols` of this matrix, on the calling thread. `then(r,
    /// row)` runs once on each row `r` as soon as its values are final.
    ///
    /// # Safety
    /// `lhs` must address `m` rows of `k` values at stride `lda`, and `dst` `m` rows of
    /// `cols.len()` values at stride `ldd`, not overlapping `lhs`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn product(
        &self,
        m: usize,
        lhs: *const f32,
        lda: usize,
        dst: *mut f32,
        ldd: usize,
        cols: Range<usize>,
        mut then: impl FnMut(usize, &mut [f32]),
    ) {
        let (mr, nr, k) = (self.kernel.mr(), self.kernel.nr(), self.k);
        assert!(
            cols.start.is_multiple_of(nr) && cols.start <= cols.end && cols.end <= self.n,
            "column block {cols:?}"
        );
        let nc = cols.len();
        // SAFETY (every block below): rows `g0 .. g0 + rows` of `lhs` and `dst`, columns inside
        // `cols`, as the caller guarantees; panels inside `data` by construction.
        let row = |r: usize| unsafe { std::slice::from_raw_parts_mut(dst.add(r * ldd), nc) };
        if k == 0 {
            for r in 0..m {
                let out = row(r);
                out.fill(0.0);
                then(r, out);
            }
            return;
        }
        let kcs = self.kernel.kc();
        // The rows of a partial row group, padded with zero rows.
        let mut pad = [0f32; MR_MAX * KC_MAX];
        let mut edge = [0f32; MR_MAX * NR_MAX];
        for k0 in (0..k).step_by(kcs) {
            let kc = kcs.min(k - k0);
            let last = k0 + kc == k;
            for m0 in (0..m).step_by(MB) {
                let mb = MB.min(m - m0);
                // Only the block's last row group can be partial (`MB` is a multiple of every
                // `mr`): its rows, padded with zero rows, are copied once for all panels.
                let tail = mb % mr;
                if tail > 0 {
                    let g0 = m0 + mb - tail;
                    for r in 0..mr {
                        let dst = &mut pad[r * kc..(r + 1) * kc];
                        if r < tail {
                            dst.copy_from_slice(unsafe {
                                std::slice::from_raw_parts(lhs.add((g0 + r) * lda + k0), kc)
                            });
                        } else {
                            dst.fill(0.0);
                        }
                    }
                }
                // Each panel's slice (`kc × nr`) stays in L1 while every row group of the block
                // runs over it; the block's rows (`mb × kc`) stay in L2 across the panels.
                for j0 in cols.clone().step_by(nr) {
                    let width = nr.min(cols.end - j0);
                    let b = unsafe { values(&self.data).as_ptr().add((j0 / nr) * k * nr + k0 * nr) };
                    for g0 in (m0..m0 + mb).step_by(mr) {
                        let rows = mr.min(m0 + mb - g0);
                        let c = unsafe { dst.add(g0 * ldd + (j0 - cols.start)) };
                        let (a, ars) = if rows == mr {
                            (unsafe { lhs.add(g0 * lda + k0) }, lda)
                        } else {
                            (pad.as_ptr(), kc)
                        };
                        if rows == mr && width == nr {
                            unsafe { self.kernel(kc, a, ars, b, c, ldd, k0 > 0) };
                            continue;
                        }
                        // A partial block: through a whole one on the stack.
                        if k0 > 0 {
                            for r in 0..rows {
                                let src = unsafe { std::slice::from_raw_parts(c.add(r * ldd), width) };
                                edge[r * nr..r * nr + width].copy_from_slice(src);
                            }
                        }
                        unsafe { self.kernel(kc, a, ars, b, edge.as_mut_ptr(), nr, k0 > 0) };
                        for r in 0..rows {
                            let out = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldd), width) };
                            out.copy_from_slice(&edge[r * nr..r * nr + width]);
                        }
                    }
                }
                if last {
                    for r in m0..m0 + mb {
                        then(r, row(r));
                    }
                }
            }
        }
    }

    /// One `mr × nr` block: `c` (+)= `a` (`mr` rows of `kc` values, row stride `lda`) · `b` (`kc`
    /// rows of `nr`).
    ///
    /// # Safety
    /// As [`Packed::product`]'s, for this block.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(
        &self,
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        load: bool,
    ) {
        // SAFETY: the kernel was detected on this CPU; pointers as the caller's.
        unsafe {
            match self.kernel {
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => x86::avx512(kc, a, lda, b, c, ldc, load),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 => x86::avx2(kc, a, lda, b, c, ldc, load),
                _ => portable(kc, a, lda, b, c, ldc, load),
            }
        }
    }
}

/// The portable kernel: 4 × 16.
///
/// # Safety
/// As [`Packed::kernel`]'s.
unsafe fn portable(kc: usize, a: *const f32, lda: usize, b: *const f32, c: *mut f32, ldc: usize, load: bool) {
    const MR: usize = Kernel::Portable.mr();
    const NR: usize = Kernel::Portable.nr();
    // SAFETY: as the caller's.
    unsafe {
        let mut acc = [[0f32; NR]; MR];
        if load {
            for (r, acc) in acc.iter_mut().enumerate() {
                acc.copy_from_slice(std::slice::from_raw_parts(c.add(r * ldc), NR));
            }
        }
        for kk in 0..kc {
            let bk = std::slice::from_raw_parts(b.add(kk * NR), NR);
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = *a.add(r * lda + kk);
                for (s, &bv) in acc.iter_mut().zip(bk) {
                    *s = av.mul_add(bv, *s);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            std::slice::from_raw_parts_mut(c.add(r * ldc), NR).copy_from_slice(acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Kernel;

    /// A kernel of `Kernel::$kind.mr()` rows × two vectors of `$w` lanes per row, each row's value
    /// broadcast.
    macro_rules! kernel {
        ($(#[$doc:meta])* $name:ident, $kind:ident, $feature:literal, $w:literal, $unrolled:literal,
         $zero:ident, $loadu:ident, $storeu:ident, $set1:ident, $fmadd:ident) => {
            $(#[$doc])*
            /// # Safety
            /// The CPU has the kernel's features; as [`super::Packed::kernel`]'s.
            #[target_feature(enable = $feature)]
            pub unsafe fn $name(kc: usize, a: *const f32, lda: usize, b: *const f32, c: *mut f32, ldc: usize, load: bool) {
                const MR: usize = Kernel::$kind.mr();
                // SAFETY: as the caller's.
                unsafe {
                    let mut acc = [[$zero(); 2]; MR];
                    if load {
                        for (r, acc) in acc.iter_mut().enumerate() {
                            *acc = [$loadu(c.add(r * ldc)), $loadu(c.add(r * ldc + $w))];
                        }
                    }
                    // `$unrolled`: each row's own pointer, and four steps of k per trip, so
                    // no address arithmetic per row and step and a quarter of the loop's own
                    // work (up to 13% faster on Zen 3's linear layers than one step per trip;
                    // with twelve rows the compiler runs out of registers, so not for AVX-512).
                    // The same multiply-adds in the same order either way.
                    if $unrolled {
                        let rows: [*const f32; MR] = std::array::from_fn(|r| a.add(r * lda));
                        let step = |acc: &mut [[_; 2]; MR], kk: usize| {
                            let (b0, b1) = ($loadu(b.add(kk * 2 * $w)), $loadu(b.add(kk * 2 * $w + $w)));
                            for (acc, row) in acc.iter_mut().zip(&rows) {
                                let av = $set1(*row.add(kk));
                                acc[0] = $fmadd(av, b0, acc[0]);
                                acc[1] = $fmadd(av, b1, acc[1]);
                            }
                        };
                        let mut kk = 0;
                        while kk + 4 <= kc {
                            step(&mut acc, kk);
                            step(&mut acc, kk + 1);
                            step(&mut acc, kk + 2);
                            step(&mut acc, kk + 3);
                            kk += 4;
                        }
                        for kk in kk..kc {
                            step(&mut acc, kk);
                        }
                    } else {
                        for kk in 0..kc {
                            let (b0, b1) = ($loadu(b.add(kk * 2 * $w)), $loadu(b.add(kk * 2 * $w + $w)));
                            for (r, acc) in acc.iter_mut().enumerate() {
                                let av = $set1(*a.add(r * lda + kk));
                                acc[0] = $fmadd(av, b0, acc[0]);
                                acc[1] = $fmadd(av, b1, acc[1]);
                            }
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        $storeu(c.add(r * ldc), acc[0]);
                        $storeu(c.add(r * ldc + $w), acc[1]);
                    }
                }
            }
        };
    }

    kernel!(
        /// 12 × 32: two zmm per row.
        avx512, Avx512, "avx512f,fma", 16, false,
        _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps
    );
    kernel!(
        /// 6 × 16: two ymm per row.
        avx2, Avx2, "avx2,fma", 8, true,
        _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Each output a chain of `mul_add` over k in order, from zero.
    fn reference(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for r in 0..m {
            for j in 0..n {
                out[r * n + j] = (0..k).fold(0f32, |acc, kk| x[r * k + kk].mul_add(w[kk * n + j], acc));
            }
        }
        out
    }

    #[test]
    fn every_kernel_gives_the_bits_of_one_fma_chain() {
        // Partial row blocks and panels, k across blocks, and k = 0.
        for &(m, k, n) in
            &[(1, 1, 1), (13, 300, 40), (100, 300, 40), (25, 64, 96), (7, 513, 33), (12, 256, 32), (3, 0, 5)]
        {
            let (x, w) = (values(m * k, 1 + m as u64), values(k * n, 2 + n as u64));
            let want = reference(&x, &w, m, k, n);
            for kernel in Kernel::available() {
                let p = Packed::for_kernel(&w, k, n, kernel);
                // The whole width, and a block of columns from the second panel on, into a
                // wider destination.
                let mut got = vec![f32::NAN; m * n];
                let mut seen = vec![0usize; m];
                unsafe {
                    p.product(m, x.as_ptr(), k, got.as_mut_ptr(), n, 0..n, |r, row| {
                        assert_eq!(row.len(), n);
                        assert_eq!(row, &want[r * n..(r + 1) * n], "{kernel:?} {m}×{k}×{n} row {r}");
                        seen[r] += 1;
                    })
                };
                assert_eq!(seen, vec![1; m], "{kernel:?}: each row finished once");
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{kernel:?} {m}×{k}×{n}");
                // Scaled columns: the product of the scaled matrix.
                let scale = values(n, 3);
                let scaled: Vec<f32> =
                    w.iter().enumerate().map(|(i, &v)| (v as f64 * scale[i % n] as f64) as f32).collect();
                let mut sp = Packed::for_kernel(&w, k, n, kernel);
                sp.scale_columns(&scale);
                let mut got = vec![0f32; m * n];
                unsafe { sp.product(m, x.as_ptr(), k, got.as_mut_ptr(), n, 0..n, |_, _| {}) };
                assert_eq!(bits(&got), bits(&reference(&x, &scaled, m, k, n)), "{kernel:?} scaled");
                let nr = kernel.nr();
                if n > nr {
                    let ld = n + 3;
                    let mut wide = vec![f32::NAN; m * ld];
                    unsafe { p.product(m, x.as_ptr(), k, wide.as_mut_ptr().add(1), ld, nr..n, |_, _| {}) };
                    for r in 0..m {
                        assert_eq!(
                            bits(&wide[r * ld + 1..r * ld + 1 + n - nr]),
                            bits(&want[r * n + nr..(r + 1) * n])
                        );
                        assert!(
                            wide[r * ld].is_nan()
                                && wide[r * ld + 1 + n - nr..(r + 1) * ld].iter().all(|v| v.is_nan())
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_refilled_matrix_is_the_matrix_packed_anew() {
        // Refilled larger, then smaller, from a transposed source and from rows with a stride:
        // no values left from before.
        let mut p = Packed::empty();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for &(m, k, n) in &[(5, 64, 197), (9, 197, 64), (3, 7, 5)] {
            let x = values(m * k, 4 + m as u64);
            let wt = values(n * k, 5 + n as u64); // n × k: the matrix's transpose
            let w: Vec<f32> = (0..k * n).map(|i| wt[(i % n) * k + i / n]).collect();
            let ld = n + 3;
            let strided: Vec<f32> =
                (0..k * ld).map(|i| if i % ld < n { w[i / ld * n + i % ld] } else { f32::NAN }).collect();
            let mut want = vec![0f32; m * n];
            unsafe { Packed::new(&w, k, n).product(m, x.as_ptr(), k, want.as_mut_ptr(), n, 0..n, |_, _| {}) };
            assert_eq!(bits(&want), bits(&reference(&x, &w, m, k, n)), "{m}×{k}×{n}: one FMA chain");
            for (src, rs, cs) in [(&wt, 1, k), (&strided, ld, 1)] {
                p.fill(k, n, src, rs, cs);
                let mut got = vec![0f32; m * n];
                unsafe { p.product(m, x.as_ptr(), k, got.as_mut_ptr(), n, 0..n, |_, _| {}) };
                assert_eq!(bits(&got), bits(&want), "{m}×{k}×{n}, strides {rs}, {cs}");
            }
        }
    }
}
