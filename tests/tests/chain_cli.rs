//! `arena wallet`, `arena chain` and `arena commit` through the built binary, on the embedded
//! chain: a validator sets weights, miners commit models, epochs turn weights into incentive.

use std::path::Path;

use arena_e2e::{arena_cmd, repo_root, stdout_json, text};

fn run(wallets: &Path, args: &[&str]) -> std::process::Output {
    arena_cmd(args).env("BT_WALLET_PATH", wallets).output().unwrap()
}

fn ok(wallets: &Path, args: &[&str]) -> String {
    let out = run(wallets, args);
    assert_eq!(out.status.code(), Some(0), "arena {}: {}", args.join(" "), text(&out));
    text(&out)
}

#[test]
fn validator_and_miners_on_the_embedded_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("wallets");
    let chain = tmp.path().join("chain.json");
    let chain_s = chain.to_str().unwrap();
    let mut hotkeys = Vec::new();
    for (i, name) in ["val0", "val1", "miner2", "miner3"].iter().enumerate() {
        let seed = format!("{:064x}", i + 1);
        let out = ok(&w, &["wallet", "new-hotkey", "--wallet", name, "--hotkey", "h", "--seed", &seed]);
        hotkeys.push(out.split_whitespace().last().unwrap().to_string());
    }
    // The same seed gives the same key (and refuses to overwrite it).
    let again = run(
        &w,
        &["wallet", "new-hotkey", "--wallet", "val0", "--hotkey", "h", "--seed", &format!("{:064x}", 1)],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("not overwriting"));
    let neuron = |i: usize, stake: u64| format!("{}:{}:{stake}", hotkeys[i], hotkeys[i]);
    ok(
        &w,
        &[
            "chain",
            "local",
            "new",
            chain_s,
            "--netuid",
            "11",
            "--tempo",
            "10",
            "--weights-rate-limit",
            "2",
            "--neuron",
            &neuron(0, 6_000_000_000),
            "--neuron",
            &neuron(1, 4_000_000_000),
            "--neuron",
            &neuron(2, 0),
            "--neuron",
            &neuron(3, 0),
        ],
    );
    assert!(
        ok(&w, &["chain", "local", "advance", "--chain", chain_s, "--blocks", "10"])
            .contains("epoch of subnet 11 at block 10")
    );

    // Validators set float weights; the SDK's conversion gives the u16 the chain stores.
    let set = |name: &str, weights: &str| {
        let journal = tmp.path().join(format!("{name}.journal.json"));
        let out = ok(
            &w,
            &[
                "chain",
                "set-weights",
                "--chain",
                chain_s,
                "--netuid",
                "11",
                "--wallet",
                name,
                "--hotkey",
                "h",
                "--weights",
                weights,
                "--journal",
                journal.to_str().unwrap(),
                "--json",
            ],
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let v0 = set("val0", "2=0.7,3=0.3");
    assert_eq!(v0["weights"], serde_json::json!([[2, 65535], [3, 28086]]));
    assert_eq!(v0["outcome"]["outcome"], "set");
    assert_eq!(set("val0", "2=1")["outcome"]["outcome"], "already_done");
    assert_eq!(set("val1", "2=0.5,3=0.5")["outcome"]["outcome"], "set");

    // Miners commit in SN11's format (the roleplay competition's) and in taoverse's.
    let roleplay = repo_root().join("competitions/roleplay.toml");
    let out = ok(
        &w,
        &[
            "commit",
            "--chain",
            chain_s,
            "--netuid",
            "11",
            "--wallet",
            "miner2",
            "--hotkey",
            "h",
            "--format",
            "dippy",
            "--repo",
            "alice/rp-7b",
            "--chat-template",
            "chatml",
            "--competition-id",
            "d1",
        ],
    );
    assert!(out.contains(&format!("alice:rp-7b:chatml:{}:", hotkeys[2])), "{out}");
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("config.json"), "{}").unwrap();
    let out = ok(
        &w,
        &[
            "commit",
            "--chain",
            chain_s,
            "--netuid",
            "11",
            "--wallet",
            "miner3",
            "--hotkey",
            "h",
            "--repo",
            "bob/m",
            "--revision",
            "0123456789abcdef0123456789abcdef01234567",
            "--model-dir",
            model.to_str().unwrap(),
            "--competition-id",
            "2",
        ],
    );
    assert!(out.contains("call data 0x1200"), "{out}");

    let out = run(
        &w,
        &[
            "chain",
            "commitments",
            "--chain",
            chain_s,
            "--netuid",
            "11",
            "--competition",
            roleplay.to_str().unwrap(),
            "--json",
        ],
    );
    let rows = stdout_json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let mine = rows.iter().find(|r| r["uid"] == 2).unwrap();
    assert_eq!(mine["in_competition"], true);
    assert_eq!(mine["parsed"]["chat_template"], "chatml");
    let other = rows.iter().find(|r| r["uid"] == 3).unwrap();
    assert_eq!(other["in_competition"], false, "a taoverse string is not an SN11 commitment: {other}");

    // The next epoch turns the weights into incentive.
    ok(&w, &["chain", "local", "advance", "--chain", chain_s, "--blocks", "10"]);
    let m = stdout_json(&run(&w, &["chain", "metagraph", "--chain", chain_s, "--netuid", "11", "--json"]));
    let inc = |u: usize| m["neurons"][u]["incentive"].as_u64().unwrap();
    assert!(inc(2) > inc(3) && inc(3) > 0, "{m}");
    let weights =
        stdout_json(&run(&w, &["chain", "weights", "--chain", chain_s, "--netuid", "11", "--json"]));
    assert_eq!(weights[0]["weights"], serde_json::json!([[2, 65535], [3, 28086]]));

    // A damaged state file is named with its line and field; nothing is written.
    std::fs::write(
        &chain,
        std::fs::read_to_string(&chain).unwrap().replacen("\"block\": ", "\"block\": -", 1),
    )
    .unwrap();
    let out = run(&w, &["chain", "metagraph", "--chain", chain_s, "--netuid", "11"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("chain.json:2:") && text(&out).contains("block"), "{}", text(&out));
}

/// `--block-time`: the embedded chain makes its blocks with the wall clock, for every process
/// that opens it.
#[test]
fn a_clocked_embedded_chain_makes_blocks_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("wallets");
    let chain = tmp.path().join("chain.json");
    let chain_s = chain.to_str().unwrap();
    let h = "5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV";
    let neuron = format!("{h}:{h}:1000");
    let new = |path: &str, block_time: &str| {
        run(
            &w,
            &[
                "chain",
                "local",
                "new",
                path,
                "--tempo",
                "5",
                &format!("--block-time={block_time}"),
                "--neuron",
                &neuron,
            ],
        )
    };
    let out = new(chain_s, "0.05");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("a block every 50 ms"), "{}", text(&out));
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let m = stdout_json(&run(&w, &["chain", "metagraph", "--chain", chain_s, "--netuid", "1", "--json"]));
    assert!(m["block"].as_u64().unwrap() >= 10, "{m}");
    // Blocks from `advance` come on top of the clock's.
    let out = ok(&w, &["chain", "local", "advance", "--chain", chain_s, "--blocks", "1000"]);
    let block: u64 = out.lines().last().unwrap().trim_start_matches("block ").parse().unwrap();
    assert!(block >= 1010, "{out}");
    for bad in ["0", "-1", "nan", "inf", "3601", "0.0001", "soon"] {
        let other = tmp.path().join(format!("bad-{bad}.json"));
        let out = new(other.to_str().unwrap(), bad);
        assert_eq!(out.status.code(), Some(2), "--block-time {bad}: {}", text(&out));
        assert!(!other.exists(), "--block-time {bad}");
    }
}
