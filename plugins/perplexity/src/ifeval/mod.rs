//! SN37's IF-eval (versions 1 and 2): samples built from pairs of multiple-choice questions
//! with their answers, each with 1–4 (v1) or 2–5 (v2) rules, two prompts per sample; responses
//! scored rule by rule; a model that answers different prompts alike scores 1.
//!
//! Generation follows the reference step by step (its rule order, its incompatibilities, its
//! draws from Python's `random`), seeded by the task's seed. Two departures, both so that
//! validators agree: the reference draws from the global generator after its dataset loader
//! has consumed an amount that depends on the download, and it stops generating after
//! `max_time = 5 s` (a count of tokens that depends on the GPU). Here the generator is seeded
//! for the task alone and generation has no time limit.
//!
//! The keyword rules pick "interesting" words of an answer with NLTK's part-of-speech tagger;
//! [`tagger`] runs NLTK's own model files, so the keywords are the reference's.

pub mod difflib;
pub mod punkt;
pub mod rules;
pub mod tagger;
pub mod text;

use arena_plugin_api::pyrandom::PyRandom;
use serde::Serialize;

use rules::{ENDS_WITH_PHRASES, Rule, RuleId, V1_RULES, V2_RULES, compatible};
use text::{get_words, py_len, py_split};

/// The prompt around a question and its rules.
pub fn prompt(question: &str, rules: &[Rule], index: usize) -> String {
    let lines: Vec<String> =
        rules.iter().enumerate().map(|(i, r)| format!("{}. {}", i + 1, r.prompt(index))).collect();
    format!(
        "Please answer the question below, denoted between quotes. Your response must follow these rules:\n{}\n\n\"{}\"\n",
        lines.join("\n"),
        question
    )
}

/// The question text and the text of the right answer of an SN1 multiple-choice challenge
/// (`question A. … B. … C. … D. …`), as the reference's `extract_q_and_a_text` reads them.
pub fn question_and_answer(challenge: &str, letter: &str) -> Option<(String, String)> {
    let group = match letter {
        "A" => 2,
        "B" => 3,
        "C" => 4,
        "D" => 5,
        _ => return None,
    };
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"(.*)\s+A\. (.*)\s+B\. (.*)\s+C\. (.*)\s+D\. (.*)").expect("a valid pattern")
    });
    let m = re.captures(challenge)?;
    Some((m.get(1)?.as_str().to_string(), m.get(group)?.as_str().to_string()))
}

/// The Q&A pairs the reference keeps: parsed, with answers of at least two words.
pub fn usable_pairs(rows: &[(String, String)]) -> Vec<(String, String)> {
    rows.iter()
        .filter_map(|(c, r)| question_and_answer(c, r))
        .filter(|(_, a)| py_split(a).len() >= 2)
        .collect()
}

/// One IF-eval sample: two prompts that share their rules.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    pub prompts: [String; 2],
    pub rules: Vec<Rule>,
}

/// The rule counts of a version: (min, max).
pub fn rule_counts(version: u8) -> Option<(usize, usize)> {
    match version {
        1 => Some((1, 4)),
        2 => Some((2, 5)),
        _ => None,
    }
}

const DESIRABLE_TAGS: [&str; 16] = [
    "JJ", "JJR", "JJS", "NN", "NNS", "NNP", "NNPS", "RB", "RBR", "RBS", "VB", "VBD", "VBG", "VBN", "VBP",
    "VBZ",
];

/// The reference's `interesting_keyword`: a tagged adjective, noun, adverb or verb of more than
/// two letters not already used; else any unused word; else one of three stock words.
fn interesting_keyword(
    text: &str,
    forbidden: &[String],
    tag: &dyn Fn(&[String]) -> Vec<String>,
    rng: &mut PyRandom,
) -> String {
    let forbidden: Vec<String> = forbidden.iter().map(|w| w.to_lowercase()).collect();
    let words = get_words(text);
    let tags = tag(&words);
    let interesting: Vec<&String> = words
        .iter()
        .zip(&tags)
        .filter(|(w, t)| {
            DESIRABLE_TAGS.contains(&t.as_str()) && py_len(w) > 2 && !forbidden.contains(&w.to_lowercase())
        })
        .map(|(w, _)| w)
        .collect();
    if !interesting.is_empty() {
        return interesting[rng.choice_index(interesting.len())].clone();
    }
    let filtered: Vec<&String> = words.iter().filter(|w| !forbidden.contains(&w.to_lowercase())).collect();
    if filtered.is_empty() {
        let stock = ["answer", "question", "response"];
        return stock[rng.choice_index(stock.len())].to_string();
    }
    filtered[rng.choice_index(filtered.len())].clone()
}

