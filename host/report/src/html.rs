//! The page: one self-contained HTML file (styles, plots as inline SVG, a few lines of script;
//! its Content-Security-Policy forbids any request). Every number is printed rounded and carries
//! its exact value in `data-v`, so a reader (or a test) can check it against the JSON.

use std::fmt::Write;

use arena_yuma::EpochResult;

use crate::plot::{Kind, Plot, Series};
use crate::round::{Competition, Round, Submission};

/// What a page shows.
#[derive(Debug, Default)]
pub struct Report {
    pub title: String,
    /// Rounds shown in full (leaderboards, plots, failed runs), in the order given.
    pub detailed: Vec<Round>,
    /// Rounds drawn over time (scores and weights per uid by block), oldest first; two or more
    /// for the history section to appear.
    pub history: Vec<Round>,
    /// The epoch that arena's Yuma predicts with this validator's weights, and its uid.
    pub yuma: Option<(EpochResult, u16)>,
    /// An HTML fragment put first (the validator's status; already escaped).
    pub status: Option<String>,
    /// Reload the page every this many seconds (the validator's live page).
    pub refresh_seconds: Option<u32>,
    /// Lines under the title (where the rounds came from).
    pub notes: Vec<String>,
}

impl Report {
    /// Every plot on the page, in page order.
    pub fn plots(&self) -> Vec<Plot> {
        let mut out = Vec::new();
        for r in &self.detailed {
            out.extend(round_plots(r));
        }
        out.extend(history_plots(&self.history));
        if let Some((epoch, _)) = &self.yuma {
            out.push(yuma_plot(epoch));
        }
        out
    }

