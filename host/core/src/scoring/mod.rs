//! The incentive mechanism as pure functions over plain data: raw task scores → normalized →
//! weighted → gated → aggregated total → pairwise wins (epsilon or later-block penalty) →
//! policy (softmax, winner-take-all, proportional) → EMA → threshold → burn → emission split →
//! u16 weight vector. No I/O; every step is reproduced by `tests/reference/scoring_reference.py`.

pub mod formula;
pub mod seed;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{
    Advantage, Aggregate, Competition, Direction, Normalization, Opponents, Policy, Prefilter,
};
use formula::Formula;

pub type Uid = u16;

/// Maps a raw score through a normalization.
pub fn normalize(n: &Normalization, x: f64) -> f64 {
    match *n {
        Normalization::None => x,
        Normalization::InverseExponential { ceiling } => {
            if x >= ceiling {
                1.0
            } else {
                (1.0 - (-x / ceiling).exp()) / (1.0 - (-1.0f64).exp())
            }
        }
        Normalization::MinMax { min, max } => ((x - min) / (max - min)).clamp(0.0, 1.0),
        Normalization::Affine { scale, offset, clamp } => {
            let y = x * scale + offset;
            match clamp {
                Some([lo, hi]) => y.max(lo).min(hi),
                None => y,
            }
        }
    }
}

/// Whether a normalization reverses the order of raw scores (so it flips the direction).
pub fn normalization_flips(n: &Normalization) -> bool {
    match *n {
        Normalization::Affine { scale, .. } => scale < 0.0,
        Normalization::MinMax { min, max } => max < min,
        _ => false,
    }
}

/// The epsilon an earlier submission gets at `current_block` (taoverse `compute_epsilon`);
/// `current_block` may be +inf for the fully decayed value.
pub fn epsilon(advantage: &Advantage, current_block: f64, model_block: f64) -> f64 {
    match *advantage {
        Advantage::FixedEpsilon { epsilon } => epsilon,
        Advantage::LinearEpsilon { start, end, decay_blocks } => {
            let diff = (current_block - model_block).max(0.0);
            let adjustment = (diff / decay_blocks as f64).min(1.0);
            start - adjustment * (start - end)
        }
        Advantage::None | Advantage::LaterPenalty { .. } => 0.0,
    }
}

/// One contestant of the pairwise comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contestant {
    pub total: f64,
    pub block: u64,
}

/// True when `i` beats `j` (taoverse / SN11 `iswin`): the earlier submission's loss is
/// discounted by epsilon, or the later submission's score penalized; equal blocks: neither.
pub fn beats(
    i: Contestant,
    j: Contestant,
    advantage: &Advantage,
    direction: Direction,
    current_block: u64,
) -> bool {
    let cur = current_block as f64;
    let (si, sj) = match *advantage {
        Advantage::None => (i.total, j.total),
        Advantage::FixedEpsilon { .. } | Advantage::LinearEpsilon { .. } => {
            let si = if i.block < j.block {
                (1.0 - epsilon(advantage, cur, i.block as f64)) * i.total
            } else {
                i.total
            };
            let sj = if j.block < i.block {
                (1.0 - epsilon(advantage, cur, j.block as f64)) * j.total
            } else {
                j.total
            };
            (si, sj)
        }
        Advantage::LaterPenalty { penalty } => {
            let si = if i.block > j.block { (1.0 - penalty) * i.total } else { i.total };
            let sj = if j.block > i.block { (1.0 - penalty) * j.total } else { j.total };
            (si, sj)
        }
    };
    direction.better(si, sj)
}

/// SN9's `compute_competitive_uids`: a submission stays if its loss beats the fully decayed
/// loss of every other submission committed at the same or an earlier block.
pub fn competitive(contestants: &[Contestant], advantage: &Advantage) -> Vec<bool> {
    let full = 1.0 - epsilon(advantage, f64::INFINITY, 0.0);
    contestants
        .iter()
        .enumerate()
        .map(|(i, c)| {
            contestants
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != i && o.block <= c.block)
                .all(|(_, o)| c.total < o.total * full)
        })
        .collect()
}