fn choose(rng: &mut PyRandom, xs: &[usize]) -> usize {
    xs[rng.choice_index(xs.len())]
}

fn generate_rule(
    id: RuleId,
    current: &[Rule],
    answers: [&str; 2],
    tag: &dyn Fn(&[String]) -> Vec<String>,
    rng: &mut PyRandom,
) -> Option<Rule> {
    let forbidden: Vec<String> = current.iter().flat_map(|r| r.keywords()).map(str::to_string).collect();
    let keyword = |rng: &mut PyRandom, i: usize| interesting_keyword(answers[i], &forbidden, tag, rng);
    Some(match id {
        RuleId::WordCountAtMost => Rule::WordCountAtMost { count: choose(rng, &[25, 30, 35, 40, 45]) },
        RuleId::WordCountAtLeast => Rule::WordCountAtLeast { count: choose(rng, &[25, 30, 35, 40, 45]) },
        RuleId::SentenceCountAtMost => Rule::SentenceCountAtMost { count: choose(rng, &[1, 2, 3]) },
        RuleId::SentenceCountAtLeast => Rule::SentenceCountAtLeast { count: choose(rng, &[2, 3]) },
        RuleId::AllUpperCase => Rule::AllUpperCase,
        RuleId::AllLowerCase => Rule::AllLowerCase,
        RuleId::NoCommas => Rule::NoCommas,
        RuleId::KeywordInclusion => Rule::KeywordInclusion { keywords: [keyword(rng, 0), keyword(rng, 1)] },
        RuleId::KeywordFrequency => {
            let a = (keyword(rng, 0), rng.randint(1, 4) as usize);
            let b = (keyword(rng, 1), rng.randint(1, 4) as usize);
            Rule::KeywordFrequency { keywords: [a, b] }
        }
        RuleId::KeywordForbidden => Rule::KeywordForbidden { keywords: [keyword(rng, 0), keyword(rng, 1)] },
        RuleId::BulletCountFrequency => Rule::BulletCountFrequency { count: choose(rng, &[1, 2, 3]) },
        RuleId::EndsWith => Rule::EndsWith {
            phrase: ENDS_WITH_PHRASES[rng.choice_index(ENDS_WITH_PHRASES.len())].to_string(),
        },
        RuleId::Quotation => Rule::Quotation,
        RuleId::StartsWith => return None,
    })
}

/// One sample from two Q&A pairs (the reference's `generate_if_eval_sample`).
pub fn generate_sample(
    qa: [&(String, String); 2],
    version: u8,
    (min_rules, max_rules): (usize, usize),
    tag: &dyn Fn(&[String]) -> Vec<String>,
    rng: &mut PyRandom,
) -> Sample {
    // `list(set(rule ids))`: CPython iterates a set of these small ints in ascending order.
    let mut ids: Vec<RuleId> = V1_RULES.to_vec();
    if version >= 2 {
        ids.extend(V2_RULES);
    }
    ids.sort();
    rng.shuffle(&mut ids);
    let n = rng.randint(min_rules as i64, max_rules as i64) as usize;
    let mut rules: Vec<Rule> = Vec::new();
    for id in ids {
        if rules.len() == n {
            break;
        }
        if !compatible(id, &rules) {
            continue;
        }
        if let Some(r) = generate_rule(id, &rules, [&qa[0].1, &qa[1].1], tag, rng) {
            rules.push(r);
        }
    }
    Sample { prompts: [prompt(&qa[0].0, &rules, 0), prompt(&qa[1].0, &rules, 1)], rules }
}

/// The reference loader's samples: pairs (i, i+1) of the usable Q&A, at most `max_samples`.
pub fn generate(
    pairs: &[(String, String)],
    max_samples: usize,
    version: u8,
    counts: (usize, usize),
    tag: &dyn Fn(&[String]) -> Vec<String>,
    rng: &mut PyRandom,
) -> Vec<Sample> {
    let n = max_samples.min(pairs.len().saturating_sub(1));
    (0..n).map(|i| generate_sample([&pairs[i], &pairs[i + 1]], version, counts, tag, rng)).collect()
}

/// The score of a set of responses (`None`: generation failed for that sample).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    /// Mean over every (response, rule) of `1 - (fraction of rules met)^2`; 1 when more than a
    /// tenth of the samples answered both prompts alike.
    pub score: f64,
    /// Per sample: the mean of its two responses' `1 - fraction^2`.
    pub per_sample: Vec<f64>,
    pub duplicates: usize,
    /// The fraction of (response, rule) checks met.
    pub rules_met: f64,
}

/// Similarity above which two responses count as duplicates.
pub const DUPLICATE_SIMILARITY: f64 = 0.6;

