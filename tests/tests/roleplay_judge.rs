//! The judge path against a local OpenAI-compatible server on loopback that answers from a
//! script: verdicts, malformed JSON, 429/500/503, a stall past the timeout. Each case gives the
//! reference's outcome, or the better one the plugin documents, and no key reaches an error.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use arena_e2e::chat::{Reply, Server, ok, serve, status};
use arena_plugin_api::{Device, EvalRequest, NoProgress, Plugin, Sample, Submission, TaskSpec};
use arena_roleplay::RoleplayPlugin;
use arena_roleplay::data::Turn;
use arena_roleplay::judge::{Judge, JudgeKind, JudgeSpec};
use serde_json::{Value, json};

fn spec(url: &str, key_env: Option<&str>, timeout: f64) -> JudgeSpec {
    JudgeSpec {
        kind: JudgeKind::Openai,
        model: "judge-model".into(),
        url: Some(url.into()),
        api_key_env: key_env.map(str::to_string),
        chat_template: None,
        timeout,
        retries: 3,
        max_new_tokens: 16,
    }
}

fn ask(j: &Judge) -> Result<String, String> {
    j.ask(&[Turn::new("user", "Text to analyze")], 0.0, 16, None, 0)
}

fn fast(mut j: Judge) -> Judge {
    if let Judge::Remote(r) = &mut j {
        r.backoff = Duration::from_millis(10);
    }
    j
}

#[test]
fn a_verdict_is_read_and_the_key_is_a_bearer_token() {
    let s = serve(|_, _| ok("1"));
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var("ARENA_TEST_JUDGE_KEY_A", "sk-secret-a") };
    let j = Judge::open(&spec(&s.url, Some("ARENA_TEST_JUDGE_KEY_A"), 5.0), Device::Cpu).unwrap();
    assert_eq!(ask(&j).unwrap(), "1");
    let seen = s.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.authorization.as_deref(), Some("Bearer sk-secret-a"));
    assert_eq!(seen.body["temperature"], 0.0);
    assert_eq!(seen.body["model"], "judge-model");
}

#[test]
fn a_missing_key_fails_before_any_request() {
    let s = serve(|_, _| ok("1"));
    let e = Judge::open(&spec(&s.url, Some("ARENA_TEST_JUDGE_KEY_UNSET"), 5.0), Device::Cpu).err().unwrap();
    assert!(e.contains("ARENA_TEST_JUDGE_KEY_UNSET"), "{e}");
    assert!(s.seen.lock().unwrap().is_empty());
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    // 429 (with Retry-After 0), 500, then an answer.
    let s = serve(|_, n| match n {
        0 => Reply { headers: "Retry-After: 0\r\n".into(), ..status(429) },
        1 => status(500),
        _ => ok("0"),
    });
    let j = fast(Judge::open(&spec(&s.url, None, 5.0), Device::Cpu).unwrap());
    assert_eq!(ask(&j).unwrap(), "0");
    assert_eq!(s.seen.lock().unwrap().len(), 3);
}

#[test]
fn a_persistent_outage_is_an_error_after_the_retries() {
    let s = serve(|_, _| status(503));
    unsafe { std::env::set_var("ARENA_TEST_JUDGE_KEY_B", "sk-secret-b") };
    let j = fast(Judge::open(&spec(&s.url, Some("ARENA_TEST_JUDGE_KEY_B"), 5.0), Device::Cpu).unwrap());
    let e = ask(&j).unwrap_err();
    assert!(e.contains("503") && e.contains("4 attempts"), "{e}");
    assert!(!e.contains("sk-secret-b"), "the key leaked: {e}");
    assert_eq!(s.seen.lock().unwrap().len(), 4);
}

#[test]
fn a_client_error_is_not_retried_and_a_malformed_answer_is_an_error() {
    let s = serve(|_, _| status(401));
    let j = fast(Judge::open(&spec(&s.url, None, 5.0), Device::Cpu).unwrap());
    assert!(ask(&j).unwrap_err().contains("401"));
    assert_eq!(s.seen.lock().unwrap().len(), 1);

    let s = serve(|_, _| Reply { body: "{not json".into(), ..status(200) });
    let j = fast(Judge::open(&spec(&s.url, None, 5.0), Device::Cpu).unwrap());
    assert!(ask(&j).unwrap_err().contains("not JSON"));
}

