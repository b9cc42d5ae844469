//! Terminal rendering, for people: leaderboards, Yuma epochs, diagnostics. The library crates
//! return values; only the CLI draws them.

use std::fmt;

use arena_core::config::Competition;
use arena_core::diag::{Diagnostic, Severity, SourceText};
use arena_core::dryrun::Report as ScoreReport;
use arena_yuma::EpochResult;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};

/// The leaderboard tables of a report, for people.
pub fn leaderboard(report: &ScoreReport, comps: &[Competition]) -> String {
    use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
    let mut out = format!("block {}\n", report.block);
    for (c, comp) in report.competitions.iter().zip(comps) {
        out.push('\n');
        out.push_str(&format!("{} ({}, competition {})", c.name, c.id, c.competition_id));
        if !c.active {
            out.push_str(": not active at this block\n");
            continue;
        }
        out.push_str(&format!(": emission share {:.4}", c.emission_share));
        if let Some(eps) = c.epsilon_now {
            out.push_str(&format!(", epsilon for a new submission {eps:.6}"));
        }
        out.push('\n');
        let mut rows: Vec<&arena_core::dryrun::SubmissionReport> = c.submissions.iter().collect();
        rows.sort_by(|a, b| {
            b.weight.total_cmp(&a.weight).then(b.scored.win_rate.total_cmp(&a.scored.win_rate))
        });
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        let mut header = vec!["uid".to_string(), "block".to_string()];
        let weights = arena_core::scoring::task_weights(comp);
        header.extend(comp.tasks.iter().zip(&weights).map(|(t, w)| match &comp.score.aggregate {
            arena_core::config::Aggregate::WeightedSum => format!("{}\nraw → norm (w {w})", t.name),
            arena_core::config::Aggregate::Formula { .. } => format!("{}\nraw → norm", t.name),
        }));
        header.extend(["total", "status", "win rate", "step", "weight"].map(String::from));
        table.set_header(header);
        for r in rows {
            let s = &r.scored;
            let mut cells = vec![Cell::new(s.uid), Cell::new(s.block)];
            for t in &comp.tasks {
                let text = match s.tasks.get(&t.name) {
                    Some(ts) => match (ts.raw, ts.normalized) {
                        (Some(raw), Some(n)) if raw == n => format!("{raw:.6}"),
                        (Some(raw), Some(n)) => format!("{raw:.6} → {n:.6}"),
                        _ => "failed".into(),
                    },
                    None => "-".into(),
                };
                cells.push(Cell::new(text));
            }
            let status = match &s.status {
                arena_core::scoring::Status::Scored => "ok".to_string(),
                arena_core::scoring::Status::Failed { reason } => format!("failed: {reason}"),
                arena_core::scoring::Status::Gated { task } => format!("gated by {task}"),
            };
            cells.push(Cell::new(format!("{:.6}", s.total)));
            cells.push(Cell::new(status));
            cells.push(Cell::new(if s.competitive {
                format!("{:.4}", s.win_rate)
            } else {
                format!("{:.4} (not competitive)", s.win_rate)
            }));
            cells.push(Cell::new(format!("{:.6}", s.step_weight)));
            cells.push(Cell::new(format!("{:.6}", r.weight)));
            table.add_row(cells);
        }
        for col in 2..table.column_count() {
            if let Some(c) = table.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out.push_str(&table.to_string());
        out.push('\n');
        for (uid, w) in &c.carried {
            out.push_str(&format!(
                "  uid {uid} was not evaluated this round; its weight {w:.6} is carried by the EMA\n"
            ));
        }
        for p in &c.pending {
            out.push_str(&format!(
                "  uid {} (block {}) is pending until block {}\n",
                p.uid, p.block, p.eligible_at
            ));
        }
    }
    for (id, n) in &report.unknown_competitions {
        out.push_str(&format!(
            "\n{n} submission(s) for competition `{id}` not scored: its file was not given\n"
        ));
    }
    out.push_str("\nweights set on chain\n");
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec!["uid", "weight", "u16"]);
    for w in &report.weights {
        table.add_row(vec![Cell::new(w.uid), Cell::new(format!("{:.9}", w.weight)), Cell::new(w.u16)]);
    }
    out.push_str(&table.to_string());
    out.push('\n');
    out
}

