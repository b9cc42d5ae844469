//! The cost of the plugin boundary: one `evaluate` as a direct Rust call (the plugin's rlib),
//! the same call through the ABI (its cdylib, loaded in-process), and one isolated job (spawn
//! `arena worker`, load the plugin, evaluate, report over the pipe).
//!
//! Run: `cargo bench -p arena-e2e --bench abi`. Prints the median of several rounds per case
//! and the ratios against the direct call.

use std::hint::black_box;
use std::time::{Duration, Instant};

use arena_e2e::{arena_bin, chaos_plugin};
use arena_plugin_api::*;
use arena_runtime::isolate::Supervisor;
use arena_runtime::job::{Job, JobLimits};
use serde_json::json;

fn request(n: usize) -> EvalRequest {
    EvalRequest {
        submission: Submission { id: "bench".into(), path: "/tmp".into(), metadata: json!({"hotkey": "5F"}) },
        samples: (0..n).map(|i| Sample { data: json!({"x": i as f64 * 0.5}), files: vec![] }).collect(),
        limits: Limits::default(),
    }
}

/// Median time per call of `f`, over `rounds` rounds of `iters` calls.
fn median_per_call(rounds: usize, iters: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..iters.min(100) {
        f();
    }
    let mut per: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed() / iters as u32
        })
        .collect();
    per.sort();
    per[rounds / 2]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn main() {
    let lib = chaos_plugin();
    let spec = TaskSpec { kind: "sum".into(), params: json!({}), device: Device::Cpu, seed: 0 };
    let plugin = load_plugin(&lib).expect("load chaos");
    println!("plugin boundary cost (chaos `sum` task; median of 15 rounds)");
    println!("{:>8}  {:>12}  {:>12}  {:>8}", "samples", "direct", "through ABI", "ABI/direct");
    for n in [0usize, 1, 100, 10_000] {
        let req = request(n);
        let iters = if n >= 10_000 { 50 } else { 5_000 };
        let mut direct = arena_chaos_plugin::Chaos::create_task(spec.clone()).unwrap();
        let d = median_per_call(15, iters, || {
            black_box(direct.evaluate(black_box(&req), &NoProgress).unwrap());
        });
        let mut foreign = plugin.create_task(&spec).unwrap();
        let a = median_per_call(15, iters, || {
            black_box(foreign.evaluate(black_box(&req), &NoProgress).unwrap());
        });
        println!("{n:>8}  {:>12}  {:>12}  {:>7.2}x", fmt(d), fmt(a), a.as_secs_f64() / d.as_secs_f64());
    }

    let sup = Supervisor { worker_exe: arena_bin(), env: Vec::new() };
    let job = Job {
        plugin: lib.clone(),
        plugin_sha256: None,
        task: spec.clone(),
        request: request(100),
        probe: false,
    };
    let mut foreign = plugin.create_task(&spec).unwrap();
    let inproc = median_per_call(15, 1000, || {
        black_box(foreign.evaluate(&job.request, &NoProgress).unwrap());
    });
    let iso = median_per_call(9, 10, || {
        black_box(sup.run(&job, JobLimits::default(), &NoProgress).unwrap());
    });
    println!();
    println!(
        "one isolated job (spawn arena worker + load plugin + evaluate 100 samples + pipe), median of 9x10"
    );
    println!(
        "  isolated job: {}   in-process ABI call: {}   ratio {:.0}x",
        fmt(iso),
        fmt(inproc),
        iso.as_secs_f64() / inproc.as_secs_f64()
    );
}
