//! Sentence counting as NLTK's *untrained* Punkt tokenizer does it:
//! `len(nltk.tokenize.punkt.PunktSentenceTokenizer().tokenize(text))`, i.e. empty
//! `PunktParameters` (no abbreviations, collocations, sentence starters or orthographic
//! context) and `realign_boundaries=True`. SN37's IF-eval rules count sentences this way.
//!
//! Matched against nltk 3.10.4 (the latest release on PyPI when written), whose patterns
//! run on the third-party `regex` engine (2026.5.9) under CPython 3.11. Vectors:
//! `tests/reference/sn37_text_vectors.py` -> `tests/golden/sn37_text.json`. nltk 3.9.x
//! differs: it ran on the stdlib `re` (whose `\s` also has U+001C..U+001F) and did not
//! count curly quotes and guillemets (‘’“”«») as closing or non-word punctuation.
//!
//! With empty parameters the algorithm reduces to:
//! 1. every `.`, `?` or `!` directly followed by a "non-word" punctuation mark, or by
//!    whitespace and then a further token, is a candidate end (`period_context_re`);
//! 2. each candidate is judged on a short context (the word before it, the mark, and what
//!    follows), which is split into Punkt word tokens; the candidate is a break when some
//!    token of that context other than the last is a sentence break after both annotation
//!    passes (`text_contains_sentbreak`);
//! 3. closing quotes and brackets after a break are moved onto the sentence they close
//!    (`_realign_boundaries`), and empty sentences are dropped.
//!
//! A token is a sentence break when it is `.`, `?` or `!`, or ends in exactly one `.`
//! (not an ellipsis); the second pass then un-breaks an initial (`J.`: one letter and a
//! period) followed by a lowercase, uppercase or `;:,.!?` token, and a number (`1.`, `3.5.`)
//! followed by a lowercase or `;:,.!?` token.
//!
//! Offsets are code-point indices (Python `str` semantics). Character classes follow the
//! Python side: regex `\s` is Unicode White_Space (`char::is_whitespace`); `str.isspace`
//! (used by `strip`/`rstrip`) additionally has U+001C..U+001F; `string.whitespace` is
//! ASCII only; `str.isupper`/`islower` of one code point are the Uppercase/Lowercase
//! properties (`char::is_uppercase`/`is_lowercase`); `\w` and `\d` come from the `regex`
//! crate (Alphabetic+Mark+Nd+Pc+Join_Control, and Nd), which is what the Python `regex`
//! engine uses. The only divergences are the Unicode versions behind those tables: code
//! points assigned after Unicode 14 (CPython 3.11's `str` methods), 16 (this Rust) or 17
//! (Python `regex`); U+0295, the one code point whose case changed, is treated as CPython
//! 3.11 does.

use regex::Regex;
use std::sync::LazyLock;

/// `[^\W\d]`: a word character that is not a decimal digit.
static LETTER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\A[^\W\d]\z").unwrap());
/// `PunktToken._RE_NUMERIC` (tokens never hold a newline, so `$` is the end).
static NUMERIC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\A-?[.,]?\d[\d,.\-]*\.?\z").unwrap());

/// Regex `\s` (the Python `regex` engine: Unicode White_Space).
fn is_re_space(c: char) -> bool {
    c.is_whitespace()
}

/// Python `str.isspace` (what `strip`/`rstrip` remove): White_Space plus U+001C..U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python `string.whitespace`.
fn is_ascii_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `PunktLanguageVars._re_non_word_chars`: punctuation that cannot appear within words.
fn is_non_word(c: char) -> bool {
    matches!(
        c,
        ')' | '"'
            | ';'
            | '}'
            | ']'
            | '*'
            | ':'
            | '@'
            | '\''
            | '('
            | '{'
            | '['
            | '\u{2018}'
            | '\u{2019}'
            | '\u{201c}'
            | '\u{201d}'
            | '\u{ab}'
            | '\u{bb}'
            | '?'
            | '!'
    )
}

/// Characters excluded by `PunktLanguageVars._re_word_start`.
fn cannot_start_word(c: char) -> bool {
    matches!(c, '(' | '"' | '`' | '{' | '[' | ':' | ';' | '&' | '#' | '*' | '@' | ')' | '}' | ']' | '-' | ',')
}

/// The closing characters of `PunktLanguageVars.re_boundary_realignment`.
fn is_closing(c: char) -> bool {
    matches!(
        c,
        '"' | '\''
            | ')'
            | ']'
            | '}'
            | '\u{2018}'
            | '\u{2019}'
            | '\u{201c}'
            | '\u{201d}'
            | '\u{ab}'
            | '\u{bb}'
    )
}

fn is_upper(c: char) -> bool {
    c.is_uppercase()
}