#[test]
fn a_judge_that_never_answers_times_out_within_bounds() {
    let s = serve(|_, _| Reply { delay: Duration::from_secs(30), ..ok("1") });
    let mut sp = spec(&s.url, None, 0.3);
    sp.retries = 1;
    let j = fast(Judge::open(&sp, Device::Cpu).unwrap());
    let started = Instant::now();
    let e = ask(&j).unwrap_err();
    assert!(e.contains("timed out") && e.contains("2 attempts"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

// ---- the kinds, on the fixture model and a scripted judge ----

fn fixture(rel: &str) -> std::path::PathBuf {
    arena_e2e::repo_root().join("tests/fixtures/roleplay").join(rel)
}

fn records() -> Vec<Sample> {
    std::fs::read_to_string(fixture("conversations.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Sample { data: serde_json::from_str(l).unwrap(), files: vec![] })
        .collect()
}

fn request(samples: Vec<Sample>) -> EvalRequest {
    EvalRequest {
        submission: Submission {
            id: "uid 1".into(),
            path: fixture("models/llama"),
            metadata: json!({"chat_template": "vicuna"}),
        },
        samples,
        limits: Default::default(),
    }
}

fn run(
    kind: &str,
    params: Value,
    samples: Vec<Sample>,
) -> Result<arena_plugin_api::EvalOutput, arena_plugin_api::PluginError> {
    let mut task =
        RoleplayPlugin::create_task(TaskSpec { kind: kind.into(), params, device: Device::Cpu, seed: 11 })?;
    task.evaluate(&request(samples), &NoProgress)
}

fn remote(url: &str) -> Value {
    json!({"kind": "openai", "url": url, "model": "judge-model", "timeout": 5.0, "retries": 0})
}

/// Routes the coherence kind's two kinds of request: the simulator's and the judge's.
fn coherence_server(verdict: impl Fn(usize) -> Reply + Send + 'static) -> Server {
    let judged = Mutex::new(0usize);
    serve(move |body, _| {
        let prompt = body["messages"][0]["content"].as_str().unwrap_or_default().to_string();
        if prompt.contains("You are a human having a conversation") {
            ok("Tell me more, please.")
        } else {
            let mut n = judged.lock().unwrap();
            *n += 1;
            verdict(*n - 1)
        }
    })
}

fn coherence_params(url: &str, samples: usize) -> Value {
    json!({"judge": remote(url), "user_simulator": remote(url), "samples": samples, "max_new_tokens": 8,
           "simulator_max_new_tokens": 8})
}

#[test]
fn coherence_counts_zero_verdicts_and_excludes_judge_errors() {
    // 6 conversations: verdicts 1, 1, 0, 1, 1 and one malformed answer (an error, excluded).
    let s = coherence_server(|n| match n {
        2 => ok("0"),
        4 => ok("coherent"),
        _ => ok("1"),
    });
    let mut p = coherence_params(&s.url, 6);
    p["max_error_rate"] = json!(0.2);
    let out = run("coherence", p, records()).unwrap();
    assert_eq!(out.metrics["conversations"], 6.0);
    assert_eq!(out.metrics["errors"], 1.0);
    assert_eq!(out.metrics["incoherent"], 1.0);
    assert!((out.raw_score - 4.0 / 5.0).abs() < 1e-12, "{}", out.raw_score);
    // The judge saw the reference's prompt with the stringified conversation.
    let seen = s.seen.lock().unwrap();
    let judge_prompt = seen
        .iter()
        .map(|x| x.body["messages"][0]["content"].as_str().unwrap_or_default().to_string())
        .find(|c| c.contains("text coherence analyzer"))
        .unwrap();
    assert!(
        judge_prompt
            .contains("System Prompt: \n            You are an assistant playing the following character:")
    );
    assert!(judge_prompt.contains("Role: assistant\nContent: "));
    assert!(judge_prompt.contains("Role: user\nContent: Tell me more, please."));
}

#[test]
fn a_judge_outage_fails_the_run_instead_of_scoring_zero() {
    // Dippy's reference turned every failed call into the verdict 0: an outage made every model
    // "incoherent". Here it fails the run with the reason.
    let s = coherence_server(|_| status(503));
    let e = run("coherence", coherence_params(&s.url, 4), records()).unwrap_err();
    assert_eq!(e.kind, arena_plugin_api::ErrorKind::Internal, "{e:?}");
    assert!(e.message.contains("4 of 4") && e.message.contains("503"), "{}", e.message);
}

#[test]
fn the_judge_kind_counts_generated_wins_over_valid_verdicts() {
    let verdict = |w: [&str; 3]| {
        ok(&json!({"realism_win": w[0], "entertainment_win": w[1], "coherency_win": w[2],
                   "realism_win_reasoning": "r", "entertainment_win_reasoning": "e", "coherency_win_reasoning": "c"})
            .to_string())
    };
    let s = serve(move |_, n| match n {
        0 => verdict(["generated", "original", "tie"]),
        1 => verdict(["generated", "generated", "generated"]),
        2 => ok(r#"{"realism_win": "original"}"#),
        _ => verdict(["original", "original", "original"]),
    });
    let p = json!({"judge": remote(&s.url), "samples": 4, "max_new_tokens": 8, "temperature": 0.0});
    let out = run("judge", p, records()).unwrap();
    // Valid: 3 (one misses keys and is skipped); generated wins: 1 + 3 + 0 of 9.
    assert_eq!(out.metrics["valid"], 3.0);
    assert!((out.raw_score - 4.0 / 9.0).abs() < 1e-12, "{}", out.raw_score);
    let seen = s.seen.lock().unwrap();
    let b = &seen[0].body;
    assert_eq!(b["messages"][0]["role"], "system");
    assert!(b["messages"][0]["content"].as_str().unwrap().contains("=====\n"));
    let user = b["messages"][1]["content"].as_str().unwrap();
    let (o, g) = (user.find("\"original\" :").unwrap(), user.find("\"generated\" :").unwrap());
    assert!(o < g, "original first");
    assert!(user[o..g].contains("</s>"), "the original reply carries the EOS string: {user}");
    assert_eq!(b["response_format"]["type"], "json_schema");
}

#[test]
fn bad_input_fails_with_its_reason() {
    // No chat template in the commitment.
    let mut req = request(records());
    req.submission.metadata = json!({});
    let mut task = RoleplayPlugin::create_task(TaskSpec {
        kind: "roleplay_eval".into(),
        params: json!({}),
        device: Device::Cpu,
        seed: 1,
    })
    .unwrap();
    let e = task.evaluate(&req, &NoProgress).unwrap_err();
    assert!(e.message.contains("no chat template"), "{}", e.message);
    // An unknown template name.
    req.submission.metadata = json!({"chat_template": "llama9"});
    let e = task.evaluate(&req, &NoProgress).unwrap_err();
    assert!(e.message.contains("unknown chat template `llama9`"), "{}", e.message);
    // An empty dataset.
    let e = run("roleplay_eval", json!({}), vec![]).unwrap_err();
    assert!(e.message.contains("dataset is empty"), "{}", e.message);
    // Conversations with no assistant turn to score.
    let rows = vec![Sample {
        data: json!({"system_prompt": "s", "messages": [{"role": "user", "content": "hi"}]}),
        files: vec![],
    }];
    let e = run("roleplay_eval", json!({}), rows).unwrap_err();
    assert!(
        e.message.contains("no sample to score") && e.message.contains("without an assistant reply"),
        "{}",
        e.message
    );
    // Bad parameters.
    let e = run(
        "coherence",
        json!({"judge": {"kind": "openai", "model": "m"}, "user_simulator": {"kind": "local", "model": "x"}}),
        records(),
    )
    .unwrap_err();
    assert!(e.message.contains("judge.url"), "{}", e.message);
}
