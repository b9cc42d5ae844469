//! `arena yuma` through the built binary, on the example subnet in `examples/yuma/`.

use arena_e2e::{arena, repo_root, stdout_json, text};

#[test]
fn yuma_preview_runs_epochs_and_reports_errors() {
    let input = repo_root().join("examples/yuma/epoch.json");
    let out = arena(&["yuma", "--input", input.to_str().unwrap(), "--epochs", "3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = stdout_json(&out);
    let epochs = report["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    assert_eq!(epochs[1]["block"], 7200 + 360);
    for e in epochs {
        let uids = e["uids"].as_array().unwrap();
        let miners: u64 = uids.iter().map(|u| u["server_emission"].as_u64().unwrap()).sum();
        let validators: u64 = uids.iter().map(|u| u["validator_emission"].as_u64().unwrap()).sum();
        // Half of the 148e9 rao to miners, half to validators, less truncation: each share is an
        // I32F32 (resolution 2^-32, about 34 rao of 148e9) truncated to whole rao.
        assert!(74_000_000_000 - miners < 200 && 74_000_000_000 - validators < 200, "{miners} {validators}");
    }
    // The second epoch's weights ("then") move consensus from miner 3 to miner 4.
    let inc = |e: usize, uid: usize| epochs[e]["uids"][uid]["incentive"].as_f64().unwrap();
    assert!(inc(0, 3) > inc(0, 4) && inc(1, 4) > inc(1, 3));
    // The same input gives the same bytes.
    let again = arena(&["yuma", "--input", input.to_str().unwrap(), "--epochs", "3", "--json"]);
    assert_eq!(again.stdout, out.stdout);

    let table = arena(&["yuma", "--input", input.to_str().unwrap()]);
    assert!(text(&table).contains("epoch 1 at block 7200"), "{}", text(&table));

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"current_block\": 1,\n  \"stake\": [1],\n  \"kappa\": 3\n}\n").unwrap();
    let out = arena(&["yuma", "--input", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("bad.json:4:") && text(&out).contains("unknown field `kappa`"),
        "{}",
        text(&out)
    );

    let schema = arena(&["schema", "yuma"]);
    assert!(text(&schema).contains("bonds_moving_average"));
}