/// `str.islower` of one code point. U+0295 (ʕ) was Ll up to Unicode 15.1 (CPython <= 3.13)
/// and is Lo since Unicode 16, which this Rust follows.
fn is_lower(c: char) -> bool {
    c.is_lowercase() || c == '\u{295}'
}

fn is_letter(c: char) -> bool {
    let mut buf = [0u8; 4];
    LETTER.is_match(c.encode_utf8(&mut buf))
}

/// Length of the `_re_multi_char_punct` match (`-{2,}|\.{2,}|(?:\.\s){2,}\.`) at `p`, as
/// the leftmost-first backtracking engine takes it; 0 when it does not match.
fn multi_char_len(s: &[char], p: usize) -> usize {
    let at = |i: usize| s.get(i).copied();
    for dash_or_dot in ['-', '.'] {
        if at(p) == Some(dash_or_dot) && at(p + 1) == Some(dash_or_dot) {
            return s[p..].iter().take_while(|&&c| c == dash_or_dot).count();
        }
    }
    // `(?:\.\s){k}` greedy, then backtrack until a `.` follows.
    let mut pairs = 0;
    while at(p + 2 * pairs) == Some('.') && at(p + 2 * pairs + 1).is_some_and(is_re_space) {
        pairs += 1;
    }
    if pairs >= 2 && at(p + 2 * pairs) == Some('.') {
        2 * pairs + 1
    } else if pairs >= 3 {
        2 * pairs - 1
    } else {
        0
    }
}

/// `PunktLanguageVars.word_tokenize` of one line (no newlines): `findall` of the word
/// tokenizer pattern, as spans.
fn word_tokenize(s: &[char], out: &mut Vec<(usize, usize)>) {
    let n = s.len();
    // The end-of-word lookahead, minus the comma branch.
    let ends_word = |e: usize| e == n || is_re_space(s[e]) || is_non_word(s[e]) || multi_char_len(s, e) > 0;
    let mut p = 0;
    while p < n {
        if is_re_space(s[p]) {
            p += 1;
            continue;
        }
        let multi = multi_char_len(s, p);
        if multi > 0 {
            out.push((p, p + multi));
            p += multi;
            continue;
        }
        if cannot_start_word(s[p]) {
            out.push((p, p + 1));
            p += 1;
            continue;
        }
        // `\S+?` up to the first position where a word may end; whitespace always ends it.
        let mut e = p + 1;
        while !(ends_word(e) || (s[e] == ',' && ends_word(e + 1))) {
            e += 1;
        }
        out.push((p, e));
        p = e;
    }
}

/// Whether the (first-pass, then second-pass) annotation leaves `tok` a sentence break,
/// given the token after it. Parameters are empty, so the second pass can only clear it.
fn is_sentbreak(tok: &[char], next: &[char]) -> bool {
    let period_final = tok.last() == Some(&'.');
    let first_pass = match tok {
        ['.'] | ['?'] | ['!'] => true,
        // Ellipsis (`\.\.+$`) or any other token ending in `..`: no break.
        _ => period_final && !tok.ends_with(&['.', '.']),
    };
    if !first_pass || !period_final {
        return first_pass;
    }
    let initial = tok.len() == 2 && is_letter(tok[0]);
    let number = NUMERIC.is_match(&tok.iter().collect::<String>());
    if initial || number {
        // `_ortho_heuristic` with no orthographic context: False for punctuation or a
        // lowercase start, otherwise "unknown".
        let not_starter = matches!(next, [';'] | [':'] | [','] | ['.'] | ['!'] | ['?']) || is_lower(next[0]);
        if not_starter || (initial && is_upper(next[0])) {
            return false;
        }
    }
    true
}

/// `PunktSentenceTokenizer.text_contains_sentbreak`: some token other than the last is a
/// sentence break.
fn text_contains_sentbreak(ctx: &[char]) -> bool {
    let mut toks: Vec<&[char]> = Vec::new();
    let mut spans = Vec::new();
    for line in ctx.split(|&c| c == '\n') {
        if line.iter().all(|&c| is_py_space(c)) {
            continue; // `if line.strip():`
        }
        spans.clear();
        word_tokenize(line, &mut spans);
        toks.extend(spans.iter().map(|&(a, b)| &line[a..b]));
    }
    toks.windows(2).any(|w| is_sentbreak(w[0], w[1]))
}

/// A candidate end from `period_context_re`: the mark at `start`, the lookahead
/// (`after_tok`) ending at `after_end`, and where `next_tok` starts, if that branch matched.
struct Candidate {
    start: usize,
    after_end: usize,
    next_tok: Option<usize>,
}

