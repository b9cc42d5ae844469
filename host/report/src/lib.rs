//! Round reports for people: one self-contained HTML page per set of rounds (leaderboards with
//! why each uid got its weight, each task's raw and normalized scores, who beats whom, weights
//! float and u16, history over rounds, Yuma's incentive and dividends), its plots drawn by
//! plotters as inline SVG, and PNG export of each plot. Pure but for [`png::find_font`] and
//! [`png::write`]; the binary and the validator do the rest of the I/O.

pub mod html;
pub mod plot;
pub mod png;
pub mod round;

use anyhow::{Context, Result};
use arena_yuma::{EpochInput, EpochResult, Matrix};

pub use html::Report;
pub use round::Round;

/// The epoch arena's Yuma predicts on `input` when validator `me` sets `weights` (uid, u16):
/// its row of the weight matrix is replaced; every other row stays as the chain holds it.
pub fn yuma(mut input: EpochInput, me: u16, weights: &[(u16, u16)]) -> Result<EpochResult> {
    let n = input.stake.len();
    anyhow::ensure!(usize::from(me) < n, "--uid {me} is not a uid of the subnet state given ({n} uids)");
    if let Some(&(uid, _)) = weights.iter().find(|(uid, _)| usize::from(*uid) >= n) {
        anyhow::bail!("the round sets a weight on uid {uid}, but the subnet state has {n} uids");
    }
    let mut rows = input.weights.rows(n, "weights").context("the subnet state's weights")?;
    rows[usize::from(me)] = weights.iter().copied().filter(|(_, w)| *w > 0).collect();
    input.weights = Matrix::Sparse(rows);
    arena_yuma::epoch(&input)
}

/// The u16 weights a round sets (uids at 0 are not sent).
pub fn u16_weights(round: &Round) -> Vec<(u16, u16)> {
    round.weights.iter().filter(|w| w.u16 > 0).map(|w| (w.uid, w.u16)).collect()
}

/// Rounds in block order, one per block (a later file for a block replaces an earlier one).
pub fn by_block(mut rounds: Vec<Round>) -> Vec<Round> {
    rounds.sort_by_key(|r| r.block);
    let mut out: Vec<Round> = Vec::new();
    for r in rounds {
        match out.last_mut() {
            Some(last) if last.block == r.block => *last = r,
            _ => out.push(r),
        }
    }
    out
}
