//! The eval set: which of a round's submissions a validator runs (taoverse's policy, where a
//! competition sets `schedule.keep`).
//!
//! taoverse evaluates, each step, the `sample_min` best uids of its previous step (those with a
//! tracker weight of at least 0.001 first, by weight, then the rest by win rate), the models it
//! has not evaluated yet, and retries a model whose evaluation errored. The rest are not run;
//! their weight decays through the EMA. Here the memory of what was evaluated is a
//! [`History`], written in the same transaction as the round that changes it, so that a restart
//! or a second validator with the same rounds draws the same eval set.
//!
//! Invariant: the set is a function of the latest submissions, the previous scored round and
//! the history, nothing else (no clock, no order of arrival).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::Competition;
use crate::round::{Outcome, Plan, SubmissionEntry, SubmissionsFile};
use crate::scoring::Uid;

/// taoverse's floor for a tracker weight that keeps a uid ahead of the win-rate order.
pub const KEEP_WEIGHT_FLOOR: f64 = 0.001;

/// One submission of the previous scored round, as its report ranks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub uid: Uid,
    pub hotkey: String,
    /// The competition's weight after EMA (taoverse's tracker weight).
    pub weight: f64,
    pub win_rate: f64,
}

/// What became of a submission's last evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evaluation {
    /// Every run has a result (a score, or a failure that is the miner's).
    Done,
    /// A run failed for infrastructure reasons: it is evaluated once more.
    Infrastructure,
    /// It failed for infrastructure reasons twice: not again until it changes.
    Retried,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// [`entry_key`] of the submission evaluated.
    pub key: String,
    pub evaluation: Evaluation,
}

/// Competition → hotkey → its last evaluated submission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub competitions: BTreeMap<String, BTreeMap<String, Seen>>,
}

/// What identifies a submission across rounds: everything but its uid (a hotkey keeps its
/// commitment when its uid changes).
pub fn entry_key(e: &SubmissionEntry) -> String {
    serde_json::json!([e.block, e.path, e.repo, e.revision, e.metadata]).to_string()
}

/// The hotkeys taoverse keeps from a step: by `1 + weight` when the weight is at least
/// [`KEEP_WEIGHT_FLOOR`], else by win rate; best first, ties by uid; at most `n`.
pub fn kept(ranked: &[Ranked], n: usize) -> Vec<&str> {
    let key = |r: &Ranked| if r.weight >= KEEP_WEIGHT_FLOOR { 1.0 + r.weight } else { r.win_rate };
    let mut order: Vec<&Ranked> = ranked.iter().collect();
    order.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.uid.cmp(&b.uid)));
    order.into_iter().take(n).map(|r| r.hotkey.as_str()).collect()
}

/// The round's submissions restricted to its eval set. Competitions without `schedule.keep`
/// keep every submission. `last`: the previous scored round's ranking per competition.
pub fn select(
    comps: &[Competition],
    latest: &SubmissionsFile,
    last: &BTreeMap<String, Vec<Ranked>>,
    history: &History,
) -> SubmissionsFile {
    let mut keep: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in comps {
        if let Some(n) = c.schedule.keep {
            let ranked = last.get(&c.id).map(Vec::as_slice).unwrap_or_default();
            keep.insert(c.id.as_str(), kept(ranked, n as usize).into_iter().collect());
        }
    }
    let empty = BTreeMap::new();
    let submissions = latest
        .submissions
        .iter()
        .filter(|s| {
            let Some(kept) = keep.get(s.competition.as_str()) else { return true };
            let seen = history.competitions.get(&s.competition).unwrap_or(&empty).get(&s.hotkey);
            match seen {
                // Not evaluated yet, or changed since.
                None => true,
                Some(seen) if seen.key != entry_key(s) => true,
                Some(seen) => {
                    seen.evaluation == Evaluation::Infrastructure || kept.contains(s.hotkey.as_str())
                }
            }
        })
        .cloned()
        .collect();
    SubmissionsFile { submissions, ..latest.clone() }
}

