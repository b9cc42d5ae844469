//! `arena score`: the whole incentive mechanism as a dry run from raw task scores, without models.
//! [`score`] is pure (data in, data out, EMA state updated in place); the binary does the I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Advantage, Competition, Opponents};
use crate::scoring::{self, RawSubmission, Scored, Scorer, Uid};

/// RAW.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScores {
    /// The current block (overridden by `--block`).
    pub block: Option<u64>,
    /// How many uids are registered on the subnet (the metagraph's size): needed by
    /// competitions that compare with the whole registry (`ranking.opponents = "registry"`).
    #[serde(default)]
    pub registered: Option<usize>,
    pub submissions: Vec<RawSubmission>,
}

/// The EMA of each competition's weights, carried between rounds (`--state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The block of the last round recorded.
    pub block: Option<u64>,
    /// Competition id → uid → EMA weight.
    pub competitions: BTreeMap<String, BTreeMap<Uid, f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub block: u64,
    pub competitions: Vec<CompetitionReport>,
    /// Final weight per uid, as float and as the u16 the chain receives (uids whose u16 is 0 are
    /// not sent).
    pub weights: Vec<FinalWeight>,
    /// Submissions in RAW.json for competitions not given, by competition id: not scored.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown_competitions: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompetitionReport {
    pub id: String,
    pub competition_id: u32,
    pub name: String,
    pub active: bool,
    /// This competition's share of the emission after renormalization over the active,
    /// funded competitions.
    pub emission_share: f64,
    /// The epsilon of a submission committed at the current block (epsilon's start value; it
    /// decays from there), when an epsilon advantage applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon_now: Option<f64>,
    pub submissions: Vec<SubmissionReport>,
    /// Committed too recently to be evaluated (eval_block_delay).
    pub pending: Vec<Pending>,
    /// Uids not evaluated this round that keep a weight through the EMA (uid → weight).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub carried: BTreeMap<Uid, f64>,
    /// The pairwise comparisons behind the win rates: `beats[i][j]` is 1 when submission i beats
    /// submission j (epsilon advantage and direction applied), in `submissions`' order. Reports
    /// draw it; it is not part of the round's digest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub beats: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubmissionReport {
    #[serde(flatten)]
    pub scored: Scored,
    /// The competition's weight after EMA, threshold and burn.
    pub weight: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub uid: Uid,
    pub block: u64,
    pub eligible_at: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FinalWeight {
    pub uid: Uid,
    pub weight: f64,
    pub u16: u16,
}

