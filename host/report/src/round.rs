//! What a report reads: ROUND.json (`arena round --out`, the validator's stored rounds) or
//! `arena score --json`. A lenient mirror of arena-core's report: fields it does not draw are
//! ignored, so a newer file still opens. serde_json writes a non-finite number (a failure score
//! of ±inf) as `null`, read here as `None`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Deserialize;

pub type Uid = u16;

#[derive(Debug, Clone, Deserialize)]
pub struct Round {
    pub block: u64,
    /// Absent in `arena score --json`.
    #[serde(default)]
    pub digest: Option<String>,
    pub competitions: Vec<Competition>,
    /// The final weight vector: float and the u16 set on chain.
    pub weights: Vec<FinalWeight>,
    /// The evaluations (absent in `arena score --json`).
    #[serde(default)]
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Competition {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub competition_id: u32,
    pub active: bool,
    pub emission_share: f64,
    #[serde(default)]
    pub submissions: Vec<Submission>,
    #[serde(default)]
    pub pending: Vec<Pending>,
    /// Uids not evaluated this round that keep a weight through the EMA.
    #[serde(default)]
    pub carried: BTreeMap<Uid, f64>,
    /// `beats[i][j]` = 1 when submission i beats submission j (the pairwise comparisons behind
    /// the win rates).
    #[serde(default)]
    pub beats: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Submission {
    pub uid: Uid,
    #[serde(default)]
    pub hotkey: String,
    pub block: u64,
    /// `scored`, `failed` (with `reason`) or `gated` (with `task`).
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskScore>,
    pub total: Option<f64>,
    #[serde(default = "yes")]
    pub competitive: bool,
    /// `None`: excluded from the policy (`exclude_zero`, shown as -inf).
    pub win_rate: Option<f64>,
    pub step_weight: f64,
    /// The competition's weight after EMA, threshold and burn.
    pub weight: f64,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct TaskScore {
    pub raw: Option<f64>,
    pub normalized: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pending {
    pub uid: Uid,
    pub block: u64,
    pub eligible_at: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct FinalWeight {
    pub uid: Uid,
    pub weight: f64,
    pub u16: u16,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub competition: String,
    pub uid: Uid,
    #[serde(default)]
    pub plugin: String,
    #[serde(default)]
    pub kind: String,
    pub status: String,
    #[serde(default)]
    pub wall_ms: u64,
    #[serde(default)]
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Failure {
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

impl Round {
    /// Parses ROUND.json text; an error names `name`, the line and column, and the field.
    pub fn parse(text: &str, name: &str) -> Result<Round> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let inner = e.inner();
            anyhow::anyhow!("{name}:{}:{}: field `{}`: {}", inner.line(), inner.column(), e.path(), inner)
        })
    }

    /// Reads a round already parsed as JSON (the validator's store).
    pub fn from_value(value: serde_json::Value) -> Result<Round> {
        serde_path_to_error::deserialize(value)
            .map_err(|e| anyhow::anyhow!("field `{}`: {}", e.path(), e.inner()))
    }

    pub fn read(path: &std::path::Path) -> Result<Round> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Round::parse(&text, &path.display().to_string())
    }

    /// The runs of one competition that failed.
    pub fn failed_runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter().filter(|r| r.status == "failed")
    }
}

impl Competition {
    /// Every task name, in the order of the first submission that has them (BTreeMap order).
    pub fn task_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for s in &self.submissions {
            for t in s.tasks.keys() {
                if !names.contains(t) {
                    names.push(t.clone());
                }
            }
        }
        names
    }

    /// Indices of the submissions, best first: by weight, then step weight, then uid.
    pub fn ranked(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.submissions.len()).collect();
        idx.sort_by(|&a, &b| {
            let (x, y) = (&self.submissions[a], &self.submissions[b]);
            y.weight
                .total_cmp(&x.weight)
                .then(y.step_weight.total_cmp(&x.step_weight))
                .then(x.uid.cmp(&y.uid))
        });
        idx
    }

    /// (pairs won, pairs played) of submission `i` against the others the policy compares
    /// (both competitive), from `beats`; `None` when the file has no pairwise results.
    pub fn record(&self, i: usize) -> Option<(usize, usize)> {
        let row = self.beats.get(i)?;
        if !self.submissions[i].competitive {
            return Some((0, 0));
        }
        let mut won = 0;
        let mut played = 0;
        for (j, b) in row.iter().enumerate() {
            if j == i || !self.submissions.get(j).is_some_and(|s| s.competitive) {
                continue;
            }
            played += 1;
            won += usize::from(*b != 0);
        }
        Some((won, played))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_line_and_field() {
        let text =
            "{\"block\": 5,\n \"competitions\": [{\"id\": \"a\", \"active\": \"yes\"}], \"weights\": []}";
        let e = Round::parse(text, "r.json").unwrap_err().to_string();
        assert!(e.starts_with("r.json:2:"), "{e}");
        assert!(e.contains("competitions[0].active"), "{e}");
    }

    #[test]
    fn null_totals_and_win_rates_read_as_none() {
        let text = r#"{"block": 9, "weights": [], "competitions": [{"id": "c", "active": true,
            "emission_share": 1.0, "submissions": [{"uid": 3, "block": 1, "status": "failed",
            "reason": "x", "total": null, "win_rate": null, "step_weight": 0.0, "weight": 0.0}]}]}"#;
        let r = Round::parse(text, "r").unwrap();
        let s = &r.competitions[0].submissions[0];
        assert_eq!((s.total, s.win_rate), (None, None));
        assert!(r.digest.is_none());
    }
}