/// Win rate of each included contestant against the other included ones; excluded ones get 0.
/// A contestant with no opponent gets `lone_win_rate`.
pub fn win_rates(
    contestants: &[Contestant],
    included: &[bool],
    advantage: &Advantage,
    direction: Direction,
    current_block: u64,
    lone_win_rate: f64,
) -> Vec<f64> {
    win_rates_with_absent(contestants, included, None, advantage, direction, current_block, lone_win_rate)
}

/// [`win_rates`] of `contestants`, each also meeting `absent.2` identical absent opponents
/// (`absent.0`, included when `absent.1`): the registry's uids without a submission, counted
/// once instead of compared one by one (a subnet of 65,535 uids would be 4e9 comparisons).
pub fn win_rates_with_absent(
    contestants: &[Contestant],
    included: &[bool],
    absent: Option<(Contestant, bool, usize)>,
    advantage: &Advantage,
    direction: Direction,
    current_block: u64,
    lone_win_rate: f64,
) -> Vec<f64> {
    (0..contestants.len())
        .map(|i| {
            if !included[i] {
                return 0.0;
            }
            let mut wins = 0u64;
            let mut matches = 0u64;
            for j in (0..contestants.len()).filter(|&j| j != i && included[j]) {
                matches += 1;
                if beats(contestants[i], contestants[j], advantage, direction, current_block) {
                    wins += 1;
                }
            }
            if let Some((a, true, n)) = absent {
                matches += n as u64;
                if beats(contestants[i], a, advantage, direction, current_block) {
                    wins += n as u64;
                }
            }
            if matches == 0 { lone_win_rate } else { wins as f64 / matches as f64 }
        })
        .collect()
}

/// `softmax(x / temperature)`, computed as torch does (subtracting the maximum). Entries of
/// -inf get 0; all -inf gives all 0 (torch would give NaN).
pub fn softmax(xs: &[f64], temperature: f64) -> Vec<f64> {
    let z: Vec<f64> = xs.iter().map(|x| x / temperature).collect();
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return vec![0.0; xs.len()];
    }
    if max == f64::INFINITY {
        // A temperature so small that `x / t` overflows (`inf - inf` would make every weight
        // NaN): the softmax's limit, the weight split over the largest entries. Any gap between
        // entries is then more than 700 in `x / t`, so exp of it is 0 as f64 anyway.
        return winner_take_all(xs);
    }
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// Weight 1 for every entry equal to the maximum, split evenly; all -inf gives all 0.
pub fn winner_take_all(xs: &[f64]) -> Vec<f64> {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return vec![0.0; xs.len()];
    }
    let ones: Vec<f64> = xs.iter().map(|&x| if x == max { 1.0 } else { 0.0 }).collect();
    normalized(&ones)
}

/// `xs / Σxs`; all 0 when the sum is 0 (torch `nan_to_num(0)`). Finite entries whose sum
/// overflows are scaled by their maximum first, so large weights stay weights instead of turning
/// into `x / inf = 0`; a non-finite entry stays non-finite, for [`to_u16`] to refuse with its uid.
pub fn normalized(xs: &[f64]) -> Vec<f64> {
    let sum: f64 = xs.iter().sum();
    if sum.is_infinite() && xs.iter().all(|x| x.is_finite()) {
        let max = xs.iter().copied().fold(0.0, f64::max);
        return normalized(&xs.iter().map(|x| x / max).collect::<Vec<_>>());
    }
    if xs.iter().any(|x| !x.is_finite()) {
        return xs.iter().map(|x| if x.is_finite() { 0.0 } else { *x }).collect();
    }
    xs.iter().map(|x| x / sum).map(|v| if v.is_finite() { v } else { 0.0 }).collect()
}

fn normalized_map(w: &BTreeMap<Uid, f64>) -> BTreeMap<Uid, f64> {
    let values: Vec<f64> = w.values().copied().collect();
    w.keys().copied().zip(normalized(&values)).collect()
}

