//! `arena --help` names every command, and `arena round --help` its inputs. (This test is also
//! what makes `cargo test --workspace` build the `arena` binary the end-to-end tests drive.)

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_arena")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn help_names_every_command() {
    let text = help(&[]);
    for cmd in
        ["plugins", "eval", "check", "round", "score", "model", "chain", "commit", "wallet", "yuma", "schema"]
    {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&format!("{cmd} "))),
            "`{cmd}` missing:\n{text}"
        );
    }
    let listed = |cmd: &str| text.lines().any(|l| l.trim_start().starts_with(&format!("{cmd} ")));
    assert!(!listed("worker"), "the internal worker command is hidden:\n{text}");
}

#[test]
fn round_help_names_its_inputs() {
    let text = help(&["round"]);
    for flag in [
        "--submissions",
        "--chain",
        "--network",
        "--block-hash",
        "--config",
        "--state",
        "--out",
        "--jobs",
        "--in-process",
        "--json",
    ] {
        assert!(text.contains(flag), "`{flag}` missing:\n{text}");
    }
    let text = help(&["check"]);
    assert!(text.contains("--strict"), "{text}");
    let text = help(&["chain", "set-weights"]);
    assert!(text.contains("--report"), "{text}");
}
