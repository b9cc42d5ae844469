//! `arena report`: a round from `arena round` as one HTML page whose numbers are the round's
//! JSON, its plots as PNG, and the page opened in headless Chromium.

use std::path::{Path, PathBuf};

use arena_e2e::*;
use serde_json::{Value, json};

fn behaviour(dir: &Path, name: &str, b: Value) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("behaviour.json"), b.to_string()).unwrap();
    d
}

/// A chaos round with distinct totals (5, 9, 7) and a crash: a leaderboard with a winner, a
/// failed run, and a heat map that is not all ties. Returns (ROUND.json path, its JSON).
fn chaos_round(d: &Path) -> (PathBuf, Value) {
    let comp = chaos_competition(d, "");
    let toml = std::fs::read_to_string(&comp).unwrap().replace("metric = \"n\"", "metric = \"seed\"");
    std::fs::write(&comp, toml).unwrap();
    for (name, value) in [("five", 5.0), ("nine", 9.0), ("seven", 7.0)] {
        behaviour(d, name, json!({"kind": "score", "value": value}));
    }
    behaviour(d, "crash", json!({"kind": "segfault"}));
    let subs = d.join("subs.json");
    let s = json!({"block": 1005, "submissions": [
        {"uid": 1, "hotkey": "a", "block": 10, "competition": "chaos", "path": "five"},
        {"uid": 2, "hotkey": "b", "block": 20, "competition": "chaos", "path": "nine"},
        {"uid": 3, "hotkey": "c", "block": 30, "competition": "chaos", "path": "crash"},
        {"uid": 4, "hotkey": "d", "block": 40, "competition": "chaos", "path": "seven"},
    ]});
    std::fs::write(&subs, s.to_string()).unwrap();
    let out_file = d.join("round.json");
    let plugins = chaos_plugin().parent().unwrap().to_str().unwrap().to_string();
    let out = arena(&[
        "round",
        comp.to_str().unwrap(),
        "--submissions",
        subs.to_str().unwrap(),
        "--block-hash",
        "0x01",
        "--jobs",
        "2",
        "--out",
        out_file.to_str().unwrap(),
        "--plugin-dir",
        &plugins,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    (out_file, v)
}

#[test]
fn the_page_shows_the_rounds_numbers_exactly_and_every_plot_as_png() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let (round, v) = chaos_round(d);
    let html_path = d.join("report.html");
    let png = d.join("png");
    let out = arena(&[
        "report",
        round.to_str().unwrap(),
        "--out",
        html_path.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let html = std::fs::read_to_string(&html_path).unwrap();
    // No address to fetch: the only URL is the SVG namespace, a name that is never loaded.
    let urls = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!urls.contains("http://") && !urls.contains("https://"), "the page must need no network");

    // Final weights: float and u16, exactly the JSON's.
    for w in v["weights"].as_array().unwrap() {
        let vals = row_values(&html, "<table class=\"weights\">", w["uid"].as_u64().unwrap());
        assert_eq!(vals, vec![w["weight"].as_f64(), w["u16"].as_f64()], "{w}");
    }
    // Each leaderboard row: total, each task's raw and normalized, win rate, step weight,
    // weight, and the share of the emission (weight × emission share).
    let comp = &v["competitions"][0];
    let share = comp["emission_share"].as_f64().unwrap();
    let marker = "<section class=\"competition\" data-competition=\"chaos\"";
    for s in comp["submissions"].as_array().unwrap() {
        let mut expect = vec![s["total"].as_f64()];
        for t in ["drawn", "total"] {
            expect.push(s["tasks"][t]["raw"].as_f64());
            expect.push(s["tasks"][t]["normalized"].as_f64());
        }
        let weight = s["weight"].as_f64().unwrap();
        expect.extend([
            s["win_rate"].as_f64(),
            s["step_weight"].as_f64(),
            Some(weight),
            Some(weight * share),
        ]);
        assert_eq!(row_values(&html, marker, s["uid"].as_u64().unwrap()), expect, "{s}");
    }
    // The leaderboard is ranked by weight: uid 2 (9) first, and says why.
    let board = &html[html.find(marker).unwrap()..];
    let first = board.find("<tr data-uid=\"2\">").unwrap();
    for uid in [1, 3, 4] {
        assert!(
            board.find(&format!("<tr data-uid=\"{uid}\">")).unwrap() > first,
            "uid {uid} ranks above uid 2"
        );
    }
    assert!(board.contains("beat 3 of 3 (win rate 1)"), "{board}");
    assert!(board.contains("failed: "), "the crash says why it earns nothing");
    // The pairwise comparisons in the JSON: 9 beats 7 beats 5.
    assert_eq!(comp["beats"][1][3], 1);
    assert_eq!(comp["beats"][3][0], 1);
    assert_eq!(comp["beats"][0][1], 0);
    // The failed run with its failure.
    assert!(
        html.contains("<table class=\"failed-runs\">") && html.contains(">crashed<"),
        "no failed run shown"
    );

    // Every plot: inline in the page, and as a PNG.
    let plots = html.matches("<figure class=\"plot\"").count();
    assert!(html.contains(&format!("data-plots=\"{plots}\"")), "data-plots is not the number of figures");
    // Final weights; per task raw and normalized (2 tasks); wins; win rate and weights.
    assert_eq!(plots, 1 + 4 + 1 + 1);
    assert!(html.contains("id=\"plot-b1005-chaos-wins\""), "no heat map");
    let pngs: Vec<_> = std::fs::read_dir(&png).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(pngs.len(), plots, "{pngs:?}");
    for p in &pngs {
        let bytes = std::fs::read(p).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", p.display());
        assert!(bytes.len() > 2000, "{} is nearly empty", p.display());
    }
}

#[test]
fn bad_input_names_the_file_line_and_field_and_writes_nothing() {
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let bad = d.join("bad.json");
    std::fs::write(&bad, "{\"block\": 7,\n\"competitions\": [{\"id\": 3}], \"weights\": []}").unwrap();
    let out_file = d.join("r.html");
    let out = arena(&["report", bad.to_str().unwrap(), "--out", out_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("bad.json:2:") && t.contains("competitions[0].id"), "{t}");
    assert!(!out_file.exists());
}

/// Debian's Chromium, headless, opens the page with no network: no script error, and every
/// plot laid out with a size (`data-plots-shown`, written by the page's script, equals
/// `data-plots`); a screenshot is taken. CI installs chromium and sets ARENA_REQUIRE_CHROMIUM.
#[test]
fn chromium_opens_the_page_and_shows_every_plot() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
    else {
        assert!(
            std::env::var_os("ARENA_REQUIRE_CHROMIUM").is_none(),
            "ARENA_REQUIRE_CHROMIUM is set but no chromium runs"
        );
        eprintln!("skipped: no chromium (CI requires it)");
        return;
    };
    let w = tempfile::tempdir().unwrap();
    let d = w.path();
    let (round, _) = chaos_round(d);
    let page = d.join("report.html");
    let out = arena(&["report", round.to_str().unwrap(), "--out", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let profile = d.join("profile");
    let browser = |extra: &[String]| {
        let out = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,4000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = browser(&["--dump-dom".into()]);
    let body = &dom[dom.find("<body").expect("no body in the DOM")..];
    let body = &body[..body.find('>').unwrap()];
    assert!(!body.contains("data-errors"), "script errors: {body}");
    let plots = body.split("data-plots=\"").nth(1).and_then(|s| s.split('"').next()).unwrap();
    let shown = body.split("data-plots-shown=\"").nth(1).and_then(|s| s.split('"').next());
    assert_eq!(shown, Some(plots), "not every plot is shown: {body}");
    assert_ne!(plots, "0");
    let shot = d.join("shot.png");
    browser(&[format!("--screenshot={}", shot.display())]);
    let bytes = std::fs::read(&shot).expect("no screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 20_000, "the screenshot is nearly blank ({} bytes)", bytes.len());
}