/// taoverse `record_competition_weights`: normalize the new weights, then
/// `alpha * old + (1 - alpha) * new` (alpha weights the OLD value); no old: the new.
pub fn ema(old: Option<&BTreeMap<Uid, f64>>, new: &BTreeMap<Uid, f64>, alpha: f64) -> BTreeMap<Uid, f64> {
    let new = normalized_map(new);
    let Some(old) = old else { return new };
    let uids: std::collections::BTreeSet<Uid> = old.keys().chain(new.keys()).copied().collect();
    uids.into_iter()
        .map(|uid| {
            let o = old.get(&uid).copied().unwrap_or(0.0);
            let n = new.get(&uid).copied().unwrap_or(0.0);
            (uid, alpha * o + (1.0 - alpha) * n)
        })
        .collect()
}

/// taoverse `get_subnet_weights` per competition: with a threshold > 0, normalize, zero the
/// entries below it, normalize again.
pub fn apply_threshold(w: &BTreeMap<Uid, f64>, min_weight: f64) -> BTreeMap<Uid, f64> {
    if min_weight <= 0.0 {
        return w.clone();
    }
    let w = normalized_map(w);
    let cut = w.iter().map(|(&uid, &v)| (uid, if v < min_weight { 0.0 } else { v })).collect();
    normalized_map(&cut)
}

/// SN11's owner burn: scale every weight by `1 - share`, set the burn uid to `share`,
/// normalize.
pub fn apply_burn(w: &BTreeMap<Uid, f64>, uid: Uid, share: f64) -> BTreeMap<Uid, f64> {
    let mut out: BTreeMap<Uid, f64> = w.iter().map(|(&u, &v)| (u, v * (1.0 - share))).collect();
    out.insert(uid, share);
    normalized_map(&out)
}

/// Σ_c weights_c * share_c over competitions, then normalized over the whole vector (so a
/// competition that has not produced weights does not shrink the others).
pub fn emission_split(parts: &[(f64, &BTreeMap<Uid, f64>)]) -> BTreeMap<Uid, f64> {
    let mut total: BTreeMap<Uid, f64> = BTreeMap::new();
    for (share, weights) in parts {
        for (&uid, &w) in *weights {
            *total.entry(uid).or_insert(0.0) += w * share;
        }
    }
    normalized_map(&total)
}

/// The most uids a subnet registers: uids and subtensor's `MaxAllowedUids` are u16.
pub const MAX_REGISTERED: usize = u16::MAX as usize;

/// `registered` (RAW.json, SUBMISSIONS.json) within what a subnet can hold.
pub fn check_registered(registered: Option<usize>) -> Result<(), String> {
    match registered {
        Some(n) if n > MAX_REGISTERED => Err(format!(
            "registered: {n} uids is more than a subnet holds (uids are u16: at most {MAX_REGISTERED})"
        )),
        _ => Ok(()),
    }
}

/// The bittensor SDK's `convert_weights_and_uids_for_emit`: divide by the maximum, scale to
/// 65535, round half to even (Python `round`), drop zeros. Negative or non-finite weights are
/// an error; an all-zero vector gives nothing.
pub fn to_u16(weights: &BTreeMap<Uid, f64>) -> Result<Vec<(Uid, u16)>, String> {
    if let Some((uid, w)) = weights.iter().find(|(_, w)| !w.is_finite() || **w < 0.0) {
        return Err(format!("weight of uid {uid} is {w}; weights must be finite and non-negative"));
    }
    let sum: f64 = weights.values().sum();
    if sum == 0.0 {
        return Ok(Vec::new());
    }
    let max = weights.values().copied().fold(0.0, f64::max);
    Ok(weights
        .iter()
        .map(|(&uid, &w)| (uid, (w / max * f64::from(u16::MAX)).round_ties_even() as u16))
        .filter(|(_, v)| *v != 0)
        .collect())
}

/// One submission as RAW.json gives it: raw task scores, `None` for a failed task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubmission {
    pub uid: Uid,
    #[serde(default)]
    pub hotkey: String,
    pub block: u64,
    pub competition: String,
    pub tasks: BTreeMap<String, Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Scored,
    /// A task failed (null or non-finite raw score), or the aggregate was not finite.
    Failed {
        reason: String,
    },
    /// A task's raw score fell outside its gate.
    Gated {
        task: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TaskScore {
    pub raw: Option<f64>,
    pub normalized: Option<f64>,
    pub weighted: Option<f64>,
}

/// Per-submission result of one competition round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub uid: Uid,
    pub hotkey: String,
    pub block: u64,
    #[serde(flatten)]
    pub status: Status,
    pub tasks: BTreeMap<String, TaskScore>,
    /// The aggregate (the failure score when failed or gated).
    pub total: f64,
    /// Kept by the prefilter (always true without one).
    pub competitive: bool,
    pub win_rate: f64,
    /// This round's weight from the policy, before EMA.
    pub step_weight: f64,
}

