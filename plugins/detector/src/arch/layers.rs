//! Layers built from a [`Source`] under PyTorch's tensor names.

use burn::module::{ParamId, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, LayerNorm, LayerNormConfig, Linear, PaddingConfig2d};

use crate::DetectorError;
use crate::cpu;
use crate::weights::{Layout, Source};

/// A PyTorch `nn.Conv2d` (`{name}.weight`, optionally `{name}.bias`), square kernel, symmetric
/// padding.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    src: &mut Source,
    name: &str,
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
    bias: bool,
) -> Result<Conv2d, DetectorError> {
    let weight =
        src.param(&format!("{name}.weight"), [out_ch, in_ch / groups, kernel, kernel], Layout::AsIs)?;
    let bias = if bias { Some(src.param(&format!("{name}.bias"), [out_ch], Layout::AsIs)?) } else { None };
    Ok(Conv2d {
        weight,
        bias,
        stride: [stride, stride],
        kernel_size: [kernel, kernel],
        dilation: [1, 1],
        groups,
        padding: PaddingConfig2d::Explicit(padding, padding, padding, padding),
    })
}

/// A PyTorch `nn.BatchNorm2d` (weight, bias, running_mean, running_var), eps 1e-5.
pub fn batch_norm(src: &mut Source, name: &str, n: usize) -> Result<BatchNorm, DetectorError> {
    let mut bn = BatchNormConfig::new(n).with_epsilon(1e-5).with_momentum(0.1).init(src.device());
    bn.gamma = src.param(&format!("{name}.weight"), [n], Layout::AsIs)?;
    bn.beta = src.param(&format!("{name}.bias"), [n], Layout::AsIs)?;
    for (field, slot) in [("running_mean", &mut bn.running_mean), ("running_var", &mut bn.running_var)] {
        let stored = format!("{name}.{field}");
        let t = src.tensor(&stored, [n], Layout::AsIs)?;
        let id = ParamId::new();
        src.register(id, &stored);
        *slot = RunningState::with_id(id, t);
    }
    Ok(bn)
}

/// A PyTorch `nn.Linear` (`[out, in]` weight, transposed into burn's `[in, out]`).
pub fn linear(
    src: &mut Source,
    name: &str,
    d_in: usize,
    d_out: usize,
    bias: bool,
) -> Result<Linear, DetectorError> {
    let weight = src.param(&format!("{name}.weight"), [d_out, d_in], Layout::Transposed)?;
    let bias = if bias { Some(src.param(&format!("{name}.bias"), [d_out], Layout::AsIs)?) } else { None };
    Ok(Linear { weight, bias })
}

/// A PyTorch `nn.LayerNorm` over the last dimension.
pub fn layer_norm(src: &mut Source, name: &str, n: usize, eps: f64) -> Result<LayerNorm, DetectorError> {
    let mut ln = LayerNormConfig::new(n).with_epsilon(eps).init(src.device());
    ln.gamma = src.param(&format!("{name}.weight"), [n], Layout::AsIs)?;
    ln.beta = Some(src.param(&format!("{name}.bias"), [n], Layout::AsIs)?);
    Ok(ln)
}

/// A tensor's values, in f32.
pub fn values<const D: usize>(t: burn::prelude::Tensor<D>) -> Result<Vec<f32>, DetectorError> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| DetectorError::Internal(format!("reading weights: {e:?}")))
}

/// A convolution (and the batch norm after it) for the CPU path.
pub fn cpu_conv(conv: &Conv2d, bn: Option<&BatchNorm>) -> Result<cpu::Conv, DetectorError> {
    let [cout, cin, k, k2] = conv.weight.val().dims();
    let pad = match conv.padding {
        PaddingConfig2d::Explicit(p, ..) => p,
        _ => 0,
    };
    if k != k2 || conv.groups != 1 || conv.stride[0] != conv.stride[1] || conv.dilation != [1, 1] {
        return Err(DetectorError::Internal(
            "the CPU path takes square, ungrouped, undilated convolutions".into(),
        ));
    }
    let bias = conv.bias.as_ref().map(|b| values(b.val())).transpose()?;
    let bn = match bn {
        Some(bn) => Some(cpu::BatchNorm {
            gamma: values(bn.gamma.val())?,
            beta: values(bn.beta.val())?,
            mean: values(bn.running_mean.value())?,
            var: values(bn.running_var.value())?,
            eps: bn.epsilon,
        }),
        None => None,
    };
    let weight = values(conv.weight.val())?;
    Ok(cpu::Conv::new(&weight, cout, cin, k, conv.stride[0], pad, bias.as_deref(), bn.as_ref()))
}

/// A linear layer for the CPU path (PyTorch's `[out, in]` weight).
pub fn cpu_dense(linear: &Linear) -> Result<cpu::Dense, DetectorError> {
    let [d_in, d_out] = linear.weight.val().dims();
    let bias = match &linear.bias {
        Some(b) => values(b.val())?,
        None => vec![0.0; d_out],
    };
    Ok(cpu::Dense { weight: values(linear.weight.val().transpose())?, bias, d_in })
}

/// A linear layer for the CPU path's token and pixel rows (burn's `[in, out]` weight as is).
pub fn cpu_linear(linear: &Linear) -> Result<cpu::ops::Linear, DetectorError> {
    let [d_in, d_out] = linear.weight.val().dims();
    let bias = match &linear.bias {
        Some(b) => values(b.val())?,
        None => vec![0.0; d_out],
    };
    Ok(cpu::ops::Linear::new(values(linear.weight.val())?, bias, d_in, d_out))
}

/// A LayerNorm for the CPU path (burn keeps its epsilon private: the architecture's).
pub fn cpu_norm(ln: &LayerNorm, eps: f64) -> Result<cpu::ops::Norm, DetectorError> {
    let gamma = values(ln.gamma.val())?;
    let beta = match &ln.beta {
        Some(b) => values(b.val())?,
        None => vec![0.0; gamma.len()],
    };
    Ok(cpu::ops::Norm { gamma, beta, eps })
}
