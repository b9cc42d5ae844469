//! Property: whatever RAW.json the scorer accepts, the weights it sets are finite, non-negative
//! and sum to 1 (or there are none), and the u16 vector's largest entry is 65535. Raw scores are
//! drawn with the values that break arithmetic: ±f64::MAX, subnormals, ±inf, NaN, huge and tiny
//! magnitudes; competitions are the repository's, plus one for each policy they do not use.

use std::collections::BTreeMap;
use std::path::Path;

use arena_core::config::Competition;
use arena_core::config::source::parse;
use arena_core::dryrun::{self, RawScores, State};
use arena_core::scoring::RawSubmission;
use proptest::prelude::*;

fn competitions() -> Vec<Competition> {
    let extra = |id: &str, cid: u32, policy: &str, opponents: &str| {
        format!(
            r#"
id = "{id}"
competition_id = {cid}
name = "{id}"
emission_share = 1e308

[data]
seed = {{ kind = "fixed", value = 0 }}

[[tasks]]
name = "a"
plugin = "chaos"
kind = "sum"
weight = 1e308
direction = "higher"
[[tasks]]
name = "b"
plugin = "chaos"
kind = "sum"
weight = 1e308
direction = "higher"
normalization = {{ kind = "min_max", min = -1e308, max = 1e308 }}

[score]
direction = "higher"

[ranking]
policy = {policy}
opponents = "{opponents}"
ema_alpha = 0.5
min_weight = 0.05
burn = {{ uid = 0, share = 0.1 }}
"#
        )
    };
    let files = [
        ("demo.toml", include_str!("../../../competitions/demo.toml").to_string()),
        ("pretraining-3b.toml", include_str!("../../../competitions/pretraining-3b.toml").to_string()),
        ("roleplay.toml", include_str!("../../../competitions/roleplay.toml").to_string()),
        ("deepfake-image.toml", include_str!("../../../competitions/deepfake-image.toml").to_string()),
        ("heldout-ppl.toml", include_str!("../../../competitions/heldout-ppl.toml").to_string()),
        ("prop.toml", extra("prop", 20, r#"{ kind = "proportional" }"#, "submissions")),
        ("cold.toml", extra("cold", 21, r#"{ kind = "softmax", temperature = 1e-300 }"#, "registry")),
    ];
    files
        .iter()
        .map(|(name, text)| {
            parse::<Competition>(Path::new(name), text).unwrap_or_else(|d| panic!("{name}: {d}")).value
        })
        .collect()
}

fn hostile_f64() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        (-10.0f64..10.0).prop_map(Some),
        (0.0f64..1.0).prop_map(Some),
        prop::sample::select(vec![
            f64::MAX,
            -f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            0.0,
            -0.0,
            1e308,
            -1e308,
            1e-300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ])
        .prop_map(Some),
    ]
}

fn raw(comps: &'static [Competition]) -> impl Strategy<Value = RawScores> {
    let sub = (0u16..12, 0u64..3000, 0..comps.len(), prop::collection::vec(hostile_f64(), 8)).prop_map(
        move |(uid, block, c, values)| {
            let comp = &comps[c];
            let tasks: BTreeMap<String, Option<f64>> =
                comp.tasks.iter().zip(values).map(|(t, v)| (t.name.clone(), v)).collect();
            RawSubmission { uid, hotkey: String::new(), block, competition: comp.id.clone(), tasks }
        },
    );
    (prop::collection::vec(sub, 0..24), prop::option::of(0usize..40)).prop_map(|(mut subs, registered)| {
        let mut seen = std::collections::BTreeSet::new();
        subs.retain(|s| seen.insert((s.competition.clone(), s.uid)));
        RawScores { block: None, registered, submissions: subs }
    })
}

fn comps() -> &'static [Competition] {
    static C: std::sync::OnceLock<Vec<Competition>> = std::sync::OnceLock::new();
    C.get_or_init(competitions)
}

proptest! {
    // A fixed seed: the same cases on every run and machine.
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_202),
        ..ProptestConfig::default()
    })]
    #[test]
    fn accepted_raw_scores_give_finite_weights(raw in raw(comps()), block in 3000u64..10_000) {
        let mut state = State::default();
        for round in 0..2 {
            let Ok(report) = dryrun::score(comps(), None, &raw, block + round, &mut state) else { continue };
            let mut sum = 0.0;
            for w in &report.weights {
                prop_assert!(w.weight.is_finite() && w.weight >= 0.0, "uid {} weight {}", w.uid, w.weight);
                sum += w.weight;
            }
            if report.weights.iter().any(|w| w.weight > 0.0) {
                prop_assert!((sum - 1.0).abs() < 1e-9, "weights sum to {}", sum);
                prop_assert_eq!(report.weights.iter().map(|w| w.u16).max(), Some(u16::MAX));
            }
            for c in &report.competitions {
                for s in &c.submissions {
                    prop_assert!(s.weight.is_finite(), "{}: uid {} weight {}", c.id, s.scored.uid, s.weight);
                }
            }
        }
    }
}

/// Totals whose sum overflows (proportional policy, huge task weights and shares) still give
/// weights, instead of `x / inf = 0` for every uid and an empty vector.
#[test]
fn overflowing_sums_still_give_weights() {
    let raw = RawScores {
        block: None,
        registered: Some(10),
        submissions: (1u16..4)
            .map(|uid| RawSubmission {
                uid,
                hotkey: String::new(),
                block: 1,
                competition: "prop".into(),
                tasks: [("a".to_string(), Some(f64::MAX / f64::from(uid))), ("b".to_string(), Some(0.0))]
                    .into(),
            })
            .collect(),
    };
    let report = dryrun::score(comps(), None, &raw, 5000, &mut State::default()).unwrap();
    let weighted: Vec<u16> = report.weights.iter().filter(|w| w.uid != 0).map(|w| w.u16).collect();
    let prop = report.competitions.iter().find(|c| c.id == "prop").unwrap();
    assert_eq!(weighted.len(), 3, "{:?} {:?}", report.weights, prop);
    assert!(weighted.iter().all(|&w| w > 0), "{:?} {:#?}", report.weights, prop);
}

/// A softmax temperature so small that `win_rate / t` overflows puts the weight on the best, as
/// the softmax's limit does, instead of NaN for everyone.
#[test]
fn a_tiny_temperature_is_the_softmax_limit() {
    let w = arena_core::scoring::softmax(&[1.0, 0.5, 1.0, f64::NEG_INFINITY], 1e-320);
    assert_eq!(w, vec![0.5, 0.0, 0.5, 0.0]);
}

/// Found by the `raw_scores` fuzz target: a registry competition compared each of 34,795
/// registered uids with every other (1.2e9 comparisons, past the fuzzer's 10 s). The absent
/// uids are alike and are counted as one group now: a full subnet scores at once.
#[test]
fn a_full_registry_is_scored_at_once() {
    let roleplay = comps().iter().find(|c| c.id == "roleplay").unwrap();
    let tasks = roleplay.tasks.iter().map(|t| (t.name.clone(), Some(0.99))).collect();
    let raw = RawScores {
        block: None,
        registered: Some(65_535),
        submissions: vec![RawSubmission {
            uid: 7,
            hotkey: String::new(),
            block: 1,
            competition: "roleplay".into(),
            tasks,
        }],
    };
    let start = std::time::Instant::now();
    let report = dryrun::score(comps(), None, &raw, 5000, &mut State::default()).unwrap();
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
    let c = report.competitions.iter().find(|c| c.id == "roleplay").unwrap();
    assert_eq!(c.submissions[0].scored.win_rate, 1.0, "it beats all 65,534 absent uids");
}
