//! GFLOP/s of the CPU path's linear layers, one product shape at a time, against the same
//! layer in PyTorch (MKL), ONNX Runtime (MLAS) and OpenVINO, in one run: where the networks of
//! `arena-detector-bench` lose or win inside their matrix products.
//!
//!   arena-linear-bench [--preset vit|convnext] [--batch 16] [--shapes ROWSxINxOUT[:gelu],...]
//!                      [--iters 5] [--rounds 3] [--python python3]
//!                      [--peers torch,onnxruntime,openvino] [--threads N] [--peak-tflops X]
//!
//! Each shape is `rows` input rows of `d_in` values times a `[d_in, d_out]` weight, plus a bias,
//! then GELU (exact, erf) for `:gelu`. `--preset vit` gives ViT-B/16's four (in_proj, out_proj,
//! mlp fc1 with GELU, fc2) at `--batch` images of 197 tokens; `--preset convnext` ConvNeXt-T's
//! pointwise pairs of its four stages (56², 28², 14², 7² pixels per image). Inputs, weights and
//! biases are counter-based (splitmix64, as `tests/reference/bench_linear.py` makes them), so
//! every side multiplies the same numbers; 257 output values spread over each product are
//! compared with arena's. The sides take turns: every round times `--iters` calls of every shape
//! on arena, then on each peer (tests/reference/bench_linear.py, which reads one line per round on
//! its stdin), so a host whose speed drifts slows every side alike. Prints, per shape and side,
//! the median GFLOP/s (2 per multiply-add), its fraction of the f32 FMA peak (measured unless
//! `--peak-tflops` gives it), arena's ratio (the median of the rounds' ratios, with their range)
//! and the largest difference of the compared outputs. The machine (`lscpu`) is printed first.

use std::time::Instant;

use arena_detector::cpu::ops::{Linear, Then};
use arena_detector::weights::splitmix;
use clap::Parser;

mod peers;
use peers::{Peers, Row, Turns, median, paired};

#[derive(Parser)]
#[command(
    about = "Linear-layer GFLOP/s of the detector's CPU path against PyTorch, ONNX Runtime and OpenVINO"
)]
struct Args {
    /// The shapes of a network's linear layers: vit (ViT-B/16) or convnext (ConvNeXt-T).
    #[arg(long, default_value = "vit")]
    preset: String,
    /// Images, for the preset's row counts.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Shapes instead of the preset, comma-separated: ROWSxD_INxD_OUT, `:gelu` for GELU after.
    #[arg(long)]
    shapes: Option<String>,
    #[command(flatten)]
    turns: Turns,
    /// The peers, comma-separated: torch, onnxruntime, openvino.
    #[arg(long, default_value = "torch,onnxruntime,openvino")]
    peers: String,
    /// Peak dense f32 TFLOP/s, for the fraction of peak; measured when not given.
    #[arg(long)]
    peak_tflops: Option<f64>,
}

/// One product: `rows × d_in` · `[d_in, d_out]` + bias, then GELU or nothing.
#[derive(Clone, Debug, PartialEq)]
struct Shape {
    name: String,
    rows: usize,
    d_in: usize,
    d_out: usize,
    gelu: bool,
}

impl Shape {
    fn new(name: &str, rows: usize, d_in: usize, d_out: usize, gelu: bool) -> Shape {
        Shape { name: name.into(), rows, d_in, d_out, gelu }
    }

    fn flops(&self) -> f64 {
        2.0 * (self.rows * self.d_in * self.d_out) as f64
    }

    /// `ROWSxD_INxD_OUT[:gelu]`, as `--shapes` and the peers' script take it.
    fn spec(&self) -> String {
        format!("{}x{}x{}{}", self.rows, self.d_in, self.d_out, if self.gelu { ":gelu" } else { "" })
    }

    fn parse(spec: &str) -> anyhow::Result<Shape> {
        let (dims, then) = spec.split_once(':').unwrap_or((spec, ""));
        let d: Vec<usize> = dims
            .split('x')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("--shapes: {spec:?} is not ROWSxD_INxD_OUT[:gelu] ({e})"))?;
        let [rows, d_in, d_out] = d[..] else {
            anyhow::bail!("--shapes: {spec:?} is not ROWSxD_INxD_OUT[:gelu] (three sizes)")
        };
        anyhow::ensure!(rows > 0 && d_in > 0 && d_out > 0, "--shapes: {spec:?} has a zero size");
        anyhow::ensure!(then.is_empty() || then == "gelu", "--shapes: {spec:?}: only `:gelu` may follow");
        Ok(Shape::new(spec, rows, d_in, d_out, then == "gelu"))
    }
}

