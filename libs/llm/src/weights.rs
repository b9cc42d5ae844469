//! A checkpoint's weight files: discovery (single file or sharded index), validation, NaN/Inf
//! checks, SN37's weight-norm check, and building the model from memory-mapped tensors.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::LlmError;
use crate::config::{Family, ModelConfig};
use crate::model::CausalLm;

/// The memory-mapped safetensors files of a checkpoint.
#[derive(Debug)]
pub struct WeightFiles {
    pub paths: Vec<PathBuf>,
    maps: Vec<Mmap>,
}

fn werr(path: &Path, msg: impl std::fmt::Display) -> LlmError {
    LlmError::Weights(format!("{}: {msg}", path.display()))
}

impl WeightFiles {
    /// Finds `model.safetensors`, or the shards `model.safetensors.index.json` names (plain file
    /// names in the same directory only), maps them and validates their headers.
    pub fn open(dir: &Path) -> Result<WeightFiles, LlmError> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let paths = if single.is_file() {
            vec![single]
        } else if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|e| werr(&index, e))?;
            let v: Value =
                serde_json::from_str(&text).map_err(|e| werr(&index, format!("not valid JSON: {e}")))?;
            let map = v
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| werr(&index, "no `weight_map` object"))?;
            let mut names = BTreeSet::new();
            for f in map.values() {
                let f = f.as_str().ok_or_else(|| werr(&index, "a `weight_map` value is not a file name"))?;
                if f.is_empty() || f.contains('/') || f.contains('\\') || f == "." || f == ".." {
                    return Err(werr(&index, format!("shard `{f}` is not a plain file name")));
                }
                names.insert(f.to_string());
            }
            names.into_iter().map(|n| dir.join(n)).collect()
        } else {
            return Err(LlmError::Weights(format!(
                "{}: neither model.safetensors nor model.safetensors.index.json",
                dir.display()
            )));
        };
        let mut maps = Vec::with_capacity(paths.len());
        for p in &paths {
            let f = File::open(p).map_err(|e| werr(p, e))?;
            // SAFETY: the file is only read; arena never writes to a model directory while it
            // is being evaluated.
            let m = unsafe { Mmap::map(&f) }.map_err(|e| werr(p, e))?;
            SafeTensors::deserialize(&m).map_err(|e| werr(p, format!("invalid safetensors: {e}")))?;
            maps.push(m);
        }
        Ok(WeightFiles { paths, maps })
    }

    fn each<F: FnMut(&str, safetensors::tensor::TensorView<'_>) -> Result<(), LlmError>>(
        &self,
        mut f: F,
    ) -> Result<(), LlmError> {
        for (p, m) in self.paths.iter().zip(&self.maps) {
            let st = SafeTensors::deserialize(m).map_err(|e| werr(p, e))?;
            for (name, view) in st.tensors() {
                f(&name, view)?;
            }
        }
        Ok(())
    }

    /// Rejects any tensor with a NaN or infinite value, or of a non-float dtype.
    pub fn check_finite(&self) -> Result<(), LlmError> {
        self.each(|name, view| {
            let mut bad = None;
            for_each_value(&view, name, |i, x| {
                if !x.is_finite() && bad.is_none() {
                    bad = Some((i, x));
                }
            })?;
            match bad {
                Some((i, x)) => Err(LlmError::Weights(format!(
                    "tensor `{name}` has a non-finite value ({x}) at index {i}"
                ))),
                None => Ok(()),
            }
        })
    }

    /// Builds the model, memory-mapping the tensors and converting them to `dtype` on `device`.
    pub fn build(&self, cfg: &ModelConfig, dtype: DType, device: &Device) -> Result<CausalLm, LlmError> {
        // SAFETY: as in `open`; candle maps the same read-only files.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&self.paths, dtype, device)? };
        CausalLm::new(cfg, vb, false)
    }

    /// Frobenius norms of each layer's q, k, v, o, up and down projections (SN37's norm check),
    /// computed in f64 from the stored values. Fused projections (Phi-3) are split by rows.
    pub fn projection_norms(&self, cfg: &ModelConfig) -> Result<Vec<[f64; 6]>, LlmError> {
        let mut norms = vec![[f64::NAN; 6]; cfg.num_layers];
        let (nh, nkv, hd, inter) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.intermediate_size);
        self.each(|name, view| {
            let Some(rest) = name.strip_prefix("model.layers.") else { return Ok(()) };
            let Some((idx, tail)) = rest.split_once('.') else { return Ok(()) };
            let Ok(layer) = idx.parse::<usize>() else { return Ok(()) };
            if layer >= cfg.num_layers {
                return Ok(());
            }
            let cols = view.shape().get(1).copied().unwrap_or(1);
            // (slot, first row, rows) pairs this tensor contributes.
            let parts: Vec<(usize, usize, usize)> = match tail {
                "self_attn.q_proj.weight" => vec![(0, 0, usize::MAX)],
                "self_attn.k_proj.weight" => vec![(1, 0, usize::MAX)],
                "self_attn.v_proj.weight" => vec![(2, 0, usize::MAX)],
                "self_attn.o_proj.weight" => vec![(3, 0, usize::MAX)],
                "mlp.up_proj.weight" => vec![(4, 0, usize::MAX)],
                "mlp.down_proj.weight" => vec![(5, 0, usize::MAX)],
                "self_attn.qkv_proj.weight" if cfg.family == Family::Phi3 => {
                    vec![(0, 0, nh * hd), (1, nh * hd, nkv * hd), (2, (nh + nkv) * hd, nkv * hd)]
                }
                "mlp.gate_up_proj.weight" if cfg.family == Family::Phi3 => vec![(4, inter, inter)],
                _ => return Ok(()),
            };
            let mut sums = vec![0.0f64; parts.len()];
            for_each_value(&view, name, |i, x| {
                let row = i / cols.max(1);
                for (k, &(_, first, rows)) in parts.iter().enumerate() {
                    if row >= first && row - first < rows {
                        sums[k] += (x as f64) * (x as f64);
                    }
                }
            })?;
            for (k, &(slot, _, _)) in parts.iter().enumerate() {
                norms[layer][slot] = sums[k].sqrt();
            }
            Ok(())
        })?;
        if let Some((layer, _)) = norms.iter().enumerate().find(|(_, n)| n.iter().any(|x| x.is_nan())) {
            return Err(LlmError::Weights(format!("layer {layer} lacks a q/k/v/o/up/down projection")));
        }
        Ok(norms)
    }
}

