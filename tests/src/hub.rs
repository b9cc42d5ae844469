//! A loopback Hugging Face hub for the tests: a `TcpListener` on 127.0.0.1 that answers the
//! requests huggingface_hub and arena make (`GET /api/models/REPO/revision/REV[?blobs=true]`,
//! `GET /REPO/resolve/REV/FILE` with or without `Range`), one request per connection, with the
//! faults a real hub has (missing and private repositories, 5xx, 429, stalls) and some it should
//! not (sizes and hashes that lie). Every request is logged, so a test can say which were made.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

/// How a repository misbehaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Every request about it is answered with this status (401, 404, 503, …).
    Status(u16),
    /// Its first `times` requests are answered with `status` (and `Retry-After` seconds).
    First { times: usize, status: u16, retry_after: Option<u64> },
    /// Every answer waits this long before its first byte.
    Slow(Duration),
    /// Downloads (requests without `Range: bytes=0-0`) send their headers and half the body,
    /// then stall this long.
    Stall(Duration),
    /// Its description (and `x-linked-size`) declares half of each file's size; the files are
    /// served whole.
    LyingSize,
    /// Downloads carry more bytes than declared, without a `Content-Length`.
    LyingBody,
    /// Its LFS files are declared (and tagged) with another sha256 than their content's.
    BadSha,
}

/// A repository the hub serves at one commit.
#[derive(Clone, Debug)]
pub struct HubRepo {
    /// `OWNER/NAME`; `datasets/OWNER/NAME` for a dataset (served under `/datasets/`).
    pub id: String,
    pub commit: String,
    /// The names of the commit besides itself (branches, tags).
    pub revisions: Vec<String>,
    pub files: Vec<(String, Vec<u8>)>,
    /// Its files are LFS objects: declared with their sha256, and `resolve` redirects to a CDN
    /// path (`/cdn/…`) with `x-linked-etag` and `x-linked-size`, as huggingface.co does.
    pub lfs: bool,
    /// The token it requires (`Authorization: Bearer TOKEN`); 401 without it.
    pub token: Option<String>,
    pub fault: Fault,
}

impl HubRepo {
    /// `id` at a commit derived from the id, on `main`, with plain (not LFS) files.
    pub fn new(id: &str, files: &[(&str, &[u8])]) -> HubRepo {
        HubRepo {
            id: id.into(),
            commit: hex(&Sha256::digest(id.as_bytes()))[..40].to_string(),
            revisions: vec!["main".into()],
            files: files.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect(),
            lfs: false,
            token: None,
            fault: Fault::None,
        }
    }

    pub fn lfs(self) -> HubRepo {
        HubRepo { lfs: true, ..self }
    }

    pub fn fault(self, fault: Fault) -> HubRepo {
        HubRepo { fault, ..self }
    }

    pub fn token(self, token: &str) -> HubRepo {
        HubRepo { token: Some(token.into()), ..self }
    }

    /// The etag a file is served with: its sha256 for LFS files, else a git-like 40-digit id.
    pub fn etag(&self, file: &str) -> String {
        let bytes = &self.files.iter().find(|(n, _)| n == file).expect("a file of the repository").1;
        let sha = self.sha256(bytes);
        if self.lfs { sha } else { sha[..40].to_string() }
    }

    fn sha256(&self, bytes: &[u8]) -> String {
        if self.fault == Fault::BadSha {
            hex(&Sha256::digest(b"not the content"))
        } else {
            hex(&Sha256::digest(bytes))
        }
    }
}

/// One request the hub received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The target, query included.
    pub target: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

impl Request {
    /// A request for a file's bytes (not its description, not its first byte alone).
    pub fn is_download(&self) -> bool {
        !self.target.starts_with("/api/") && self.range.as_deref() != Some("bytes=0-0")
    }
}

struct State {
    repos: Vec<HubRepo>,
    endpoint: String,
    log: Mutex<Vec<Request>>,
    /// Requests seen per repository (for [`Fault::First`]).
    seen: Mutex<Vec<usize>>,
}