/// A network's linear layers at `batch` images.
fn preset(name: &str, batch: usize) -> anyhow::Result<Vec<Shape>> {
    Ok(match name {
        // ViT-B/16 at 224²: 196 patches and the class token, D = 768, MLP 3072.
        "vit" => {
            let r = batch * 197;
            vec![
                Shape::new("in_proj", r, 768, 2304, false),
                Shape::new("out_proj", r, 768, 768, false),
                Shape::new("mlp fc1", r, 768, 3072, true),
                Shape::new("mlp fc2", r, 3072, 768, false),
            ]
        }
        // ConvNeXt-T at 224²: stages of 96, 192, 384 and 768 channels on 56², 28², 14², 7².
        "convnext" => [(1, 96, 56), (2, 192, 28), (3, 384, 14), (4, 768, 7)]
            .into_iter()
            .flat_map(|(s, d, side)| {
                let r = batch * side * side;
                [
                    Shape::new(&format!("s{s} fc1"), r, d, 4 * d, true),
                    Shape::new(&format!("s{s} fc2"), r, 4 * d, d, false),
                ]
            })
            .collect(),
        _ => anyhow::bail!("--preset: {name:?} is not vit or convnext"),
    })
}

/// `n` values in [-1, 1) times `scale` (a power of two, so exact): the top 24 bits of
/// splitmix64(key + i) over 2²³, minus 1; the peers' script makes the same.
fn values(key: u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n as u64)
        .map(|i| ((splitmix(key.wrapping_add(i)) >> 40) as f32 / 8_388_608.0 - 1.0) * scale)
        .collect()
}

/// The keys of shape `s`'s input, weight and bias.
fn keys(s: usize) -> [u64; 3] {
    let base = 0x5EED_0000_0000u64 + ((s as u64) << 36);
    [base, base + (1 << 34), base + (2 << 34)]
}

/// The flat indices of the compared outputs: 257 spread evenly from the first to the last.
fn samples(len: usize) -> impl Iterator<Item = usize> {
    (0..=256).map(move |i| i * (len - 1) / 256)
}

/// One shape on arena: the layer, its input and output buffer.
struct Case {
    layer: Linear,
    x: Vec<f32>,
    out: Vec<f32>,
    then: Then,
}

impl Case {
    fn new(s: &Shape, i: usize) -> Case {
        let [kx, kw, kb] = keys(i);
        let layer = Linear::new(
            values(kw, s.d_in * s.d_out, 1.0 / 32.0),
            values(kb, s.d_out, 1.0 / 8.0),
            s.d_in,
            s.d_out,
        );
        let then = if s.gelu { Then::Gelu } else { Then::Nothing };
        Case { layer, x: values(kx, s.rows * s.d_in, 1.0), out: vec![0.0; s.rows * s.d_out], then }
    }

