//! The CPU inference path, used instead of burn's Flex backend when the device is the CPU (burn
//! still builds the network, checks the weights and runs wgpu/CUDA): ResNets here, ConvNeXt in
//! [`convnext`], the vision transformer in [`vit`], their shared pieces in [`ops`].
//!
//! - Activations are NHWC, so every convolution is a matrix product over channels.
//! - Batch norm (inference statistics) is folded into the convolution before it, in f64:
//!   `w·γ/√(σ²+ε)` and `β − μ·γ/√(σ²+ε)`.
//! - Bias, the residual and ReLU are applied to each convolution's output while it is in cache.
//! - 3×3 stride-1 convolutions (most of a ResNet's arithmetic) use Winograd's F(4×4, 3×3)
//!   (Lavin & Gray, 2016): 36 multiplications per 4×4 output tile and channel pair instead of 144.
//!   The filter transform is computed once, in f64.
//! - Every other convolution is im2col and a matrix product on filters packed once ([`packed`]).
//!
//! Work is split into pieces whose sizes depend on the layer's shape only, never on the thread
//! count, and each piece is computed by one thread: the results are bit-identical from run to
//! run and whatever the number of threads.

/// `fn name(args) -> R = body;` defines `name` to run `body` (an `#[inline(always)]` function)
/// compiled for AVX-512 or AVX2 (each with FMA), or the baseline, whichever the CPU has. The
/// body is inlined into each version, so its loops vectorize for that width (a closure handed to
/// such a wrapper may stay a call compiled for the baseline). A body's `mul_add` is one
/// instruction in the wide versions and libm's `fmaf` in the baseline (as exact, and slow on a
/// CPU without FMA). `unsafe fn` defines an unsafe `name` with the body's contract.
macro_rules! vectorized {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? = $body:path;) => {
        $(#[$m])*
        fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($a: $t),*) $(-> $r)? {
                    $body($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($a: $t),*) $(-> $r)? {
                    $body($($a),*)
                }
                let fma = std::arch::is_x86_feature_detected!("fma");
                if fma && std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F and FMA.
                    return unsafe { avx512($($a),*) };
                }
                if fma && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { avx2($($a),*) };
                }
            }
            $body($($a),*)
        }
    };
    ($(#[$m:meta])* unsafe fn $name:ident($($a:ident: $t:ty),*) $(-> $r:ty)? = $body:path;) => {
        $(#[$m])*
        unsafe fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($a: $t),*) $(-> $r)? {
                    // SAFETY: as the caller's.
                    unsafe { $body($($a),*) }
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($a: $t),*) $(-> $r)? {
                    // SAFETY: as the caller's.
                    unsafe { $body($($a),*) }
                }
                let fma = std::arch::is_x86_feature_detected!("fma");
                if fma && std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F and FMA; the caller keeps the body's contract.
                    return unsafe { avx512($($a),*) };
                }
                if fma && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 and FMA; the caller keeps the body's contract.
                    return unsafe { avx2($($a),*) };
                }
            }
            // SAFETY: the caller keeps the body's contract.
            unsafe { $body($($a),*) }
        }
    };
}

/// `[f32; n]` with element `i` = `value` (written out: `std::array::from_fn`'s closure may stay a
/// call compiled for the baseline).
macro_rules! each {
    ($n:expr, |$i:ident| $value:expr) => {{
        let mut a = [0f32; $n];
        for $i in 0..$n {
            a[$i] = $value;
        }
        a
    }};
}

pub mod convnext;
pub mod ops;
pub mod packed;
pub mod vit;

use rayon::prelude::*;

use packed::Packed;

/// NHWC activations.
#[derive(Clone, Debug)]
pub struct Act {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

/// Inference batch-norm statistics of one layer.
pub struct BatchNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub eps: f64,
}

/// A convolution (square kernel, symmetric padding, one group) with its batch norm folded in.
pub struct Conv {
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    filters: Filters,
    bias: Vec<f32>,
}

enum Filters {
    /// `[k·k·cin, cout]`, rows in im2col order (ky, kx, ci).
    Im2col(Packed),
    /// Winograd-domain filters (3×3, stride 1, padding 1): 36 of `[cin, cout]`.
    Winograd(Vec<Packed>),
}