/// A competition ready to score: its definition plus its compiled formula.
pub struct Scorer<'a> {
    pub competition: &'a Competition,
    formula: Option<Formula>,
    weights: Vec<f64>,
}

impl<'a> Scorer<'a> {
    pub fn new(competition: &'a Competition) -> Result<Self, String> {
        let formula = match &competition.score.aggregate {
            Aggregate::WeightedSum => None,
            Aggregate::Formula { expr } => Some(Formula::compile(expr, competition.tasks.len())?),
        };
        Ok(Scorer { competition, formula, weights: task_weights(competition) })
    }

    /// Normalize, weight, gate and aggregate one submission's raw scores.
    pub fn total(&self, raw: &BTreeMap<String, Option<f64>>) -> (Status, BTreeMap<String, TaskScore>, f64) {
        let comp = self.competition;
        let mut scores = BTreeMap::new();
        let mut status = Status::Scored;
        let mut sum = 0.0;
        let mut normalized_by_name = BTreeMap::new();
        for (task, &w) in comp.tasks.iter().zip(&self.weights) {
            let value = raw.get(&task.name).copied().flatten().filter(|v| v.is_finite());
            let normalized = value.map(|v| normalize(&task.normalization, v));
            let weighted = match (&self.formula, normalized) {
                (None, Some(n)) => Some(n * w),
                _ => None,
            };
            scores.insert(task.name.clone(), TaskScore { raw: value, normalized, weighted });
            match value {
                None if status == Status::Scored => {
                    status = Status::Failed { reason: format!("task `{}` failed", task.name) }
                }
                Some(v) if status == Status::Scored && task.gate.as_ref().is_some_and(|g| !g.passes(v)) => {
                    status = Status::Gated { task: task.name.clone() }
                }
                _ => {}
            }
            if let Some(n) = normalized {
                normalized_by_name.insert(task.name.as_str(), n);
            }
            if let Some(x) = weighted {
                sum += x;
            }
        }
        if status != Status::Scored {
            return (status, scores, comp.score.failure());
        }
        let total = match &self.formula {
            None => Ok(sum),
            Some(f) => {
                let raw_values = scores.iter().filter_map(|(k, s)| Some((k.as_str(), s.raw?))).collect();
                f.eval(&normalized_by_name, &raw_values)
            }
        };
        match total {
            // An aggregate that overflowed to ±inf is no score: it fails, as NaN does, instead
            // of outranking every finite total.
            Ok(t) if t.is_finite() => (status, scores, t),
            Ok(t) => {
                (Status::Failed { reason: format!("the aggregate is {t}") }, scores, comp.score.failure())
            }
            Err(e) => (Status::Failed { reason: e }, scores, comp.score.failure()),
        }
    }

