//! Judges and user simulators: a local model through `arena-llm` (greedy at temperature 0, so a
//! CPU judge is deterministic; seeded sampling otherwise), or an OpenAI-compatible chat endpoint
//! (`POST {url}/chat/completions`, the key read from the environment variable the parameters
//! name, timeouts, retries on 429/5xx/transport errors with backoff and `Retry-After`).
//!
//! A judge's failure is an `Err` with a reason (the reference's "exception"); its callers count
//! them against `max_error_rate`. Keys never appear in a message, a log or an output.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ModelOptions;
use crate::data::Turn;
use crate::lm::{Chat, Lm};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JudgeKind {
    /// A model directory on this machine, run with the plugin's LLM library.
    Local,
    /// An OpenAI-compatible chat-completions endpoint (OpenAI, OpenRouter, Azure's v1 API, vLLM,
    /// llama.cpp's server).
    Openai,
}

/// Where a judge (or a user simulator) answers from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    pub kind: JudgeKind,
    /// `local`: the model directory (relative paths from the working directory); `openai`: the
    /// model name the endpoint serves (the reference: `openai/gpt-4o-2024-11-20` on OpenRouter).
    pub model: String,
    /// `openai`: the API base, `…/v1` (the reference: `https://openrouter.ai/api/v1`).
    #[serde(default)]
    pub url: Option<String>,
    /// `openai`: the environment variable holding the API key (sent as a bearer token).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// `local`: one of Dippy's template names; default: the model's own chat template.
    #[serde(default)]
    pub chat_template: Option<String>,
    /// `openai`: seconds for one request, connection to last byte.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// `openai`: further attempts after a 429, a 5xx or a transport error.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Longest answer, in tokens.
    #[serde(default = "default_answer_tokens")]
    pub max_new_tokens: usize,
}

fn default_timeout() -> f64 {
    60.0
}
fn default_retries() -> u32 {
    3
}
fn default_answer_tokens() -> usize {
    1024
}

impl JudgeSpec {
    pub fn check(&self, field: &str) -> Result<(), String> {
        match self.kind {
            JudgeKind::Openai => {
                let url = self.url.as_deref().unwrap_or("");
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("{field}.url: an `openai` judge needs an http(s) URL"));
                }
                if self.api_key_env.as_deref().is_some_and(str::is_empty) {
                    return Err(format!("{field}.api_key_env: empty"));
                }
            }
            JudgeKind::Local => {
                if self.url.is_some() || self.api_key_env.is_some() {
                    return Err(format!("{field}: url and api_key_env are for `openai` judges"));
                }
            }
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            return Err(format!("{field}.timeout: must be a positive number of seconds"));
        }
        if self.max_new_tokens == 0 {
            return Err(format!("{field}.max_new_tokens: must be at least 1"));
        }
        Ok(())
    }
}

/// A judge, ready.
pub enum Judge {
    Local(Box<Lm>),
    Remote(Remote),
}

pub struct Remote {
    agent: ureq::Agent,
    endpoint: String,
    model: String,
    key: Option<String>,
    retries: u32,
    pub backoff: Duration,
}

