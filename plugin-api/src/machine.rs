//! What a benchmark prints about the machine it ran on, so that figures from different CPUs are
//! never compared as if they were one: `lscpu`'s model name, CPU count, threads per core (two
//! vCPUs that are SMT siblings of one core have half the FMA peak of two cores) and the vector and
//! matrix flags that decide which kernels run.

use std::process::Command;
use std::time::Instant;

/// The flags worth printing beside a figure, in this order, where the CPU has them.
const FLAGS: [&str; 10] = [
    "fma",
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
];

/// One line: `MODEL, N CPU(s), T thread(s) per core; flags`, from `lscpu` (`unknown CPU` where
/// it cannot run).
pub fn describe() -> String {
    let text = Command::new("lscpu")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    summarize(&text)
}

/// The measured dense f32 FMA peak of this machine, TFLOP/s: one thread per CPU runs 12
/// independent chains of vector FMAs (512-bit with AVX-512F, else 256-bit with FMA) for about
/// 60 ms, best of five (a shared host's neighbours steal whole runs). Cores' clocks are what
/// they are under load, which `lscpu` under a hypervisor rarely tells. `None` off x86-64 or
/// without FMA.
pub fn fma_peak_tflops() -> Option<f64> {
    fma_peak(20_000_000, 5)
}

fn fma_peak(iters: u64, tries: usize) -> Option<f64> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_iter = fma::flops_per_iteration()?;
    let mut best = 0f64;
    for _ in 0..tries {
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| std::hint::black_box(fma::run(iters)));
            }
        });
        let secs = t0.elapsed().as_secs_f64();
        best = best.max((threads as u64 * iters * per_iter) as f64 / secs / 1e12);
    }
    Some(best)
}

#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::*;

    /// FLOPs of one iteration of [`run`] on this CPU.
    pub fn flops_per_iteration() -> Option<u64> {
        if is_x86_feature_detected!("avx512f") {
            Some(12 * 16 * 2)
        } else if is_x86_feature_detected!("fma") && is_x86_feature_detected!("avx") {
            Some(12 * 8 * 2)
        } else {
            None
        }
    }

    pub fn run(iters: u64) -> f32 {
        // SAFETY: each arm runs only where its features were detected.
        unsafe {
            if is_x86_feature_detected!("avx512f") {
                zmm(iters)
            } else if is_x86_feature_detected!("fma") && is_x86_feature_detected!("avx") {
                ymm(iters)
            } else {
                0.0
            }
        }
    }

    macro_rules! chains {
        ($name:ident, $feature:literal, $set:ident, $fma:ident, $store:ident, $lanes:literal) => {
            #[target_feature(enable = $feature)]
            unsafe fn $name(iters: u64) -> f32 {
                // Opaque operands, or the compiler folds the chains (1.0 is their fixed point).
                let b = $set(std::hint::black_box(0.999_999_9));
                let c = $set(std::hint::black_box(1e-7));
                let mut acc: [_; 12] =
                    std::array::from_fn(|i| $set(std::hint::black_box(1.0 + i as f32 * 1e-3)));
                for _ in 0..iters {
                    // Twelve independent FMAs per iteration: enough in flight to hide the latency.
                    for a in &mut acc {
                        *a = $fma(*a, b, c);
                    }
                }
                let mut out = [0f32; $lanes];
                let mut sum = 0.0;
                for a in acc {
                    // SAFETY: `out` holds one vector.
                    unsafe { $store(out.as_mut_ptr(), a) };
                    sum += out.iter().sum::<f32>();
                }
                sum
            }
        };
    }
    chains!(zmm, "avx512f", _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, 16);
    chains!(ymm, "avx,fma", _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, 8);
}

#[cfg(not(target_arch = "x86_64"))]
mod fma {
    pub fn flops_per_iteration() -> Option<u64> {
        None
    }

    pub fn run(_iters: u64) -> f32 {
        0.0
    }
}

fn summarize(lscpu: &str) -> String {
    let field = |name: &str| {
        lscpu.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let present = field("Flags").unwrap_or_default();
    let flags: Vec<&str> =
        FLAGS.into_iter().filter(|f| present.split_whitespace().any(|x| x == *f)).collect();
    format!(
        "{}, {} CPU(s), {} thread(s) per core; {}",
        field("Model name").unwrap_or_else(|| "unknown CPU".into()),
        field("CPU(s)").unwrap_or_else(|| "?".into()),
        field("Thread(s) per core").unwrap_or_else(|| "?".into()),
        if flags.is_empty() { "no AVX2".to_string() } else { flags.join(" ") }
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn summarizes_lscpu() {
        let text = "Architecture:  x86_64\nCPU(s):                 2\nOn-line CPU(s) list:    0,1\n\
                    Model name:             AMD EPYC\nThread(s) per core:     1\n\
                    Flags:                  fpu sse2 fma avx2 avx512f avx512_bf16 avx512_vnni sha_ni\n";
        assert_eq!(
            super::summarize(text),
            "AMD EPYC, 2 CPU(s), 1 thread(s) per core; fma avx2 avx512f avx512_vnni avx512_bf16"
        );
        assert_eq!(super::summarize(""), "unknown CPU, ? CPU(s), ? thread(s) per core; no AVX2");
    }

    #[test]
    fn the_fma_peak_is_measured() {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("fma") {
            // Fewer iterations than the benchmarks' measurement: this is an unoptimized build.
            let peak = super::fma_peak(200_000, 3).expect("FMA is present");
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            // Above a GFLOP/s, and below what one thread can issue (64 FLOP/cycle at 6 GHz): a
            // loop the compiler had folded away would measure far more.
            assert!(peak > 1e-3 && peak / threads < 0.4, "{peak} TFLOP/s on {threads} threads");
        }
    }
}