pub fn score(samples: &[Sample], responses: &[Option<[String; 2]>]) -> Scored {
    let mut scores: Vec<f64> = Vec::new();
    let mut per_sample = Vec::with_capacity(samples.len());
    let (mut duplicates, mut met, mut checks) = (0usize, 0usize, 0usize);
    for (s, r) in samples.iter().zip(responses) {
        let n = s.rules.len();
        checks += 2 * n;
        let Some(r) = r else {
            scores.extend(std::iter::repeat_n(1.0, 2 * n));
            per_sample.push(1.0);
            continue;
        };
        if difflib::ratio_ignoring_blanks(&r[0], &r[1]) > DUPLICATE_SIMILARITY {
            duplicates += 1;
        }
        let mut mean = 0.0;
        for (index, response) in r.iter().enumerate() {
            let correct = s.rules.iter().filter(|rule| rule.matches(response, index)).count();
            met += correct;
            let ratio = correct as f64 / n as f64;
            let response_score = 1.0 - ratio.powi(2);
            scores.extend(std::iter::repeat_n(response_score, n));
            mean += response_score / 2.0;
        }
        per_sample.push(mean);
    }
    let rules_met = if checks == 0 { 0.0 } else { met as f64 / checks as f64 };
    let score = if duplicates as f64 > samples.len() as f64 * 0.1 || scores.is_empty() {
        1.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    };
    Scored { score, per_sample, duplicates, rules_met }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn golden() -> Value {
        serde_json::from_str(include_str!("../../../../tests/golden/sn37_ifeval.json")).expect("golden JSON")
    }

    fn fixture_tagger() -> tagger::PerceptronTagger {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/nltk_data/taggers/averaged_perceptron_tagger_eng"
        );
        tagger::PerceptronTagger::load(std::path::Path::new(dir)).expect("the fixture tagger loads")
    }

    /// Samples, prompts, rules and scores exactly as tests/reference/sn37_ifeval.py computes
    /// them with CPython's `random`, `difflib` and NLTK.
    #[test]
    fn samples_and_scores_match_the_python_reference() {
        let g = golden();
        let t = fixture_tagger();
        let tag = |w: &[String]| t.tag(&w.iter().map(String::as_str).collect::<Vec<_>>());
        let cases = g["if_eval"].as_array().unwrap();
        assert!(cases.len() >= 5);
        let mut rules_seen = std::collections::BTreeSet::new();
        for c in cases {
            let seed: u64 = c["seed"].as_str().unwrap().parse().unwrap();
            let version = c["version"].as_u64().unwrap() as u8;
            let rows: Vec<(String, String)> = c["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
                .collect();
            let mut rng = PyRandom::new(seed);
            let samples =
                generate(&usable_pairs(&rows), 20, version, rule_counts(version).unwrap(), &tag, &mut rng);
            assert_eq!(serde_json::to_value(&samples).unwrap(), c["samples"], "seed {seed}");
            for s in &samples {
                rules_seen.extend(s.rules.iter().map(|r| r.id()));
            }
            let responses: Vec<Option<[String; 2]>> = c["responses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .map(|a| [a[0].as_str().unwrap().to_string(), a[1].as_str().unwrap().to_string()])
                })
                .collect();
            let got = score(&samples, &responses);
            assert_eq!(got.score.to_bits(), c["score_bits"].as_u64().unwrap(), "seed {seed}: {}", got.score);
        }
        // Every rule of version 2 was drawn at least once.
        assert_eq!(rules_seen.len(), 13, "{rules_seen:?}");
    }

    #[test]
    fn question_and_answer_follow_the_reference_pattern() {
        let c = "What is 2+2?\nA. three\nB. four apples\nC. five\nD. six";
        assert_eq!(question_and_answer(c, "B"), Some(("What is 2+2?".into(), "four apples".into())));
        assert_eq!(question_and_answer(c, "E"), None);
        assert_eq!(question_and_answer("no options", "A"), None);
        // Answers of one word are not used.
        assert_eq!(usable_pairs(&[(c.into(), "A".into()), (c.into(), "B".into())]).len(), 1);
    }

    #[test]
    fn duplicate_answers_score_one() {
        let s = Sample { prompts: ["a".into(), "b".into()], rules: vec![Rule::NoCommas] };
        let same = Some(["no commas here".to_string(), "no commas here".to_string()]);
        assert_eq!(score(std::slice::from_ref(&s), std::slice::from_ref(&same)).score, 1.0);
        let different = Some(["no commas here".to_string(), "Totally, different!".to_string()]);
        // One response meets its rule, one does not: (0 + 1) / 2.
        assert_eq!(score(&[s], &[different]).score, 0.5);
    }
}