    /// Scores one round: totals, prefilter, win rates and the policy's step weights.
    /// `subs` must be the eligible submissions of this competition, one per uid. `unsubmitted`:
    /// registered uids without an evaluated submission, compared as failed entries when the
    /// competition's opponents are the registry (ignored otherwise).
    pub fn round(&self, subs: &[&RawSubmission], current_block: u64, unsubmitted: usize) -> Vec<Scored> {
        let comp = self.competition;
        let ranking = &comp.ranking;
        let direction = comp.score.direction;
        let mut rows: Vec<Scored> = subs
            .iter()
            .map(|s| {
                let (status, tasks, total) = self.total(&s.tasks);
                Scored {
                    uid: s.uid,
                    hotkey: s.hotkey.clone(),
                    block: s.block,
                    status,
                    tasks,
                    total,
                    competitive: true,
                    win_rate: 0.0,
                    step_weight: 0.0,
                }
            })
            .collect();
        let mut contestants: Vec<Contestant> =
            rows.iter().map(|r| Contestant { total: r.total, block: r.block }).collect();
        let m = contestants.len();
        // As SN11's registry: every other registered uid scores the failure score, with no
        // commit block (later than any submission). They only count as opponents, and they are
        // all alike: two stand for them all in the prefilter, one group in the win rates.
        let absent = (ranking.opponents == Opponents::Registry && unsubmitted > 0)
            .then(|| Contestant { total: comp.score.failure(), block: u64::MAX });
        if let Some(a) = absent {
            contestants.extend(std::iter::repeat_n(a, unsubmitted.min(2)));
        }
        let mut included = match ranking.prefilter {
            Prefilter::None => vec![true; contestants.len()],
            Prefilter::CompetitiveUids => competitive(&contestants, &ranking.advantage),
        };
        let absent_included = included.get(m).copied().unwrap_or(false);
        included.truncate(m);
        contestants.truncate(m);
        let mut rates = win_rates_with_absent(
            &contestants,
            &included,
            absent.map(|a| (a, absent_included, unsubmitted)),
            &ranking.advantage,
            direction,
            current_block,
            ranking.lone_win_rate,
        );
        rates.truncate(rows.len());
        if ranking.exclude_zero {
            for (rate, row) in rates.iter_mut().zip(&rows) {
                if row.status != Status::Scored || row.total == 0.0 {
                    *rate = f64::NEG_INFINITY;
                }
            }
        }
        let step = match ranking.policy {
            Policy::Softmax { temperature } => softmax(&rates, temperature),
            Policy::WinnerTakeAll => winner_take_all(&rates),
            Policy::Proportional => {
                let xs: Vec<f64> = rows
                    .iter()
                    .zip(&rates)
                    .map(|(r, &rate)| if rate == f64::NEG_INFINITY { 0.0 } else { r.total.max(0.0) })
                    .collect();
                normalized(&xs)
            }
        };
        for (i, row) in rows.iter_mut().enumerate() {
            row.competitive = included[i];
            row.win_rate = rates[i];
            row.step_weight = step[i];
        }
        rows
    }

    /// Every pairwise comparison of a round's rows (as [`Scorer::round`] made them):
    /// `out[i][j]` is 1 when row i beats row j at `current_block`, the same test the win rates
    /// count; the diagonal is 0.
    pub fn beats(&self, rows: &[Scored], current_block: u64) -> Vec<Vec<u8>> {
        let comp = self.competition;
        let c = |r: &Scored| Contestant { total: r.total, block: r.block };
        rows.iter()
            .enumerate()
            .map(|(i, a)| {
                rows.iter()
                    .enumerate()
                    .map(|(j, b)| {
                        let won = i != j
                            && beats(
                                c(a),
                                c(b),
                                &comp.ranking.advantage,
                                comp.score.direction,
                                current_block,
                            );
                        u8::from(won)
                    })
                    .collect()
            })
            .collect()
    }

    /// EMA, threshold and burn: from this round's step weights (and the previous EMA state)
    /// to the competition's weights. Returns (new EMA state, competition weights).
    pub fn weights(
        &self,
        rows: &[Scored],
        previous: Option<&BTreeMap<Uid, f64>>,
    ) -> (BTreeMap<Uid, f64>, BTreeMap<Uid, f64>) {
        let ranking = &self.competition.ranking;
        let step: BTreeMap<Uid, f64> = rows.iter().map(|r| (r.uid, r.step_weight)).collect();
        let state = if rows.is_empty() {
            previous.cloned().unwrap_or_default()
        } else {
            ema(previous, &step, ranking.ema_alpha)
        };
        let mut weights = apply_threshold(&state, ranking.min_weight);
        if let Some(burn) = ranking.burn {
            weights = apply_burn(&weights, burn.uid, burn.share);
        }
        (state, weights)
    }
}

/// The weight of each task in a weighted sum: as written when they sum to 1 (taoverse asserts
/// `math.isclose(Σw, 1)` and uses them as they are), renormalized otherwise.
pub fn task_weights(competition: &Competition) -> Vec<f64> {
    let raw: Vec<f64> = competition.tasks.iter().map(|t| t.weight.unwrap_or(0.0)).collect();
    let sum: f64 = raw.iter().sum();
    if is_close(sum, 1.0) { raw } else { normalized(&raw) }
}

