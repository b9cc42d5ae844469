//! NLTK's averaged perceptron part-of-speech tagger, inference only: what `nltk.pos_tag(words)`
//! (English, i.e. `PerceptronTagger(lang="eng").tag(words)`) returns, run on NLTK's own model
//! files `taggers/averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.{weights,tagdict,
//! classes}.json` (nltk ≥ 3.9; checked against nltk 3.10.4).
//!
//! The model files, as NLTK writes them (`json.dump`, `PerceptronTagger.save_to_json`):
//! * `….weights.json`: `{feature: {tag: weight}}` (weights are floats rounded to 3 decimals);
//! * `….tagdict.json`: `{word: tag}` for frequent, unambiguous words (looked up verbatim);
//! * `….classes.json`: `[tag, …]` (read into a set).
//!
//! What decides a tag, all reproduced here:
//! * a word found in the tag dictionary with a non-empty tag gets that tag; otherwise
//! * the word's features (14 strings, see [`features`]) are built from the word itself, its
//!   normalised neighbours (`-START-`, `-START2-` before the sentence, `-END-`, `-END2-` after
//!   it) and the two previous *output* tags (dictionary or predicted); normalisation
//!   ([`normalize`]): a `-` anywhere but first → `!HYPHEN`, four digits → `!YEAR`, a leading
//!   digit → `!DIGITS`, else lower case, with CPython's `str.isdigit`/`str.lower`;
//! * every class scores the sum, in feature order, of `count * weight` over the features present
//!   in the weights with a non-zero count (Python floats: f64, one running sum per class starting
//!   at 0.0, so the order within a feature's `{tag: weight}` object does not matter, nor does the
//!   order of the objects' keys anywhere: JSON key order cannot change a result, which is why a
//!   plain `HashMap` is enough);
//! * the tag is `max(classes, key=lambda c: (score[c], c))`: the highest score, ties going to the
//!   greatest tag (code-point order, which is UTF-8 byte order), so the set's order does not
//!   matter either.
//!
//! The JSON is read with a small parser of its own ([`json`]) rather than serde_json, because
//! serde_json's default float parsing is not always correctly rounded (its `float_roundtrip`
//! feature is off in this workspace) and Python's `json` is: a weight read one ulp off could
//! flip a close call. Like NLTK (`nltk.jsontags.safe_json_load`) non-finite numbers are refused.
//!
//! Departures, none reachable with a model NLTK wrote: a model with no classes, or with a weight
//! that is not a number (or bool), a tag that is a truthy non-string, or a class that is not a
//! string is refused at load (Python fails only when such an entry is used, or tags with an
//! object that is not a string); only UTF-8 files are read (Python also detects UTF-16/32); if
//! sums overflow to infinities and NaN, the choice among NaN scores follows the sorted class
//! order rather than Python's set order.
//!
//! String semantics are CPython 3.11's (Unicode 14.0, the version the golden vectors come from):
//! `str.isdigit` is a table of that version, and `str.lower` is Rust's `to_lowercase` (which
//! applies the same full mappings and the same final-sigma rule) with the mappings Unicode added
//! after 14.0 left out. Characters first assigned after 14.0 may still differ in how they count
//! for the final-sigma context; newer Pythons (3.12+: Unicode 15+) may differ on such characters
//! from 3.11 too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The folder NLTK's English tagger is read from, under an NLTK data root.
pub const MODEL_SUBDIR: &str = "taggers/averaged_perceptron_tagger_eng";
/// The weights file, `{feature: {tag: weight}}`.
pub const WEIGHTS_FILE: &str = "averaged_perceptron_tagger_eng.weights.json";
/// The tag dictionary, `{word: tag}`.
pub const TAGDICT_FILE: &str = "averaged_perceptron_tagger_eng.tagdict.json";
/// The classes, `[tag, …]`.
pub const CLASSES_FILE: &str = "averaged_perceptron_tagger_eng.classes.json";

const START: [&str; 2] = ["-START-", "-START2-"];
const END: [&str; 2] = ["-END-", "-END2-"];

