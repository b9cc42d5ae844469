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
pub fn synthetic_1(row: &Value, task_types: &[String]) -> Option<(String, String)> {
    let task = row.get("task_type").and_then(Value::as_str).unwrap_or("unknown");
    if !task_types.iter().any(|t| t == task) {
        return None;
    }
    let (question, assistant) = messages(row)?;
    static BOXED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static OUTPUT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let (trace, answer) = match task {
        "verifiable_math" => {
            let re = BOXED.get_or_init(|| regex::Regex::new(r"\\boxed\{(.*?)\}").expect("a valid pattern"));
            let answer = last_capture(re, assistant).unwrap_or("");
            let trace = match assistant.rfind(&format!("\\boxed{{{answer}}}")) {
                Some(i) if !answer.is_empty() => py_strip(&assistant[..i]).to_string(),
                _ => assistant.to_string(),
            };
            (trace, format!(" \\boxed{{{answer}}}"))
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
            (trace, format!(" {{\"output\": \"{answer}\"}}"))
        }
        _ => return None,
    };
    Some((question.to_string(), format!("{}{answer}", py_strip(&trace))))
}

/// A Codeforces-CoTs row: exactly two messages, the question and the stripped trace.
pub fn codeforces(row: &Value) -> Option<(String, String)> {
    let m = row.get("messages")?.as_array()?;
    if m.len() != 2 {
        return None;
    }
    let (question, trace) = messages(row)?;
    Some((question.to_string(), py_strip(trace).to_string()))
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
            synthetic_1(&row, &types),
            Some(("1+1?".into(), "<think>easy</think> so \\boxed{1} no, \\boxed{2}".into()))
        );
        let row = json!({"task_type": "code_output_prediction", "messages": [
            {"content": "q"}, {"content": "t {\"output\": \"7\"} end {\"output\": \"7\"}"}]});
        assert_eq!(synthetic_1(&row, &types).unwrap().1, "t  end {\"output\": \"7\"} {\"output\": \"7\"}");
        assert_eq!(synthetic_1(&json!({"task_type": "other", "messages": []}), &types), None);
        let row = json!({"messages": [{"content": "q"}, {"content": "  trace \n"}]});
        assert_eq!(codeforces(&row), Some(("q".into(), "trace".into())));
        assert!(fits(&["abcd"; 2], 12) && !fits(&["abcd"; 2], 11));
    }
}

#[cfg(test)]
mod golden {
    use super::*;

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
