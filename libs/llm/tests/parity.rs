//! Parity with transformers: tiny random models of every supported family, built and evaluated
//! by `tests/reference/llm_parity.py` (f32, CPU), loaded here with arena-llm.

use std::path::PathBuf;

use arena_llm::generate::{GenerationConfig, generate};
use arena_llm::protocols::{UNSCORED, Window};
use arena_llm::{CausalLm, DType, Device, ModelConfig, Tensor};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llm")
}

fn load(name: &str) -> (CausalLm, Value) {
    let dir = fixtures().join(name);
    let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
    let files = arena_llm::weights::WeightFiles::open(&dir).unwrap();
    files.check_finite().unwrap();
    let model = files.build(&cfg, DType::F32, &Device::Cpu).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    (model, expected)
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn mean_loss(model: &CausalLm, ids: &[u32]) -> f64 {
    let w =
        Window { ids: ids.to_vec(), targets: ids[1..].iter().copied().chain([UNSCORED]).collect(), doc: 0 };
    let t = Tensor::from_vec(w.ids.clone(), (1, ids.len()), &Device::Cpu).unwrap();
    let hidden = model.forward_hidden(&t, None, None).unwrap();
    let nll = model.token_nll(&hidden, std::slice::from_ref(&w.targets)).unwrap();
    let (s, c) = arena_llm::protocols::scored_sum(&w, &nll[0]);
    s / c as f64
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

const FAMILIES: [&str; 6] = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2"];

#[test]
fn losses_match_transformers_in_f32() {
    for fam in FAMILIES {
        let (model, exp) = load(fam);
        let seqs: Vec<Vec<u32>> = exp["sequences"].as_array().unwrap().iter().map(ids_of).collect();
        for (i, ids) in seqs.iter().enumerate() {
            let want = exp["losses"][i].as_f64().unwrap();
            let got = mean_loss(&model, ids);
            assert!(rel(got, want) <= 1e-4, "{fam} seq {i}: arena {got} transformers {want}");
        }
    }
}

#[test]
fn logits_match_transformers_in_f32() {
    for fam in FAMILIES {
        let (model, exp) = load(fam);
        let seqs: Vec<Vec<u32>> = exp["sequences"].as_array().unwrap().iter().map(ids_of).collect();
        for (i, ids) in seqs.iter().enumerate() {
            let t = Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu).unwrap();
            let logits: Vec<Vec<Vec<f32>>> = model.forward(&t, None).unwrap().to_vec3().unwrap();
            for (p, row) in exp["logits_head"][i].as_array().unwrap().iter().enumerate() {
                for (v, want) in row.as_array().unwrap().iter().enumerate() {
                    let want = want.as_f64().unwrap();
                    let got = logits[0][p][v] as f64;
                    assert!(
                        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{fam} seq {i} pos {p} vocab {v}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn padded_batches_with_masks_match_transformers() {
    for (fam, dtype) in FAMILIES.iter().flat_map(|f| [(*f, DType::F32), (*f, DType::F64)]) {
        let (model, exp) = load(fam);
        // f64 takes the additive-mask path, f32 on the CPU the fused masked softmax.
        let dir = fixtures().join(fam);
        let model = if dtype == DType::F32 {
            model
        } else {
            let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
            arena_llm::weights::WeightFiles::open(&dir).unwrap().build(&cfg, dtype, &Device::Cpu).unwrap()
        };
        let seqs: Vec<Vec<u32>> = exp["sequences"].as_array().unwrap().iter().map(ids_of).collect();
        let t = seqs.iter().map(Vec::len).max().unwrap();
        let mut flat = Vec::new();
        let mut mask = Vec::new();
        let mut targets = Vec::new();
        for s in &seqs {
            let mut row = s.clone();
            row.resize(t, 0);
            flat.extend_from_slice(&row);
            mask.push((0..t).map(|j| u8::from(j < s.len())).collect::<Vec<u8>>());
            targets.push(
                (0..t).map(|j| if j + 1 < s.len() { s[j + 1] } else { UNSCORED }).collect::<Vec<u32>>(),
            );
        }
        let ids = Tensor::from_vec(flat, (seqs.len(), t), &Device::Cpu).unwrap();
        let hidden = model.forward_hidden(&ids, Some(&mask), None).unwrap();
        let nll = model.token_nll(&hidden, &targets).unwrap();
        for (i, s) in seqs.iter().enumerate() {
            let got: f64 = nll[i].iter().map(|&x| x as f64).sum::<f64>() / (s.len() - 1) as f64;
            let want = exp["padded_losses"][i].as_f64().unwrap();
            assert!(
                rel(got, want) <= 1e-4,
                "{fam} {dtype:?} padded seq {i}: arena {got} transformers {want}"
            );
        }
    }
}

#[test]
fn greedy_generation_with_repetition_penalty_matches_transformers() {
    for fam in FAMILIES {
        let (model, exp) = load(fam);
        for g in exp["generations"].as_array().unwrap() {
            let prompt = ids_of(&g["prompt"]);
            let want = ids_of(&g["new_tokens"]);
            let cfg = GenerationConfig {
                max_new_tokens: want.len(),
                repetition_penalty: 1.3,
                ..Default::default()
            };
            let got = generate(&model, &prompt, &cfg).unwrap();
            assert_eq!(got, want, "{fam} prompt {prompt:?}");
        }
    }
}

#[test]
fn kv_cache_gives_the_same_logits_as_a_full_forward() {
    for fam in FAMILIES {
        let (model, exp) = load(fam);
        let ids = ids_of(&exp["sequences"][2]);
        let full: Vec<Vec<f32>> = model
            .forward(&Tensor::from_vec(ids.clone(), (1, ids.len()), &Device::Cpu).unwrap(), None)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        let mut cache = arena_llm::KvCache::default();
        let mut stepped = Vec::new();
        for chunk in [&ids[..5], &ids[5..6], &ids[6..]] {
            let t = Tensor::from_vec(chunk.to_vec(), (1, chunk.len()), &Device::Cpu).unwrap();
            let h = model.forward_hidden(&t, None, Some(&mut cache)).unwrap();
            let l: Vec<Vec<f32>> = model.logits(&h).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
            stepped.extend(l);
        }
        for (p, (a, b)) in full.iter().zip(&stepped).enumerate() {
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-4, "{fam} position {p}: {x} vs {y}");
            }
        }
    }
}

#[test]
fn parameter_count_matches_the_checkpoint() {
    for fam in FAMILIES {
        let dir = fixtures().join(fam);
        let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
        let bytes = std::fs::metadata(dir.join("model.safetensors")).unwrap().len();
        // f32 weights: 4 bytes each, plus a header of at most a few KiB.
        let stored = bytes / 4;
        let implied = cfg.parameter_count();
        assert!(
            stored >= implied && stored - implied < 2048,
            "{fam}: implied {implied}, file holds ~{stored}"
        );
    }
}

fn logits_of(model: &CausalLm, ids: &[u32]) -> Vec<Vec<f32>> {
    let t = Tensor::from_vec(ids.to_vec(), (1, ids.len()), &Device::Cpu).unwrap();
    model.forward(&t, None).unwrap().squeeze(0).unwrap().to_dtype(DType::F32).unwrap().to_vec2().unwrap()
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], tol: f32, what: &str) {
    for (p, (x, y)) in a.iter().zip(b).enumerate() {
        for (u, w) in x.iter().zip(y) {
            assert!((u - w).abs() <= tol * w.abs().max(1.0), "{what} position {p}: {u} vs {w}");
        }
    }
}

/// A long input (past every sliding window) in one pass, in query chunks of every size, and
/// through the tensor-mask path (f64) all give the same logits.
#[test]
fn chunked_attention_and_both_mask_paths_agree() {
    let ids: Vec<u32> = (0..150).map(|i| ((i * 37 + 11) % 96) as u32).collect();
    for fam in FAMILIES {
        let dir = fixtures().join(fam);
        let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
        let files = arena_llm::weights::WeightFiles::open(&dir).unwrap();
        let mut model = files.build(&cfg, DType::F32, &Device::Cpu).unwrap();
        let whole = logits_of(&model, &ids);
        for budget in [1, 4 * 150 * 7, 4 * 150 * 64] {
            model.set_attention_budget(budget);
            assert_close(&logits_of(&model, &ids), &whole, 1e-4, &format!("{fam} budget {budget}"));
        }
        let f64_model = files.build(&cfg, DType::F64, &Device::Cpu).unwrap();
        assert_close(&logits_of(&f64_model, &ids), &whole, 1e-4, &format!("{fam} tensor masks"));
    }
}

/// bf16 and f16 weights and activations (norms and softmax in f32, as transformers does) stay
/// within the precision of the format of the f32 losses.
#[test]
fn half_precision_losses_are_close_to_f32() {
    for fam in FAMILIES {
        let dir = fixtures().join(fam);
        let cfg = ModelConfig::from_file(&dir.join("config.json")).unwrap();
        let files = arena_llm::weights::WeightFiles::open(&dir).unwrap();
        let (f32_model, exp) = load(fam);
        let ids = ids_of(&exp["sequences"][0]);
        let want = mean_loss(&f32_model, &ids);
        for dtype in [DType::BF16, DType::F16] {
            let m = files.build(&cfg, dtype, &Device::Cpu).unwrap();
            let got = mean_loss(&m, &ids);
            assert!(rel(got, want) < 2e-2, "{fam} {dtype:?}: {got} vs f32 {want}");
        }
    }
}