/// Validates RAW.json against the competitions: every submission's tasks are exactly its
/// competition's, and a uid appears once per competition.
pub fn validate(raw: &RawScores, comps: &[&Competition]) -> Result<(), String> {
    scoring::check_registered(raw.registered)?;
    let mut seen = std::collections::BTreeSet::new();
    for (i, s) in raw.submissions.iter().enumerate() {
        let Some(comp) = comps.iter().find(|c| c.id == s.competition) else { continue };
        if !seen.insert((&s.competition, s.uid)) {
            return Err(format!(
                "submissions[{i}]: uid {} appears twice in competition `{}`",
                s.uid, comp.id
            ));
        }
        for name in s.tasks.keys() {
            if !comp.tasks.iter().any(|t| &t.name == name) {
                return Err(format!(
                    "submissions[{i}] (uid {}): task `{name}` is not a task of competition `{}` ({})",
                    s.uid,
                    comp.id,
                    comp.tasks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        for t in &comp.tasks {
            if !s.tasks.contains_key(&t.name) {
                return Err(format!(
                    "submissions[{i}] (uid {}): task `{}` is missing; write null for a failed task",
                    s.uid, t.name
                ));
            }
        }
    }
    Ok(())
}

/// One round of every competition at `block`, then the emission split and the u16 vector.
/// `funding`: the validator's shares by competition id (unlisted: 0); `None`: each
/// competition's own `emission_share`.
pub fn score(
    comps: &[Competition],
    funding: Option<&BTreeMap<String, f64>>,
    raw: &RawScores,
    block: u64,
    state: &mut State,
) -> Result<Report, String> {
    let scorers = comps
        .iter()
        .map(|c| Scorer::new(c).map_err(|e| format!("competition `{}`: {e}", c.id)))
        .collect::<Result<Vec<_>, _>>()?;
    score_with(&scorers, funding, raw, block, state)
}

/// [`score`] with the competitions already prepared (formulas compiled once), as a validator
/// that scores round after round does.
pub fn score_with(
    scorers: &[Scorer<'_>],
    funding: Option<&BTreeMap<String, f64>>,
    raw: &RawScores,
    block: u64,
    state: &mut State,
) -> Result<Report, String> {
    let comps: Vec<&Competition> = scorers.iter().map(|s| s.competition).collect();
    validate(raw, &comps)?;
    let share_of = |c: &Competition| match funding {
        Some(f) => f.get(&c.id).copied().unwrap_or(0.0),
        None => c.emission_share,
    };
    let active: Vec<f64> =
        comps.iter().map(|c| if c.schedule.is_active(block) { share_of(c) } else { 0.0 }).collect();
    if let Some((c, s)) = comps.iter().zip(&active).find(|(_, s)| !(s.is_finite() && **s >= 0.0)) {
        return Err(format!(
            "competition `{}` has an emission share of {s}; shares are finite and non-negative",
            c.id
        ));
    }
    let shares = scoring::normalized(&active);

    let mut reports = Vec::new();
    let mut parts: Vec<(f64, BTreeMap<Uid, f64>)> = Vec::new();
    for (scorer, &share) in scorers.iter().zip(&shares) {
        let comp = scorer.competition;
        let active = comp.schedule.is_active(block);
        let mut report = CompetitionReport {
            id: comp.id.clone(),
            competition_id: comp.competition_id,
            name: comp.name.clone(),
            active,
            emission_share: share,
            epsilon_now: match comp.ranking.advantage {
                Advantage::FixedEpsilon { .. } | Advantage::LinearEpsilon { .. } => {
                    Some(scoring::epsilon(&comp.ranking.advantage, block as f64, block as f64))
                }
                _ => None,
            },
            submissions: Vec::new(),
            pending: Vec::new(),
            carried: BTreeMap::new(),
            beats: Vec::new(),
        };
        if !active {
            // taoverse `reset_competitions`: an inactive competition's EMA is dropped.
            state.competitions.remove(&comp.id);
            reports.push(report);
            continue;
        }
        let delay = comp.constraints.eval_block_delay;
        let mut eligible = Vec::new();
        for s in raw.submissions.iter().filter(|s| s.competition == comp.id) {
            if scoring::eligible(s.block, block, delay) {
                eligible.push(s);
            } else {
                report.pending.push(Pending {
                    uid: s.uid,
                    block: s.block,
                    eligible_at: s.block.saturating_add(delay),
                });
            }
        }
        eligible.sort_by_key(|s| s.uid);
        let unsubmitted = match (comp.ranking.opponents, raw.registered) {
            (Opponents::Submissions, _) => 0,
            (Opponents::Registry, Some(n)) if n >= eligible.len() => n - eligible.len(),
            (Opponents::Registry, Some(n)) => {
                return Err(format!(
                    "competition `{}` has {} evaluated submissions but RAW.json says only {n} uids are registered",
                    comp.id,
                    eligible.len()
                ));
            }
            (Opponents::Registry, None) => {
                return Err(format!(
                    "competition `{}` compares every registered uid (ranking.opponents = \"registry\"): \
                     give the number of registered uids as \"registered\" in RAW.json",
                    comp.id
                ));
            }
        };
        let rows = scorer.round(&eligible, block, unsubmitted);
        report.beats = scorer.beats(&rows, block);
        let (ema, weights) = scorer.weights(&rows, state.competitions.get(&comp.id));
        if !rows.is_empty() {
            state.competitions.insert(comp.id.clone(), ema);
        }
        let burn_uid = comp.ranking.burn.map(|b| b.uid);
        report.carried = weights
            .iter()
            .filter(|(uid, w)| **w > 0.0 && Some(**uid) != burn_uid && !rows.iter().any(|r| r.uid == **uid))
            .map(|(&uid, &w)| (uid, w))
            .collect();
        report.submissions = rows
            .into_iter()
            .map(|scored| {
                let weight = weights.get(&scored.uid).copied().unwrap_or(0.0);
                SubmissionReport { scored, weight }
            })
            .collect();
        if share > 0.0 {
            parts.push((share, weights));
        }
        reports.push(report);
    }
    state.block = Some(block);
    let refs: Vec<(f64, &BTreeMap<Uid, f64>)> = parts.iter().map(|(s, w)| (*s, w)).collect();
    let final_weights = scoring::emission_split(&refs);
    let u16s: BTreeMap<Uid, u16> = scoring::to_u16(&final_weights)?.into_iter().collect();
    let weights = final_weights
        .iter()
        .map(|(&uid, &weight)| FinalWeight { uid, weight, u16: u16s.get(&uid).copied().unwrap_or(0) })
        .collect();
    let mut unknown_competitions = BTreeMap::new();
    for s in raw.submissions.iter().filter(|s| !comps.iter().any(|c| c.id == s.competition)) {
        *unknown_competitions.entry(s.competition.clone()).or_insert(0) += 1;
    }
    Ok(Report { block, competitions: reports, weights, unknown_competitions })
}
