//! Predicted vtrust end to end: `arena validator run` on the embedded chain (its own block
//! clock, 0.1 s blocks, tempo 10) with one validator and four miners, then `arena validator
//! status`. The validator holds all the stake, so its weights are the consensus: vtrust 1.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arena_e2e::{arena_cmd, chaos_plugin, stdout_json, text};
use serde_json::Value;

/// Miners' models: the raw score each evaluation gives (higher is better).
const MODELS: [(&str, f64); 4] = [("m-bad", 0.1), ("m-fair", 0.4), ("m-good", 0.7), ("m-best", 0.9)];

struct World {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    chain: PathBuf,
}

impl World {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = arena_cmd(args);
        c.env("BT_WALLET_PATH", self.dir.join("wallets"))
            .env("HF_HUB_CACHE", self.dir.join("hub"))
            .env("HF_HUB_OFFLINE", "1")
            .env("ARENA_LOG", "info");
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "arena {}: {}", args.join(" "), text(&out));
        text(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "arena {}: {}", args.join(" "), text(&out));
        stdout_json(&out)
    }

    fn chain(&self) -> &str {
        self.chain.to_str().unwrap()
    }

    fn hotkey(&self, wallet: &str) -> String {
        let n: u64 = wallet.bytes().map(u64::from).sum();
        let seed = format!("{:064x}", n * 7919 + wallet.len() as u64);
        let out = self.ok(&["wallet", "new-hotkey", "--wallet", wallet, "--seed", &seed]);
        out.split_whitespace().last().unwrap().to_string()
    }

    fn block(&self) -> u64 {
        let m = self.json(&["chain", "metagraph", "--chain", self.chain(), "--netuid", "1", "--json"]);
        m["block"].as_u64().unwrap()
    }
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let w = World { _tmp: tmp, dir: dir.clone(), chain: dir.join("chain.json") };
    std::fs::write(
        dir.join("chaos.toml"),
        r#"id = "chaos"
competition_id = 2
netuid = 1
name = "Chaos"
emission_share = 1.0

[data]
seed = { kind = "fixed", value = 7 }

[limits]
timeout = 20
memory = "2GiB"

[[tasks]]
name = "quality"
plugin = "chaos"
kind = "by-submission"
weight = 1.0
direction = "higher"

[score]
direction = "higher"

[ranking]
policy = { kind = "winner_take_all" }
lone_win_rate = 1.0
"#,
    )
    .unwrap();
    let plugins = chaos_plugin();
    std::fs::write(
        dir.join("val.toml"),
        format!(
            r#"netuid = 1
network = "local"
competitions = ["chaos.toml"]
plugin_dirs = ["{}"]
store = "val.sqlite"

[wallet]
name = "val"
hotkey = "default"

[funding]
chaos = 1.0

[service]
poll = 0.1
metagraph = 1.0
weights_retry = 0.5
stall = 30.0
rpc_timeout = 10.0
round_blocks = 20
lease = 5.0
retry_backoff = 0.1
metrics = "127.0.0.1:0"
"#,
            plugins.parent().unwrap().display()
        ),
    )
    .unwrap();
    let hk = w.hotkey("val");
    let mut neurons = vec![format!("{hk}:{hk}:1000000000000")];
    for (m, _) in MODELS {
        let hk = w.hotkey(m);
        neurons.push(format!("{hk}:{hk}:0"));
    }
    let mut args: Vec<String> = [
        "chain",
        "local",
        "new",
        w.chain(),
        "--netuid",
        "1",
        "--tempo",
        "10",
        "--weights-rate-limit",
        "5",
        "--block-time",
        "0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in &neurons {
        args.extend(["--neuron".to_string(), n.clone()]);
    }
    w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for (i, (m, value)) in MODELS.iter().enumerate() {
        let rev = format!("{:040x}", i + 1);
        let snapshot = dir.join(format!("hub/models--miners--{m}/snapshots/{rev}"));
        std::fs::create_dir_all(&snapshot).unwrap();
        let behaviour = serde_json::json!({"kind": "score", "value": value, "seconds": 0.0});
        std::fs::write(snapshot.join("behaviour.json"), behaviour.to_string()).unwrap();
        w.ok(&[
            "commit",
            "--chain",
            w.chain(),
            "--netuid",
            "1",
            "--wallet",
            m,
            "--repo",
            &format!("miners/{m}"),
            "--revision",
            &rev,
            "--model-dir",
            snapshot.to_str().unwrap(),
            "--competition-id",
            "2",
        ]);
    }
    w
}

fn wait_ok(mut child: Child, what: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let t = text(&out);
            assert!(status.success(), "{what}: {status}\n{t}");
            return t;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what} did not finish in {limit:?}:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_validator_predicts_its_vtrust_before_setting_weights_and_status_shows_it() {
    let w = world();
    let until = w.block() + 45;
    let config = w.dir.join("val.toml");
    let config = config.to_str().unwrap();
    let run = w
        .cmd(&[
            "validator",
            "run",
            "--config",
            config,
            "--chain",
            w.chain(),
            "--until-block",
            &until.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = wait_ok(run, "arena validator run", Duration::from_secs(120));
    // Alone, its row is the consensus.
    assert!(log.contains("uid 0: predicted vtrust 1.0000 (now "), "{log}");
    assert!(log.contains("0.0% of its weight beyond consensus"), "{log}");

    let st = w.json(&["validator", "status", "--config", config, "--rounds", "50", "--json"]);
    assert_eq!(st["last_weights"]["weights"], serde_json::json!([[4, 65535]]), "{st:#}");
    let p = &st["predicted_vtrust"];
    assert_eq!(p["netuid"], 1, "{st:#}");
    assert_eq!(p["uid"], 0, "{st:#}");
    assert_eq!(p["validator_trust"], 1.0, "{st:#}");
    assert_eq!(p["consensus_distance"], 0.0, "{st:#}");
    assert_eq!(p["clipped"], serde_json::json!([]), "{st:#}");
    assert!(p["block"].as_u64().unwrap() <= until + 5, "{st:#}");

    let human = w.ok(&["validator", "status", "--config", config]);
    assert!(human.contains("predicted vtrust: 1.0000 (now "), "{human}");
    assert!(human.contains("0.0% of its weight beyond consensus"), "{human}");
}