/// An English averaged perceptron tagger loaded from NLTK's JSON model files.
#[derive(Debug, Clone)]
pub struct PerceptronTagger {
    /// feature → (index into `classes`, weight); labels that are not classes are dropped (they
    /// are never chosen and their sums affect nothing else).
    weights: HashMap<String, Vec<(usize, f64)>>,
    /// word → tag, non-empty tags only (NLTK's `if not tag` falls through to the model).
    tagdict: HashMap<String, String>,
    /// The distinct classes, sorted.
    classes: Vec<String>,
}

impl PerceptronTagger {
    /// Reads the three model files from `dir` (a `taggers/averaged_perceptron_tagger_eng` folder).
    pub fn load(dir: &Path) -> Result<PerceptronTagger, String> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
        };
        let (w, t, c) = (read(WEIGHTS_FILE)?, read(TAGDICT_FILE)?, read(CLASSES_FILE)?);
        Self::from_json(&w, &t, &c)
    }

    /// Builds a tagger from the texts of the weights, tagdict and classes files.
    pub fn from_json(weights: &str, tagdict: &str, classes: &str) -> Result<PerceptronTagger, String> {
        let classes = match json::parse(classes).map_err(|e| format!("{CLASSES_FILE}: {e}"))? {
            json::Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for v in items {
                    match v {
                        json::Value::String(s) => out.push(s),
                        _ => return Err(format!("{CLASSES_FILE}: a class is not a string")),
                    }
                }
                out.sort();
                out.dedup();
                out
            }
            _ => return Err(format!("{CLASSES_FILE}: not a JSON array")),
        };
        if classes.is_empty() {
            return Err(format!("{CLASSES_FILE}: no classes"));
        }
        let index: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();

        let mut w = HashMap::new();
        let json::Value::Object(feats) = json::parse(weights).map_err(|e| format!("{WEIGHTS_FILE}: {e}"))?
        else {
            return Err(format!("{WEIGHTS_FILE}: not a JSON object"));
        };
        for (feat, labels) in feats {
            let json::Value::Object(labels) = labels else {
                return Err(format!("{WEIGHTS_FILE}: the weights of {feat:?} are not an object"));
            };
            let mut row: Vec<(usize, f64)> = Vec::with_capacity(labels.len());
            for (label, v) in labels {
                let x = match v {
                    json::Value::Number(x) => x,
                    // Python: True * 1 == 1
                    json::Value::Bool(b) => f64::from(u8::from(b)),
                    _ => return Err(format!("{WEIGHTS_FILE}: weight {feat:?}/{label:?} is not a number")),
                };
                let Some(&ci) = index.get(label.as_str()) else { continue };
                // A repeated key keeps its last value, as a Python dict built from JSON does.
                match row.iter_mut().find(|(c, _)| *c == ci) {
                    Some(e) => e.1 = x,
                    None => row.push((ci, x)),
                }
            }
            w.insert(feat, row); // a repeated feature keeps its last object, as in Python
        }

        let mut td = HashMap::new();
        let json::Value::Object(entries) =
            json::parse(tagdict).map_err(|e| format!("{TAGDICT_FILE}: {e}"))?
        else {
            return Err(format!("{TAGDICT_FILE}: not a JSON object"));
        };
        for (word, tag) in entries {
            // a falsy tag (`if not tag`) sends the word to the model
            let falsy = match &tag {
                json::Value::Null => true,
                json::Value::Bool(b) => !b,
                json::Value::Number(x) => *x == 0.0,
                json::Value::String(s) => s.is_empty(),
                json::Value::Array(a) => a.is_empty(),
                json::Value::Object(o) => o.is_empty(),
            };
            match tag {
                _ if falsy => {
                    td.remove(&word);
                }
                json::Value::String(s) => {
                    td.insert(word, s);
                }
                _ => return Err(format!("{TAGDICT_FILE}: the tag of {word:?} is not a string")),
            }
        }
        Ok(PerceptronTagger { weights: w, tagdict: td, classes })
    }

    /// The tags `nltk.pos_tag(words)` gives, one per word.
    pub fn tag(&self, words: &[&str]) -> Vec<String> {
        let mut context: Vec<String> = Vec::with_capacity(words.len() + 4);
        context.extend(START.iter().map(|s| s.to_string()));
        context.extend(words.iter().map(|w| normalize(w)));
        context.extend(END.iter().map(|s| s.to_string()));
        let (mut prev, mut prev2) = (START[0].to_string(), START[1].to_string());
        let mut out = Vec::with_capacity(words.len());
        let mut scores = vec![0.0f64; self.classes.len()];
        for (i, word) in words.iter().enumerate() {
            let tag = match self.tagdict.get(*word) {
                Some(t) => t.clone(),
                None => {
                    let feats = features(i, word, &context, &prev, &prev2);
                    self.predict(&feats, &mut scores).to_string()
                }
            };
            prev2 = std::mem::replace(&mut prev, tag.clone());
            out.push(tag);
        }
        out
    }

    /// `AveragedPerceptron.predict`: the class with the greatest (score, class).
    fn predict(&self, feats: &[(String, u32)], scores: &mut [f64]) -> &str {
        scores.fill(0.0);
        for (feat, count) in feats {
            if *count == 0 {
                continue;
            }
            let Some(row) = self.weights.get(feat) else { continue };
            let value = f64::from(*count); // int * float: the int converted, then multiplied
            for &(ci, w) in row {
                scores[ci] += value * w;
            }
        }
        // max() keeps the first maximum and replaces it when key(item) > key(best); tuples
        // compare by `==` first, so -0.0 ties 0.0 and the greater class wins the tie.
        let mut best = 0;
        for ci in 1..self.classes.len() {
            let (s, b) = (scores[ci], scores[best]);
            let greater = if s == b { self.classes[ci] > self.classes[best] } else { s > b };
            if greater {
                best = ci;
            }
        }
        &self.classes[best]
    }
}

