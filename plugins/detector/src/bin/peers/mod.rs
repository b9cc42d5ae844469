//! What the detector's benchmarks share: the peers' Python process, which takes turns with arena
//! (one round per line on its stdin), and the statistics of the table.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// A peers' script (`tests/reference/bench_*.py`), taking turns with arena: it prints
/// `{"ready": ...}` once prepared, `{"round": ...}` for every line it reads, and its result as one
/// JSON line with `peers` at the end of its stdin.
pub struct Peers {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
    script: String,
    /// stderr goes to a file: a pipe nobody reads could fill and stall the peers.
    stderr: tempfile::NamedTempFile,
}

/// The options of the turns both benchmarks take.
#[derive(clap::Args)]
pub struct Turns {
    /// Timed iterations per side and round.
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Rounds of every side in turn.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Python with torch (and onnxruntime, openvino for those peers); empty to skip the peers.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The peers' intra-op threads (default: every CPU, as arena uses).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Turns {
    /// At least one round of one iteration.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.rounds > 0 && self.iters > 0, "--rounds and --iters must be at least 1");
        Ok(())
    }
}

impl Peers {
    /// Starts `python script args… --iters --peers [--threads]` and waits until every peer is
    /// ready.
    pub fn start(turns: &Turns, peers: &str, script: &str, args: &[String]) -> anyhow::Result<Peers> {
        let stderr = tempfile::NamedTempFile::new()?;
        let python = &turns.python;
        let mut cmd = Command::new(python);
        cmd.arg(script).args(args).args(["--iters", &turns.iters.to_string(), "--peers", peers]);
        if let Some(t) = turns.threads {
            cmd.args(["--threads", &t.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen()?)
            .spawn()
            .map_err(|e| anyhow::anyhow!("{python}: {e}"))?;
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut p = Peers { child, out, script: script.into(), stderr };
        p.line("ready")?;
        Ok(p)
    }

    /// One round: every peer times its iterations.
    pub fn round(&mut self) -> anyhow::Result<()> {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"round\n")?;
        stdin.flush()?;
        self.line("round").map(drop)
    }

    /// The result line, once the script has exited successfully.
    pub fn finish(mut self) -> anyhow::Result<serde_json::Value> {
        drop(self.child.stdin.take());
        let r = self.line("peers")?;
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "{} exited with {status}", self.script);
        Ok(r)
    }

    /// The next line of output, which must be a JSON object with `key`.
    fn line(&mut self, key: &str) -> anyhow::Result<serde_json::Value> {
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(v) if v.get(key).is_some() => Ok(v),
            _ => {
                let _ = self.child.wait();
                let err = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
                anyhow::bail!("{} failed (wanted `{key}`, got {:?}): {err}", self.script, line.trim())
            }
        }
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Arena's rate over a side's, paired by round: the median of the ratios and their range, as
/// `(median, "lo-hix")`.
pub fn paired(arena: &[f64], side: &[f64]) -> (f64, String) {
    let ratios: Vec<f64> = arena.iter().zip(side).map(|(x, y)| x / y).collect();
    let (lo, hi) = ratios.iter().fold((f64::INFINITY, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
    (median(ratios), format!("{lo:.2}-{hi:.2}x"))
}

/// One side of a line of the table: its rate in every round, its largest output difference
/// from arena, and what ran.
pub struct Row {
    pub side: String,
    pub rates: Vec<f64>,
    pub diff: Option<f64>,
    pub detail: String,
}

impl Row {
    pub fn new(side: &str, diff: Option<f64>, detail: &str) -> Row {
        Row { side: side.into(), rates: Vec::new(), diff, detail: detail.into() }
    }
}
