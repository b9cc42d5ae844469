//! Weights: reading a submission's safetensors file into named f32 tensors (validated, never
//! trusted), the counter-based generator the parity script shares, and writing a model back
//! out under PyTorch's tensor names.
//!
//! Architectures build themselves through a [`Source`]: every tensor is asked for by its PyTorch
//! name and shape, and the source either takes it from a file (checking shape, marking it used),
//! or generates it. The source also records which burn parameter holds which name, so a trained
//! model is exported under the same names ([`export`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::tensor::TensorData;
use safetensors::{Dtype, SafeTensors};

use crate::DetectorError;

/// Largest weights file read (the whole file is mapped, never copied beyond one tensor at a time).
pub const MAX_WEIGHTS_BYTES: u64 = 4 << 30;

/// One tensor of a weights file, as f32.
#[derive(Clone, Debug)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Named tensors read from a safetensors file.
#[derive(Debug, Default)]
pub struct WeightMap {
    tensors: BTreeMap<String, HostTensor>,
    /// Tensors present in the file that no architecture reads (PyTorch's BatchNorm counters).
    ignored: Vec<String>,
}

fn is_ignored(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

impl WeightMap {
    /// Reads and validates a safetensors file: header bounds and offsets (the safetensors crate),
    /// float dtypes only (integers only for BatchNorm counters), finite values.
    pub fn open(path: &Path) -> Result<WeightMap, DetectorError> {
        let bad = |m: String| DetectorError::Submission(format!("{}: {m}", path.display()));
        let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open: {e}")))?;
        let len = file.metadata().map_err(|e| bad(e.to_string()))?.len();
        if len > MAX_WEIGHTS_BYTES {
            return Err(bad(format!("{len} bytes, more than the {MAX_WEIGHTS_BYTES} accepted")));
        }
        // SAFETY: the map is read-only and dropped before this function returns; a file truncated
        // underneath us can fault, which the host's worker isolation contains.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| bad(format!("cannot map: {e}")))?;
        Self::from_bytes(&mmap).map_err(bad)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<WeightMap, String> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a valid safetensors file: {e}"))?;
        let mut map = WeightMap::default();
        for (name, view) in st.tensors() {
            if is_ignored(&name) {
                map.ignored.push(name);
                continue;
            }
            let raw = view.data();
            let data: Vec<f32> = match view.dtype() {
                Dtype::F32 => {
                    raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
                }
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()) as f32)
                    .collect(),
                Dtype::F16 => {
                    raw.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
                }
                Dtype::BF16 => raw
                    .chunks_exact(2)
                    .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
                    .collect(),
                other => {
                    return Err(format!(
                        "tensor `{name}` has dtype {other:?}; weights must be F32, F16, BF16 or F64"
                    ));
                }
            };
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(format!("tensor `{name}` holds a non-finite value ({}) at element {i}", data[i]));
            }
            map.tensors.insert(name, HostTensor { shape: view.shape().to_vec(), data });
        }
        Ok(map)
    }
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let shift = f.leading_zeros() - 21;
            sign | ((127 - 15 + 1 - shift) << 23) | (((f << shift) & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// FNV-1a, 64 bits: the per-tensor key of the counter-based generator.
pub fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

pub use arena_plugin_api::splitmix::mix as splitmix;

/// The counter-based generator's value for tensor `name` (`tests/reference/detector_parity.py`,
/// `init_value`): uniform in [-1, 1) from the top 24 bits of splitmix64, scaled by the kind of
/// tensor the name and rank say it is (norm scale, bias, running variance, He-scaled weight).
pub fn synthetic_weight(name: &str, shape: &[usize], seed: u64) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let key = fnv1a64(name) ^ seed;
    let last = name.rsplit('.').next().unwrap_or(name);
    let fan_in: usize = shape.iter().skip(1).product();
    let scale = (2.0 / fan_in.max(1) as f64).sqrt();
    (0..n as u64)
        .map(|i| {
            let u = (splitmix(key.wrapping_add(i)) >> 40) as f64 / 8_388_608.0 - 1.0;
            let v = match (last, shape.len()) {
                ("running_var", _) => 1.0 + 0.5 * u,
                ("weight", 1) => 1.0 + 0.1 * u,
                (_, 1) => 0.1 * u,
                _ => u * scale,
            };
            v as f32
        })
        .collect()
}

/// How a stored tensor maps onto a burn parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    AsIs,
    /// PyTorch's Linear stores `[out, in]`; burn's `[in, out]`.
    Transposed,
}

enum Mode {
    File(WeightMap),
    Synthetic(u64),
}

/// Where an architecture's tensors come from; see the module docs.
pub struct Source {
    mode: Mode,
    device: Device,
    /// Which parameter holds which stored name (for [`export`]).
    names: HashMap<ParamId, (String, Layout)>,
    /// Names in the order the architecture asked for them.
    order: Vec<String>,
}