impl Conv {
    /// `weight` is PyTorch's `[cout, cin, k, k]`.
    #[allow(clippy::too_many_arguments)] // a convolution's shape is these eight numbers
    pub fn new(
        weight: &[f32],
        cout: usize,
        cin: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: Option<&[f32]>,
        bn: Option<&BatchNorm>,
    ) -> Conv {
        assert_eq!(weight.len(), cout * cin * k * k, "convolution weight size");
        let (scale, shift): (Vec<f64>, Vec<f64>) = (0..cout)
            .map(|o| {
                let b = bias.map_or(0.0, |b| b[o] as f64);
                match bn {
                    Some(bn) => {
                        let s = bn.gamma[o] as f64 / (bn.var[o] as f64 + bn.eps).sqrt();
                        (s, (b - bn.mean[o] as f64) * s + bn.beta[o] as f64)
                    }
                    None => (1.0, b),
                }
            })
            .unzip();
        // The folded filter in f64, `[cout][cin][ky][kx]`.
        let folded: Vec<f64> =
            weight.iter().enumerate().map(|(i, &v)| v as f64 * scale[i / (cin * k * k)]).collect();
        let filters = if k == 3 && stride == 1 && pad == 1 {
            let u = winograd_filters(&folded, cout, cin);
            Filters::Winograd(u.chunks_exact(cin * cout).map(|e| Packed::new(e, cin, cout)).collect())
        } else {
            let mut w = vec![0f32; k * k * cin * cout];
            for t in 0..k * k {
                for i in 0..cin {
                    for o in 0..cout {
                        w[(t * cin + i) * cout + o] = folded[(o * cin + i) * k * k + t] as f32;
                    }
                }
            }
            Filters::Im2col(Packed::new(&w, k * k * cin, cout))
        };
        Conv { cin, cout, k, stride, pad, filters, bias: shift.iter().map(|&b| b as f32).collect() }
    }

    fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        ((h + 2 * self.pad - self.k) / self.stride + 1, (w + 2 * self.pad - self.k) / self.stride + 1)
    }

    /// `relu?(conv(x) + bias + residual?)`.
    pub fn forward(&self, x: &Act, residual: Option<&Act>, relu: bool) -> Act {
        self.forward_in(x, residual, relu, &mut Vec::new())
    }

    /// [`Conv::forward`] into the best fitting of the `spare` buffers (those of finished layers
    /// and earlier passes, so no fresh pages): every output value is written, so their old
    /// contents are never read.
    pub fn forward_in(&self, x: &Act, residual: Option<&Act>, relu: bool, spare: &mut Vec<Vec<f32>>) -> Act {
        assert_eq!(x.c, self.cin, "convolution input channels");
        let (ho, wo) = self.out_size(x.h, x.w);
        if let Some(r) = residual {
            assert_eq!((r.n, r.h, r.w, r.c), (x.n, ho, wo, self.cout), "residual shape");
        }
        let mut buf = fit(spare, x.n * ho * wo * self.cout);
        match &self.filters {
            Filters::Winograd(u) => self.winograd(x, u, residual, relu, &mut buf),
            Filters::Im2col(w) => self.im2col(x, w, ho, wo, residual, relu, &mut buf),
        };
        Act { n: x.n, h: ho, w: wo, c: self.cout, data: buf }
    }

    #[allow(clippy::too_many_arguments)]
    fn im2col(
        &self,
        x: &Act,
        w: &Packed,
        ho: usize,
        wo: usize,
        residual: Option<&Act>,
        relu: bool,
        out: &mut [f32],
    ) {
        let (cin, cout, k) = (self.cin, self.cout, self.k);
        let rows = x.n * ho * wo;
        let kdim = k * k * cin;
        let pointwise = k == 1 && self.stride == 1 && self.pad == 0;
        // Pieces of whole 96-row blocks, up to 32 of them where there are rows enough (one piece
        // more or less per thread is then a few percent of a layer, not an eighth of it); a
        // gathered piece holds about 1 MiB of im2col rows at most.
        let most = if pointwise { 4096 } else { (262_144 / kdim).clamp(96, 4096) };
        let piece = rows.div_ceil(32).next_multiple_of(96).clamp(96, most.next_multiple_of(96));
        out.par_chunks_mut(piece * cout).enumerate().for_each(|(p, o)| {
            let r0 = p * piece;
            let nr = o.len() / cout;
            let col;
            let lhs = if pointwise {
                &x.data[r0 * cin..(r0 + nr) * cin]
            } else {
                col = self.gather(x, ho, wo, r0, nr);
                &col[..]
            };
            let residual = residual.map(|r| &r.data[r0 * cout..(r0 + nr) * cout]);
            // SAFETY: `o` is nr×cout and `lhs` nr×kdim, both row-major.
            unsafe {
                w.product(nr, lhs.as_ptr(), kdim, o.as_mut_ptr(), cout, 0..cout, |r, row| {
                    epilogue(row, &self.bias, residual.map(|res| &res[r * cout..(r + 1) * cout]), relu)
                })
            };
        });
    }

    /// im2col rows `r0..r0+nr` (output pixels), zero where the window leaves the image.
    fn gather(&self, x: &Act, ho: usize, wo: usize, r0: usize, nr: usize) -> Vec<f32> {
        let (cin, k) = (self.cin, self.k);
        let kdim = k * k * cin;
        let mut col = vec![0f32; nr * kdim];
        for (r, row) in col.chunks_exact_mut(kdim).enumerate() {
            let g = r0 + r;
            let (b, oy, ox) = (g / (ho * wo), (g / wo) % ho, g % wo);
            // The kernel columns inside the image: a contiguous run of pixels in NHWC.
            let ix0 = (ox * self.stride) as isize - self.pad as isize;
            let kx_lo = (-ix0).max(0) as usize;
            let kx_hi = ((x.w as isize - ix0).max(0) as usize).min(k);
            if kx_lo >= kx_hi {
                continue;
            }
            let run = (kx_hi - kx_lo) * cin;
            for ky in 0..k {
                let iy = (oy * self.stride + ky) as isize - self.pad as isize;
                if iy < 0 || iy >= x.h as isize {
                    continue;
                }
                let src = ((b * x.h + iy as usize) * x.w + (ix0 + kx_lo as isize) as usize) * cin;
                let dst = (ky * k + kx_lo) * cin;
                row[dst..dst + run].copy_from_slice(&x.data[src..src + run]);
            }
        }
        col
    }

    fn winograd(&self, x: &Act, u: &[Packed], residual: Option<&Act>, relu: bool, out: &mut [f32]) {
        let (cin, cout) = (self.cin, self.cout);
        let (ho, wo) = (x.h, x.w);
        let (th, tw) = (ho.div_ceil(4), wo.div_ceil(4));
        let tiles = x.n * th * tw;
        // Tiles per round: the transformed inputs and products of a round take about 4 MiB, but a
        // round has at least 64 tiles so that the products stay efficient for wide layers.
        let round = (1_048_576 / (36 * (cin + cout))).max(64).min(tiles);
        if tiles == 0 {
            return;
        }
        let mut scratch = SCRATCH.take();
        scratch.resize(scratch.len().max(round * 36 * (cin + cout)), 0.0);
        let (v, m) = scratch.split_at_mut(round * 36 * cin);
        let geom = TileGeom { h: x.h, w: x.w, th, tw };
        let out_ptr = SyncPtr(out.as_mut_ptr());
        for t0 in (0..tiles).step_by(round) {
            let nt = round.min(tiles - t0);
            v[..nt * 36 * cin]
                .par_chunks_mut(36 * cin)
                .enumerate()
                .for_each(|(t, vt)| input_tile(x, geom, t0 + t, vt));
            let (vp, mp) = (SyncPtr(v.as_mut_ptr()), SyncPtr(m.as_mut_ptr()));
            (0..36).into_par_iter().for_each(|e| {
                // SAFETY: product `e` reads column block `e` of V (nt rows of stride 36·cin) and
                // writes column block `e` of M; blocks of different `e` do not overlap.
                unsafe {
                    u[e].product(
                        nt,
                        vp.get().add(e * cin),
                        36 * cin,
                        mp.get().add(e * cout),
                        36 * cout,
                        0..cout,
                        |_, _| {},
                    )
                }
            });
            m[..nt * 36 * cout].par_chunks(36 * cout).enumerate().for_each(|(t, mt)| {
                // SAFETY: each tile writes only its own output pixels.
                unsafe { output_tile(mt, geom, t0 + t, cout, &self.bias, residual, relu, out_ptr.get()) }
            });
        }
        SCRATCH.set(scratch);
    }
}

