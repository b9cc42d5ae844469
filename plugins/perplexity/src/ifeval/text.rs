//! Python's `str` methods as SN37's IF-eval rules use them, over code points: `split()`,
//! `splitlines()`, `strip()`, `isupper()`, `islower()`, and the rules' `get_words` (ASCII
//! punctuation removed, then `split()`).

/// `str.isspace()` for one character: Unicode White_Space plus the four ASCII separators
/// (U+001C..U+001F) that Python also counts.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `text.split()`: runs of whitespace separate words; no empty words.
pub fn py_split(text: &str) -> Vec<&str> {
    text.split(is_py_space).filter(|w| !w.is_empty()).collect()
}

/// `text.strip()`.
pub fn py_strip(text: &str) -> &str {
    text.trim_matches(is_py_space)
}

/// `text.splitlines()`: the line boundaries Python knows; `\r\n` is one boundary.
pub fn py_splitlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let boundary = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if boundary {
            out.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r'
                && let Some(&(j, '\n')) = it.peek()
            {
                it.next();
                end = j + 1;
            }
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Titlecase letters (category Lt): Python's `isupper`/`islower` treat them as neither.
fn is_titlecase(c: char) -> bool {
    matches!(c as u32,
        0x01C5 | 0x01C8 | 0x01CB | 0x01F2 | 0x1F88..=0x1F8F | 0x1F98..=0x1F9F | 0x1FA8..=0x1FAF
        | 0x1FBC | 0x1FCC | 0x1FFC)
}

/// `text.isupper()`: no lowercase or titlecase character, and at least one uppercase one.
pub fn py_isupper(text: &str) -> bool {
    let mut cased = false;
    for c in text.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

/// `text.islower()`: no uppercase or titlecase character, and at least one lowercase one.
pub fn py_islower(text: &str) -> bool {
    let mut cased = false;
    for c in text.chars() {
        if c.is_uppercase() || is_titlecase(c) {
            return false;
        }
        cased |= c.is_lowercase();
    }
    cased
}

/// SN37's `get_words`: `text.translate(remove string.punctuation).split()`.
pub fn get_words(text: &str) -> Vec<String> {
    let cleaned: String = text.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    py_split(&cleaned).into_iter().map(str::to_string).collect()
}

/// Python's `len(s)`: code points.
pub fn py_len(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_string_methods() {
        assert_eq!(py_split("  a\tb\u{1f}c\u{a0}d  "), ["a", "b", "c", "d"]);
        assert_eq!(py_splitlines("a\r\nb\rc\n\nd\u{2028}e\n"), ["a", "b", "c", "", "d", "e"]);
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
        assert!(py_isupper("HELLO, WORLD 2!"));
        assert!(!py_isupper("123 !"));
        assert!(!py_isupper("HELLo"));
        assert!(py_islower("hello ß"));
        assert!(!py_islower("hello \u{01C5}"));
        assert_eq!(get_words("Don't stop, e.g. now!"), ["Dont", "stop", "eg", "now"]);
        assert_eq!(py_strip("\u{1c} x \n"), "x");
    }
}
