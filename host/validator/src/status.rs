//! `arena validator status`: what the store says, per round and per job, without the chain.

use std::collections::BTreeMap;

use anyhow::Result;
use arena_store::{JobRow, RoundState, Store};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Status {
    /// The newest rounds, newest first.
    pub rounds: Vec<RoundSummary>,
    /// Jobs by state.
    pub jobs: BTreeMap<String, u64>,
    /// Jobs not done, with their last error.
    pub open_jobs: Vec<JobRow>,
    /// Per competition of the newest scored round: (uid, total, win rate, weight), best first.
    pub leaderboards: Vec<Leaderboard>,
    /// The newest round whose weights were set, and what setting them became.
    pub last_weights: Option<LastWeights>,
    /// The chain as the validator last read it: `{"block", "moved_ms"}` (when the block last
    /// moved, in Unix milliseconds).
    pub chain: Option<serde_json::Value>,
    /// Where its `/metrics` are served.
    pub metrics: Option<String>,
    /// The vtrust predicted for the weights it last set (`crate::vtrust::Prediction`: `block`,
    /// `uid`, `validator_trust`, `current_validator_trust`, `consensus_distance`, `clipped`),
    /// or `{"netuid", "block", "reason"}` when there was none to make.
    pub predicted_vtrust: Option<serde_json::Value>,
    pub store_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct RoundSummary {
    pub block: u64,
    pub state: RoundState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Runs that failed, with why (uid, task kind, failure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_runs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Leaderboard {
    pub competition: String,
    pub block: u64,
    pub rows: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct LastWeights {
    pub round_block: u64,
    pub outcome: serde_json::Value,
    pub weights: Vec<(u16, u16)>,
}

pub async fn status(store: &dyn Store, rounds: u32) -> Result<Status> {
    let rows = store.rounds(rounds.max(1)).await?;
    let mut summaries = Vec::new();
    let mut leaderboards = Vec::new();
    let mut last_weights = None;
    for r in &rows {
        let report: Option<serde_json::Value> =
            r.report.as_deref().and_then(|t| serde_json::from_str(t).ok());
        let mut failed_runs = Vec::new();
        if let Some(rep) = &report {
            for run in rep.get("runs").and_then(|v| v.as_array()).into_iter().flatten() {
                if run.get("status").and_then(|v| v.as_str()) == Some("failed") {
                    let failure = &run["failure"];
                    failed_runs.push(format!(
                        "uid {} {}/{}: {}: {}",
                        run["uid"],
                        run["plugin"].as_str().unwrap_or("?"),
                        run["kind"].as_str().unwrap_or("?"),
                        failure["kind"].as_str().unwrap_or("?"),
                        failure["message"].as_str().unwrap_or("")
                    ));
                }
            }
            if leaderboards.is_empty() {
                for c in rep.get("competitions").and_then(|v| v.as_array()).into_iter().flatten() {
                    let mut rows: Vec<serde_json::Value> = c
                        .get("submissions")
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                        .map(|s| {
                            serde_json::json!({
                                "uid": s["uid"], "total": s["total"], "win_rate": s["win_rate"], "weight": s["weight"],
                            })
                        })
                        .collect();
                    rows.sort_by(|a, b| {
                        let w = |v: &serde_json::Value| v["weight"].as_f64().unwrap_or(0.0);
                        w(b).total_cmp(&w(a))
                    });
                    leaderboards.push(Leaderboard {
                        competition: c["id"].as_str().unwrap_or("?").into(),
                        block: r.block,
                        rows,
                    });
                }
            }
        }
        if last_weights.is_none()
            && let (Some(w), Some(rep)) = (&r.weights, &report)
        {
            last_weights = Some(LastWeights {
                round_block: r.block,
                outcome: serde_json::from_str(w).unwrap_or(serde_json::Value::Null),
                weights: crate::rounds::report_weights(rep).unwrap_or_default(),
            });
        }
        summaries.push(RoundSummary {
            block: r.block,
            state: r.state,
            reason: r.reason.clone(),
            digest: r.digest.clone(),
            failed_runs,
        });
    }
    Ok(Status {
        rounds: summaries,
        jobs: store.job_counts().await?,
        open_jobs: store.open_jobs().await?,
        leaderboards,
        last_weights,
        chain: store.get(crate::CHAIN_KEY).await?.and_then(|t| serde_json::from_str(&t).ok()),
        metrics: store.get(crate::METRICS_KEY).await?,
        predicted_vtrust: store.get(crate::PREDICTION_KEY).await?.and_then(|t| serde_json::from_str(&t).ok()),
        store_bytes: store.size_bytes().await?,
    })
}

/// The scored rounds among the store's newest `limit`, oldest first, as reports read them.
pub async fn stored_rounds(store: &dyn Store, limit: u32) -> Result<Vec<arena_report::Round>> {
    let rows = store.rounds(limit.max(1)).await?;
    let mut out = Vec::new();
    for r in rows.iter().rev() {
        if let Some(text) = &r.report {
            out.push(arena_report::Round::parse(text, &format!("the stored round at block {}", r.block))?);
        }
    }
    Ok(out)
}

/// The live status page (`GET /` beside `/metrics`): the store's status first, then the newest
/// scored round in full and the recent rounds over time, as `arena report` draws them. Built
/// from the store alone: no key, no secret is in it.
pub async fn page(store: &dyn Store, rounds: u32, now_ms: u64) -> Result<String> {
    let st = status(store, rounds).await?;
    let history = stored_rounds(store, rounds).await?;
    let detailed = history.last().cloned().into_iter().collect();
    let report = arena_report::Report {
        title: "arena validator".into(),
        detailed,
        history,
        status: Some(status_html(&st, now_ms)),
        refresh_seconds: Some(30),
        notes: vec![
            "live from the validator's store; reloads every 30 s; the same as JSON at /status.json".into(),
        ],
        ..Default::default()
    };
    Ok(report.html())
}

fn status_html(st: &Status, now_ms: u64) -> String {
    use arena_report::html::esc;
    use std::fmt::Write;
    let mut h = String::from("<section id=\"status\"><h2>Validator</h2><table class=\"status\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(h, "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>", esc(k), esc(&v));
    };
    if let Some(c) = &st.chain {
        let block = c.get("block").and_then(|v| v.as_u64());
        let moved = c.get("moved_ms").and_then(|v| v.as_u64());
        row(
            "chain block",
            match (block, moved) {
                (Some(b), Some(m)) => format!("{b} (moved {} s ago)", now_ms.saturating_sub(m) / 1000),
                (Some(b), None) => b.to_string(),
                _ => "unknown".into(),
            },
        );
    }
    let jobs: Vec<String> = st.jobs.iter().map(|(k, v)| format!("{k} {v}")).collect();
    row("jobs", if jobs.is_empty() { "none".into() } else { jobs.join(", ") });
    if let Some(w) = &st.last_weights {
        row(
            "last weights",
            format!("round at block {}: {} uid(s); {}", w.round_block, w.weights.len(), w.outcome),
        );
    }
    if let Some(v) = &st.predicted_vtrust {
        row("predicted vtrust", v.to_string());
    }
    if let Some(m) = &st.metrics {
        row("metrics", format!("http://{m}/metrics"));
    }
    row("store", format!("{} bytes", st.store_bytes));
    h.push_str("</table>\n<h3>Recent rounds</h3><table class=\"rounds\"><tr><th>block</th><th class=\"l\">state</th><th class=\"l\">digest</th><th class=\"l\">failed runs</th></tr>\n");
    for r in &st.rounds {
        let state = match &r.reason {
            Some(why) => format!("{:?}: {why}", r.state),
            None => format!("{:?}", r.state),
        };
        let _ = writeln!(
            h,
            "<tr data-block=\"{}\"><td>{}</td><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td><td class=\"l\">{}</td></tr>",
            r.block,
            r.block,
            esc(&state.to_lowercase()),
            esc(r.digest.as_deref().unwrap_or("")),
            esc(&r.failed_runs.join("; "))
        );
    }
    h.push_str("</table>\n");
    if !st.open_jobs.is_empty() {
        h.push_str("<h3>Open jobs</h3><table class=\"jobs\"><tr><th>job</th><th class=\"l\">state</th><th>attempt</th><th class=\"l\">last error</th></tr>\n");
        for j in &st.open_jobs {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"l\">{}</td><td>{}/{}</td><td class=\"l\">{}</td></tr>",
                j.id,
                esc(&j.state),
                j.attempt,
                j.max_attempts,
                esc(j.last_error.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
    h
}