/// The hub: serves until dropped.
pub struct TestHub {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
}

impl TestHub {
    pub fn start(repos: Vec<HubRepo>) -> TestHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            seen: Mutex::new(vec![0; repos.len()]),
            repos,
            endpoint: format!("http://{addr}"),
            log: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || handle(&s, conn));
            }
        });
        TestHub { addr, state, stop }
    }

    /// `http://127.0.0.1:PORT`, what `HF_ENDPOINT` is set to.
    pub fn endpoint(&self) -> String {
        self.state.endpoint.clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.log.lock().unwrap().clone()
    }

    /// The requests about repository `id` (its description, its files, its CDN objects).
    pub fn requests_for(&self, id: &str) -> Vec<Request> {
        let i = self.state.repos.iter().position(|r| r.id == id);
        self.requests().into_iter().filter(|r| target_repo(&self.state, &r.target) == i).collect()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send no `Content-Length` (the body ends when the connection closes).
    no_length: bool,
    /// Wait before answering.
    delay: Option<Duration>,
    /// Send half the body, then wait this long and close.
    stall: Option<Duration>,
}

impl Answer {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Answer {
        Answer { status, headers: Vec::new(), body: body.into(), no_length: false, delay: None, stall: None }
    }

    fn header(mut self, k: &str, v: impl Into<String>) -> Answer {
        self.headers.push((k.into(), v.into()));
        self
    }
}

fn handle(state: &State, conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (mut range, mut authorization) = (None, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let req = Request { target, range, authorization };
    state.log.lock().unwrap().push(req.clone());
    let answer = route(state, &req);
    let _ = write_answer(conn, answer);
}

fn write_answer(mut conn: TcpStream, a: Answer) -> std::io::Result<()> {
    if let Some(d) = a.delay {
        std::thread::sleep(d);
    }
    let mut head = format!("HTTP/1.1 {} {}\r\nconnection: close\r\n", a.status, reason(a.status));
    if !a.no_length {
        head.push_str(&format!("content-length: {}\r\n", a.body.len()));
    }
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    match a.stall {
        Some(d) => {
            conn.write_all(&a.body[..a.body.len() / 2])?;
            conn.flush()?;
            std::thread::sleep(d);
        }
        None => conn.write_all(&a.body)?,
    }
    conn.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        _ => "Status",
    }
}

/// The repository a target is about, by index.
fn target_repo(state: &State, target: &str) -> Option<usize> {
    let path = target.split('?').next().unwrap_or("");
    if let Some(rest) = path.strip_prefix("/cdn/") {
        return rest.split('/').next()?.parse().ok();
    }
    let id = match path.strip_prefix("/api/models/") {
        Some(rest) => rest.rsplit_once("/revision/")?.0.to_string(),
        None => path.strip_prefix('/')?.split_once("/resolve/")?.0.to_string(),
    };
    state
        .repos
        .iter()
        .position(|r| r.id == id && !(path.starts_with("/api/") && r.id.starts_with("datasets/")))
}

