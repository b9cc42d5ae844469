//! `PyRandom` (plugin-api, re-exported by the host) against CPython's `random` (tests/golden/pyrandom.json, written by
//! tests/reference/pyrandom_vectors.py).

use arena_runtime::pyrandom::PyRandom;
use serde_json::Value;

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

#[test]
fn matches_cpython_for_every_seed_size() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/pyrandom.json");
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 6);
    for c in cases {
        let hex = c["seed_hex"].as_str().unwrap();
        let padded = if hex.len() % 2 == 1 { format!("0{hex}") } else { hex.to_string() };
        let bytes: Vec<u8> = (0..padded.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).unwrap())
            .collect();
        let mut r = PyRandom::from_be_bytes(&bytes);
        let got: Vec<u64> = (0..5).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, u64s(&c["bits32"]), "seed {hex}");
        let got: Vec<u64> = (0..5).map(|_| r.getrandbits(7)).collect();
        assert_eq!(got, u64s(&c["bits7"]), "seed {hex}");
        let got: Vec<u64> = (0..3).map(|_| r.getrandbits(40)).collect();
        assert_eq!(got, u64s(&c["bits40"]), "seed {hex}");
        for want in c["random"].as_array().unwrap() {
            assert_eq!(r.random(), want.as_f64().unwrap(), "seed {hex}");
        }
        let got: Vec<u64> = (0..8).map(|_| r.randint(0, 99) as u64).collect();
        assert_eq!(got, u64s(&c["randint_0_99"]), "seed {hex}");
        let got: Vec<u64> = (0..3).map(|_| r.randint(5, 1_000_000_000_000) as u64).collect();
        assert_eq!(got, u64s(&c["randint_big"]), "seed {hex}");
        let mut x: Vec<u64> = (0..20).collect();
        r.shuffle(&mut x);
        assert_eq!(x, u64s(&c["shuffle20"]), "seed {hex}");
        for case in c["sample"].as_array().unwrap() {
            let (n, k) = (case[0].as_u64().unwrap() as usize, case[1].as_u64().unwrap() as usize);
            let got: Vec<u64> = r.sample_indices(n, k).into_iter().map(|i| i as u64).collect();
            assert_eq!(got, u64s(&case[2]), "seed {hex}: sample(range({n}), {k})");
        }
        for (n, want) in [1usize, 3, 14, 850].into_iter().zip(u64s(&c["choice"])) {
            assert_eq!(r.choice_index(n) as u64, want, "seed {hex}: choice(range({n}))");
        }
    }
}

#[test]
fn a_u64_seed_is_the_same_integer() {
    let mut a = PyRandom::new(42);
    let mut b = PyRandom::from_be_bytes(&[42]);
    assert_eq!(a.getrandbits(32), b.getrandbits(32));
}