/// The history after a round: each evaluated submission's evaluation (a submission not run, by
/// its competition's schedule or eval delay, is left as it was).
pub fn record(history: &mut History, file: &SubmissionsFile, plan: &Plan, outcomes: &[Outcome]) {
    let mut infra: BTreeMap<usize, bool> = BTreeMap::new();
    for (run, outcome) in plan.runs.iter().zip(outcomes) {
        let failed = matches!(outcome, Err(f) if f.kind.is_infrastructure());
        *infra.entry(run.submission).or_default() |= failed;
    }
    for (i, failed) in infra {
        let s = &file.submissions[i];
        let key = entry_key(s);
        let seen = history.competitions.entry(s.competition.clone()).or_default();
        let before = seen.get(&s.hotkey).filter(|x| x.key == key).map(|x| x.evaluation);
        let evaluation = match (failed, before) {
            (false, _) => Evaluation::Done,
            (true, Some(Evaluation::Infrastructure | Evaluation::Retried)) => Evaluation::Retried,
            (true, _) => Evaluation::Infrastructure,
        };
        seen.insert(s.hotkey.clone(), Seen { key, evaluation });
    }
}

/// The previous round's ranking per competition, from its stored report (ROUND.json:
/// `competitions[].submissions[]` with `uid`, `hotkey`, `weight`, `win_rate`).
pub fn ranking_of(report: &serde_json::Value) -> BTreeMap<String, Vec<Ranked>> {
    let mut out = BTreeMap::new();
    let comps = report.get("competitions").and_then(|v| v.as_array());
    for c in comps.into_iter().flatten() {
        let Some(id) = c.get("id").and_then(|v| v.as_str()) else { continue };
        let rows = c.get("submissions").and_then(|v| v.as_array()).into_iter().flatten();
        let ranked = rows
            .filter_map(|r| {
                Some(Ranked {
                    uid: u16::try_from(r.get("uid")?.as_u64()?).ok()?,
                    hotkey: r.get("hotkey")?.as_str()?.to_string(),
                    weight: r.get("weight")?.as_f64()?,
                    win_rate: r.get("win_rate")?.as_f64()?,
                })
            })
            .collect();
        out.insert(id.to_string(), ranked);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{FailureKind, JobFailure};
    use crate::round::Run;

    fn ranked(uid: Uid, weight: f64, win_rate: f64) -> Ranked {
        Ranked { uid, hotkey: format!("h{uid}"), weight, win_rate }
    }

    fn entry(uid: Uid, block: u64) -> SubmissionEntry {
        SubmissionEntry {
            uid,
            hotkey: format!("h{uid}"),
            block,
            competition: "c".into(),
            path: None,
            repo: Some(format!("m/{uid}")),
            revision: Some(format!("{block:040}")),
            metadata: None,
        }
    }

    fn comp(keep: Option<u32>) -> Competition {
        let text = r#"
            id = "c"
            competition_id = 1
            name = "C"
            emission_share = 1.0
            data = { seed = { kind = "fixed", value = 1 } }
            score = { direction = "higher" }
            ranking = { policy = { kind = "winner_take_all" } }
            [[tasks]]
            name = "t"
            plugin = "p"
            kind = "k"
            direction = "higher"
        "#;
        let mut c: Competition = toml::from_str(text).unwrap();
        c.schedule.keep = keep;
        c
    }

    #[test]
    fn kept_puts_weighted_uids_first_by_weight_then_the_rest_by_win_rate() {
        // uid 1 has the best win rate but a weight under the floor: it comes after both
        // weighted uids, however small their win rates.
        let r = [ranked(0, 0.002, 0.1), ranked(1, 0.0009, 0.99), ranked(2, 0.9, 0.2), ranked(3, 0.0, 0.5)];
        assert_eq!(kept(&r, 3), ["h2", "h0", "h1"]);
        assert_eq!(kept(&r, 10), ["h2", "h0", "h1", "h3"]);
        // Ties by uid.
        let t = [ranked(5, 0.0, 0.5), ranked(4, 0.0, 0.5)];
        assert_eq!(kept(&t, 1), ["h4"]);
    }

    #[test]
    fn the_eval_set_is_the_kept_the_new_the_changed_and_one_infrastructure_retry() {
        let comps = [comp(Some(1))];
        let latest = SubmissionsFile {
            block: Some(100),
            registered: Some(6),
            submissions: (0..6).map(|u| entry(u, 10)).collect(),
        };
        let mut history = History::default();
        // Evaluated before: 0 (the leader), 1, 2 (changed since: block 5), 3 (infrastructure
        // failure), 4 (retried already). 5 is new.
        let seen = history.competitions.entry("c".into()).or_default();
        for (u, e) in [
            (0, Evaluation::Done),
            (1, Evaluation::Done),
            (3, Evaluation::Infrastructure),
            (4, Evaluation::Retried),
        ] {
            seen.insert(format!("h{u}"), Seen { key: entry_key(&entry(u, 10)), evaluation: e });
        }
        seen.insert("h2".into(), Seen { key: entry_key(&entry(2, 5)), evaluation: Evaluation::Done });
        let last = BTreeMap::from([("c".to_string(), vec![ranked(0, 1.0, 1.0), ranked(1, 0.0, 0.5)])]);
        let got = select(&comps, &latest, &last, &history);
        let uids: Vec<Uid> = got.submissions.iter().map(|s| s.uid).collect();
        assert_eq!(uids, [0, 2, 3, 5]);
        assert_eq!((got.block, got.registered), (Some(100), Some(6)));
        // Without `keep`, everyone.
        let all = select(&[comp(None)], &latest, &last, &history);
        assert_eq!(all.submissions.len(), 6);
    }

    #[test]
    fn record_marks_infrastructure_failures_once_then_as_retried_and_miner_failures_as_done() {
        let file = SubmissionsFile {
            block: Some(1),
            registered: None,
            submissions: vec![entry(0, 1), entry(1, 1), entry(2, 1)],
        };
        // Two runs per submission; the second of 0 crashed, 1's model was refused, 2 scored.
        let plan = Plan {
            block: 1,
            seeds: vec![],
            specs: vec![],
            runs: (0..3)
                .flat_map(|s| [Run { spec: 0, submission: s }, Run { spec: 1, submission: s }])
                .collect(),
            skipped: vec![],
        };
        let ok = || -> Outcome { Ok(arena_plugin_api::EvalOutput::default()) };
        let fail = |k: FailureKind| -> Outcome { Err(JobFailure::new(k, "x")) };
        let outcomes =
            vec![ok(), fail(FailureKind::Crashed), fail(FailureKind::InvalidSubmission), ok(), ok(), ok()];
        let mut h = History::default();
        record(&mut h, &file, &plan, &outcomes);
        let ev = |h: &History, u: u16| h.competitions["c"][&format!("h{u}")].evaluation;
        assert_eq!(
            [ev(&h, 0), ev(&h, 1), ev(&h, 2)],
            [Evaluation::Infrastructure, Evaluation::Done, Evaluation::Done]
        );
        record(&mut h, &file, &plan, &outcomes);
        assert_eq!(ev(&h, 0), Evaluation::Retried);
        // A changed submission starts again.
        let changed = SubmissionsFile { submissions: vec![entry(0, 2)], ..file.clone() };
        let one = Plan { runs: vec![Run { spec: 0, submission: 0 }], ..plan.clone() };
        record(&mut h, &changed, &one, &[fail(FailureKind::Timeout)]);
        assert_eq!(ev(&h, 0), Evaluation::Infrastructure);
    }

    #[test]
    fn ranking_is_read_from_a_stored_report() {
        // As `RoundReport` writes it: the scores flattened into the report.
        let report = serde_json::json!({"digest": "d", "competitions": [{"id": "c", "submissions": [
            {"uid": 3, "hotkey": "h3", "status": "scored", "weight": 0.5, "win_rate": 0.25, "total": 1.0}
        ]}]});
        assert_eq!(ranking_of(&report)["c"], [ranked(3, 0.5, 0.25)]);
    }
}
