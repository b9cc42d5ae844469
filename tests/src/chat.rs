//! A scripted OpenAI-compatible chat server on loopback, for the roleplay plugin's judge tests:
//! each request is answered by a route from its JSON body and its index, after an optional delay.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// One scripted reply: status, extra headers, body, delay before answering.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
    pub delay: Duration,
}

pub fn ok(content: &str) -> Reply {
    let body = json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string();
    Reply { status: 200, headers: String::new(), body, delay: Duration::ZERO }
}

pub fn status(code: u16) -> Reply {
    Reply {
        status: code,
        headers: String::new(),
        body: "{\"error\": \"scripted\"}".into(),
        delay: Duration::ZERO,
    }
}

/// What the server saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// A server answering each request with `route(body)`'s next scripted reply.
pub struct Server {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

pub fn serve(route: impl Fn(&Value, usize) -> Reply + Send + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
            let (mut len, mut auth) = (0usize, None);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "authorization" => auth = Some(v.trim().to_string()),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).ok();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let n = {
                let mut l = log.lock().unwrap();
                l.push(Seen { path, authorization: auth, body: body.clone() });
                l.len() - 1
            };
            let r = route(&body, n);
            std::thread::sleep(r.delay);
            let head = format!(
                "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
                r.status,
                r.body.len(),
                r.headers
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(r.body.as_bytes());
        }
    });
    Server { url, seen }
}
