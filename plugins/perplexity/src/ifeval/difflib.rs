//! `difflib.SequenceMatcher(lambda x: x in " \t", a, b).ratio()` over code points, bit for
//! bit: spaces and tabs are junk, and with the default `autojunk=True` an element of `b`
//! occurring more than `len(b) // 100 + 1` times is "popular" when `len(b) >= 200`. Junk and
//! popular elements never start a match; a longest match is extended by non-junk equal
//! elements (popular included) and then by junk equal elements on both sides, as CPython's
//! `find_longest_match` does. The ratio is `2.0 * matches / (len(a) + len(b))`, or 1.0 for
//! two empty strings. Matched against CPython 3.11's difflib; vectors from
//! `tests/reference/sn37_text_vectors.py` in `tests/golden/sn37_text.json`.

use std::collections::HashMap;

fn is_junk(c: char) -> bool {
    c == ' ' || c == '\t'
}

struct Matcher<'s> {
    a: &'s [char],
    b: &'s [char],
    /// `b2j`: positions in `b` of each element, without junk and popular elements.
    b2j: HashMap<char, Vec<usize>>,
}

impl<'s> Matcher<'s> {
    fn new(a: &'s [char], b: &'s [char]) -> Self {
        let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
        for (j, &c) in b.iter().enumerate() {
            b2j.entry(c).or_default().push(j);
        }
        b2j.retain(|&c, _| !is_junk(c));
        if b.len() >= 200 {
            let ntest = b.len() / 100 + 1;
            b2j.retain(|_, idxs| idxs.len() <= ntest);
        }
        Matcher { a, b, b2j }
    }

    /// `find_longest_match(alo, ahi, blo, bhi)` -> (i, j, size).
    fn find_longest_match(&self, alo: usize, ahi: usize, blo: usize, bhi: usize) -> (usize, usize, usize) {
        let (a, b) = (self.a, self.b);
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0);
        // j2len[j + 1]: length of the match ending at a[i - 1], b[j]; `touched` lists
        // the entries set on the previous row so they can be cleared.
        let mut j2len: Vec<usize> = vec![0; b.len() + 1];
        let mut new_j2len: Vec<usize> = vec![0; b.len() + 1];
        let mut touched: Vec<usize> = Vec::new();
        let mut new_touched: Vec<usize> = Vec::new();
        for (i, ai) in a.iter().enumerate().take(ahi).skip(alo) {
            if let Some(js) = self.b2j.get(ai) {
                for &j in js {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = j2len[j] + 1; // j2len.get(j - 1, 0) + 1
                    new_j2len[j + 1] = k;
                    new_touched.push(j + 1);
                    if k > bestsize {
                        besti = i + 1 - k;
                        bestj = j + 1 - k;
                        bestsize = k;
                    }
                }
            }
            for &t in &touched {
                j2len[t] = 0;
            }
            std::mem::swap(&mut j2len, &mut new_j2len);
            std::mem::swap(&mut touched, &mut new_touched);
            new_touched.clear();
        }

        while besti > alo && bestj > blo && !is_junk(b[bestj - 1]) && a[besti - 1] == b[bestj - 1] {
            besti -= 1;
            bestj -= 1;
            bestsize += 1;
        }
        while besti + bestsize < ahi
            && bestj + bestsize < bhi
            && !is_junk(b[bestj + bestsize])
            && a[besti + bestsize] == b[bestj + bestsize]
        {
            bestsize += 1;
        }
        while besti > alo && bestj > blo && is_junk(b[bestj - 1]) && a[besti - 1] == b[bestj - 1] {
            besti -= 1;
            bestj -= 1;
            bestsize += 1;
        }
        while besti + bestsize < ahi
            && bestj + bestsize < bhi
            && is_junk(b[bestj + bestsize])
            && a[besti + bestsize] == b[bestj + bestsize]
        {
            bestsize += 1;
        }
        (besti, bestj, bestsize)
    }

    /// Sum of the sizes of `get_matching_blocks()` (merging adjacent blocks keeps the sum).
    fn matches(&self) -> usize {
        let mut total = 0;
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let (i, j, k) = self.find_longest_match(alo, ahi, blo, bhi);
            if k > 0 {
                total += k;
                if alo < i && blo < j {
                    queue.push((alo, i, blo, j));
                }
                if i + k < ahi && j + k < bhi {
                    queue.push((i + k, ahi, j + k, bhi));
                }
            }
        }
        total
    }
}

/// `difflib.SequenceMatcher(lambda x: x in " \t", a, b).ratio()`.
pub fn ratio_ignoring_blanks(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let length = a.len() + b.len();
    if length == 0 {
        return 1.0;
    }
    let matches = Matcher::new(&a, &b).matches();
    2.0 * matches as f64 / length as f64
}

#[cfg(test)]
mod tests {
    use super::ratio_ignoring_blanks;

    #[test]
    fn matches_difflib_golden() {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../../../../tests/golden/sn37_text.json")).unwrap();
        let cases = golden["similarity"].as_array().unwrap();
        assert!(cases.len() >= 200);
        let mut failures = Vec::new();
        for case in cases {
            let (a, b) = (case["a"].as_str().unwrap(), case["b"].as_str().unwrap());
            // The exact bits: serde_json's default float parsing may be one ulp off.
            let bits = u64::from_str_radix(case["ratio_bits"].as_str().unwrap(), 16).unwrap();
            let want = f64::from_bits(bits);
            let got = ratio_ignoring_blanks(a, b);
            if got != want {
                failures.push(format!("a={a:?} b={b:?}: got {got:?}, difflib {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn examples() {
        assert_eq!(ratio_ignoring_blanks("", ""), 1.0);
        assert_eq!(ratio_ignoring_blanks("abc", ""), 0.0);
        assert_eq!(ratio_ignoring_blanks("abcd", "bcde"), 0.75);
    }
}