/// SN37's rule: any projection norm above `hard` rejects the model; otherwise, for each of the 6
/// projection kinds, the fraction of layers whose norm exceeds `soft`; the model is accepted when
/// the mean of those 6 fractions is at most `max_fraction`. Returns the mean fraction, or the
/// reason for rejection.
pub fn check_norms(norms: &[[f64; 6]], soft: f64, max_fraction: f64, hard: f64) -> Result<f64, String> {
    const NAMES: [&str; 6] = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"];
    for (layer, n) in norms.iter().enumerate() {
        for (k, &x) in n.iter().enumerate() {
            if x > hard {
                return Err(format!(
                    "layer {layer} {} has norm {x:.4} above the hard limit {hard}",
                    NAMES[k]
                ));
            }
        }
    }
    if norms.is_empty() {
        return Ok(0.0);
    }
    let mean =
        (0..6).map(|k| norms.iter().filter(|n| n[k] > soft).count() as f64 / norms.len() as f64).sum::<f64>()
            / 6.0;
    if mean > max_fraction {
        return Err(format!(
            "mean fraction of projections with norm above {soft} is {mean:.4}, above {max_fraction}"
        ));
    }
    Ok(mean)
}

/// Calls `f(index, value)` for each element of a float tensor; other dtypes are an error.
fn for_each_value(
    view: &safetensors::tensor::TensorView<'_>,
    name: &str,
    mut f: impl FnMut(usize, f32),
) -> Result<(), LlmError> {
    let data = view.data();
    match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .enumerate()
            .for_each(|(i, b)| f(i, f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        Dtype::BF16 => data
            .chunks_exact(2)
            .enumerate()
            .for_each(|(i, b)| f(i, f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))),
        Dtype::F16 => data
            .chunks_exact(2)
            .enumerate()
            .for_each(|(i, b)| f(i, f16_to_f32(u16::from_le_bytes([b[0], b[1]])))),
        other => {
            return Err(LlmError::Weights(format!(
                "tensor `{name}` has dtype {other:?}; expected F32, BF16 or F16"
            )));
        }
    }
    Ok(())
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if mant == 0 => sign,
        0 => {
            // Subnormal: normalize.
            let mut e = 127 - 15 + 1;
            let mut m = mant;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn norm_rule_follows_sn37() {
        let ok = vec![[1.0; 6]; 4];
        assert_eq!(check_norms(&ok, 2.0, 0.1, 10.0), Ok(0.0));
        let mut some = ok.clone();
        some[0] = [3.0; 6]; // every kind over soft in 1 of 4 layers: mean fraction 0.25
        assert_eq!(check_norms(&some, 2.0, 0.25, 10.0), Ok(0.25));
        assert!(check_norms(&some, 2.0, 0.2, 10.0).is_err());
        some[1][5] = 11.0;
        assert!(check_norms(&some, 2.0, 1.0, 10.0).unwrap_err().contains("down_proj"));
    }
}