/// `PerceptronTagger.normalize`.
pub fn normalize(word: &str) -> String {
    if word.contains('-') && !word.starts_with('-') {
        return "!HYPHEN".to_string();
    }
    if py_isdigit_str(word) && word.chars().count() == 4 {
        return "!YEAR".to_string();
    }
    if word.chars().next().is_some_and(py_isdigit) {
        return "!DIGITS".to_string();
    }
    py_lower(word)
}

/// The last three characters (code points) of `s`, Python's `s[-3:]`.
fn suffix3(s: &str) -> &str {
    match s.char_indices().rev().nth(2) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

/// `PerceptronTagger._get_features`: the features of word `i` with their counts, in insertion
/// order (a Python dict). With these 14 templates no two keys can coincide (no template name
/// followed by a space starts another template's name), so every count is 1; they are counted
/// all the same.
fn features(i: usize, word: &str, context: &[String], prev: &str, prev2: &str) -> Vec<(String, u32)> {
    let i = i + START.len();
    let mut feats: Vec<(String, u32)> = Vec::with_capacity(14);
    let mut add = |parts: &[&str]| {
        let key = parts.join(" ");
        match feats.iter_mut().find(|(k, _)| *k == key) {
            Some(e) => e.1 += 1,
            None => feats.push((key, 1)),
        }
    };
    let first = match word.chars().next() {
        Some(c) => &word[..c.len_utf8()],
        None => "",
    };
    add(&["bias"]);
    add(&["i suffix", suffix3(word)]);
    add(&["i pref1", first]);
    add(&["i-1 tag", prev]);
    add(&["i-2 tag", prev2]);
    add(&["i tag+i-2 tag", prev, prev2]);
    add(&["i word", &context[i]]);
    add(&["i-1 tag+i word", prev, &context[i]]);
    add(&["i-1 word", &context[i - 1]]);
    add(&["i-1 suffix", suffix3(&context[i - 1])]);
    add(&["i-2 word", &context[i - 2]]);
    add(&["i+1 word", &context[i + 1]]);
    add(&["i+1 suffix", suffix3(&context[i + 1])]);
    add(&["i+2 word", &context[i + 2]]);
    feats
}

/// Code points whose `str.isdigit()` is true in CPython 3.11 (Unicode 14.0: Numeric_Type Digit
/// or Decimal), as inclusive ranges. Regenerate with
/// `[c for c in range(0x110000) if chr(c).isdigit()]` grouped into runs.
#[rustfmt::skip]
const PY_DIGITS: &[(u32, u32)] = &[
    (0x30, 0x39), (0xB2, 0xB3), (0xB9, 0xB9), (0x660, 0x669), (0x6F0, 0x6F9), (0x7C0, 0x7C9),
    (0x966, 0x96F), (0x9E6, 0x9EF), (0xA66, 0xA6F), (0xAE6, 0xAEF), (0xB66, 0xB6F), (0xBE6, 0xBEF),
    (0xC66, 0xC6F), (0xCE6, 0xCEF), (0xD66, 0xD6F), (0xDE6, 0xDEF), (0xE50, 0xE59), (0xED0, 0xED9),
    (0xF20, 0xF29), (0x1040, 0x1049), (0x1090, 0x1099), (0x1369, 0x1371), (0x17E0, 0x17E9),
    (0x1810, 0x1819), (0x1946, 0x194F), (0x19D0, 0x19DA), (0x1A80, 0x1A89), (0x1A90, 0x1A99),
    (0x1B50, 0x1B59), (0x1BB0, 0x1BB9), (0x1C40, 0x1C49), (0x1C50, 0x1C59), (0x2070, 0x2070),
    (0x2074, 0x2079), (0x2080, 0x2089), (0x2460, 0x2468), (0x2474, 0x247C), (0x2488, 0x2490),
    (0x24EA, 0x24EA), (0x24F5, 0x24FD), (0x24FF, 0x24FF), (0x2776, 0x277E), (0x2780, 0x2788),
    (0x278A, 0x2792), (0xA620, 0xA629), (0xA8D0, 0xA8D9), (0xA900, 0xA909), (0xA9D0, 0xA9D9),
    (0xA9F0, 0xA9F9), (0xAA50, 0xAA59), (0xABF0, 0xABF9), (0xFF10, 0xFF19), (0x104A0, 0x104A9),
    (0x10A40, 0x10A43), (0x10D30, 0x10D39), (0x10E60, 0x10E68), (0x11052, 0x1105A),
    (0x11066, 0x1106F), (0x110F0, 0x110F9), (0x11136, 0x1113F), (0x111D0, 0x111D9),
    (0x112F0, 0x112F9), (0x11450, 0x11459), (0x114D0, 0x114D9), (0x11650, 0x11659),
    (0x116C0, 0x116C9), (0x11730, 0x11739), (0x118E0, 0x118E9), (0x11950, 0x11959),
    (0x11C50, 0x11C59), (0x11D50, 0x11D59), (0x11DA0, 0x11DA9), (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9), (0x16B50, 0x16B59), (0x1D7CE, 0x1D7FF), (0x1E140, 0x1E149),
    (0x1E2F0, 0x1E2F9), (0x1E950, 0x1E959), (0x1F100, 0x1F10A), (0x1FBF0, 0x1FBF9),
];

/// Code points that Rust's `to_lowercase` maps (Unicode 16/17) but CPython 3.11's `str.lower`
/// (Unicode 14.0) leaves alone: the diff of the two over all code points.
#[rustfmt::skip]
const LOWER_AFTER_UNICODE_14: &[(u32, u32)] = &[
    (0x1C89, 0x1C89), (0xA7CB, 0xA7CC), (0xA7CE, 0xA7CE), (0xA7D2, 0xA7D2), (0xA7D4, 0xA7D4),
    (0xA7DA, 0xA7DA), (0xA7DC, 0xA7DC), (0x10D50, 0x10D65), (0x16EA0, 0x16EB8),
];

fn in_ranges(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `c.isdigit()` for a one-character Python string.
fn py_isdigit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && in_ranges(PY_DIGITS, c))
}

