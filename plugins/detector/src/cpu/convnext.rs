//! ConvNeXt on the CPU path: NHWC throughout, so torchvision's channels-last LayerNorm and
//! linear layers need no permutes. A block is one pass of the depthwise 7×7 with its LayerNorm
//! applied per pixel, `fc1` with GELU applied per tile, and `fc2` with the layer scale folded
//! into its weights (in f64) adding into the residual stream.

use super::ops::{Depthwise, Linear, Norm, Then};
use super::{Act, Conv, Dense, Pool, SyncPtr, fit, global_avg_pool};

pub struct Block {
    pub dwconv: Depthwise,
    pub norm: Norm,
    pub fc1: Linear,
    /// With the layer scale folded in.
    pub fc2: Linear,
}

/// LayerNorm over channels, then a 2×2 stride-2 convolution.
pub struct Downsample {
    pub norm: Norm,
    pub conv: Conv,
}

pub struct ConvNext {
    pub stem: Conv,
    pub stem_norm: Norm,
    pub stages: Vec<Vec<Block>>,
    pub downsamples: Vec<Downsample>,
    pub head_norm: Norm,
    pub head: Dense,
    pub pool: Pool,
}

impl ConvNext {
    /// Pooled features `[N, C]` (before the head's LayerNorm) of normalised images.
    pub fn features(&self, x: &Act) -> Vec<f32> {
        // Buffers of earlier passes; scratch for the whole pass, grown when a layer needs more
        // (the first stage's are the largest: each stage has a quarter of the pixels and twice
        // the channels).
        let mut spare = self.pool.take();
        let mut x = self.stem.forward_in(x, None, false, &mut spare);
        self.stem_norm.rows_in_place(&mut x.data);
        let (rows, hid) =
            (x.n * x.h * x.w, self.stages.first().and_then(|s| s.first()).map_or(0, |b| b.fc1.d_out));
        let mut hidden = fit(&mut spare, rows * hid);
        let (mut normed, mut scratch) = (fit(&mut spare, rows * x.c), fit(&mut spare, rows * x.c));
        for (i, stage) in self.stages.iter().enumerate() {
            let rows = x.n * x.h * x.w;
            for block in stage {
                let normed = grow(&mut normed, rows * x.c);
                block.dwconv.forward_norm(&x.data, (x.h, x.w), normed, &block.norm);
                let hidden = grow(&mut hidden, rows * block.fc1.d_out);
                block.fc1.forward(normed, hidden, Then::Gelu);
                let residual = Then::AddInto(SyncPtr(x.data.as_mut_ptr()));
                block.fc2.forward(hidden, grow(&mut scratch, rows * x.c), residual);
            }
            if let Some(d) = self.downsamples.get(i) {
                let mut y = Act { data: fit(&mut spare, x.data.len()), ..x };
                d.norm.rows(&x.data, &mut y.data);
                let out = d.conv.forward_in(&y, None, false, &mut spare);
                spare.push(y.data);
                spare.push(std::mem::replace(&mut x, out).data);
            }
        }
        let features = global_avg_pool(&x);
        spare.extend([x.data, normed, hidden, scratch]);
        self.pool.keep(spare);
        features
    }

    pub fn head(&self, features: &[f32]) -> Vec<Vec<f32>> {
        let mut f = features.to_vec();
        self.head_norm.rows_in_place(&mut f);
        self.head.forward(&f)
    }
}

/// The first `n` values of `buf`, grown to hold them.
fn grow(buf: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    &mut buf[..n]
}