impl Source {
    pub fn file(weights: WeightMap, device: &Device) -> Source {
        Source { mode: Mode::File(weights), device: device.clone(), names: HashMap::new(), order: Vec::new() }
    }

    /// Tensors from the counter-based generator (parity fixtures, and the initial weights of
    /// the project's tiny detectors).
    pub fn synthetic(seed: u64, device: &Device) -> Source {
        Source {
            mode: Mode::Synthetic(seed),
            device: device.clone(),
            names: HashMap::new(),
            order: Vec::new(),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn host(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, DetectorError> {
        match &mut self.mode {
            Mode::Synthetic(seed) => Ok(synthetic_weight(name, shape, *seed)),
            Mode::File(map) => {
                let t = map.tensors.remove(name).ok_or_else(|| {
                    DetectorError::Submission(format!(
                        "weights: tensor `{name}` (shape {shape:?}) is missing"
                    ))
                })?;
                if t.shape != shape {
                    return Err(DetectorError::Submission(format!(
                        "weights: tensor `{name}` has shape {:?}, the architecture expects {shape:?}",
                        t.shape
                    )));
                }
                Ok(t.data)
            }
        }
    }

    /// The tensor stored as `name` with PyTorch shape `shape`, as a parameter.
    pub fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        layout: Layout,
    ) -> Result<Param<Tensor<D>>, DetectorError> {
        let t = self.tensor(name, shape, layout)?;
        let p = Param::from_tensor(t);
        self.names.insert(p.id, (name.to_string(), layout));
        Ok(p)
    }

    /// The tensor stored as `name`, not registered as a parameter (callers that wrap it in a
    /// running state register it with [`Source::register`]).
    pub fn tensor<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        layout: Layout,
    ) -> Result<Tensor<D>, DetectorError> {
        let data = self.host(name, &shape)?;
        self.order.push(name.to_string());
        let t = Tensor::<D>::from_data(TensorData::new(data, shape), &self.device);
        Ok(match layout {
            Layout::AsIs => t,
            Layout::Transposed => t.transpose(),
        })
    }

    pub fn register(&mut self, id: ParamId, name: &str) {
        self.names.insert(id, (name.to_string(), Layout::AsIs));
    }

    /// Ends loading: a file tensor no architecture read is an error (a mismatched architecture
    /// shows up here, or as the first missing tensor).
    pub fn finish(self) -> Result<Naming, DetectorError> {
        if let Mode::File(map) = &self.mode
            && let Some(name) = map.tensors.keys().next()
        {
            return Err(DetectorError::Submission(format!(
                "weights: tensor `{name}` is not part of the architecture ({} unexpected tensors)",
                map.tensors.len()
            )));
        }
        Ok(Naming { names: self.names, order: self.order })
    }
}

/// Which parameter of a built model holds which stored tensor name.
#[derive(Clone, Debug, Default)]
pub struct Naming {
    names: HashMap<ParamId, (String, Layout)>,
    order: Vec<String>,
}

impl Naming {
    /// Stored names in the order the architecture reads them.
    pub fn order(&self) -> &[String] {
        &self.order
    }
}

struct Collect<'a> {
    naming: &'a Naming,
    out: BTreeMap<String, HostTensor>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some((name, layout)) = self.naming.names.get(&param.id) else { return };
        let t = param.val();
        let t = if *layout == Layout::Transposed { t.transpose() } else { t };
        let shape = t.dims().to_vec();
        let data = t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        self.out.insert(name.clone(), HostTensor { shape, data });
    }
}

/// The model's tensors under their stored (PyTorch) names.
pub fn export<M: Module>(model: &M, naming: &Naming) -> BTreeMap<String, HostTensor> {
    let mut c = Collect { naming, out: BTreeMap::new() };
    model.visit(&mut c);
    c.out
}

/// Writes tensors as an F32 safetensors file. `torch_counters`: also write, for every BatchNorm
/// (a `.running_var`), the int64 `num_batches_tracked` (0) that a PyTorch state dict carries, so
/// `load_state_dict(strict=True)` accepts the file.
pub fn write_safetensors(
    tensors: &BTreeMap<String, HostTensor>,
    torch_counters: bool,
    path: &Path,
) -> Result<(), DetectorError> {
    let mut bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            (n.clone(), Dtype::F32, t.shape.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect();
    if torch_counters {
        for n in tensors.keys().filter_map(|n| n.strip_suffix(".running_var")) {
            bytes.push((
                format!("{n}.num_batches_tracked"),
                Dtype::I64,
                Vec::new(),
                0i64.to_le_bytes().to_vec(),
            ));
        }
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, d, s, b)| {
            safetensors::tensor::TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| DetectorError::Internal(format!("tensor `{n}`: {e}")))
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize_to_file(views, None, path)
        .map_err(|e| DetectorError::Internal(format!("writing {}: {e}", path.display())))
}