/// `s.isdigit()`: non-empty and every character a digit.
fn py_isdigit_str(s: &str) -> bool {
    !s.is_empty() && s.chars().all(py_isdigit)
}

/// `s.lower()` as CPython 3.11 computes it.
fn py_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let keep = |c: char| in_ranges(LOWER_AFTER_UNICODE_14, c);
    if !s.chars().any(keep) {
        return s.to_lowercase();
    }
    // A character unassigned in Unicode 14 is neither cased nor case-ignorable there, so it ends
    // a final-sigma context just as the end of a piece does: lower the pieces between them.
    let mut out = String::with_capacity(s.len());
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if keep(c) {
            out.push_str(&s[start..i].to_lowercase());
            out.push(c);
            start = i + c.len_utf8();
        }
    }
    out.push_str(&s[start..].to_lowercase());
    out
}

/// The first existing `taggers/averaged_perceptron_tagger_eng` folder along NLTK's default
/// search path (`nltk.data.path`) on Linux.
pub fn find_nltk_data_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k);
    search_path(env("NLTK_DATA"), env("HOME"), env("APPENGINE_RUNTIME").is_some(), env("VIRTUAL_ENV"))
        .into_iter()
        .map(|root| root.join(MODEL_SUBDIR))
        .find(|p| p.is_dir())
}

