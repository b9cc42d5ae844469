//! SN37's generated and parsed reference-loss data: the word-sorting challenges, and the
//! (context, reference) pairs of the reasoning datasets (SYNTHETIC-1-SFT, Codeforces CoTs).

use arena_plugin_api::pyrandom::PyRandom;
use serde_json::Value;

use crate::ifeval::text::{py_len, py_strip};

/// The prompt before the words to sort.
pub const WORD_SORTING_PROMPT: &str = "Sort the following words alphabetically: ";

/// The system message of SN37's reasoning datasets.
pub const REASONING_SYSTEM_PROMPT: &str = "You are a reflective AI capable of using extended chains of thought to consider the problem thoroughly and deliberate through systematic reasoning to arrive at a correct solution before answering. Enclose your internal monologue in <think> ... </think> tags, then provide your final answer in the format that the user requests.";

/// SN37's word-sorting set: `samples` challenges of `randint(min_words, max_words)` distinct
/// words (`random.sample` of the corpus words of at least `min_length` letters, lower-cased);
/// the reference is the words sorted by code point.
pub fn word_sorting(
    corpus: &[&str],
    min_length: usize,
    (min_words, max_words): (usize, usize),
    samples: usize,
    rng: &mut PyRandom,
) -> Result<Vec<(String, String)>, String> {
    let words: Vec<String> =
        corpus.iter().filter(|w| py_len(w) >= min_length).map(|w| w.to_lowercase()).collect();
    if min_words > max_words {
        return Err(format!("min_words {min_words} is greater than max_words {max_words}"));
    }
    if words.len() < max_words {
        return Err(format!(
            "the word list has {} words of at least {min_length} letters; {max_words} are needed",
            words.len()
        ));
    }
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let count = rng.randint(min_words as i64, max_words as i64) as usize;
        let picked: Vec<&str> =
            rng.sample_indices(words.len(), count).into_iter().map(|i| words[i].as_str()).collect();
        let challenge = format!("{WORD_SORTING_PROMPT}{}. ", picked.join(" "));
        let mut sorted = picked.clone();
        sorted.sort();
        out.push((challenge, sorted.join(" ")));
    }
    Ok(out)
}

fn messages(row: &Value) -> Option<(&str, &str)> {
    let m = row.get("messages")?.as_array()?;
    let content = |i: usize| m.get(i)?.get("content")?.as_str();
    Some((content(0)?, content(1)?))
}

fn last_capture<'a>(re: &regex::Regex, text: &'a str) -> Option<&'a str> {
    re.captures_iter(text).last().and_then(|c| c.get(1)).map(|m| m.as_str())
}

