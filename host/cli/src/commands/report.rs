//! `arena report`: rounds as one self-contained HTML page with plots, and each plot as PNG.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use arena_report::{Report, Round};
use clap::Args;

#[derive(Args)]
pub struct ReportArgs {
    /// Rounds to show in full: ROUND.json from `arena round --out`, or `arena score --json`.
    #[arg(value_name = "ROUND.json")]
    rounds: Vec<PathBuf>,
    /// Also read the newest rounds a validator's store holds (the newest shown in full, all of
    /// them over time).
    #[arg(long, value_name = "FILE.sqlite")]
    store: Option<PathBuf>,
    /// How many of the store's rounds to read.
    #[arg(long, value_name = "N", default_value_t = 10, requires = "store")]
    last: u32,
    /// The page to write.
    #[arg(long, value_name = "FILE.html", default_value = "report.html")]
    out: PathBuf,
    /// Also write each plot as DIR/<plot>.png (needs a TrueType font: fonts-dejavu-core, or
    /// $ARENA_REPORT_FONT).
    #[arg(long, value_name = "DIR")]
    png: Option<PathBuf>,
    /// A subnet state (`arena yuma --input` format): show the incentive and dividends arena's
    /// Yuma predicts when validator `--uid` sets the newest round's weights.
    #[arg(long, value_name = "EPOCH.json", requires = "uid")]
    yuma: Option<PathBuf>,
    /// This validator's uid in the `--yuma` state.
    #[arg(long, value_name = "UID", requires = "yuma")]
    uid: Option<u16>,
    /// The page's title.
    #[arg(long, default_value = "arena round report")]
    title: String,
}

pub async fn exec(a: ReportArgs) -> Result<ExitCode> {
    anyhow::ensure!(!a.rounds.is_empty() || a.store.is_some(), "give ROUND.json files, --store, or both");
    let mut detailed = Vec::new();
    let mut notes = Vec::new();
    for p in &a.rounds {
        let text = arena_runtime::files::read_json_text(p)?;
        detailed.push(Round::parse(&text, &p.display().to_string())?);
        notes.push(format!("{}: block {}", p.display(), detailed[detailed.len() - 1].block));
    }
    let mut stored = Vec::new();
    if let Some(path) = &a.store {
        let store = arena_store::Sqlite::open_read_only(path).await?;
        stored = arena_validator::status::stored_rounds(&store, a.last).await?;
        store.close().await;
        notes.push(format!("{}: {} scored round(s) of the newest {}", path.display(), stored.len(), a.last));
        if let Some(newest) = stored.last() {
            detailed.push(newest.clone());
        }
    }
    let history = arena_report::by_block(detailed.iter().cloned().chain(stored).collect());
    let yuma = match (&a.yuma, a.uid) {
        (Some(p), Some(uid)) => {
            let newest = history.last().context("no round to take weights from")?;
            let text = arena_runtime::files::read_json_text(p)?;
            let input = arena_yuma::report::parse(&text, &p.display().to_string())?;
            let epoch = arena_report::yuma(input, uid, &arena_report::u16_weights(newest))
                .with_context(|| format!("Yuma on {}", p.display()))?;
            notes.push(format!(
                "Yuma: {} with uid {uid} setting the weights of block {}",
                p.display(),
                newest.block
            ));
            Some((epoch, uid))
        }
        _ => None,
    };
    let report = Report { title: a.title.clone(), detailed, history, yuma, notes, ..Report::default() };
    let html = report.html();
    crate::output::write_atomic(&a.out, &html).with_context(|| format!("writing {}", a.out.display()))?;
    let plots = report.plots();
    println!("report: {} ({} plots, {} bytes)", a.out.display(), plots.len(), html.len() + 1);
    if let Some(dir) = &a.png {
        let font = arena_report::png::find_font()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for p in &plots {
            arena_report::png::write(p, &font, dir)?;
        }
        println!("report: {} PNG files in {}", plots.len(), dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