/// Buffers kept from one pass to the next, so that a warm pass touches no fresh pages: glibc
/// hands a freed buffer above its mmap threshold back to the kernel, and the next pass then
/// faults in every page again, zeroed (8% of a ResNet-50 pass).
#[derive(Default)]
pub struct Pool(std::sync::Mutex<Vec<Vec<f32>>>);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.0.lock().map(|b| b.len()).unwrap_or(0);
        write!(f, "Pool({kept} buffers)")
    }
}

impl Pool {
    /// At most this many buffers are kept (a pass holds six at a time or fewer).
    const KEEP: usize = 8;

    /// The buffers that earlier passes kept (none while another pass holds them).
    pub fn take(&self) -> Vec<Vec<f32>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Keeps `bufs` for the next pass: the largest [`Pool::KEEP`] of them and of those already
    /// kept (passes that ran side by side both give theirs back).
    pub fn keep(&self, mut bufs: Vec<Vec<f32>>) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.append(&mut bufs);
        kept.sort_by_key(|b| std::cmp::Reverse(b.capacity()));
        kept.truncate(Self::KEEP);
    }
}

/// A ResNet's layers whose input has at least this many pixels per image run one image at a
/// time: ResNet-50's first two stages at 224² (a 56×56×256 output is 3.2 MB an image), where an
/// image's activations outweigh the weights; later layers have more weights than an image has
/// activations, and run on the batch. (ConvNeXt gains nothing from it: its fused MLP already
/// keeps the hidden layer in cache.)
pub const PER_IMAGE_PIXELS: usize = 784;

/// Early layers run one image at a time on each thread, so that an image's activations stay in
/// the caches from layer to layer (a batch's would go to memory and back at every layer). No
/// value depends on another image or on how rows are split into pieces, so the bits are those of
/// the whole batch layer by layer (the parity test checks each image alone against the batch).
/// Holds the spare buffers of those layers between passes, a list per concurrent image.
#[derive(Default)]
pub struct PerImage(std::sync::Mutex<Vec<Vec<Vec<f32>>>>);