/// `nltk.data.path` on Linux, from the environment:
/// 1. the entries of `NLTK_DATA` split on `:` (empty ones skipped), `~` expanded;
/// 2. `~/nltk_data` (unless `APPENGINE_RUNTIME` is set, or the home folder is unknown);
/// 3. `sys.prefix`'s `nltk_data`, `share/nltk_data` and `lib/nltk_data`: approximated by
///    `$VIRTUAL_ENV` when set (an activated virtualenv is `sys.prefix`), skipped otherwise
///    (the interpreter's prefix cannot be known without running it; for a system Python it is
///    `/usr` or `/usr/local`, whose `share/` and `lib/` folders come next anyway);
/// 4. `/usr/share/nltk_data`, `/usr/local/share/nltk_data`, `/usr/lib/nltk_data`,
///    `/usr/local/lib/nltk_data`.
///
/// Not reproduced: zipped packages (`averaged_perceptron_tagger_eng.zip`, which NLTK also
/// searches, after the folders), `~user` expansion (left as is), the home folder from the
/// password database when `HOME` is unset, and the refusal by recent nltk (3.10) of data
/// folders that other accounts can write to.
fn search_path(
    nltk_data: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
    appengine: bool,
    virtual_env: Option<std::ffi::OsString>,
) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    // an empty HOME counts (Python then expands "~/x" to "/x")
    let home: Option<Vec<u8>> = home.map(|h| {
        let b = h.as_bytes();
        let t = b.iter().rposition(|&x| x != b'/').map_or(&b[..0], |i| &b[..=i]);
        t.to_vec()
    });
    let expand = |p: &[u8]| -> PathBuf {
        // posixpath.expanduser: "~" or "~/…" → $HOME (trailing slashes stripped) + rest, or "/"
        if p.first() == Some(&b'~')
            && (p.len() == 1 || p[1] == b'/')
            && let Some(h) = &home
        {
            let mut out = h.clone();
            out.extend_from_slice(&p[1..]);
            if out.is_empty() {
                out.push(b'/');
            }
            return PathBuf::from(std::ffi::OsStr::from_bytes(&out));
        }
        PathBuf::from(std::ffi::OsStr::from_bytes(p))
    };
    let mut out = Vec::new();
    if let Some(v) = &nltk_data {
        out.extend(v.as_bytes().split(|&b| b == b':').filter(|d| !d.is_empty()).map(expand));
    }
    if !appengine && home.is_some() {
        out.push(expand(b"~/nltk_data"));
    }
    if let Some(prefix) = virtual_env.filter(|v| !v.is_empty()) {
        let prefix = PathBuf::from(prefix);
        out.extend(["nltk_data", "share/nltk_data", "lib/nltk_data"].map(|s| prefix.join(s)));
    }
    out.extend(
        [
            "/usr/share/nltk_data",
            "/usr/local/share/nltk_data",
            "/usr/lib/nltk_data",
            "/usr/local/lib/nltk_data",
        ]
        .map(PathBuf::from),
    );
    out
}

/// A JSON reader with Python's `json.loads` semantics where they matter here: numbers as
/// correctly rounded f64 (an integer literal is exact in Python and rounded once when added to a
/// float, which parsing it as f64 reproduces), objects as their (key, value) pairs in order,
/// strict strings (no raw control characters; `\u` surrogate pairs joined), and NaN/Infinity
/// refused as `safe_json_load` refuses them.
mod json {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    const MAX_DEPTH: usize = 200;