/// Python's `math.isclose` with its default relative tolerance (an infinity is close only to
/// itself, as in Python: `inf - 1 <= 1e-9 * inf` would say otherwise).
pub fn is_close(a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Whether a submission committed at `block` may be evaluated at `current_block`
/// (taoverse: `current - block >= eval_block_delay`).
pub fn eligible(block: u64, current_block: u64, eval_block_delay: u64) -> bool {
    current_block >= block && current_block - block >= eval_block_delay
}

/// Which direction the normalized score of a task has.
pub fn normalized_direction(direction: Direction, n: &Normalization) -> Direction {
    if normalization_flips(n) { direction.flip() } else { direction }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u16_conversion_is_the_sdks() {
        let w: BTreeMap<Uid, f64> = [(1, 0.5), (2, 0.25), (3, 0.0), (4, 1e-6), (5, 0.25)].into();
        // max-upscale: 0.5 → 65535; 0.25 → 32767.5 → 32768 (half to even); 1e-6 → 0 dropped.
        assert_eq!(to_u16(&w).unwrap(), vec![(1, 65535), (2, 32768), (5, 32768)]);
        assert_eq!(to_u16(&[(1, 0.0)].into()).unwrap(), vec![]);
        assert!(to_u16(&[(1, -0.1), (2, 1.0)].into()).is_err());
        assert!(to_u16(&[(1, f64::NAN)].into()).is_err());
    }

    #[test]
    fn policies_handle_ties_and_exclusions() {
        assert_eq!(winner_take_all(&[0.5, 1.0, 1.0, 0.0]), vec![0.0, 0.5, 0.5, 0.0]);
        assert_eq!(winner_take_all(&[f64::NEG_INFINITY; 3]), vec![0.0; 3]);
        let s = softmax(&[1.0, f64::NEG_INFINITY, 0.0], 0.5);
        assert_eq!(s[1], 0.0);
        assert!((s[0] + s[2] - 1.0).abs() < 1e-15 && (s[0] / s[2] - 2f64.exp()).abs() < 1e-12);
        assert_eq!(softmax(&[f64::NEG_INFINITY; 2], 0.1), vec![0.0; 2]);
    }

    #[test]
    fn epsilon_favours_the_earlier_submission_only() {
        let adv = Advantage::FixedEpsilon { epsilon: 0.1 };
        let early = Contestant { total: 1.0, block: 10 };
        let late = Contestant { total: 0.95, block: 20 };
        // 0.9 * 1.0 < 0.95: the earlier one wins although its loss is higher.
        assert!(beats(early, late, &adv, Direction::Lower, 100));
        assert!(!beats(late, early, &adv, Direction::Lower, 100));
        // Same block: no discount.
        let same = Contestant { total: 0.95, block: 10 };
        assert!(!beats(early, same, &adv, Direction::Lower, 100));
        // SN11: the later one is multiplied by 0.97.
        let pen = Advantage::LaterPenalty { penalty: 0.03 };
        let first = Contestant { total: 0.80, block: 10 };
        let second = Contestant { total: 0.82, block: 20 };
        assert!(beats(first, second, &pen, Direction::Higher, 100));
    }

    #[test]
    fn threshold_burn_and_split() {
        let w: BTreeMap<Uid, f64> = [(1, 0.85), (2, 0.1), (3, 0.05)].into();
        let t = apply_threshold(&w, 0.18);
        assert_eq!(t[&1], 1.0);
        assert_eq!(t[&2], 0.0);
        let b = apply_burn(&t, 0, 0.9);
        assert!((b[&0] - 0.9).abs() < 1e-15 && (b[&1] - 0.1).abs() < 1e-15);
        let other: BTreeMap<Uid, f64> = [(7, 1.0)].into();
        let s = emission_split(&[(0.75, &t), (0.25, &other)]);
        assert!((s[&1] - 0.75).abs() < 1e-15 && (s[&7] - 0.25).abs() < 1e-15);
        // A competition with no weights does not shrink the others.
        let empty = BTreeMap::new();
        assert_eq!(emission_split(&[(0.5, &other), (0.5, &empty)])[&7], 1.0);
    }
}