impl PerImage {
    /// `layers` on each image of `x` alone (handed its own spare buffers), in parallel; their
    /// outputs as one batch, from `spare`, and what `layers` returned beside its output (which
    /// must be the same for every image: it is read from the first).
    pub fn run<T: Send>(
        &self,
        x: &Act,
        spare: &mut Vec<Vec<f32>>,
        layers: impl Fn(Act, &mut Vec<Vec<f32>>) -> (Act, T) + Sync,
    ) -> (Act, T) {
        assert!(x.n > 0, "per-image layers of an empty batch");
        let size = x.h * x.w * x.c;
        let lists =
            std::sync::Mutex::new(std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner())));
        let mut images: Vec<(Act, T)> = (0..x.n)
            .into_par_iter()
            .map(|b| {
                let mut own = lists.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
                let mut data = fit(&mut own, size);
                data.copy_from_slice(&x.data[b * size..(b + 1) * size]);
                let out = layers(Act { n: 1, h: x.h, w: x.w, c: x.c, data }, &mut own);
                lists.lock().unwrap_or_else(|e| e.into_inner()).push(own);
                out
            })
            .collect();
        let mut lists = lists.into_inner().unwrap_or_else(|e| e.into_inner());
        let (h, w, c) = (images[0].0.h, images[0].0.w, images[0].0.c);
        let one = h * w * c;
        let mut data = fit(spare, x.n * one);
        let mut info = None;
        for (i, (img, t)) in images.drain(..).enumerate() {
            data[i * one..(i + 1) * one].copy_from_slice(&img.data);
            // The images' buffers back to the lists, for the next pass.
            match lists.len() {
                0 => lists.push(vec![img.data]),
                k => lists[i % k].push(img.data),
            }
            info.get_or_insert(t);
        }
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = lists;
        (Act { n: x.n, h, w, c, data }, info.expect("one image at least"))
    }
}

/// `n` values in the spare buffer that best holds them: the smallest with room for them, else
/// the largest (it grows in place of a new one), else a new one. The values are stale (zeros
/// where it grew): the caller writes every one.
pub fn fit(spare: &mut Vec<Vec<f32>>, n: usize) -> Vec<f32> {
    let roomy = spare.iter().enumerate().filter(|(_, b)| b.capacity() >= n).min_by_key(|(_, b)| b.capacity());
    let best = roomy.or_else(|| spare.iter().enumerate().max_by_key(|(_, b)| b.capacity()));
    let mut buf = match best.map(|(i, _)| i) {
        Some(i) => spare.swap_remove(i),
        None => Vec::new(),
    };
    buf.resize(n, 0.0);
    buf
}