    pub fn html(&self) -> String {
        let mut h = String::new();
        let plots = self.plots();
        let _ = writeln!(
            h,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
             <meta name=\"viewport\" content=\"width=device-width\">{}<title>{}</title><style>{STYLE}</style></head>\
             <body data-plots=\"{}\">\n<h1>{}</h1>",
            self.refresh_seconds
                .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
                .unwrap_or_default(),
            esc(&self.title),
            plots.len(),
            esc(&self.title)
        );
        for n in &self.notes {
            let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(n));
        }
        if let Some(s) = &self.status {
            h.push_str(s);
        }
        if self.detailed.is_empty() && self.status.is_none() {
            h.push_str("<p>No round to show yet.</p>\n");
        }
        for r in &self.detailed {
            round_section(&mut h, r);
        }
        if self.history.len() >= 2 {
            let _ = writeln!(
                h,
                "<section id=\"history\"><h2>Over {} rounds (blocks {} to {})</h2>",
                self.history.len(),
                self.history[0].block,
                self.history[self.history.len() - 1].block
            );
            for p in history_plots(&self.history) {
                figure(&mut h, &p);
            }
            h.push_str("</section>\n");
        }
        if let Some((epoch, me)) = &self.yuma {
            yuma_section(&mut h, epoch, *me);
            figure(&mut h, &yuma_plot(epoch));
            h.push_str("</section>\n");
        }
        h.push_str(SCRIPT);
        h.push_str("</body></html>\n");
        h
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}\
th{background:#f3f3f3}td.l,th.l{text-align:left}figure.plot{display:inline-block;margin:.5em}\
.note{color:#555}.why{font-size:90%;color:#333;text-align:left}h2{border-bottom:2px solid #0072b2}\
.failed{color:#d55e00}";

/// Counts the plots the browser lays out with a size (`data-plots-shown`), and records script
/// errors (`data-errors`): what the browser test reads.
const SCRIPT: &str = "<script>\nwindow.addEventListener('error',function(e){document.body.dataset.errors=(document.body.dataset.errors||'')+e.message+';'});\n\
document.addEventListener('DOMContentLoaded',function(){var n=0;document.querySelectorAll('figure.plot > svg').forEach(function(s){var b=s.getBoundingClientRect();if(b.width>0&&b.height>0&&s.querySelectorAll('rect,path,polyline,circle').length>0)n++;});document.body.dataset.plotsShown=String(n);});\n</script>\n";

/// A plot as an inline SVG in a `figure` the browser test counts.
fn figure(h: &mut String, p: &Plot) {
    let _ = writeln!(
        h,
        "<figure class=\"plot\" id=\"plot-{}\" data-plot=\"{}\">{}</figure>",
        esc(&p.id),
        esc(&p.id),
        p.svg()
    );
}

/// HTML-escapes text (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number cell: rounded for reading, exact in `data-v` (`null` for none: a failure's ±inf).
fn num(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("<td data-v=\"{x}\">{}</td>", short(x)),
        None => "<td data-v=\"null\">–</td>".into(),
    }
}

/// Six significant digits.
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{x:.5e}");
    }
    let decimals = (5 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

/// A plot id from free text: letters, digits and `-` only.
fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

fn uid_labels(c: &Competition) -> Vec<String> {
    c.submissions.iter().map(|s| s.uid.to_string()).collect()
}

fn round_plots(r: &Round) -> Vec<Plot> {
    let mut out = vec![final_weights_plot(r)];
    for c in &r.competitions {
        out.extend(competition_plots(r.block, c));
    }
    out
}

fn final_weights_plot(r: &Round) -> Plot {
    let b = r.block;
    Plot {
        id: format!("b{b}-weights"),
        title: format!("block {b}: final weights"),
        kind: Kind::Bars {
            categories: r.weights.iter().map(|w| w.uid.to_string()).collect(),
            series: vec![
                Series { name: "float".into(), values: r.weights.iter().map(|w| Some(w.weight)).collect() },
                Series {
                    name: "u16 / 65535".into(),
                    values: r.weights.iter().map(|w| Some(f64::from(w.u16) / 65535.0)).collect(),
                },
            ],
            y: "weight".into(),
        },
    }
}

fn competition_plots(block: u64, c: &Competition) -> Vec<Plot> {
    if c.submissions.is_empty() {
        return Vec::new();
    }
    let id = format!("b{block}-{}", slug(&c.id));
    let labels = uid_labels(c);
    let mut out = Vec::new();
    for t in c.task_names() {
        for (what, pick) in [("raw", true), ("normalized", false)] {
            let values = c
                .submissions
                .iter()
                .map(|s| s.tasks.get(&t).and_then(|x| if pick { x.raw } else { x.normalized }))
                .collect();
            out.push(Plot {
                id: format!("{id}-{}-{what}", slug(&t)),
                title: format!("{}: task {t}, {what} score", c.id),
                kind: Kind::Bars {
                    categories: labels.clone(),
                    series: vec![Series { name: what.into(), values }],
                    y: format!("{what} score"),
                },
            });
        }
    }
    if c.beats.len() == c.submissions.len() && c.submissions.len() >= 2 {
        let cells = (0..c.submissions.len())
            .map(|i| {
                (0..c.submissions.len())
                    .map(|j| {
                        let compared = i != j && c.submissions[i].competitive && c.submissions[j].competitive;
                        compared.then(|| c.beats[i].get(j).is_some_and(|b| *b != 0))
                    })
                    .collect()
            })
            .collect();
        out.push(Plot {
            id: format!("{id}-wins"),
            title: format!("{}: who beats whom", c.id),
            kind: Kind::Wins { labels: labels.clone(), cells },
        });
    }
    let pick = |f: fn(&Submission) -> Option<f64>| c.submissions.iter().map(f).collect::<Vec<_>>();
    out.push(Plot {
        id: format!("{id}-weights"),
        title: format!("{}: win rate and weights", c.id),
        kind: Kind::Bars {
            categories: labels,
            series: vec![
                Series { name: "win rate".into(), values: pick(|s| s.win_rate) },
                Series { name: "step weight".into(), values: pick(|s| Some(s.step_weight)) },
                Series { name: "weight (EMA, threshold, burn)".into(), values: pick(|s| Some(s.weight)) },
            ],
            y: "0 to 1".into(),
        },
    });
    out
}

/// Per competition, each uid's total over blocks; then each uid's final weight over blocks.
fn history_plots(rounds: &[Round]) -> Vec<Plot> {
    if rounds.len() < 2 {
        return Vec::new();
    }
    let x: Vec<f64> = rounds.iter().map(|r| r.block as f64).collect();
    let mut out = Vec::new();
    let mut comps: Vec<&str> = Vec::new();
    for r in rounds {
        for c in &r.competitions {
            if !comps.contains(&c.id.as_str()) {
                comps.push(&c.id);
            }
        }
    }
    for cid in comps {
        let uids = rounds
            .iter()
            .flat_map(|r| r.competitions.iter().filter(|c| c.id == cid))
            .flat_map(|c| c.submissions.iter().map(|s| s.uid));
        let series = per_uid(uids, |u| {
            rounds
                .iter()
                .map(|r| {
                    r.competitions
                        .iter()
                        .find(|c| c.id == cid)
                        .and_then(|c| c.submissions.iter().find(|s| s.uid == u))
                        .and_then(|s| s.total)
                })
                .collect()
        });
        if series.is_empty() {
            continue;
        }
        out.push(Plot {
            id: format!("history-{}-total", slug(cid)),
            title: format!("{cid}: total score per uid"),
            kind: Kind::Lines { x: x.clone(), series, y: "total".into() },
        });
    }
    let uids = rounds.iter().flat_map(|r| r.weights.iter().map(|w| w.uid));
    let series = per_uid(uids, |u| {
        rounds.iter().map(|r| Some(r.weights.iter().find(|w| w.uid == u).map_or(0.0, |w| w.weight))).collect()
    });
    out.push(Plot {
        id: "history-weights".into(),
        title: "final weight per uid".into(),
        kind: Kind::Lines { x, series, y: "weight".into() },
    });
    out
}

/// One series per distinct uid, in uid order, its values from `values`.
fn per_uid(uids: impl Iterator<Item = u16>, values: impl Fn(u16) -> Vec<Option<f64>>) -> Vec<Series> {
    let mut uids: Vec<u16> = uids.collect();
    uids.sort_unstable();
    uids.dedup();
    uids.into_iter().map(|u| Series { name: format!("uid {u}"), values: values(u) }).collect()
}

fn yuma_plot(epoch: &EpochResult) -> Plot {
    let uids: Vec<_> = epoch.uids.iter().filter(|u| u.incentive > 0.0 || u.dividends > 0.0).collect();
    Plot {
        id: "yuma".into(),
        title: format!("Yuma at block {}: incentive and dividends", epoch.block),
        kind: Kind::Bars {
            categories: uids.iter().map(|u| u.uid.to_string()).collect(),
            series: vec![
                Series { name: "incentive".into(), values: uids.iter().map(|u| Some(u.incentive)).collect() },
                Series { name: "dividends".into(), values: uids.iter().map(|u| Some(u.dividends)).collect() },
            ],
            y: "share".into(),
        },
    }
}

fn round_section(h: &mut String, r: &Round) {
    let _ = writeln!(
        h,
        "<section class=\"round\" data-block=\"{}\"><h2>Round at block {}</h2>",
        r.block, r.block
    );
    if let Some(d) = &r.digest {
        let _ = writeln!(h, "<p class=\"note\">digest <code>{}</code></p>", esc(d));
    }
    let _ = writeln!(
        h,
        "<h3>Final weights</h3><p class=\"note\">Each competition's weights times its emission share, summed per uid; \
         the chain receives the u16 column (uids at 0 are not sent).</p>\
         <table class=\"weights\"><tr><th>uid</th><th>weight</th><th>u16</th></tr>"
    );
    for w in &r.weights {
        let _ = writeln!(
            h,
            "<tr data-uid=\"{}\"><td>{}</td>{}<td data-v=\"{}\">{}</td></tr>",
            w.uid,
            w.uid,
            num(Some(w.weight)),
            w.u16,
            w.u16
        );
    }
    h.push_str("</table>\n");
    figure(h, &final_weights_plot(r));
    for c in &r.competitions {
        competition_section(h, r.block, c);
    }
    let failed: Vec<_> = r.failed_runs().collect();
    if !failed.is_empty() {
        h.push_str("<h3>Failed runs</h3><table class=\"failed-runs\"><tr><th>competition</th><th>uid</th><th class=\"l\">task</th><th class=\"l\">failure</th><th class=\"l\">why</th></tr>\n");
        for f in failed {
            let (kind, msg) = f.failure.as_ref().map_or(("?", ""), |x| (x.kind.as_str(), x.message.as_str()));
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}/{}</td><td class=\"l failed\">{}</td><td class=\"l\">{}</td></tr>",
                esc(&f.competition),
                f.uid,
                esc(&f.plugin),
                esc(&f.kind),
                esc(kind),
                esc(msg)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

fn competition_section(h: &mut String, block: u64, c: &Competition) {
    let _ = writeln!(
        h,
        "<section class=\"competition\" data-competition=\"{}\" data-block=\"{block}\"><h3>{} <code>{}</code></h3>\
         <p class=\"note\">{}; emission share <span data-v=\"{}\">{}</span>.</p>",
        esc(&c.id),
        esc(&c.name),
        esc(&c.id),
        if c.active { "active" } else { "inactive this round (no weight)" },
        c.emission_share,
        short(c.emission_share)
    );
    let tasks = c.task_names();
    if !c.submissions.is_empty() {
        h.push_str("<table class=\"leaderboard\"><tr><th>rank</th><th>uid</th><th>block</th><th class=\"l\">status</th><th>total</th>");
        for t in &tasks {
            let _ = write!(h, "<th>{} raw</th><th>{} norm.</th>", esc(t), esc(t));
        }
        h.push_str("<th>win rate</th><th>step weight</th><th>weight</th><th>final share</th><th class=\"l\">why</th></tr>\n");
        for (rank, &i) in c.ranked().iter().enumerate() {
            let s = &c.submissions[i];
            let _ = write!(
                h,
                "<tr data-uid=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"l{}\">{}</td>{}",
                s.uid,
                rank + 1,
                s.uid,
                s.block,
                if s.status == "scored" { "" } else { " failed" },
                esc(&s.status),
                num(s.total)
            );
            for t in &tasks {
                let ts = s.tasks.get(t).copied().unwrap_or_default();
                h.push_str(&num(ts.raw));
                h.push_str(&num(ts.normalized));
            }
            let _ = writeln!(
                h,
                "{}{}{}{}<td class=\"why\">{}</td></tr>",
                num(s.win_rate),
                num(Some(s.step_weight)),
                num(Some(s.weight)),
                num(Some(s.weight * c.emission_share)),
                esc(&why(c, i))
            );
        }
        h.push_str("</table>\n");
    }
    if !c.pending.is_empty() {
        h.push_str("<p>Pending (committed too recently to be evaluated): ");
        let items: Vec<String> = c
            .pending
            .iter()
            .map(|p| format!("uid {} (block {}, from block {})", p.uid, p.block, p.eligible_at))
            .collect();
        h.push_str(&esc(&items.join("; ")));
        h.push_str("</p>\n");
    }
    if !c.carried.is_empty() {
        h.push_str("<p>Not evaluated this round, weight kept by the EMA: ");
        let items: Vec<String> = c.carried.iter().map(|(u, w)| format!("uid {u}: {}", short(*w))).collect();
        h.push_str(&esc(&items.join("; ")));
        h.push_str("</p>\n");
    }
    for p in competition_plots(block, c) {
        figure(h, &p);
    }
    h.push_str("</section>\n");
}

/// Why submission `i` got its weight, in words: the status, the pairs won, the policy's step
/// weight, what EMA, threshold and burn made of it, and its share of the emission.
pub fn why(c: &Competition, i: usize) -> String {
    let s = &c.submissions[i];
    let mut parts = Vec::new();
    match s.status.as_str() {
        "scored" => {}
        "gated" => parts.push(format!("gated by task {}", s.task.as_deref().unwrap_or("?"))),
        _ => parts.push(format!("failed: {}", s.reason.as_deref().unwrap_or("?"))),
    }
    if !s.competitive {
        parts.push("dropped by the prefilter (not competitive)".into());
    }
    match (c.record(i), s.win_rate) {
        (Some((w, n)), Some(r)) if n > 0 => parts.push(format!("beat {w} of {n} (win rate {})", short(r))),
        (_, Some(r)) => parts.push(format!("win rate {}", short(r))),
        (_, None) => parts.push("excluded from the policy".into()),
    }
    parts.push(format!("step weight {}", short(s.step_weight)));
    if s.weight != s.step_weight {
        parts.push(format!("after EMA, threshold and burn {}", short(s.weight)));
    }
    parts.push(format!("× share {} = {}", short(c.emission_share), short(s.weight * c.emission_share)));
    parts.join("; ")
}

fn yuma_section(h: &mut String, epoch: &EpochResult, me: u16) {
    let _ = writeln!(
        h,
        "<section id=\"yuma\"><h2>Yuma Consensus at block {}, with these weights as uid {me}'s</h2>\
         <p class=\"note\">arena's bit-exact epoch on the given subnet state, this validator's row replaced by the round's u16 weights.</p>\
         <table class=\"yuma\"><tr><th>uid</th><th>stake</th><th>consensus</th><th>incentive</th><th>dividends</th><th>validator trust</th><th>emission (rao)</th></tr>",
        epoch.block
    );
    for u in &epoch.uids {
        let _ = writeln!(
            h,
            "<tr data-uid=\"{}\"{}><td>{}</td>{}{}{}{}{}<td data-v=\"{}\">{}</td></tr>",
            u.uid,
            if u.uid == me { " class=\"me\"" } else { "" },
            u.uid,
            num(Some(u.stake)),
            num(Some(u.consensus)),
            num(Some(u.incentive)),
            num(Some(u.dividends)),
            num(Some(u.validator_trust)),
            u.emission,
            u.emission
        );
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers_read_well() {
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(1.0 / 3.0), "0.333333");
        assert_eq!(short(1234.5678), "1234.57");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1e-9), "1.00000e-9");
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