    pub fn parse(text: &str) -> Result<Value, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text); // Python reads bytes as utf-8-sig
        let mut p = Parser { s: text, b: text.as_bytes(), pos: 0 };
        p.ws();
        let v = p.value(0)?;
        p.ws();
        if p.pos != p.b.len() {
            return Err(p.err("extra data"));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a str,
        b: &'a [u8],
        pos: usize,
    }

    impl Parser<'_> {
        fn err(&self, what: &str) -> String {
            format!("invalid JSON at byte {}: {what}", self.pos)
        }

        fn ws(&mut self) {
            while matches!(self.b.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += 1;
            }
        }

        fn eat(&mut self, lit: &str) -> bool {
            if self.b[self.pos..].starts_with(lit.as_bytes()) {
                self.pos += lit.len();
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, String> {
            if depth > MAX_DEPTH {
                return Err(self.err("nested too deeply"));
            }
            match self.b.get(self.pos) {
                None => Err(self.err("expecting a value")),
                Some(b'{') => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.eat("}") {
                        return Ok(Value::Object(items));
                    }
                    loop {
                        self.ws();
                        if self.b.get(self.pos) != Some(&b'"') {
                            return Err(self.err("expecting a property name in double quotes"));
                        }
                        let k = self.string()?;
                        self.ws();
                        if !self.eat(":") {
                            return Err(self.err("expecting ':'"));
                        }
                        self.ws();
                        let v = self.value(depth + 1)?;
                        items.push((k, v));
                        self.ws();
                        if self.eat("}") {
                            return Ok(Value::Object(items));
                        }
                        if !self.eat(",") {
                            return Err(self.err("expecting ',' or '}'"));
                        }
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.eat("]") {
                        return Ok(Value::Array(items));
                    }
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat("]") {
                            return Ok(Value::Array(items));
                        }
                        if !self.eat(",") {
                            return Err(self.err("expecting ',' or ']'"));
                        }
                    }
                }
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ if self.eat("null") => Ok(Value::Null),
                _ if self.eat("true") => Ok(Value::Bool(true)),
                _ if self.eat("false") => Ok(Value::Bool(false)),
                _ if self.eat("NaN") || self.eat("Infinity") => Err(self.err("non-finite number")),
                _ => Err(self.err("expecting a value")),
            }
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, as Python's scanner reads it.
        fn number(&mut self) -> Result<Value, String> {
            let start = self.pos;
            let digits = |p: &mut Self| {
                let s = p.pos;
                while p.b.get(p.pos).is_some_and(u8::is_ascii_digit) {
                    p.pos += 1;
                }
                p.pos - s
            };
            self.eat("-");
            if self.eat("Infinity") {
                return Err(self.err("non-finite number"));
            }
            if !self.eat("0") && digits(self) == 0 {
                return Err(self.err("expecting a value"));
            }
            // "1." or "1e" are not part of the number in Python: the number ends before them
            // (and the stray character is then an error where it stands).
            let save = self.pos;
            if self.eat(".") && digits(self) == 0 {
                self.pos = save;
            }
            let save = self.pos;
            if self.eat("e") || self.eat("E") {
                if !self.eat("-") {
                    self.eat("+");
                }
                if digits(self) == 0 {
                    self.pos = save;
                }
            }
            let x: f64 = self.s[start..self.pos].parse().map_err(|_| self.err("bad number"))?;
            if !x.is_finite() {
                return Err(self.err("non-finite number"));
            }
            Ok(Value::Number(x))
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let h = self.s.get(self.pos..self.pos + 4).ok_or_else(|| self.err("invalid \\uXXXX escape"))?;
            if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(self.err("invalid \\uXXXX escape"));
            }
            self.pos += 4;
            Ok(u32::from_str_radix(h, 16).unwrap_or(0))
        }

        fn string(&mut self) -> Result<String, String> {
            self.pos += 1; // the opening quote
            let mut out = String::new();
            loop {
                let run = self.pos;
                while self.b.get(self.pos).is_some_and(|&c| c != b'"' && c != b'\\' && c >= 0x20) {
                    self.pos += 1;
                }
                out.push_str(&self.s[run..self.pos]);
                match self.b.get(self.pos) {
                    Some(b'"') => {
                        self.pos += 1;
                        return Ok(out);
                    }
                    Some(b'\\') => {
                        self.pos += 1;
                        let Some(&e) = self.b.get(self.pos) else {
                            return Err(self.err("unterminated string"));
                        };
                        self.pos += 1;
                        match e {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let mut cp = self.hex4()?;
                                if (0xD800..0xDC00).contains(&cp) && self.b[self.pos..].starts_with(b"\\u") {
                                    let save = self.pos;
                                    self.pos += 2;
                                    let lo = self.hex4()?;
                                    if (0xDC00..0xE000).contains(&lo) {
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                    } else {
                                        self.pos = save;
                                    }
                                }
                                // a lone surrogate is a valid Python str but not a Rust one
                                let c = char::from_u32(cp)
                                    .ok_or_else(|| self.err("lone surrogate in \\u escape"))?;
                                out.push(c);
                            }
                            _ => return Err(self.err("invalid escape")),
                        }
                    }
                    Some(_) => return Err(self.err("invalid control character in string")),
                    None => return Err(self.err("unterminated string")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const GOLDEN: &str = include_str!("../../../../tests/golden/nltk_tagger.json");

    /// The fixture model, found from the package (plugins/perplexity) or from this file's path
    /// (when the file is compiled by a crate elsewhere).
    fn fixture_dir() -> PathBuf {
        let rel = "tests/fixtures/nltk_data/taggers/averaged_perceptron_tagger_eng";
        // this file is <repo>/plugins/perplexity/src/ifeval/tagger.rs
        let repo_from_file = Path::new(file!()).ancestors().nth(5).unwrap_or(Path::new(""));
        let candidates =
            [Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel), repo_from_file.join(rel)];
        candidates
            .iter()
            .find(|p| p.join(WEIGHTS_FILE).is_file())
            .cloned()
            .unwrap_or_else(|| panic!("no fixture model among {candidates:?}"))
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
    }

    fn check_cases(t: &PerceptronTagger, cases: &[Value]) {
        for c in cases {
            let words = strings(&c["words"]);
            let want = strings(&c["tags"]);
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            assert_eq!(t.tag(&words), want, "words {words:?}");
        }
    }

    #[test]
    fn nltk_pos_tag_vectors() {
        let g: Value = serde_json::from_str(GOLDEN).unwrap();
        assert!(g["nltk_version"].is_string());
        let t = PerceptronTagger::load(&fixture_dir()).unwrap();
        let cases = g["cases"].as_array().unwrap();
        assert!(cases.len() >= 300, "{}", cases.len());
        check_cases(&t, cases);
    }

    /// A hand-written model tagged by NLTK: ties, summation order, labels outside the classes,
    /// empty tag-dictionary entries, integer weights, -0.0.
    #[test]
    fn nltk_handmade_model_vectors() {
        let g: Value = serde_json::from_str(GOLDEN).unwrap();
        let h = &g["handmade"];
        let t = PerceptronTagger::from_json(
            &h["weights"].to_string(),
            &h["tagdict"].to_string(),
            &h["classes"].to_string(),
        )
        .unwrap();
        check_cases(&t, h["cases"].as_array().unwrap());
    }

    #[test]
    fn normalisation_follows_python() {
        for (w, n) in [
            ("a-b", "!HYPHEN"),
            ("-ab", "-ab"),
            ("-", "-"),
            ("--5", "--5"),
            ("1-2", "!HYPHEN"),
            ("2024", "!YEAR"),
            ("١٩٩٩", "!YEAR"),
            ("²⁰²⁴", "!YEAR"),
            ("12345", "!DIGITS"),
            ("3rd", "!DIGITS"),
            ("½", "½"),
            ("", ""),
            ("ΟΔΟΣ", "οδος"),
            ("ΟΔΟΣ.", "οδος."),
            ("Σ", "σ"),
            ("İ", "i\u{307}"),
            ("\u{1c89}X", "\u{1c89}x"),
            ("ΑΣ\u{1c89}", "ας\u{1c89}"),
        ] {
            assert_eq!(normalize(w), n, "{w:?}");
        }
        assert_eq!(suffix3("naïve"), "ïve");
        assert_eq!(suffix3("ab"), "ab");
    }

    #[test]
    fn features_are_nltks_templates() {
        let ctx: Vec<String> =
            ["-START-", "-START2-", "!YEAR", "dog", "-END-", "-END2-"].map(String::from).to_vec();
        let f = features(0, "1999", &ctx, "-START-", "-START2-");
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "bias",
                "i suffix 999",
                "i pref1 1",
                "i-1 tag -START-",
                "i-2 tag -START2-",
                "i tag+i-2 tag -START- -START2-",
                "i word !YEAR",
                "i-1 tag+i word -START- !YEAR",
                "i-1 word -START2-",
                "i-1 suffix T2-",
                "i-2 word -START-",
                "i+1 word dog",
                "i+1 suffix dog",
                "i+2 word -END-",
            ]
        );
        assert!(f.iter().all(|(_, n)| *n == 1));
        let f = features(0, "", &ctx, "-START-", "-START2-");
        assert_eq!(f[1].0, "i suffix ");
        assert_eq!(f[2].0, "i pref1 ");
    }

    #[test]
    fn json_reader_matches_python() {
        use json::Value as J;
        assert_eq!(
            json::parse(" [1, -0.5e1, \"a\\u00e9\\ud83d\\ude00\", true, null, {}] ").unwrap(),
            J::Array(vec![
                J::Number(1.0),
                J::Number(-5.0),
                J::String("aé😀".into()),
                J::Bool(true),
                J::Null,
                J::Object(vec![])
            ])
        );
        // correctly rounded, as Python's float() (and float(int)) rounds: bits from CPython 3.11
        for (text, bits) in [
            ("2.2250738585072011e-308", 0x000f_ffff_ffff_ffff_u64),
            ("9007199254740993", 0x4340_0000_0000_0000),
            ("1.00000000000000011102230246251565404236316680908203125", 0x3ff0_0000_0000_0000),
            ("1.00000000000000011102230246251565404236316680908203126", 0x3ff0_0000_0000_0001),
            ("0.30000000000000004", 0x3fd3_3333_3333_3334),
            ("123456789012345678901234567890", 0x45f8_ee90_ff6c_373e),
        ] {
            let J::Number(x) = json::parse(text).unwrap() else { panic!("{text}") };
            assert_eq!(x.to_bits(), bits, "{text}");
        }
        for bad in [
            "NaN",
            "-Infinity",
            "1e400",
            "[1,]",
            "01",
            "\"a\u{1}\"",
            "{\"a\" 1}",
            "\"\\ud800\"",
            "1.",
            "[1] x",
        ] {
            assert!(json::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let t = PerceptronTagger::from_json(
            r#"{"bias": {"A": 5, "B": 1, "A": 0.5}, "i word x": {"A": 9}, "i word x": {"B": 0.25}, "i word z": {"A": 0.75}}"#,
            r#"{"y": "B", "y": ""}"#,
            r#"["A", "B", "A"]"#,
        )
        .unwrap();
        // as nltk 3.10.4 tags it
        assert_eq!(t.tag(&["z", "x", "y"]), ["A", "B", "B"]);
        assert!(PerceptronTagger::from_json("{}", "{}", "[]").is_err());
    }

    #[test]
    fn search_path_is_nltks() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(
            search_path(os("/a::~/b:~"), os("/home/u/"), false, os("/venv")),
            [
                "/a",
                "/home/u/b",
                "/home/u",
                "/home/u/nltk_data",
                "/venv/nltk_data",
                "/venv/share/nltk_data",
                "/venv/lib/nltk_data",
                "/usr/share/nltk_data",
                "/usr/local/share/nltk_data",
                "/usr/lib/nltk_data",
                "/usr/local/lib/nltk_data",
            ]
            .map(PathBuf::from)
        );
        assert_eq!(search_path(None, None, false, None).len(), 4);
        assert_eq!(search_path(None, os("/h"), true, None).len(), 4);
    }
}