impl Judge {
    /// Opens the judge; an `Err` is the environment's fault (no model, no key), not the miner's.
    pub fn open(spec: &JudgeSpec, device: arena_plugin_api::Device) -> Result<Judge, String> {
        match spec.kind {
            JudgeKind::Local => {
                let dir = PathBuf::from(&spec.model);
                let chat = match &spec.chat_template {
                    Some(n) => Chat::Dippy(n.clone()),
                    None => Chat::Own,
                };
                let lm = Lm::load(&dir, chat, &ModelOptions::default(), device)
                    .map_err(|e| format!("local judge {}: {}", dir.display(), e.message))?;
                Ok(Judge::Local(Box::new(lm)))
            }
            JudgeKind::Openai => {
                let key = match &spec.api_key_env {
                    Some(var) => Some(
                        std::env::var(var)
                            .ok()
                            .filter(|k| !k.is_empty())
                            .ok_or_else(|| format!("the judge's key variable {var} is not set"))?,
                    ),
                    None => None,
                };
                let t = Duration::from_secs_f64(spec.timeout);
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(t))
                    .user_agent(concat!("arena-roleplay/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .new_agent();
                let base = spec.url.as_deref().unwrap_or_default().trim_end_matches('/');
                Ok(Judge::Remote(Remote {
                    agent,
                    endpoint: format!("{base}/chat/completions"),
                    model: spec.model.clone(),
                    key,
                    retries: spec.retries,
                    backoff: Duration::from_millis(500),
                }))
            }
        }
    }

    /// The judge's answer to `messages` at `temperature`; `schema` asks an endpoint for
    /// structured output (`response_format` json_schema, as the reference's Azure path parses
    /// into its pydantic model).
    pub fn ask(
        &self,
        messages: &[Turn],
        temperature: f64,
        max_new_tokens: usize,
        schema: Option<&Value>,
        seed: u64,
    ) -> Result<String, String> {
        match self {
            Judge::Local(lm) => {
                let prompt = lm.prompt(messages).map_err(|e| format!("local judge: {e}"))?;
                let ids = lm.encode(&prompt, lm.prompt_special_tokens(), None).map_err(|e| e.message)?;
                let room = lm.max_positions().saturating_sub(ids.len());
                if room == 0 {
                    return Err(format!("local judge: the prompt ({} tokens) fills its window", ids.len()));
                }
                let temp = (temperature > 0.0).then_some(temperature as f32);
                let (_, text) =
                    lm.generate(&ids, max_new_tokens.min(room), temp, &[], seed).map_err(|e| e.message)?;
                Ok(text)
            }
            Judge::Remote(r) => r.ask(messages, temperature, max_new_tokens, schema),
        }
    }
}

impl Remote {
    fn ask(
        &self,
        messages: &[Turn],
        temperature: f64,
        max_new_tokens: usize,
        schema: Option<&Value>,
    ) -> Result<String, String> {
        let mut body = json!({
            "model": self.model,
            "messages": messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
            "temperature": temperature,
            "max_tokens": max_new_tokens,
        });
        if let Some(s) = schema {
            body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "JudgeScore", "strict": true, "schema": s}});
        }
        let mut attempt = 0u32;
        loop {
            let (err, retry_after) = match self.once(&body) {
                Ok(text) => return Ok(text),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Retry(e, after)) => (e, after),
            };
            if attempt >= self.retries {
                return Err(format!("{err} ({} attempts)", attempt + 1));
            }
            let backoff = self.backoff.saturating_mul(1 << attempt.min(10));
            std::thread::sleep(retry_after.map_or(backoff, |d| d.min(Duration::from_secs(60))));
            attempt += 1;
        }
    }

    fn once(&self, body: &Value) -> Result<String, Failure> {
        let mut req = self.agent.post(&self.endpoint).header("Content-Type", "application/json");
        if let Some(k) = &self.key {
            req = req.header("Authorization", format!("Bearer {k}"));
        }
        // The endpoint URL and status only: never the request (it carries the key).
        let mut resp = match req.send(body.to_string()) {
            Ok(r) => r,
            Err(ureq::Error::Timeout(t)) => {
                return Err(Failure::Retry(format!("judge: timed out ({t})"), None));
            }
            Err(e) => return Err(Failure::Retry(format!("judge: {}", describe(&e)), None)),
        };
        let status = resp.status().as_u16();
        let text = match resp.body_mut().with_config().limit(8 << 20).read_to_string() {
            Ok(t) => t,
            Err(ureq::Error::Timeout(t)) => {
                return Err(Failure::Retry(format!("judge: timed out ({t})"), None));
            }
            Err(e) => {
                return Err(Failure::Retry(format!("judge: reading the answer: {}", describe(&e)), None));
            }
        };
        match status {
            200..=299 => {}
            429 => {
                let after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                return Err(Failure::Retry(format!("judge: HTTP 429 from {}", self.endpoint), after));
            }
            500..=599 => {
                return Err(Failure::Retry(format!("judge: HTTP {status} from {}", self.endpoint), None));
            }
            _ => {
                let snippet: String = text.chars().take(200).collect();
                return Err(Failure::Final(format!(
                    "judge: HTTP {status} from {}: {snippet}",
                    self.endpoint
                )));
            }
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Failure::Final(format!("judge: the answer is not JSON: {e}")))?;
        let msg = &v["choices"][0]["message"];
        match msg.get("content").and_then(Value::as_str) {
            Some(c) => Ok(c.to_string()),
            None => {
                let why =
                    msg.get("refusal").and_then(Value::as_str).unwrap_or("no choices[0].message.content");
                Err(Failure::Final(format!("judge: {why}")))
            }
        }
    }
}

enum Failure {
    Retry(String, Option<Duration>),
    Final(String),
}

/// A transport error without the request (ureq's messages name the URL, never headers).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("connection: {io}"),
        other => other.to_string(),
    }
}

/// Python's `int(str)` on a judge's verdict: surrounding whitespace, a sign, ASCII digits with
/// single underscores between them.
pub fn py_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if !clean.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: i64 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_parse_as_python_int() {
        assert_eq!(py_int(" 1\n"), Some(1));
        assert_eq!(py_int("0"), Some(0));
        assert_eq!(py_int("+1_0"), Some(10));
        assert_eq!(py_int("1."), None);
        assert_eq!(py_int("1 - coherent"), None);
        assert_eq!(py_int(""), None);
    }

    #[test]
    fn specs_are_checked() {
        let spec = |kind, url: Option<&str>| JudgeSpec {
            kind,
            model: "m".into(),
            url: url.map(str::to_string),
            api_key_env: None,
            chat_template: None,
            timeout: 60.0,
            retries: 3,
            max_new_tokens: 16,
        };
        assert!(spec(JudgeKind::Openai, None).check("judge").unwrap_err().contains("judge.url"));
        assert!(spec(JudgeKind::Openai, Some("http://127.0.0.1:1/v1")).check("judge").is_ok());
        assert!(spec(JudgeKind::Local, Some("http://x")).check("judge").is_err());
    }
}