    /// GFLOP/s of `iters` calls.
    fn rate(&mut self, s: &Shape, iters: usize) -> f64 {
        let t0 = Instant::now();
        for _ in 0..iters {
            self.layer.forward(&self.x, &mut self.out, self.then);
        }
        s.flops() * iters as f64 / t0.elapsed().as_secs_f64() / 1e9
    }
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    a.turns.check()?;
    // Measured first, on an idle machine.
    let measured = a.peak_tflops.is_none();
    let peak = a.peak_tflops.or_else(arena_plugin_api::machine::fma_peak_tflops);
    let shapes = match &a.shapes {
        Some(list) => list.split(',').map(Shape::parse).collect::<anyhow::Result<Vec<_>>>()?,
        None => preset(&a.preset, a.batch)?,
    };
    let mut cases: Vec<Case> = shapes.iter().enumerate().map(|(i, s)| Case::new(s, i)).collect();
    // The warm-up call, whose outputs the peers' are compared with.
    for (c, s) in cases.iter_mut().zip(&shapes) {
        c.rate(s, 1);
    }
    let mut peers = (!a.turns.python.is_empty()).then(|| start_peers(&a, &shapes)).transpose()?;
    let mut arena: Vec<Vec<f64>> = vec![Vec::new(); shapes.len()];
    for _ in 0..a.turns.rounds {
        for ((c, s), rates) in cases.iter_mut().zip(&shapes).zip(&mut arena) {
            rates.push(c.rate(s, a.turns.iters));
        }
        // Until rayon's idle workers sleep, before the next side.
        std::thread::sleep(std::time::Duration::from_millis(500));
        if let Some(p) = &mut peers {
            p.round()?;
        }
    }
    // Per shape, every side.
    let mut rows: Vec<Vec<Row>> =
        arena.into_iter().map(|rates| vec![Row { rates, ..Row::new("arena", None, "CPU path") }]).collect();
    if let Some(p) = peers {
        let r = p.finish()?;
        for p in r["peers"].as_array().into_iter().flatten() {
            let side = p["name"].as_str().unwrap_or("?").to_string();
            let detail = format!("{}, {} threads", p["version"].as_str().unwrap_or(""), p["threads"]);
            let rates: Vec<Vec<f64>> = serde_json::from_value(p["gflops"].clone())?;
            let outs: Vec<Vec<f64>> = serde_json::from_value(p["samples"].clone())?;
            anyhow::ensure!(
                rates.len() == shapes.len() && outs.len() == shapes.len(),
                "{side}: results for {} shapes of {}",
                rates.len(),
                shapes.len()
            );
            for (i, (rates, out)) in rates.into_iter().zip(outs).enumerate() {
                anyhow::ensure!(
                    rates.len() == a.turns.rounds,
                    "{side}: {} rounds of {}",
                    rates.len(),
                    a.turns.rounds
                );
                let ours = &cases[i].out;
                anyhow::ensure!(out.len() == 257, "{side}: {} compared outputs, not 257", out.len());
                let diff = samples(ours.len())
                    .zip(&out)
                    .map(|(j, &v)| (ours[j] as f64 - v).abs())
                    .fold(0.0, f64::max);
                rows[i].push(Row { rates, ..Row::new(&side, Some(diff), &detail) });
            }
        }
    }

    println!("machine: {}", arena_plugin_api::machine::describe());
    if let (true, Some(p)) = (measured, peak) {
        println!("f32 FMA peak: {:.1} GFLOP/s, measured (--peak-tflops gives another)", p * 1e3);
    }
    println!(
        "{} rounds of {} timed calls per shape and side; arena on {} threads",
        a.turns.rounds,
        a.turns.iters,
        rayon::current_num_threads()
    );
    println!(
        "{:<10} {:<20} {:<12} {:>9} {:>8} {:>10} {:>11} {:>12}  detail",
        "layer", "rows x in x out", "side", "GFLOP/s", "of peak", "arena/side", "range", "max |d|"
    );
    for (s, sides) in shapes.iter().zip(&rows) {
        let arena = &sides[0].rates;
        for Row { side, rates, diff, detail } in sides {
            let g = median(rates.clone());
            let of_peak = peak.map(|p| format!("{:.1}%", g / (p * 10.0))).unwrap_or("-".into());
            let (ratio, range) = paired(arena, rates);
            println!(
                "{:<10} {:<20} {side:<12} {g:>9.1} {of_peak:>8} {:>9.2}x {:>11} {:>12}  {detail}",
                s.name.chars().take(10).collect::<String>(),
                s.spec(),
                ratio,
                range,
                diff.map(|d| format!("{d:.2e}")).unwrap_or("-".into()),
            );
        }
    }
    Ok(())
}

/// The peers' process (tests/reference/bench_linear.py), ready for its first round.
fn start_peers(a: &Args, shapes: &[Shape]) -> anyhow::Result<Peers> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/reference/bench_linear.py");
    let specs: Vec<String> = shapes.iter().map(Shape::spec).collect();
    let key_list: Vec<String> = (0..shapes.len()).map(|i| keys(i)[0].to_string()).collect();
    let args: Vec<String> =
        ["--shapes", &specs.join(","), "--keys", &key_list.join(",")].map(String::from).into();
    Peers::start(&a.turns, &a.peers, script, &args)
}
