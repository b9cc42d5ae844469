//! Hostile inputs through the CLI (issue 16's rules): each is refused with its reason, with no
//! panic and no signal death.

use std::process::Command;

use arena_e2e::*;

/// `arena … | head`: the reader leaves early; arena ends quietly with the status a shell shows
/// for a tool that SIGPIPE ended, and prints no panic.
#[test]
fn a_closed_pipe_ends_arena_quietly() {
    // A long output (more than a pipe's 64 KiB buffer), so the write after `head` leaves fails:
    // `check --json` on a competition with 1,500 bad tasks.
    let w = tempfile::tempdir().unwrap();
    let mut toml = std::fs::read_to_string(repo_root().join("competitions/demo.toml")).unwrap();
    for i in 0..1500 {
        toml.push_str(&format!(
            "\n[[tasks]]\nname = \"bad{i}\"\nplugin = \"replay\"\nkind = \"replay\"\nweight = -1.0\ndirection = \"higher\"\n"
        ));
    }
    let file = w.path().join("many.toml");
    std::fs::write(&file, toml).unwrap();
    let args = ["check", "--json", file.to_str().unwrap()];
    let full = arena(&args);
    assert_eq!(full.status.code(), Some(1), "{}", String::from_utf8_lossy(&full.stderr));
    assert!(full.stdout.len() > 64 * 1024, "{} bytes: too short to fill a pipe", full.stdout.len());
    let script = format!(
        "set -o pipefail; '{}' {} | head -c 10 > /dev/null; echo \"status=${{PIPESTATUS[0]}}\"",
        arena_bin().display(),
        args.join(" ")
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("status=141"), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}

/// Wallet and hotkey names are single path components: `..` or `/` would write a secret key
/// outside the wallet directory.
#[test]
fn wallet_names_cannot_leave_the_wallet_directory() {
    let w = tempfile::tempdir().unwrap();
    let wallets = w.path().join("wallets");
    std::fs::create_dir_all(&wallets).unwrap();
    for (wallet, hotkey) in [("../evil", "h"), ("ok", "../../evil"), ("ok", "a/b"), ("..", "h"), ("ok", "")] {
        let mut c = arena_cmd(&["wallet", "new-hotkey", "--wallet", wallet, "--hotkey", hotkey]);
        let out = c.env("BT_WALLET_PATH", &wallets).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{wallet} {hotkey}: {}", text(&out));
        assert!(text(&out).contains("must be a single file name"), "{}", text(&out));
        let mut c = arena_cmd(&["wallet", "show", "--wallet", wallet, "--hotkey", hotkey]);
        let out = c.env("BT_WALLET_PATH", &wallets).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{wallet} {hotkey}: {}", text(&out));
    }
    let left: Vec<_> = walk(w.path());
    assert!(left.iter().all(|p| !p.contains("evil")), "{left:?}");
    assert!(walk(&wallets).is_empty(), "nothing written: {:?}", walk(&wallets));
}

/// A hotkey file others can read gets a warning (as ssh warns of an unprotected key); an
/// existing key is never overwritten, and the refusal leaves no temporary file.
#[test]
fn keyfiles_are_written_privately_and_once() {
    use std::os::unix::fs::PermissionsExt;
    let w = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut c = arena_cmd(args);
        c.env("BT_WALLET_PATH", w.path()).output().unwrap()
    };
    let seed = format!("{:064x}", 5);
    let out = run(&["wallet", "new-hotkey", "--wallet", "v", "--seed", &seed]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let key = w.path().join("v/hotkeys/default");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let out = run(&["wallet", "new-hotkey", "--wallet", "v", "--seed", &seed]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("not overwriting"), "{}", text(&out));
    let files = walk(w.path());
    assert_eq!(files.len(), 2, "the key and its pub file only: {files:?}");
    let out = run(&["wallet", "show", "--wallet", "v", "--json"]);
    assert!(!text(&out).contains("other users can read it"), "{}", text(&out));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["wallet", "show", "--wallet", "v", "--json"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("other users can read it: chmod 600 it"),
        "{}",
        text(&out)
    );
}

/// Every file below `dir`, as paths relative to it.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

/// A weights string names each uid once, with finite, non-negative weights.
#[test]
fn weight_strings_refuse_duplicates_and_non_finite_values() {
    let w = tempfile::tempdir().unwrap();
    let chain = w.path().join("chain.json");
    let out = arena(&["chain", "local", "new", chain.to_str().unwrap(), "--netuid", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (weights, reason) in [
        ("1=0.5,1=0.5", "uid 1 is given twice"),
        ("1=NaN", "must be a finite, non-negative number"),
        ("2=inf", "must be a finite, non-negative number"),
        ("3=-1", "must be a finite, non-negative number"),
        ("70000=1", "is not a uid"),
    ] {
        let mut c = arena_cmd(&["chain", "set-weights", "--chain", chain.to_str().unwrap(), "--netuid", "1"]);
        c.args(["--weights", weights]).env("BT_WALLET_PATH", w.path());
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{weights}: {}", text(&out));
        assert!(text(&out).contains(reason), "{weights}: {}", text(&out));
    }
}

/// The address space a hostile input may take arena to: far above what these commands need,
/// far below what reading a device or a loop forever would take.
const MEMORY_LIMIT: u64 = 2 << 30;

/// Runs arena under [`MEMORY_LIMIT`], killing it if it has not finished in `secs` (then the test
/// fails: it hung). Its output goes to files, so a long output cannot block it on a full pipe.
fn bounded(args: &[&str], secs: u64) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut cmd = arena_cmd(args);
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY_LIMIT as libc::rlim_t,
                rlim_max: MEMORY_LIMIT as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed().as_secs() > secs {
            child.kill().unwrap();
            panic!("arena {args:?} did not finish in {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    }
}

/// A FIFO, a device or a directory given as an input file is refused with its kind named,
/// without blocking and without reading forever.
#[test]
fn fifos_devices_and_directories_are_not_read() {
    let w = tempfile::tempdir().unwrap();
    let fifo = w.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let comp = repo_root().join("competitions/demo.toml");
    let comp = comp.to_str().unwrap();
    let dir = w.path().to_str().unwrap();
    let fifo = fifo.to_str().unwrap();
    // `round` checks that its competitions can run before it reads the submissions: the
    // replay plugin must be found (a cold `cargo test` leaves it in target/debug/deps only).
    let plugins = arena_e2e::replay_plugin();
    let plugins = plugins.parent().unwrap().to_str().unwrap();
    for (args, kind) in [
        (vec!["check", fifo], "is a FIFO"),
        (vec!["check", "/dev/zero"], "is a character device"),
        (vec!["check", dir], "is a directory"),
        (vec!["score", comp, "--raw", fifo], "is a FIFO"),
        (vec!["score", comp, "--raw", "/dev/zero"], "is a character device"),
        (vec!["round", comp, "--plugin-dir", plugins, "--submissions", fifo], "is a FIFO"),
        (vec!["yuma", "--input", fifo], "is a FIFO"),
        (vec!["chain", "metagraph", "--chain", fifo, "--netuid", "1"], "is a FIFO"),
        (vec!["chain", "metagraph", "--chain", "/dev/zero", "--netuid", "1"], "is a device"),
    ] {
        let out = bounded(&args, 30);
        assert!(matches!(out.status.code(), Some(1) | Some(2)), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(kind), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{args:?}: {}", text(&out));
    }
}

/// A JSON input that repeats a key is refused with the place named (serde would keep the last
/// value without a word).
#[test]
fn repeated_json_keys_are_refused_with_their_place() {
    let w = tempfile::tempdir().unwrap();
    let raw = w.path().join("raw.json");
    std::fs::write(
        &raw,
        r#"{"block": 1000, "submissions": [{"uid": 1, "hotkey": "h", "block": 100, "competition": "demo", "tasks": {"loss": 0.5, "loss": 0.1}}]}"#,
    )
    .unwrap();
    let comp = repo_root().join("competitions/demo.toml");
    let out = arena(&["score", comp.to_str().unwrap(), "--raw", raw.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`loss` appears twice in $.submissions[0].tasks"), "{}", text(&out));
}

/// A truncated plugin library is probed in a worker: it takes the worker down, not arena.
/// `plugins list` reports it with its reason, `plugins inspect` refuses it, `check` goes on.
#[test]
fn a_truncated_plugin_library_never_loads_in_arena() {
    let w = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(replay_plugin()).unwrap();
    let lib = w.path().join(format!("libarena_truncated{}", std::env::consts::DLL_SUFFIX));
    std::fs::write(&lib, &bytes[..bytes.len() / 3]).unwrap();
    let dir = w.path().to_str().unwrap();
    let cache = w.path().join("cache");
    let run = |args: &[&str]| {
        let out = arena_cmd(args).env("ARENA_CACHE_DIR", &cache).output().unwrap();
        assert!(out.status.code().is_some(), "{args:?} died by a signal: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{args:?}: {}", text(&out));
        out
    };
    let out = run(&["plugins", "list", "--json", "--plugin-dir", dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = stdout_json(&out);
    let errors = v["errors"].as_array().unwrap();
    let e = errors.iter().find(|e| e["path"] == lib.to_str().unwrap()).unwrap_or_else(|| panic!("{v}"));
    assert!(
        !e["error"].as_str().unwrap().is_empty() && e["message"].as_str().unwrap().contains("truncated"),
        "{e}"
    );
    let out = run(&["plugins", "inspect", lib.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let comp = repo_root().join("competitions/demo.toml");
    let out = run(&["check", "--plugin-dir", dir, comp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A library that probes well is remembered by its hash.
    let good = run(&["plugins", "inspect", replay_plugin().to_str().unwrap(), "--json"]);
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));
    let sha = stdout_json(&good)["sha256"].as_str().unwrap().to_string();
    let entry = format!("{sha}-abi{}.json", arena_plugin_api::ABI_VERSION);
    assert!(cache.join("plugins").join(entry).is_file());
}

/// A raw score so large that the aggregate overflows to infinity fails that submission (it
/// would otherwise outrank every finite total and take the weight).
#[test]
fn an_infinite_aggregate_fails_its_submission() {
    let w = tempfile::tempdir().unwrap();
    let comp = w.path().join("inf.toml");
    std::fs::write(
        &comp,
        r#"id = "inf"
competition_id = 0
netuid = 1
name = "Inf"
emission_share = 1.0

[data]
seed = { kind = "fixed", value = 0 }

[[tasks]]
name = "x"
plugin = "replay"
kind = "replay"
direction = "higher"

[score]
direction = "higher"
aggregate = { kind = "formula", expr = "x * 10.0" }

[ranking]
policy = { kind = "softmax", temperature = 0.5 }
lone_win_rate = 1.0
"#,
    )
    .unwrap();
    let raw = w.path().join("raw.json");
    std::fs::write(
        &raw,
        r#"{"block": 1000, "submissions": [
            {"uid": 1, "hotkey": "a", "block": 10, "competition": "inf", "tasks": {"x": 1e308}},
            {"uid": 2, "hotkey": "b", "block": 20, "competition": "inf", "tasks": {"x": 1.0}}]}"#,
    )
    .unwrap();
    let out = arena(&["score", comp.to_str().unwrap(), "--raw", raw.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = stdout_json(&out);
    let subs = v["competitions"][0]["submissions"].as_array().unwrap();
    assert_eq!(subs[0]["status"], "failed", "{v}");
    assert!(subs[0]["reason"].as_str().unwrap_or_default().contains("the aggregate is inf"), "{v}");
    assert_eq!(subs[1]["status"], "scored", "{v}");
    let weights = v["weights"].as_array().unwrap();
    let w1 = weights.iter().find(|w| w["uid"] == 1).map(|w| w["weight"].as_f64().unwrap()).unwrap_or(0.0);
    let w2 = weights.iter().find(|w| w["uid"] == 2).map(|w| w["weight"].as_f64().unwrap()).unwrap_or(0.0);
    assert!(w2 > w1, "the finite submission wins: {v}");
}

/// Diagnostics stay linear: a 10,000-task file with 70,000 errors is checked and rendered in
/// seconds (it took minutes when each diagnostic rescanned the file).
#[test]
fn checking_a_ten_thousand_task_file_takes_seconds() {
    let w = tempfile::tempdir().unwrap();
    let mut toml = std::fs::read_to_string(repo_root().join("competitions/demo.toml")).unwrap();
    toml = toml.replacen("weight = 1.0\n", "weight = 0.0001\n", 1);
    for i in 0..9_999 {
        toml.push_str(&format!(
            "\n[[tasks]]\nname = \"t{i}\"\nplugin = \"replay\"\nkind = \"replay\"\nweight = 0.0001\ndirection = \"higher\"\n"
        ));
    }
    let file = w.path().join("tenk.toml");
    std::fs::write(&file, toml).unwrap();
    let dir = replay_plugin().parent().unwrap().to_str().unwrap().to_string();
    let start = std::time::Instant::now();
    let out = bounded(&["check", "--plugin-dir", &dir, file.to_str().unwrap()], 120);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let t = text(&out);
    assert!(t.contains("checked 1 file(s): 69993 error(s)"), "{}", &t[t.len().saturating_sub(500)..]);
    assert!(t.contains("tenk.toml:70022:1: `tasks[9999].params`"), "the last error is named at its line");
    assert!(secs < 60.0, "{secs:.1} s");
}

/// Runs arena bounded in time and memory, and requires a refusal (exit 1 or 2) that says `why`,
/// with no panic and no signal death.
fn refused(args: &[&str], why: &str) {
    let out = bounded(args, 60);
    let t = text(&out);
    assert!(matches!(out.status.code(), Some(1) | Some(2)), "{args:?} exited {:?}: {t}", out.status);
    assert!(t.contains(why), "{args:?}: `{why}` not in: {t}");
    assert!(!t.contains("panicked"), "{args:?}: {t}");
}

/// Durations are finite, positive and at most 30 days: `Duration::from_secs_f64` would panic on
/// the rest.
#[test]
fn durations_are_checked_before_they_become_durations() {
    let comp = repo_root().join("competitions/demo.toml");
    let comp = comp.to_str().unwrap();
    let lib = replay_plugin();
    let lib = lib.to_str().unwrap();
    for t in ["1e300", "-1", "NaN", "inf", "0"] {
        let timeout = format!("--timeout={t}");
        refused(&["eval", "--plugin", lib, "--task", "replay", "--submission", ".", &timeout], "--timeout");
        refused(&["round", comp, &timeout], "--timeout");
    }
    let timeout = "--timeout=1e300";
    refused(
        &["eval", "--plugin", lib, "--task", "replay", "--submission", ".", timeout],
        "more than 30 days",
    );
    let malformed = repo_root().join("tests/malformed/limits-timeout-too-long.toml");
    refused(&["check", malformed.to_str().unwrap()], "seconds is more than 30 days");
}

/// Block arithmetic on the embedded chain is checked: advancing past u64 or by more than a
/// bounded number of blocks is refused at once, not a wrap, a panic or hours of work.
#[test]
fn block_arithmetic_never_wraps_or_runs_away() {
    let w = tempfile::tempdir().unwrap();
    let state = w.path().join("chain.json");
    let s = state.to_str().unwrap();
    let out = arena(&["chain", "local", "new", s, "--tempo", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    refused(
        &["chain", "local", "advance", "--chain", s, "--blocks", "18446744073709551615"],
        "the limit is 10000000",
    );
    let before = std::fs::read(&state).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&before).unwrap();
    v["block"] = serde_json::json!(u64::MAX - 1);
    std::fs::write(&state, serde_json::to_vec(&v).unwrap()).unwrap();
    refused(&["chain", "local", "advance", "--chain", s, "--blocks", "5"], "overflows the block number");
}

/// `registered` is bounded by what a subnet holds (uids are u16).
#[test]
fn registered_counts_beyond_a_subnet_are_refused() {
    let w = tempfile::tempdir().unwrap();
    let raw = w.path().join("raw.json");
    std::fs::write(&raw, r#"{"block": 1000, "registered": 18446744073709551615, "submissions": []}"#)
        .unwrap();
    let comp = repo_root().join("competitions/roleplay.toml");
    refused(&["score", comp.to_str().unwrap(), "--raw", raw.to_str().unwrap()], "more than a subnet holds");
}

/// A minimal model directory: config.json and one safetensors file with one tensor.
fn model_dir(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#,
    )
    .unwrap();
    let mut header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.to_vec();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend([0u8; 4]);
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
}

/// Directory walks (a model's size, taoverse's directory hash, data folders) never follow a
/// symlink out of the tree, stop at a loop, and never open a FIFO.
#[test]
fn directory_walks_stay_in_the_tree_and_stop_at_loops() {
    use std::os::unix::fs::symlink;
    let w = tempfile::tempdir().unwrap();
    let ok = w.path().join("ok");
    model_dir(&ok);
    let out = bounded(&["model", "inspect", ok.to_str().unwrap(), "--json"], 60);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let looped = w.path().join("loop");
    model_dir(&looped);
    std::fs::create_dir(looped.join("sub")).unwrap();
    for i in 0..8 {
        symlink("..", looped.join(format!("sub/up{i}"))).unwrap();
    }
    refused(&["model", "inspect", looped.to_str().unwrap()], "met twice (a symlink loop?)");

    let escape = w.path().join("escape");
    model_dir(&escape);
    symlink("/etc", escape.join("etc")).unwrap();
    refused(&["model", "inspect", escape.to_str().unwrap()], "outside the tree walked");

    let fifo = w.path().join("fifo");
    model_dir(&fifo);
    std::fs::remove_file(fifo.join("model.safetensors")).unwrap();
    assert!(Command::new("mkfifo").arg(fifo.join("model.safetensors")).status().unwrap().success());
    refused(&["model", "inspect", fifo.to_str().unwrap()], "is a FIFO, not a regular file");
}

/// The same competition listed twice in a validator configuration is refused by every command
/// that reads the configuration, not only by `check`.
#[test]
fn a_competition_listed_twice_is_refused_where_the_configuration_is_used() {
    let v = repo_root().join("tests/malformed/validator-competition-listed-twice.toml");
    let v = v.to_str().unwrap();
    let comp = repo_root().join("competitions/demo.toml");
    let w = tempfile::tempdir().unwrap();
    let raw = w.path().join("raw.json");
    std::fs::write(&raw, r#"{"block": 1000, "submissions": []}"#).unwrap();
    refused(&["check", v], "is listed twice");
    refused(
        &["score", comp.to_str().unwrap(), "--raw", raw.to_str().unwrap(), "--config", v],
        "is listed twice",
    );
}

/// `arena yuma` bounds its epochs (a capacity overflow panicked) and checks its block arithmetic.
#[test]
fn yuma_epochs_are_bounded_and_blocks_checked() {
    let input = repo_root().join("examples/yuma/epoch.json");
    let i = input.to_str().unwrap();
    refused(&["yuma", "--input", i, "--epochs", "18446744073709551615"], "the most one run takes");
    let w = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&input).unwrap()).unwrap();
    v["current_block"] = serde_json::json!(u64::MAX - 1);
    let late = w.path().join("late.json");
    std::fs::write(&late, serde_json::to_vec(&v).unwrap()).unwrap();
    refused(&["yuma", "--input", late.to_str().unwrap(), "--epochs", "3"], "the block number overflows");
}