thread_local! {
    /// The Winograd buffers, kept between layers and passes (no fresh pages each time).
    static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

#[derive(Clone, Copy)]
struct TileGeom {
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
}

impl TileGeom {
    fn locate(&self, tile: usize) -> (usize, usize, usize) {
        let per = self.th * self.tw;
        (tile / per, (tile % per) / self.tw, tile % self.tw)
    }
}

#[derive(Clone, Copy)]
pub struct SyncPtr(pub *mut f32);
// SAFETY: used only to hand disjoint regions of one buffer to rayon tasks.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}
impl SyncPtr {
    pub fn get(self) -> *mut f32 {
        self.0
    }
}

/// Channels per step of the tile transforms (one AVX-512 register).
pub(crate) const L: usize = 16;
pub(crate) type Lane = [f32; L];

/// `Bᵀ·d` for F(4×4, 3×3) on the six lanes `base + k·step` of `src`, into the same lanes of
/// `dst`, `L` channels at a time.
#[inline(always)]
fn bt(src: &[Lane; 36], base: usize, step: usize, dst: &mut [Lane; 36]) {
    for l in 0..L {
        let d = |k: usize| src[base + k * step][l];
        let (d0, d1, d2, d3, d4, d5) = (d(0), d(1), d(2), d(3), d(4), d(5));
        dst[base][l] = 4.0 * d0 - 5.0 * d2 + d4;
        dst[base + step][l] = -4.0 * (d1 + d2) + d3 + d4;
        dst[base + 2 * step][l] = 4.0 * (d1 - d2) - d3 + d4;
        dst[base + 3 * step][l] = 2.0 * (d3 - d1) + d4 - d2;
        dst[base + 4 * step][l] = 2.0 * (d1 - d3) + d4 - d2;
        dst[base + 5 * step][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
}

/// `Aᵀ·m` for F(4×4, 3×3): the six lanes `sbase + k·sstep` of `src` to the four lanes
/// `dbase + p·dstep` of `dst`.
#[inline(always)]
fn at<const M: usize, const N: usize>(
    src: &[Lane; M],
    sbase: usize,
    sstep: usize,
    dst: &mut [Lane; N],
    dbase: usize,
    dstep: usize,
) {
    for l in 0..L {
        let m = |k: usize| src[sbase + k * sstep][l];
        let (m0, m1, m2, m3, m4, m5) = (m(0), m(1), m(2), m(3), m(4), m(5));
        let (a, b, c, d) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        dst[dbase][l] = m0 + a + c;
        dst[dbase + dstep][l] = b + 2.0 * d;
        dst[dbase + 2 * dstep][l] = a + 4.0 * c;
        dst[dbase + 3 * dstep][l] = b + 8.0 * d + m5;
    }
}

/// The first `n` values of `src` into `lane` (the rest stay as they are); whole lanes are one
/// vector move.
#[inline(always)]
pub(crate) fn load(lane: &mut Lane, src: &[f32], n: usize) {
    if n == L {
        *lane = src[..L].try_into().expect("a whole lane");
    } else {
        lane[..n].copy_from_slice(&src[..n]);
    }
}

#[inline(always)]
pub(crate) fn store(dst: &mut [f32], lane: &Lane, n: usize) {
    if n == L {
        let d: &mut Lane = (&mut dst[..L]).try_into().expect("a whole lane");
        *d = *lane;
    } else {
        dst[..n].copy_from_slice(&lane[..n]);
    }
}

vectorized! {
    /// [`input_tile_body`] for the CPU's vector width.
    fn input_tile(x: &Act, g: TileGeom, tile: usize, vt: &mut [f32]) = input_tile_body;
}

/// Transforms one 6×6 input tile (padding 1) into `vt`, `[36][cin]`.
#[inline(always)]
fn input_tile_body(x: &Act, g: TileGeom, tile: usize, vt: &mut [f32]) {
    let c = x.c;
    let (b, ty, tx) = g.locate(tile);
    let (y0, x0) = ((ty * 4) as isize - 1, (tx * 4) as isize - 1);
    let mut d = [[0f32; L]; 36];
    let mut t = [[0f32; L]; 36];
    for c0 in (0..c).step_by(L) {
        let cl = L.min(c - c0);
        for i in 0..6 {
            let iy = y0 + i as isize;
            for j in 0..6 {
                let ix = x0 + j as isize;
                if iy < 0 || iy >= g.h as isize || ix < 0 || ix >= g.w as isize {
                    d[i * 6 + j] = [0.0; L];
                } else {
                    load(
                        &mut d[i * 6 + j],
                        &x.data[((b * g.h + iy as usize) * g.w + ix as usize) * c + c0..],
                        cl,
                    );
                }
            }
        }
        // Columns first, t = Bᵀ d, then rows, d = t B (d is free again).
        for j in 0..6 {
            bt(&d, j, 6, &mut t);
        }
        for i in 0..6 {
            bt(&t, i * 6, 1, &mut d);
        }
        for (e, lane) in d.iter().enumerate() {
            store(&mut vt[e * c + c0..], lane, cl);
        }
    }
}

vectorized! {
    /// [`output_tile_body`] for the CPU's vector width.
    ///
    /// # Safety
    /// As [`output_tile_body`]'s.
    #[allow(clippy::too_many_arguments)]
    unsafe fn output_tile(mt: &[f32], g: TileGeom, tile: usize, cout: usize, bias: &[f32], residual: Option<&Act>, relu: bool, out: *mut f32) = output_tile_body;
}

/// Transforms one tile's products `mt` (`[36][cout]`) back to its 4×4 output pixels.
///
/// # Safety
/// `out` must hold the layer's whole NHWC output; each tile writes only its own pixels.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn output_tile_body(
    mt: &[f32],
    g: TileGeom,
    tile: usize,
    cout: usize,
    bias: &[f32],
    residual: Option<&Act>,
    relu: bool,
    out: *mut f32,
) {
    let (b, ty, tx) = g.locate(tile);
    let mut m = [[0f32; L]; 36];
    let mut s = [[0f32; L]; 24];
    let mut y = [[0f32; L]; 16];
    for c0 in (0..cout).step_by(L) {
        let cl = L.min(cout - c0);
        let mut bias_lane = [0f32; L];
        load(&mut bias_lane, &bias[c0..], cl);
        for (e, lane) in m.iter_mut().enumerate() {
            load(lane, &mt[e * cout + c0..], cl);
        }
        // s = Aᵀ m (4×6), then y = s A (4×4).
        for j in 0..6 {
            at(&m, j, 6, &mut s, j, 6);
        }
        for p in 0..4 {
            at(&s, p * 6, 1, &mut y, p * 4, 1);
        }
        for (k, yq) in y.iter().enumerate() {
            let (oy, ox) = (ty * 4 + k / 4, tx * 4 + k % 4);
            if oy >= g.h || ox >= g.w {
                continue;
            }
            let px = ((b * g.h + oy) * g.w + ox) * cout + c0;
            let mut v = *yq;
            v.iter_mut().zip(&bias_lane).for_each(|(v, b)| *v += b);
            if let Some(r) = residual {
                let mut res = [0f32; L];
                load(&mut res, &r.data[px..], cl);
                v.iter_mut().zip(&res).for_each(|(v, r)| *v += r);
            }
            if relu {
                v.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            // SAFETY: channels `c0..c0 + cl` of this tile's pixel, inside the output.
            unsafe { store(std::slice::from_raw_parts_mut(out.add(px), cl), &v, cl) };
        }
    }
}

/// `U = G g Gᵀ` for every (cout, cin) pair of a folded 3×3 filter `[cout][cin][3][3]` (f64),
/// stored `[36][cin][cout]`.
fn winograd_filters(folded: &[f64], cout: usize, cin: usize) -> Vec<f32> {
    const G: [[f64; 3]; 6] = [
        [0.25, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ];
    let mut u = vec![0f32; 36 * cin * cout];
    // `o` innermost: each of the 36 planes is written in order.
    for i in 0..cin {
        for o in 0..cout {
            let g = &folded[(o * cin + i) * 9..(o * cin + i + 1) * 9];
            // gg = G g (6×3), then U = gg Gᵀ (6×6).
            // Sums written out (not iterator sums): this runs for every filter pair at load,
            // also in unoptimised test builds.
            let mut gg = [[0f64; 3]; 6];
            for (row, gr) in gg.iter_mut().zip(&G) {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = gr[0] * g[c] + gr[1] * g[3 + c] + gr[2] * g[6 + c];
                }
            }
            for (r, gr) in gg.iter().enumerate() {
                for (c, gc) in G.iter().enumerate() {
                    let v = gr[0] * gc[0] + gr[1] * gc[1] + gr[2] * gc[2];
                    u[((r * 6 + c) * cin + i) * cout + o] = v as f32;
                }
            }
        }
    }
    u
}

vectorized! {
    /// [`epilogue_body`] for the CPU's vector width.
    fn epilogue(o: &mut [f32], bias: &[f32], residual: Option<&[f32]>, relu: bool) = epilogue_body;
}

/// `relu?(o + bias + residual?)` over rows of `bias.len()` channels.
#[inline(always)]
fn epilogue_body(o: &mut [f32], bias: &[f32], residual: Option<&[f32]>, relu: bool) {
    let c = bias.len();
    for (r, row) in o.chunks_exact_mut(c).enumerate() {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
        if let Some(res) = residual {
            for (v, x) in row.iter_mut().zip(&res[r * c..(r + 1) * c]) {
                *v += x;
            }
        }
        if relu {
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// Max pooling, `k`×`k`, stride `s`, padding `p` (padding never wins, as in PyTorch), into
/// the best fitting of the `spare` buffers.
pub fn max_pool(x: &Act, k: usize, s: usize, p: usize, spare: &mut Vec<Vec<f32>>) -> Act {
    let (ho, wo) = ((x.h + 2 * p - k) / s + 1, (x.w + 2 * p - k) / s + 1);
    let c = x.c;
    let mut buf = fit(spare, x.n * ho * wo * c);
    buf.fill(f32::NEG_INFINITY);
    buf.par_chunks_mut(wo * c).enumerate().for_each(|(row, o)| pool_row(x, o, row, ho, wo, k, s, p));
    Act { n: x.n, h: ho, w: wo, c, data: buf }
}

vectorized! {
    /// Output row `row` of [`max_pool`].
    #[allow(clippy::too_many_arguments)]
    fn pool_row(x: &Act, o: &mut [f32], row: usize, ho: usize, wo: usize, k: usize, s: usize, p: usize) = pool_row_body;
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pool_row_body(x: &Act, o: &mut [f32], row: usize, ho: usize, wo: usize, k: usize, s: usize, p: usize) {
    let c = x.c;
    let (b, oy) = (row / ho, row % ho);
    for ox in 0..wo {
        let dst = &mut o[ox * c..(ox + 1) * c];
        for ky in 0..k {
            let iy = (oy * s + ky) as isize - p as isize;
            if iy < 0 || iy >= x.h as isize {
                continue;
            }
            for kx in 0..k {
                let ix = (ox * s + kx) as isize - p as isize;
                if ix < 0 || ix >= x.w as isize {
                    continue;
                }
                let src = ((b * x.h + iy as usize) * x.w + ix as usize) * c;
                for (d, &v) in dst.iter_mut().zip(&x.data[src..src + c]) {
                    // NaN propagates, as in torch.
                    *d = if v > *d || v.is_nan() { v } else { *d };
                }
            }
        }
    }
}

/// Global average pooling: `[N, C]` features.
pub fn global_avg_pool(x: &Act) -> Vec<f32> {
    let (c, hw) = (x.c, x.h * x.w);
    let mut out = vec![0f32; x.n * c];
    out.par_chunks_mut(c).enumerate().for_each(|(b, o)| {
        let mut acc = vec![0f64; c];
        for px in x.data[b * hw * c..(b + 1) * hw * c].chunks_exact(c) {
            for (a, &v) in acc.iter_mut().zip(px) {
                *a += v as f64;
            }
        }
        for (d, a) in o.iter_mut().zip(acc) {
            *d = (a / hw as f64) as f32;
        }
    });
    out
}

/// A fully connected layer, PyTorch's `[out, in]` weight.
pub struct Dense {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub d_in: usize,
}

impl Dense {
    /// Rows of `x` (`[N, d_in]`) to `[N, out]`, accumulated in f64.
    pub fn forward(&self, x: &[f32]) -> Vec<Vec<f32>> {
        x.chunks_exact(self.d_in)
            .map(|row| {
                self.weight
                    .chunks_exact(self.d_in)
                    .zip(&self.bias)
                    .map(|(w, &b)| {
                        (b as f64 + w.iter().zip(row).map(|(&a, &v)| a as f64 * v as f64).sum::<f64>()) as f32
                    })
                    .collect()
            })
            .collect()
    }
}

/// A network on the CPU path.
pub enum Net {
    ResNet(ResNet),
    ConvNext(convnext::ConvNext),
    Vit(vit::Vit),
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Net::ResNet(m) => write!(f, "{m:?}"),
            Net::ConvNext(m) => write!(f, "cpu::ConvNext({} stages)", m.stages.len()),
            Net::Vit(m) => write!(f, "cpu::Vit({} layers)", m.layers.len()),
        }
    }
}

impl Net {
    /// Pooled features `[N, F]` of normalised NHWC images: what the head takes, and what a
    /// video averages over its frames.
    pub fn features(&self, x: &Act) -> Vec<f32> {
        match self {
            Net::ResNet(m) => m.features(x),
            Net::ConvNext(m) => m.features(x),
            Net::Vit(m) => m.features(x),
        }
    }

    /// Logits of `[N, F]` features.
    pub fn head(&self, features: &[f32]) -> Vec<Vec<f32>> {
        match self {
            Net::ResNet(m) => m.head(features),
            Net::ConvNext(m) => m.head(features),
            Net::Vit(m) => m.head(features),
        }
    }
}

/// One residual block: basic (two 3×3) or bottleneck (1×1, 3×3, 1×1).
pub struct Block {
    pub convs: Vec<Conv>,
    pub downsample: Option<Conv>,
}

impl Block {
    /// The block's output; `x`'s buffer and the block's own go to `spare`.
    fn forward_in(&self, x: Act, spare: &mut Vec<Vec<f32>>) -> Act {
        let identity = self.downsample.as_ref().map(|d| d.forward_in(&x, None, false, spare));
        let last = self.convs.len() - 1;
        let mut y = self.convs[0].forward_in(&x, None, true, spare);
        for c in &self.convs[1..last] {
            let next = c.forward_in(&y, None, true, spare);
            spare.push(std::mem::replace(&mut y, next).data);
        }
        let residual = Some(identity.as_ref().unwrap_or(&x));
        let out = self.convs[last].forward_in(&y, residual, true, spare);
        spare.push(y.data);
        spare.extend(identity.map(|i| i.data));
        spare.push(x.data);
        out
    }
}

/// A ResNet on the CPU path.
pub struct ResNet {
    pub stem: Conv,
    pub blocks: Vec<Block>,
    pub fc: Dense,
    pub pool: Pool,
    pub per_image: PerImage,
}

impl std::fmt::Debug for ResNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cpu::ResNet({} blocks, {} features)", self.blocks.len(), self.fc.d_in)
    }
}

impl ResNet {
    /// Pooled features `[N, C]` of normalised NCHW images.
    pub fn features(&self, x: &Act) -> Vec<f32> {
        // Buffers of finished layers (and of earlier passes), for the next layers' outputs.
        let mut spare = self.pool.take();
        let (mut x, next) = if x.n > 1 {
            self.early_per_image(x, &mut spare)
        } else {
            let stem = self.stem.forward_in(x, None, true, &mut spare);
            let pooled = max_pool(&stem, 3, 2, 1, &mut spare);
            spare.push(stem.data);
            (pooled, 0)
        };
        for block in &self.blocks[next..] {
            x = block.forward_in(x, &mut spare);
        }
        let features = global_avg_pool(&x);
        spare.push(x.data);
        self.pool.keep(spare);
        features
    }

    /// The stem and the blocks whose inputs have at least [`PER_IMAGE_PIXELS`] pixels, one
    /// image at a time on each thread ([`PerImage`]), then the images as one batch, and the
    /// index of the next block.
    fn early_per_image(&self, x: &Act, spare: &mut Vec<Vec<f32>>) -> (Act, usize) {
        self.per_image.run(x, spare, |image, own| {
            let stem = self.stem.forward_in(&image, None, true, own);
            own.push(image.data);
            let mut y = max_pool(&stem, 3, 2, 1, own);
            own.push(stem.data);
            let mut next = 0;
            while next < self.blocks.len() && y.h * y.w >= PER_IMAGE_PIXELS {
                y = self.blocks[next].forward_in(y, own);
                next += 1;
            }
            (y, next)
        })
    }

    pub fn head(&self, features: &[f32]) -> Vec<Vec<f32>> {
        self.fc.forward(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct convolution in f64: `[N, H, W, cout]` from NHWC input and a `[cout][cin][k][k]` filter.
    fn direct(x: &Act, wt: &[f32], cout: usize, k: usize, s: usize, p: usize, bias: &[f32]) -> Vec<f64> {
        let (ho, wo) = ((x.h + 2 * p - k) / s + 1, (x.w + 2 * p - k) / s + 1);
        let mut out = vec![0f64; x.n * ho * wo * cout];
        for b in 0..x.n {
            for oy in 0..ho {
                for ox in 0..wo {
                    for o in 0..cout {
                        let mut acc = bias[o] as f64;
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) = (
                                    (oy * s + ky) as isize - p as isize,
                                    (ox * s + kx) as isize - p as isize,
                                );
                                if iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize {
                                    continue;
                                }
                                for i in 0..x.c {
                                    let v = x.data[((b * x.h + iy as usize) * x.w + ix as usize) * x.c + i];
                                    acc += v as f64 * wt[((o * x.c + i) * k + ky) * k + kx] as f64;
                                }
                            }
                        }
                        out[((b * ho + oy) * wo + ox) * cout + o] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64)
            .map(|i| {
                let z = crate::weights::splitmix(seed.wrapping_mul(1_000_003).wrapping_add(i));
                (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn convolutions_match_a_direct_f64_convolution() {
        // (n, h, w, cin, cout, k, stride, pad): Winograd with partial edge tiles and odd channel
        // counts, im2col with stride and padding, pointwise with and without stride.
        let cases = [
            (2, 9, 7, 5, 11, 3, 1, 1),
            (1, 16, 16, 16, 8, 3, 1, 1),
            (2, 7, 7, 3, 4, 3, 2, 1),
            (1, 11, 13, 3, 6, 7, 2, 3),
            (2, 6, 5, 12, 10, 1, 1, 0),
            (2, 6, 5, 12, 10, 1, 2, 0),
        ];
        for (seed, &(n, h, w, cin, cout, k, s, p)) in cases.iter().enumerate() {
            let x = Act { n, h, w, c: cin, data: values(n * h * w * cin, seed as u64) };
            let wt = values(cout * cin * k * k, 100 + seed as u64);
            let bias = values(cout, 200 + seed as u64);
            let conv = Conv::new(&wt, cout, cin, k, s, p, Some(&bias), None);
            assert_eq!(matches!(conv.filters, Filters::Winograd(_)), k == 3 && s == 1);
            let want = direct(&x, &wt, cout, k, s, p, &bias);
            let res = Act { data: values(want.len(), 300 + seed as u64), ..conv.forward(&x, None, false) };
            let got = conv.forward(&x, Some(&res), true);
            assert_eq!(got.data.len(), want.len());
            for (i, (&g, &d)) in got.data.iter().zip(&want).enumerate() {
                let expect = (d + res.data[i] as f64).max(0.0);
                assert!(
                    (g as f64 - expect).abs() < 2e-5 * (1.0 + expect.abs()),
                    "case {seed}, {i}: {g} vs {expect}"
                );
            }
        }
    }

    #[test]
    fn batch_norm_folds_into_the_convolution() {
        let x = Act { n: 1, h: 5, w: 6, c: 4, data: values(120, 7) };
        let wt = values(3 * 4 * 9, 8);
        let bn = BatchNorm {
            gamma: vec![1.5, -0.5, 2.0],
            beta: vec![0.1, 0.2, -0.3],
            mean: vec![0.05, -0.2, 0.4],
            var: vec![0.9, 2.0, 0.25],
            eps: 1e-5,
        };
        let got = Conv::new(&wt, 3, 4, 3, 1, 1, None, Some(&bn)).forward(&x, None, false);
        let raw = direct(&x, &wt, 3, 3, 1, 1, &[0.0; 3]);
        for (i, (&g, &r)) in got.data.iter().zip(&raw).enumerate() {
            let o = i % 3;
            let want = (r - bn.mean[o] as f64) / (bn.var[o] as f64 + bn.eps).sqrt() * bn.gamma[o] as f64
                + bn.beta[o] as f64;
            assert!((g as f64 - want).abs() < 1e-5 * (1.0 + want.abs()), "{i}: {g} vs {want}");
        }
    }

    #[test]
    fn pooling() {
        let x = Act { n: 2, h: 5, w: 4, c: 3, data: values(120, 9) };
        let mp = max_pool(&x, 3, 2, 1, &mut Vec::new());
        assert_eq!((mp.h, mp.w), (3, 2));
        for b in 0..2 {
            for oy in 0..3usize {
                for ox in 0..2usize {
                    for c in 0..3 {
                        let mut m = f32::NEG_INFINITY;
                        for iy in (2 * oy).saturating_sub(1)..(2 * oy + 2).min(5) {
                            for ix in (2 * ox).saturating_sub(1)..(2 * ox + 2).min(4) {
                                m = m.max(x.data[((b * 5 + iy) * 4 + ix) * 3 + c]);
                            }
                        }
                        assert_eq!(mp.data[((b * 3 + oy) * 2 + ox) * 3 + c], m);
                    }
                }
            }
        }
        let avg = global_avg_pool(&x);
        let want: f64 = (0..20).map(|p| x.data[(20 + p) * 3 + 1] as f64).sum::<f64>() / 20.0;
        assert!((avg[4] as f64 - want).abs() < 1e-7);
    }

    #[test]
    fn an_empty_batch_gives_no_rows() {
        let conv = Conv::new(&values(4 * 2 * 9, 1), 4, 2, 3, 1, 1, None, None);
        let y = conv.forward(&Act { n: 0, h: 5, w: 5, c: 2, data: Vec::new() }, None, true);
        assert_eq!((y.n, y.h, y.w, y.c, y.data.len()), (0, 5, 5, 4, 0));
    }
}