/// A SYNTHETIC-1-SFT row as SN37 reads it: question, and the assistant's trace with its final
/// answer re-attached (`\boxed{…}` for `verifiable_math`, `{"output": "…"}` for
/// `code_output_prediction`). `None` for another task type or a malformed row.
pub fn synthetic_1(
    row: &Value,
    task_types: &[String],
    max_tokens: Option<usize>,
) -> Option<(String, String)> {
    let task = row.get("task_type").and_then(Value::as_str).unwrap_or("unknown");
    if !task_types.iter().any(|t| t == task) {
        return None;
    }
    let (question, assistant) = messages(row)?;
    static BOXED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static OUTPUT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let (trace, answer, bare) = match task {
        "verifiable_math" => {
            let re = BOXED.get_or_init(|| regex::Regex::new(r"\\boxed\{(.*?)\}").expect("a valid pattern"));
            let answer = last_capture(re, assistant).unwrap_or("");
            let trace = match assistant.rfind(&format!("\\boxed{{{answer}}}")) {
                Some(i) if !answer.is_empty() => py_strip(&assistant[..i]).to_string(),
                _ => assistant.to_string(),
            };
            (trace, format!(" \\boxed{{{answer}}}"), answer)
        }
        "code_output_prediction" => {
            let re = OUTPUT
                .get_or_init(|| regex::Regex::new(r#"\{"output": "(.*?)"\}"#).expect("a valid pattern"));
            let answer = last_capture(re, assistant).unwrap_or("");
            let trace = if answer.is_empty() {
                assistant.to_string()
            } else {
                // The reference removes the first occurrence of the last answer.
                assistant.replacen(&format!("{{\"output\": \"{answer}\"}}"), "", 1)
            };
            (trace, format!(" {{\"output\": \"{answer}\"}}"), answer)
        }
        _ => return None,
    };
    // SN37's length estimate counts the question, the trace and the bare answer.
    if max_tokens.is_some_and(|m| !fits(&[question, &trace, bare], m)) {
        return None;
    }
    Some((question.to_string(), format!("{}{answer}", py_strip(&trace))))
}

/// A Codeforces-CoTs row: exactly two messages, the question and the stripped trace (the
/// length estimate reads the trace as it is).
pub fn codeforces(row: &Value, max_tokens: Option<usize>) -> Option<(String, String)> {
    let m = row.get("messages")?.as_array()?;
    if m.len() != 2 {
        return None;
    }
    let (question, trace) = messages(row)?;
    if max_tokens.is_some_and(|max| !fits(&[question, trace], max)) {
        return None;
    }
    Some((question.to_string(), py_strip(trace).to_string()))
}

/// SN37's Synthetic1SFTLoader: rows of the kept task types, parsed, the first `target_size`.
pub fn synthetic_1_pairs(
    rows: &[&Value],
    task_types: &[String],
    max_tokens: Option<usize>,
    target_size: Option<usize>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        rows.iter().filter_map(|r| synthetic_1(r, task_types, max_tokens)).collect();
    // The reference stops parsing once it has `target_size` rows.
    if let Some(n) = target_size {
        out.truncate(n);
    }
    out
}

/// SN37's CodeforcesCOTSLoader over rows.
pub fn codeforces_pairs(rows: &[&Value], max_tokens: Option<usize>) -> Vec<(String, String)> {
    rows.iter().filter_map(|r| codeforces(r, max_tokens)).collect()
}

/// SN37's length filter: `len(text) // 4` per part plus 10 must fit in `max_tokens`.
pub fn fits(parts: &[&str], max_tokens: usize) -> bool {
    parts.iter().map(|p| py_len(p) / 4).sum::<usize>() + 10 <= max_tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasoning_rows_parse_as_the_reference_parses_them() {
        let types = vec!["verifiable_math".to_string(), "code_output_prediction".to_string()];
        let row = json!({"task_type": "verifiable_math", "messages": [
            {"role": "user", "content": "1+1?"},
            {"role": "assistant", "content": "<think>easy</think> so \\boxed{1} no, \\boxed{2} "}]});
        assert_eq!(
            synthetic_1(&row, &types, None),
            Some(("1+1?".into(), "<think>easy</think> so \\boxed{1} no, \\boxed{2}".into()))
        );
        let row = json!({"task_type": "code_output_prediction", "messages": [
            {"content": "q"}, {"content": "t {\"output\": \"7\"} end {\"output\": \"7\"}"}]});
        assert_eq!(
            synthetic_1(&row, &types, None).unwrap().1,
            "t  end {\"output\": \"7\"} {\"output\": \"7\"}"
        );
        assert_eq!(synthetic_1(&json!({"task_type": "other", "messages": []}), &types, None), None);
        let row = json!({"messages": [{"content": "q"}, {"content": "  trace \n"}]});
        assert_eq!(codeforces(&row, None), Some(("q".into(), "trace".into())));
        // The estimate reads the trace unstripped: 1 // 4 + 9 // 4 + 10 = 12 tokens (stripped: 11).
        assert_eq!(codeforces(&row, Some(11)), None);
        assert!(codeforces(&row, Some(12)).is_some());
        assert!(fits(&["abcd"; 2], 12) && !fits(&["abcd"; 2], 11));
    }
}

#[cfg(test)]
mod golden {
    use super::*;

    /// The reasoning rows parsed as tests/reference/sn37_ifeval.py parses them, after SN37.
    #[test]
    fn reasoning_rows_match_the_python_reference() {
        let g: Value = serde_json::from_str(include_str!("../../../tests/golden/sn37_ifeval.json"))
            .expect("golden JSON");
        let r = &g["reasoning"];
        let rows: Vec<&Value> = r["synthetic_rows"].as_array().unwrap().iter().collect();
        let types = vec!["verifiable_math".to_string(), "code_output_prediction".to_string()];
        for case in r["synthetic"].as_array().unwrap() {
            let max = case["max_tokens"].as_u64().map(|m| m as usize);
            let target = case["target_size"].as_u64().map(|t| t as usize);
            let want: Vec<(String, String)> = serde_json::from_value(case["pairs"].clone()).unwrap();
            assert_eq!(synthetic_1_pairs(&rows, &types, max, target), want, "{max:?} {target:?}");
        }
        let rows: Vec<&Value> = r["codeforces_rows"].as_array().unwrap().iter().collect();
        for case in r["codeforces"].as_array().unwrap() {
            let max = case["max_tokens"].as_u64().map(|m| m as usize);
            let want: Vec<(String, String)> = serde_json::from_value(case["pairs"].clone()).unwrap();
            assert_eq!(codeforces_pairs(&rows, max), want, "{max:?}");
        }
    }

    /// The challenges tests/reference/sn37_ifeval.py draws with CPython's `random`.
    #[test]
    fn word_sorting_matches_the_python_reference() {
        let g: Value = serde_json::from_str(include_str!("../../../tests/golden/sn37_ifeval.json"))
            .expect("golden JSON");
        let words: Vec<&str> = g["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
        for case in g["word_sorting"].as_array().unwrap() {
            let seed: u64 = case["seed"].as_str().unwrap().parse().unwrap();
            let got = word_sorting(&words, 3, (2, 20), 25, &mut PyRandom::new(seed)).unwrap();
            let want: Vec<(String, String)> = serde_json::from_value(case["samples"].clone()).unwrap();
            assert_eq!(got, want, "seed {seed}");
        }
    }
}