fn route(state: &State, req: &Request) -> Answer {
    let not_found =
        || Answer::new(404, r#"{"error":"Repository not found"}"#).header("x-error-code", "RepoNotFound");
    let Some(i) = target_repo(state, &req.target) else { return not_found() };
    let repo = &state.repos[i];
    let seen = {
        let mut seen = state.seen.lock().unwrap();
        seen[i] += 1;
        seen[i]
    };
    let download = req.is_download();
    match &repo.fault {
        Fault::Status(s) => return Answer::new(*s, "{}"),
        Fault::First { times, status, retry_after } if seen <= *times => {
            let a = Answer::new(*status, "{}");
            return match retry_after {
                Some(s) => a.header("retry-after", s.to_string()),
                None => a,
            };
        }
        _ => {}
    }
    if let Some(t) = &repo.token
        && req.authorization != Some(format!("Bearer {t}"))
    {
        return Answer::new(401, r#"{"error":"Invalid credentials"}"#);
    }
    let mut answer = answer(state, repo, i, req);
    match repo.fault {
        Fault::Slow(d) => answer.delay = Some(d),
        Fault::Stall(d) if download && answer.body.len() > 1 => answer.stall = Some(d),
        _ => {}
    }
    answer
}

fn answer(state: &State, repo: &HubRepo, index: usize, req: &Request) -> Answer {
    let path = req.target.split('?').next().unwrap_or("");
    let names = |rev: &str| rev == repo.commit || repo.revisions.iter().any(|r| r == rev);
    let declared = |bytes: &[u8]| if repo.fault == Fault::LyingSize { bytes.len() / 2 } else { bytes.len() };
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let rev = decode(rest.rsplit_once("/revision/").unwrap().1);
        if !names(&rev) {
            return Answer::new(404, r#"{"error":"Invalid rev id"}"#)
                .header("x-error-code", "RevisionNotFound");
        }
        let siblings: Vec<_> = repo
            .files
            .iter()
            .map(|(name, bytes)| {
                let size = declared(bytes);
                if repo.lfs {
                    let lfs = json!({"sha256": repo.sha256(bytes), "size": size, "pointerSize": 134});
                    json!({"rfilename": name, "size": size, "lfs": lfs})
                } else {
                    json!({"rfilename": name, "size": size})
                }
            })
            .collect();
        let body = json!({"id": repo.id, "sha": repo.commit, "siblings": siblings});
        return Answer::new(200, body.to_string()).header("content-type", "application/json");
    }
    let (rev, file) = match path.strip_prefix("/cdn/") {
        Some(rest) => (repo.commit.clone(), decode(rest.split_once('/').unwrap().1)),
        None => {
            let rest = path.split_once("/resolve/").unwrap().1;
            let (rev, file) = rest.split_once('/').unwrap_or((rest, ""));
            (decode(rev), decode(file))
        }
    };
    let Some((_, bytes)) = repo.files.iter().find(|(n, _)| *n == file) else {
        return Answer::new(404, r#"{"error":"Entry not found"}"#).header("x-error-code", "EntryNotFound");
    };
    if !names(&rev) {
        return Answer::new(404, r#"{"error":"Invalid rev id"}"#).header("x-error-code", "RevisionNotFound");
    }
    let etag = format!("\"{}\"", repo.etag(&file));
    if repo.lfs && !path.starts_with("/cdn/") {
        let location = format!("{}/cdn/{index}/{}", state.endpoint, encode_path(&file));
        return Answer::new(302, "")
            .header("location", location)
            .header("x-repo-commit", repo.commit.clone())
            .header("x-linked-etag", etag.clone())
            .header("x-linked-size", declared(bytes).to_string())
            .header("etag", "\"the-pointer-file\"");
    }
    let len = bytes.len();
    let mut a = match req.range.as_deref().and_then(parse_range) {
        None => Answer::new(200, bytes.clone()),
        Some((start, _)) if start >= len && len > 0 => {
            return Answer::new(416, "").header("content-range", format!("bytes */{len}"));
        }
        Some(_) if len == 0 => Answer::new(200, Vec::new()),
        Some((start, end)) => {
            let end = end.unwrap_or(len - 1).min(len - 1);
            Answer::new(206, bytes[start..=end].to_vec())
                .header("content-range", format!("bytes {start}-{end}/{len}"))
        }
    };
    if repo.fault == Fault::LyingBody && req.is_download() {
        a.body.extend_from_slice(b"and then some more bytes than declared");
        a.no_length = true;
    }
    a.header("etag", etag).header("x-repo-commit", repo.commit.clone()).header("accept-ranges", "bytes")
}

/// `bytes=START-[END]`.
fn parse_range(v: &str) -> Option<(usize, Option<usize>)> {
    let (start, end) = v.strip_prefix("bytes=")?.split_once('-')?;
    Some((start.parse().ok()?, if end.is_empty() { None } else { Some(end.parse().ok()?) }))
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
