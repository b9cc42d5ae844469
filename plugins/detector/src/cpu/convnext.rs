//! ConvNeXt on the CPU path: NHWC throughout, so torchvision's channels-last LayerNorm and
//! linear layers need no permutes. A block is one pass of the depthwise 7×7 with its LayerNorm
//! applied per pixel, `fc1` with GELU applied per block of rows, and `fc2` with the layer scale folded
//! into its weights (in f64) adding into the residual stream; where the weights are small (the
//! first stages), `fc1`·GELU·`fc2` runs a block of rows at a time, so that the hidden layer (four
//! times the channels) stays in cache.

use super::ops::{Depthwise, FUSED_ROWS, Linear, Norm, Then};
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
        // The hidden rows of the blocks that do not fuse their two linear layers.
        let rows = x.n * x.h * x.w;
        let mut hidden = Vec::new();
        let (mut normed, mut scratch) = (fit(&mut spare, rows * x.c), fit(&mut spare, rows * x.c));
        for (i, stage) in self.stages.iter().enumerate() {
            let rows = x.n * x.h * x.w;
            for block in stage {
                let normed = grow(&mut normed, rows * x.c, &mut spare);
                block.dwconv.forward_norm(&x.data, (x.h, x.w), normed, &block.norm);
                if block.fc1.d_in < FUSED_ROWS {
                    block.fc1.gelu_into(&block.fc2, normed, &mut x.data);
                    continue;
                }
                let hidden = grow(&mut hidden, rows * block.fc1.d_out, &mut spare);
                block.fc1.forward(normed, hidden, Then::Gelu);
                let residual = Then::AddInto(SyncPtr(x.data.as_mut_ptr()));
                block.fc2.forward(hidden, grow(&mut scratch, rows * x.c, &mut spare), residual);
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

/// The first `n` values of `buf`. Where it has fewer, the spare buffer that best holds them
/// takes its place, and the old one goes to the spares.
fn grow<'a>(buf: &'a mut Vec<f32>, n: usize, spare: &mut Vec<Vec<f32>>) -> &'a mut [f32] {
    if buf.len() < n {
        let old = std::mem::replace(buf, fit(spare, n));
        if old.capacity() > 0 {
            spare.push(old);
        }
    }
    &mut buf[..n]
}
