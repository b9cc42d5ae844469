//! How documents become scored windows, and how per-token losses become a score. Pure
//! functions over token ids; the model only supplies the negative log-likelihood of each target.
//!
//! A [`Window`] is one model input: `ids`, and for each position the id of the next token to
//! score (`targets[i]` is predicted from `ids[..=i]`), or [`UNSCORED`].

/// A position whose prediction is not scored.
pub const UNSCORED: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub ids: Vec<u32>,
    pub targets: Vec<u32>,
    /// The document (sample) the window's scored tokens belong to; SN9 packing mixes documents
    /// and reports the first.
    pub doc: usize,
}

impl Window {
    /// Next-token targets for every position but the last (a causal LM's shifted labels).
    fn shifted(ids: Vec<u32>, doc: usize) -> Window {
        let mut targets: Vec<u32> = ids.iter().skip(1).copied().collect();
        targets.push(UNSCORED);
        Window { ids, targets, doc }
    }
}

/// SN9 (pretraining) packing: each document's tokens followed by one EOS, concatenated and cut
/// into `seq_len` windows; the remainder that does not fill a window is dropped. Every position
/// but the last of a window is scored.
pub fn sn9_packed(docs: &[Vec<u32>], eos: u32, seq_len: usize) -> Vec<Window> {
    let mut buf = Vec::new();
    let mut owner = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        buf.extend_from_slice(doc);
        buf.push(eos);
        owner.extend(std::iter::repeat_n(d, doc.len() + 1));
    }
    if seq_len < 2 {
        return Vec::new();
    }
    buf.chunks_exact(seq_len)
        .enumerate()
        .map(|(i, c)| Window::shifted(c.to_vec(), owner[i * seq_len]))
        .collect()
}

/// SN37 (finetuning) FineWeb: each document (already truncated to `seq_len` by the tokenizer)
/// padded on the right with `pad` to `seq_len`; pads are neither masked nor excluded from the
/// loss, as the reference does.
pub fn sn37_padded(docs: &[Vec<u32>], pad: u32, seq_len: usize) -> Vec<Window> {
    docs.iter()
        .enumerate()
        .map(|(d, doc)| {
            let mut ids: Vec<u32> = doc.iter().copied().take(seq_len).collect();
            ids.resize(seq_len.max(ids.len()), pad);
            Window::shifted(ids, d)
        })
        .collect()
}

/// lm-eval-harness `loglikelihood_rolling` with `context_len = 1`: the first window is
/// `[prefix] + toks[..first-1]` predicting `toks[..first]`; later windows predict disjoint chunks
/// of up to `max_len` tokens, with the left context that fits (`make_disjoint_window`). Every
/// token of the document is scored exactly once.
pub fn rolling(doc_tokens: &[Vec<u32>], prefix: u32, max_len: usize) -> Vec<Window> {
    let mut out = Vec::new();
    if max_len == 0 {
        return out;
    }
    for (d, toks) in doc_tokens.iter().enumerate() {
        let n = toks.len();
        if n == 0 {
            continue;
        }
        let first = max_len.min(n);
        // Context [prefix], continuation toks[..first]: inputs are (ctx + cont)[..-1].
        let mut ids = vec![prefix];
        ids.extend_from_slice(&toks[..first - 1]);
        out.push(Window { ids, targets: toks[..first].to_vec(), doc: d });
        let mut predicted = first;
        while predicted < n {
            let wl = (n - predicted).min(max_len);
            let end = predicted + wl;
            // Inputs: toks[end - max_len - 1 .. end - 1]; the last wl positions are scored.
            let start = end.saturating_sub(max_len + 1);
            let ids = toks[start..end - 1].to_vec();
            let mut targets = vec![UNSCORED; ids.len()];
            let first_scored = ids.len() + 1 - wl;
            for (j, t) in targets.iter_mut().enumerate().skip(first_scored.saturating_sub(1)) {
                *t = toks[start + j + 1];
            }
            out.push(Window { ids, targets, doc: d });
            predicted += wl;
        }
    }
    out
}

/// Hugging Face's "perplexity of fixed-length models" strided protocol over one token stream:
/// windows of `max_len` starting every `stride` tokens; in each, only the tokens not scored by
/// the previous window are targets. Returns the windows and, for each, the weight the docs give
/// its mean loss (`trg_len - 1`).
pub fn strided(toks: &[u32], max_len: usize, stride: usize) -> Vec<(Window, usize)> {
    let mut out = Vec::new();
    let n = toks.len();
    if max_len < 2 || stride == 0 {
        return out;
    }
    let mut prev_end = 0;
    let mut begin = 0;
    while begin < n {
        let end = (begin + max_len).min(n);
        let trg_len = end - prev_end;
        let ids = toks[begin..end].to_vec();
        let len = ids.len();
        // labels[:-trg_len] = -100; the model shifts: target at position i is labels[i + 1].
        let mut targets = vec![UNSCORED; len];
        for (i, t) in targets.iter_mut().enumerate().take(len.saturating_sub(1)) {
            if i + 1 >= len - trg_len.min(len) {
                *t = ids[i + 1];
            }
        }
        out.push((Window { ids, targets, doc: 0 }, trg_len.saturating_sub(1)));
        prev_end = end;
        if end == n {
            break;
        }
        begin += stride;
    }
    out
}