fn period_candidates(s: &[char]) -> Vec<Candidate> {
    let n = s.len();
    let mut out = Vec::new();
    for i in 0..n {
        if !matches!(s[i], '.' | '?' | '!') || i + 1 == n {
            continue;
        }
        if is_non_word(s[i + 1]) {
            out.push(Candidate { start: i, after_end: i + 2, next_tok: None });
        } else if is_re_space(s[i + 1]) {
            let k = (i + 1..n).find(|&k| !is_re_space(s[k]));
            if let Some(k) = k {
                let end = (k..n).find(|&e| is_re_space(s[e])).unwrap_or(n);
                out.push(Candidate { start: i, after_end: end, next_tok: Some(k) });
            }
        }
    }
    out
}

/// `_match_potential_end_contexts`: each kept candidate with the start of its context
/// (the context runs from there to the candidate's `after_end`).
fn potential_end_contexts(s: &[char]) -> Vec<(Candidate, usize)> {
    let mut out = Vec::new();
    let mut prev: Option<(Candidate, (usize, usize))> = None;
    let mut prev_slice = (0usize, 0usize);
    for m in period_candidates(s) {
        let before = &s[prev_slice.1..m.start];
        // `_get_last_whitespace_index`: 0 both for "none" and for index 0.
        let last_ws = before.iter().rposition(|&c| is_ascii_whitespace(c)).unwrap_or(0);
        let word_start = if last_ws != 0 { last_ws + prev_slice.1 + 1 } else { prev_slice.0 };
        let word_slice = (word_start, m.start);
        if let Some((pm, ps)) = prev.take()
            && ps.1 <= word_slice.0
        {
            out.push((pm, ps.0));
        }
        prev = Some((m, word_slice));
        prev_slice = word_slice;
    }
    if let Some((pm, ps)) = prev {
        out.push((pm, ps.0));
    }
    out
}

/// Python `text[a:b]` is non-empty (both within bounds here).
fn non_empty(slice: (usize, usize)) -> bool {
    slice.0 < slice.1
}

/// Number of sentences `PunktSentenceTokenizer().tokenize(text)` returns.
pub fn sentence_count(text: &str) -> usize {
    let s: Vec<char> = text.chars().collect();
    let n = s.len();

    // `_slices_from_text`.
    let mut slices = Vec::new();
    let mut last_break = 0;
    for (m, ctx_start) in potential_end_contexts(&s) {
        if text_contains_sentbreak(&s[ctx_start..m.after_end]) {
            slices.push((last_break, m.start + 1));
            last_break = m.next_tok.unwrap_or(m.start + 1);
        }
    }
    let rstripped = n - s.iter().rev().take_while(|&&c| is_py_space(c)).count();
    slices.push((last_break, rstripped));

    // `_realign_boundaries`, counting what it yields.
    let mut count = 0;
    let mut realign = 0;
    for (i, &(start, stop)) in slices.iter().enumerate() {
        let sentence1 = (start + realign, stop);
        let Some(&(s2_start, s2_stop)) = slices.get(i + 1) else {
            count += usize::from(non_empty(sentence1));
            continue;
        };
        let s2 = &s[s2_start.min(n)..s2_stop.max(s2_start).min(n)];
        match realignment_match(s2) {
            Some(end) => {
                count += 1;
                realign = end;
            }
            None => {
                realign = 0;
                count += usize::from(non_empty(sentence1));
            }
        }
    }
    count
}

/// `re_boundary_realignment.match(s)` (`["')\]}‘’“”«»]+?(?:\s+|(?=--)|$)`, MULTILINE):
/// the end of the match, if any.
fn realignment_match(s: &[char]) -> Option<usize> {
    let n = s.len();
    for k in 1..=n {
        if !is_closing(s[k - 1]) {
            return None;
        }
        if k == n || s[k] == '\n' {
            // `$` (a newline is also `\s`, which wins and takes the whole run).
            return Some(k + s[k..].iter().take_while(|&&c| is_re_space(c)).count());
        }
        if is_re_space(s[k]) {
            return Some(k + s[k..].iter().take_while(|&&c| is_re_space(c)).count());
        }
        if s[k] == '-' && s.get(k + 1) == Some(&'-') {
            return Some(k);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::sentence_count;

    #[test]
    fn matches_nltk_golden() {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../../../../tests/golden/sn37_text.json")).unwrap();
        let cases = golden["sentences"].as_array().unwrap();
        assert!(cases.len() >= 300);
        let mut failures = Vec::new();
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let want = case["count"].as_u64().unwrap() as usize;
            let got = sentence_count(text);
            if got != want {
                failures.push(format!("{text:?}: got {got}, nltk {want}"));
            }
        }
        assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn examples() {
        assert_eq!(sentence_count(""), 0);
        assert_eq!(sentence_count("   \n\t "), 0);
        assert_eq!(sentence_count("Hello world. How are you? Fine!"), 3);
        assert_eq!(sentence_count("J. K. Rowling wrote it. Then more."), 2);
        assert_eq!(sentence_count("(Sent one.) Sent two."), 2);
    }
}