/// One table per epoch: per uid, stake, permit, consensus, trust, incentive, dividends, emission.
pub fn epochs(results: &[EpochResult], emission: u64) -> String {
    use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
    let mut out = String::new();
    for (k, r) in results.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        out.push_str(&format!("epoch {} at block {} ({} rao emitted)\n", k + 1, r.block, emission));
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(vec![
            "uid",
            "active",
            "permit",
            "stake",
            "consensus",
            "v-trust",
            "incentive",
            "dividends",
            "miner rao",
            "validator rao",
            "bonds (uid:u16)",
        ]);
        for u in &r.uids {
            let bonds = u.bonds.iter().map(|(j, v)| format!("{j}:{v}")).collect::<Vec<_>>().join(" ");
            table.add_row(vec![
                Cell::new(u.uid),
                Cell::new(if u.active { "yes" } else { "no" }),
                Cell::new(if u.validator_permit { "yes" } else { "no" }),
                Cell::new(format!("{:.6}", u.stake)),
                Cell::new(format!("{:.6}", u.consensus)),
                Cell::new(format!("{:.6}", u.validator_trust)),
                Cell::new(format!("{:.6}", u.incentive)),
                Cell::new(format!("{:.6}", u.dividends)),
                Cell::new(u.server_emission),
                Cell::new(u.validator_emission),
                Cell::new(bonds),
            ]);
        }
        for col in 3..10 {
            if let Some(c) = table.column_mut(col) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        out.push_str(&table.to_string());
        out.push('\n');
    }
    out
}

struct Report<'a> {
    diag: &'a Diagnostic,
    source: Option<NamedSource<String>>,
    heading: String,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.heading)
    }
}
impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.heading)
    }
}
impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.hint.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.diag.span.clone()?;
        self.source.as_ref()?;
        let label = if self.diag.field.is_empty() { "here".to_string() } else { self.diag.field.clone() };
        Some(Box::new(std::iter::once(LabeledSpan::new(Some(label), span.start, span.len()))))
    }
}

/// Diagnostics rendered with a source snippet; the others get their heading line only, so a
/// file with thousands of errors renders in time linear in their number.
pub const SNIPPETS: usize = 50;

/// Renders diagnostics for a terminal (or a log when `color` is false), each with a heading
/// line `error: FILE:LINE:COL: `field`: message` and, for the first [`SNIPPETS`] whose source
/// is known, a snippet.
pub fn diagnostics(diags: &[Diagnostic], sources: &[SourceText], color: bool) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    for (k, diag) in diags.iter().enumerate() {
        let mut heading = format!("{}:{}:{}: ", diag.file.display(), diag.line, diag.column);
        if !diag.field.is_empty() {
            heading.push_str(&format!("`{}`: ", diag.field));
        }
        heading.push_str(&diag.message);
        if k >= SNIPPETS {
            let level = match diag.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            out.push_str(&format!("{level}: {heading}\n"));
            continue;
        }
        let source =
            sources.iter().find(|s| s.path == diag.file).filter(|_| diag.span.is_some()).map(|s| {
                NamedSource::new(s.path.display().to_string(), s.text.clone()).with_language("toml")
            });
        let report = Report { diag, source, heading };
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&report.heading);
        }
        out.push('\n');
    }
    out
}

/// Writes `text` and a newline to `path` through a temporary file renamed into place, so the
/// file is either the old one or the whole new one.
pub fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{text}\n"))?;
    std::fs::rename(&tmp, path)
}