/// The mean over windows of each window's mean NLL over its scored targets (SN9, SN37).
pub fn mean_of_window_means(nll: &[Vec<f32>], windows: &[Window]) -> f64 {
    let means: Vec<f64> = windows
        .iter()
        .zip(nll)
        .map(|(w, l)| {
            let (s, c) = scored_sum(w, l);
            if c == 0 { 0.0 } else { s / c as f64 }
        })
        .collect();
    if means.is_empty() { f64::NAN } else { means.iter().sum::<f64>() / means.len() as f64 }
}

/// Σ NLL over a window's scored targets (accumulated in f64, in position order) and their count.
pub fn scored_sum(w: &Window, nll: &[f32]) -> (f64, usize) {
    let mut s = 0.0f64;
    let mut c = 0;
    for (t, l) in w.targets.iter().zip(nll) {
        if *t != UNSCORED {
            s += *l as f64;
            c += 1;
        }
    }
    (s, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_scored(ws: &[Window]) -> Vec<u32> {
        ws.iter().flat_map(|w| w.targets.iter().copied().filter(|&t| t != UNSCORED)).collect()
    }

    #[test]
    fn sn9_packs_with_eos_and_drops_the_remainder() {
        let ws = sn9_packed(&[vec![1, 2, 3], vec![4, 5]], 0, 3);
        // Stream: 1 2 3 0 4 5 0 -> windows [1 2 3] [0 4 5], remainder [0] dropped.
        assert_eq!(ws.len(), 2);
        assert_eq!(ws[0].ids, vec![1, 2, 3]);
        assert_eq!(ws[0].targets, vec![2, 3, UNSCORED]);
        assert_eq!(ws[1].ids, vec![0, 4, 5]);
        assert_eq!(ws[1].doc, 0);
    }

    #[test]
    fn sn37_pads_without_masking() {
        let ws = sn37_padded(&[vec![7, 8]], 9, 4);
        assert_eq!(ws[0].ids, vec![7, 8, 9, 9]);
        assert_eq!(ws[0].targets, vec![8, 9, 9, UNSCORED]);
    }

    #[test]
    fn rolling_scores_every_token_once_with_the_prefix_first() {
        for n in 1..30 {
            for max_len in 1..8 {
                let toks: Vec<u32> = (100..100 + n).collect();
                let ws = rolling(std::slice::from_ref(&toks), 1, max_len);
                assert_eq!(all_scored(&ws), toks, "n={n} max_len={max_len}");
                assert_eq!(ws[0].ids[0], 1);
                for w in &ws {
                    assert!(w.ids.len() <= max_len);
                    for (i, t) in w.targets.iter().enumerate() {
                        if *t != UNSCORED && i + 1 < w.ids.len() {
                            assert_eq!(*t, w.ids[i + 1]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rolling_later_windows_keep_the_left_context_that_fits() {
        // lm-eval: toks 0..10, max_len 4: windows predict [0..4], [4..8], [8..10];
        // the last has context toks[5..9] (max_len + 1 - wl = 3 tokens before the chunk).
        let toks: Vec<u32> = (0..10).collect();
        let ws = rolling(std::slice::from_ref(&toks), 99, 4);
        assert_eq!(ws.len(), 3);
        assert_eq!(ws[0].ids, vec![99, 0, 1, 2]);
        assert_eq!(ws[1].ids, vec![3, 4, 5, 6]);
        assert_eq!(ws[1].targets, vec![4, 5, 6, 7]);
        assert_eq!(ws[2].ids, vec![5, 6, 7, 8]);
        assert_eq!(ws[2].targets, vec![UNSCORED, UNSCORED, 8, 9]);
    }

    #[test]
    fn strided_scores_each_token_after_the_first_once() {
        let toks: Vec<u32> = (0..23).collect();
        let scored = |max_len, stride| -> Vec<u32> {
            strided(&toks, max_len, stride)
                .iter()
                .flat_map(|(w, _)| all_scored(std::slice::from_ref(w)))
                .collect()
        };
        for (max_len, stride) in [(8, 4), (5, 2), (16, 7)] {
            assert_eq!(
                scored(max_len, stride),
                (1..23).collect::<Vec<u32>>(),
                "max_len={max_len} stride={stride}"
            );
        }
        // With stride = max_len the windows are disjoint and each window's first token is never
        // a target (HF's labels are shifted inside the window).
        let disjoint: Vec<u32> = (1..23).filter(|t| t % 8 != 0).collect();
        assert_eq!(scored(8, 8), disjoint);
        let ws = strided(&toks, 8, 4);
        assert_eq!(ws[0].1, 7);
        assert_eq!(ws[1].1, 3);
    }
}
