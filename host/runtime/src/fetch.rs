//! Downloads from a Hugging Face hub (`HF_ENDPOINT`, else huggingface.co) into the hub cache, in
//! huggingface_hub's layout (`models--OWNER--NAME/{blobs,snapshots,refs}`, hf-hub's `Cache`
//! names the paths), so that [`cached_snapshot`] and Python's huggingface_hub read what is
//! fetched here.
//!
//! hf-hub's own client has no timeouts (a stalled hub hangs it), no retries and no size checks.
//! This one is ureq with a connect and a per-read timeout; it retries what may pass (connection
//! errors, timeouts, 429 after its `Retry-After`, 5xx) with exponential backoff; it checks a
//! model's declared size against `max_bytes` before its first byte is written and never writes
//! more bytes than a file declares; and it checks LFS files against their sha256. A model's files
//! are linked into a temporary snapshot folder that is renamed into place last, so an interrupted
//! download never leaves a snapshot that looks complete. [`evict`] keeps the cache's models under
//! a disk cap, least recently used first.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hf_hub::{Repo, RepoType};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use ureq::http::Response;

use crate::datasets::{cache_dir_from, cached_snapshot};

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The largest repository description read (the file list of a repository).
const INFO_LIMIT: u64 = 32 << 20;
/// The lock file in a repository's cache folder, held while it is fetched or evicted.
const LOCK: &str = ".arena-fetch.lock";
/// Where a model's snapshot is assembled (`.arena-tmp/COMMIT`, as deep as `snapshots/COMMIT`).
const TMP: &str = ".arena-tmp";

/// Whose fault a failed fetch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// The submission's: a repository or revision that does not exist, a private or gated one,
    /// one over `max_bytes`, files that fail their checks. Trying again will not help.
    Miner,
    /// The hub's or this machine's: timeouts, connection errors, 429 and 5xx once the attempts
    /// are spent, a full disk, a disk cap that the models in use fill. It may pass.
    Transient,
    /// Not in the hub cache, and `HF_HUB_OFFLINE` forbids downloading it.
    Offline,
}

/// A failed fetch: its kind, and a message that names the repository, the revision and the
/// HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub message: String,
    /// Worth another attempt (after `retry_after` when the hub gave one).
    retry: bool,
    retry_after: Option<Duration>,
}

impl FetchError {
    fn new(kind: FetchErrorKind, message: String) -> Self {
        FetchError { kind, message, retry: false, retry_after: None }
    }
    fn miner(message: String) -> Self {
        Self::new(FetchErrorKind::Miner, message)
    }
    fn transient(message: String) -> Self {
        Self::new(FetchErrorKind::Transient, message)
    }
    fn retryable(message: String, retry_after: Option<Duration>) -> Self {
        FetchError { retry: true, retry_after, ..Self::transient(message) }
    }
}

/// The models that must not be evicted, as `(repo, revision or commit)`.
pub type InUse = Arc<dyn Fn() -> BTreeSet<(String, String)> + Send + Sync>;

/// A hub client and the cache it fills.
#[derive(Clone)]
pub struct Hub {
    /// `HF_ENDPOINT`, without a trailing slash.
    pub endpoint: String,
    /// `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, or huggingface_hub's token file.
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: the cache only.
    pub offline: bool,
    /// The hub cache ([`crate::datasets::hub_cache_dir`]).
    pub cache: PathBuf,
    pub connect_timeout: Duration,
    /// The longest one read may wait (`ARENA_HUB_TIMEOUT` seconds), headers or body: a hub that
    /// stalls fails the request instead of hanging it.
    pub read_timeout: Duration,
    /// Attempts of one request before a failure that may pass is given up.
    pub attempts: u32,
    /// The wait before the second attempt, doubled at each further one up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// A cap on the bytes of the cache's models: [`evict`] makes room before a download.
    pub max_bytes: Option<u64>,
    /// The models never evicted (those of running jobs); asked before each eviction.
    pub in_use: InUse,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("offline", &self.offline)
            .field("cache", &self.cache)
            .field("read_timeout", &self.read_timeout)
            .field("attempts", &self.attempts)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// A repository at one commit, as the hub describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The commit the revision names.
    pub sha: String,
    pub files: Vec<RepoFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// The path in the repository.
    pub name: String,
    /// The declared size (the LFS object's for LFS files).
    pub size: Option<u64>,
    /// An LFS file's sha256, hex.
    pub sha256: Option<String>,
}

/// What [`evict`] did: the snapshots removed, `(repo, commit)`, and the bytes the cache's models
/// hold after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    pub evicted: Vec<(String, String)>,
    pub used: u64,
}

/// Headers of a file's `resolve` answer.
struct Meta {
    etag: String,
    commit: Option<String>,
    size: Option<u64>,
}

/// A file of a snapshot to download: where from, into which blob, how many bytes.
struct Planned<'a> {
    file: &'a RepoFile,
    url: String,
    what: String,
    blob: PathBuf,
    etag: String,
    size: u64,
}

struct Http {
    /// Follows no redirect: the hub's own headers (`x-linked-etag`) are on its redirect.
    direct: ureq::Agent,
    follow: ureq::Agent,
}

impl Hub {
    /// The client the environment describes (see [`Hub::from_env_vars`]).
    pub fn from_env() -> Hub {
        Self::from_env_vars(|k| std::env::var(k).ok())
    }

    /// The client `get` (an environment) describes: `HF_ENDPOINT`, `HF_TOKEN` (or
    /// `HUGGING_FACE_HUB_TOKEN`, or the file `HF_TOKEN_PATH`, `$HF_HOME/token`),
    /// `HF_HUB_OFFLINE`, the cache from `HF_HUB_CACHE` / `HF_HOME` / `HOME`, and
    /// `ARENA_HUB_TIMEOUT` (seconds per read, default 60). No disk cap.
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Hub {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let token = var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")).or_else(|| {
            let path = var("HF_TOKEN_PATH").map(PathBuf::from).unwrap_or_else(|| {
                let home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
                    PathBuf::from(var("HOME").unwrap_or_else(|| ".".into())).join(".cache/huggingface")
                });
                home.join("token")
            });
            fs::read_to_string(path).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
        });
        let read_timeout = var("ARENA_HUB_TIMEOUT")
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(Duration::from_secs(60));
        Hub {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| v != "0"),
            cache: cache_dir_from(|k| var(k).map(Into::into)),
            connect_timeout: Duration::from_secs(30),
            read_timeout,
            attempts: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_bytes: None,
            in_use: Arc::new(BTreeSet::new),
        }
    }

    /// The repository `repo` at `revision`: its commit and files with their sizes.
    pub fn model_info(&self, repo: &str, revision: &str) -> Result<Info, FetchError> {
        check_repo_id(repo)?;
        self.info(&self.http(), repo, revision)
    }

    /// `repo` at `revision` as a snapshot folder of the hub cache: the cached one when there is
    /// one (no request made), else every file of the revision downloaded, once the sizes the hub
    /// declares fit `max_bytes` (nothing is downloaded otherwise) and, under a disk cap, once
    /// [`evict`] made room. Each snapshot returned is marked used now, for the eviction order.
    pub fn fetch_model(
        &self,
        repo: &str,
        revision: &str,
        max_bytes: Option<u64>,
    ) -> Result<PathBuf, FetchError> {
        if let Some(dir) = cached_snapshot(&self.cache, "models", repo, revision) {
            touch(&dir);
            return Ok(dir);
        }
        if self.offline {
            return Err(FetchError::new(
                FetchErrorKind::Offline,
                format!(
                    "{repo}@{revision} is not in the hub cache {} and HF_HUB_OFFLINE is set",
                    self.cache.display()
                ),
            ));
        }
        check_repo_id(repo)?;
        let what = format!("hub model {repo}@{revision}");
        let http = self.http();
        let info = self.info(&http, repo, revision)?;
        if is_commit(revision) && !info.sha.eq_ignore_ascii_case(revision) {
            return Err(FetchError::transient(format!("{what}: the hub answered commit {}", info.sha)));
        }
        let total = declared_total(&info);
        if let Some(limit) = max_bytes {
            let total = total.map_err(|f| {
                FetchError::miner(format!(
                    "{what}: the hub declares no size for {f}, so max_bytes {limit} cannot be checked"
                ))
            })?;
            if total > limit {
                return Err(FetchError::miner(format!("{what}: {total} bytes exceeds max_bytes {limit}")));
            }
        }
        let cache = hf_hub::Cache::new(self.cache.clone()).repo(Repo::with_revision(
            repo.into(),
            RepoType::Model,
            revision.into(),
        ));
        let snapshot = cache.pointer_path(&info.sha);
        let folder = repo_folder(&snapshot);
        let disk = |e: io::Error| FetchError::transient(format!("{what}: {}: {e}", folder.display()));
        fs::create_dir_all(&folder).map_err(disk)?;
        let _lock = lock(&folder, true).map_err(disk)?;
        if !snapshot.is_dir() {
            self.download_snapshot(&http, &what, repo, &info, &cache, &folder)?;
        }
        if revision != info.sha {
            cache.create_ref(&info.sha).map_err(disk)?;
        }
        touch(&snapshot);
        Ok(snapshot)
    }

    /// One file of a dataset repository (`path` in `repo` at `revision`), downloaded into the hub
    /// cache: its path in the revision's snapshot.
    pub fn fetch_dataset_file(&self, repo: &str, revision: &str, path: &str) -> Result<PathBuf, FetchError> {
        let what = format!("hf://datasets/{repo}@{revision}/{path}");
        if self.offline {
            return Err(FetchError::new(
                FetchErrorKind::Offline,
                format!("{what} is not in the hub cache {} and HF_HUB_OFFLINE is set", self.cache.display()),
            ));
        }
        check_repo_id(repo)?;
        check_path(&what, path)?;
        let http = self.http();
        let url = self.resolve_url("datasets/", repo, revision, path);
        let meta = self.meta(&http, &url, &what)?;
        let commit = meta.commit.filter(|c| is_commit(c)).ok_or_else(|| {
            FetchError::transient(format!("{what}: the hub names no commit (x-repo-commit)"))
        })?;
        let size =
            meta.size.ok_or_else(|| FetchError::transient(format!("{what}: the hub declares no size")))?;
        let cache = hf_hub::Cache::new(self.cache.clone()).repo(Repo::with_revision(
            repo.into(),
            RepoType::Dataset,
            revision.into(),
        ));
        let pointer = cache.pointer_path(&commit).join(path);
        let folder = repo_folder(&cache.pointer_path(&commit));
        let disk = |e: io::Error| FetchError::transient(format!("{what}: {e}"));
        fs::create_dir_all(&folder).map_err(disk)?;
        let _lock = lock(&folder, true).map_err(disk)?;
        let url = self.resolve_url("datasets/", repo, &commit, path);
        self.download_blob(&http, &what, &url, &cache.blob_path(&meta.etag), size, None)?;
        if fs::symlink_metadata(&pointer).is_err() {
            fs::create_dir_all(pointer.parent().expect("a file in a snapshot")).map_err(disk)?;
            std::os::unix::fs::symlink(blob_link(path, &meta.etag), &pointer).map_err(disk)?;
        }
        if revision != commit {
            cache.create_ref(&commit).map_err(disk)?;
        }
        Ok(pointer)
    }

    fn http(&self) -> Http {
        let agent = |redirects: u32| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(redirects)
                .timeout_resolve(Some(self.connect_timeout))
                .timeout_connect(Some(self.connect_timeout))
                .timeout_per_read(Some(self.read_timeout))
                .timeout_per_write(Some(self.read_timeout))
                .user_agent(concat!("arena/", env!("CARGO_PKG_VERSION")))
                .build()
                .new_agent()
        };
        Http { direct: agent(0), follow: agent(10) }
    }

    /// `f` until it succeeds, fails for good, or `attempts` are spent.
    fn retrying<T>(&self, mut f: impl FnMut() -> Result<T, FetchError>) -> Result<T, FetchError> {
        let mut attempt = 1;
        loop {
            match f() {
                Err(e) if e.retry && attempt < self.attempts => {
                    let backoff =
                        self.backoff.saturating_mul(1 << (attempt - 1).min(20)).min(self.max_backoff);
                    std::thread::sleep(e.retry_after.map_or(backoff, |d| d.min(MAX_RETRY_AFTER)));
                    attempt += 1;
                }
                Err(e) if e.retry => {
                    let message = format!("{} ({attempt} attempts)", e.message);
                    return Err(FetchError::transient(message));
                }
                r => return r,
            }
        }
    }

    fn get(
        &self,
        agent: &ureq::Agent,
        url: &str,
        range: Option<&str>,
        what: &str,
    ) -> Result<Response<ureq::Body>, FetchError> {
        let mut req = agent.get(url).header("Accept-Encoding", "identity");
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.call().map_err(|e| transport(what, &e))?;
        let status = resp.status().as_u16();
        let reason = match status {
            200..=399 => return Ok(resp),
            401 | 403 => ": private or gated",
            404 => ": not found",
            _ => "",
        };
        let message = format!("{what}: HTTP {status}{reason}");
        Err(match status {
            429 => FetchError::retryable(message, retry_after(&resp)),
            408 | 500..=599 => FetchError::retryable(message, None),
            _ => FetchError::miner(message),
        })
    }

    fn info(&self, http: &Http, repo: &str, revision: &str) -> Result<Info, FetchError> {
        #[derive(Deserialize)]
        struct Raw {
            sha: String,
            #[serde(default)]
            siblings: Vec<Sibling>,
        }
        #[derive(Deserialize)]
        struct Sibling {
            rfilename: String,
            size: Option<u64>,
            lfs: Option<Lfs>,
        }
        #[derive(Deserialize)]
        struct Lfs {
            sha256: String,
            size: Option<u64>,
        }
        let what = format!("hub model {repo}@{revision}");
        let url =
            format!("{}/api/models/{repo}/revision/{}?blobs=true", self.endpoint, encode(revision, false));
        let text = self.retrying(|| {
            let mut resp = self.get(&http.follow, &url, None, &what)?;
            resp.body_mut().with_config().limit(INFO_LIMIT).read_to_string().map_err(|e| transport(&what, &e))
        })?;
        let raw: Raw = serde_json::from_str(&text).map_err(|e| {
            FetchError::transient(format!("{what}: the hub's answer is not a repository's description: {e}"))
        })?;
        if !is_commit(&raw.sha) {
            return Err(FetchError::transient(format!("{what}: the hub names commit `{}`", raw.sha)));
        }
        let files = raw
            .siblings
            .into_iter()
            .map(|s| {
                check_path(&what, &s.rfilename)?;
                let size = s.lfs.as_ref().and_then(|l| l.size).or(s.size);
                Ok(RepoFile { name: s.rfilename, size, sha256: s.lfs.map(|l| l.sha256.to_ascii_lowercase()) })
            })
            .collect::<Result<_, FetchError>>()?;
        Ok(Info { sha: raw.sha.to_ascii_lowercase(), files })
    }

    /// `{endpoint}/{kind}{repo}/resolve/{revision}/{path}`, percent-encoded.
    fn resolve_url(&self, kind: &str, repo: &str, revision: &str, path: &str) -> String {
        format!("{}/{kind}{repo}/resolve/{}/{}", self.endpoint, encode(revision, false), encode(path, true))
    }

    /// A file's etag, commit and size: its first byte asked for without following redirects
    /// (but those within the hub, a renamed repository's).
    fn meta(&self, http: &Http, url: &str, what: &str) -> Result<Meta, FetchError> {
        self.retrying(|| {
            let mut url = url.to_string();
            for _ in 0..5 {
                let resp = self.get(&http.direct, &url, Some("bytes=0-0"), what)?;
                if resp.status().is_redirection()
                    && let Some(to) = header(&resp, "location").filter(|l| l.starts_with('/'))
                {
                    url = format!("{}{to}", origin(&url));
                    continue;
                }
                let etag = header(&resp, "x-linked-etag")
                    .or_else(|| header(&resp, "etag"))
                    .map(|e| e.trim_start_matches("W/").trim_matches('"').to_string())
                    .filter(|e| !e.is_empty() && !e.contains('/') && !e.starts_with('.'))
                    .ok_or_else(|| FetchError::transient(format!("{what}: the hub sends no usable ETag")))?;
                let size = header(&resp, "x-linked-size")
                    .and_then(|s| s.trim().parse().ok())
                    .or_else(|| content_range(&resp).map(|(_, total)| total));
                let commit = header(&resp, "x-repo-commit").map(|c| c.trim().to_ascii_lowercase());
                return Ok(Meta { etag, commit, size });
            }
            Err(FetchError::transient(format!("{what}: more than 5 redirects")))
        })
    }

    fn download_snapshot(
        &self,
        http: &Http,
        what: &str,
        repo: &str,
        info: &Info,
        cache: &hf_hub::CacheRepo,
        folder: &Path,
    ) -> Result<(), FetchError> {
        let disk = |e: io::Error| FetchError::transient(format!("{what}: {e}"));
        // Every file's etag and size before the first byte: the blobs already here are not
        // fetched again, and the disk cap is settled before anything is written.
        let mut files = Vec::new();
        for f in &info.files {
            let url = self.resolve_url("", repo, &info.sha, &f.name);
            let file_what = format!("{what}: {}", f.name);
            let meta = self.meta(http, &url, &file_what)?;
            if let Some(c) = meta.commit.as_ref().filter(|c| **c != info.sha) {
                return Err(FetchError::transient(format!("{file_what}: the hub answered commit {c}")));
            }
            let size = f
                .size
                .or(meta.size)
                .ok_or_else(|| FetchError::miner(format!("{file_what}: the hub declares no size")))?;
            files.push(Planned {
                file: f,
                url,
                what: file_what,
                blob: cache.blob_path(&meta.etag),
                etag: meta.etag,
                size,
            });
        }
        if let Some(cap) = self.max_bytes {
            let total: u64 = files.iter().map(|f| f.size).sum();
            if total > cap {
                return Err(FetchError::miner(format!(
                    "{what}: {total} bytes, more than the hub cache's disk cap {cap}"
                )));
            }
            let needed: u64 = files.iter().map(|f| f.size.saturating_sub(present(&f.blob))).sum();
            let mut keep = (self.in_use)();
            for commit in snapshots(folder) {
                keep.insert((repo.to_string(), commit));
            }
            let done = evict(&self.cache, cap, needed, &keep).map_err(disk)?;
            if done.used + needed > cap {
                return Err(FetchError::transient(format!(
                    "{what}: disk cap: {needed} bytes needed, {} of {cap} held by models in use",
                    done.used
                )));
            }
        }
        let tmp = folder.join(TMP).join(&info.sha);
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(disk)?;
        }
        fs::create_dir_all(&tmp).map_err(disk)?;
        let done = (|| {
            for f in &files {
                self.download_blob(http, &f.what, &f.url, &f.blob, f.size, f.file.sha256.as_deref())?;
                let link = tmp.join(&f.file.name);
                fs::create_dir_all(link.parent().expect("a file in a snapshot")).map_err(disk)?;
                std::os::unix::fs::symlink(blob_link(&f.file.name, &f.etag), &link).map_err(disk)?;
            }
            let snapshot = cache.pointer_path(&info.sha);
            fs::create_dir_all(snapshot.parent().expect("snapshots/")).map_err(disk)?;
            fs::rename(&tmp, &snapshot).map_err(disk)
        })();
        if done.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        done
    }

    /// The blob `blob` with exactly `size` bytes (and the sha256 `sha256`), downloaded from
    /// `url` through `BLOB.part` (resumed from what a previous attempt left) unless present.
    fn download_blob(
        &self,
        http: &Http,
        what: &str,
        url: &str,
        blob: &Path,
        size: u64,
        sha256: Option<&str>,
    ) -> Result<(), FetchError> {
        if fs::metadata(blob).is_ok_and(|m| m.is_file() && m.len() == size) {
            return Ok(());
        }
        let name = blob.file_name().expect("a blob name").to_string_lossy();
        let part = blob.with_file_name(format!("{name}.part"));
        let disk = |e: io::Error| FetchError::transient(format!("{what}: {}: {e}", part.display()));
        fs::create_dir_all(blob.parent().expect("blobs/")).map_err(disk)?;
        self.retrying(|| self.download_part(http, what, url, &part, size))?;
        if let Some(want) = sha256 {
            let got = sha256_file(&part).map_err(disk)?;
            if got != want {
                let _ = fs::remove_file(&part);
                return Err(FetchError::miner(format!(
                    "{what}: sha256 {got}, not the {want} the hub declares"
                )));
            }
        }
        fs::rename(&part, blob).map_err(disk)
    }

    /// One attempt at filling `part` to `size` bytes.
    fn download_part(
        &self,
        http: &Http,
        what: &str,
        url: &str,
        part: &Path,
        size: u64,
    ) -> Result<(), FetchError> {
        let disk = |e: io::Error| FetchError::transient(format!("{what}: {}: {e}", part.display()));
        let mut file = OpenOptions::new().create(true).append(true).open(part).map_err(disk)?;
        let mut have = file.metadata().map_err(disk)?.len();
        if have > size {
            file.set_len(0).map_err(disk)?;
            have = 0;
        }
        if have == size {
            return Ok(());
        }
        let lie = |served: u64| {
            let _ = fs::remove_file(part);
            FetchError::miner(format!("{what}: the hub serves {served} bytes, its metadata declares {size}"))
        };
        let resp = self.get(&http.follow, url, Some(&format!("bytes={have}-")), what)?;
        match resp.status().as_u16() {
            206 => match content_range(&resp) {
                Some((_, total)) if total != size => return Err(lie(total)),
                Some((start, _)) if start == have => {}
                _ => return Err(FetchError::retryable(format!("{what}: the hub sent another range"), None)),
            },
            200 => {
                if let Some(n) = resp.body().content_length().filter(|n| *n != size) {
                    return Err(lie(n));
                }
                file.set_len(0).map_err(disk)?;
                have = 0;
            }
            s => return Err(FetchError::transient(format!("{what}: HTTP {s} to a download"))),
        }
        let mut body = resp.into_body().into_reader();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(FetchError::retryable(format!("{what}: reading the download: {e}"), None));
                }
            };
            if have + n as u64 > size {
                return Err(lie(have + n as u64));
            }
            file.write_all(&buf[..n]).map_err(disk)?;
            have += n as u64;
        }
        if have < size {
            return Err(FetchError::retryable(
                format!("{what}: the download ended at {have} of {size} bytes"),
                None,
            ));
        }
        Ok(())
    }
}

/// Removes whole model snapshots of the hub cache `cache` (`models--*` folders), least recently
/// used first (a snapshot folder's modification time, which [`Hub::fetch_model`] sets when it
/// returns one), with the blobs no remaining snapshot of their repository links to, until the
/// models hold at most `max_bytes - needed` bytes. Never a snapshot in `in_use`
/// (`(repo, commit or revision)`) nor one of a repository being fetched (its lock is held).
/// Usage is the bytes of the models' blobs (and files copied into snapshots), each counted once.
/// The caller tells whether room was made from [`Eviction::used`].
pub fn evict(
    cache: &Path,
    max_bytes: u64,
    needed: u64,
    in_use: &BTreeSet<(String, String)>,
) -> io::Result<Eviction> {
    let mut used = 0;
    let mut candidates = Vec::new();
    let entries = match fs::read_dir(cache) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Eviction { evicted: Vec::new(), used: 0 });
        }
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("models--") else { continue };
        if !e.file_type()?.is_dir() {
            continue;
        }
        let folder = e.path();
        let repo = id.replacen("--", "/", 1);
        used += bytes_in(&folder.join("blobs"))? + bytes_in(&folder.join("snapshots"))?;
        let kept: BTreeSet<String> = in_use
            .iter()
            .filter(|(r, _)| *r == repo)
            .filter_map(|(_, rev)| resolve_commit(&folder, rev))
            .collect();
        for commit in snapshots(&folder) {
            if !kept.contains(&commit) {
                let dir = folder.join("snapshots").join(&commit);
                let used_at = fs::metadata(&dir).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
                candidates.push((used_at, repo.clone(), commit, folder.clone()));
            }
        }
    }
    candidates.sort();
    let mut evicted = Vec::new();
    for (_, repo, commit, folder) in candidates {
        if used.saturating_add(needed) <= max_bytes {
            break;
        }
        let Some(_lock) = lock(&folder, false)? else { continue };
        used = used.saturating_sub(remove_snapshot(&folder, &commit)?);
        tracing::info!("hub cache: evicted {repo}@{commit}");
        evicted.push((repo, commit));
    }
    Ok(Eviction { evicted, used })
}

/// Removes `snapshots/COMMIT` of a repository folder, its refs, and the blobs no other snapshot
/// links to (stale `.part` files too): the bytes freed.
fn remove_snapshot(folder: &Path, commit: &str) -> io::Result<u64> {
    let snapshots_dir = folder.join("snapshots");
    let mut freed = bytes_in(&snapshots_dir.join(commit))?;
    fs::remove_dir_all(snapshots_dir.join(commit))?;
    let mut linked = BTreeSet::new();
    for other in snapshots(folder) {
        linked_blobs(&snapshots_dir.join(other), &mut linked)?;
    }
    if let Ok(blobs) = fs::read_dir(folder.join("blobs")) {
        for b in blobs {
            let b = b?;
            if !linked.contains(&b.file_name().to_string_lossy().into_owned()) {
                freed += b.metadata()?.len();
                fs::remove_file(b.path())?;
            }
        }
    }
    let mut refs = vec![folder.join("refs")];
    while let Some(d) = refs.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e?.path();
            if p.is_dir() {
                refs.push(p);
            } else if fs::read_to_string(&p).is_ok_and(|c| c.trim() == commit) {
                fs::remove_file(&p)?;
            }
        }
    }
    Ok(freed)
}

/// The blob names the links under `dir` point to.
fn linked_blobs(dir: &Path, out: &mut BTreeSet<String>) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            linked_blobs(&e.path(), out)?;
        } else if t.is_symlink()
            && let Some(name) = fs::read_link(e.path())?.file_name()
        {
            out.insert(name.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// The bytes of the regular files under `dir`, links not followed.
fn bytes_in(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                total += e.metadata()?.len();
            }
        }
    }
    Ok(total)
}

/// The commits a repository folder has snapshots of.
fn snapshots(folder: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(folder.join("snapshots")) else { return Vec::new() };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The commit `revision` names in a repository folder: itself, or what its ref holds.
fn resolve_commit(folder: &Path, revision: &str) -> Option<String> {
    if is_commit(revision) {
        return Some(revision.to_ascii_lowercase());
    }
    fs::read_to_string(folder.join("refs").join(revision)).ok().map(|c| c.trim().to_string())
}

/// An exclusive lock on a repository folder's lock file; `None` when `wait` is false and
/// another holds it.
fn lock(folder: &Path, wait: bool) -> io::Result<Option<File>> {
    let f = OpenOptions::new().create(true).truncate(false).write(true).open(folder.join(LOCK))?;
    if wait {
        f.lock()?;
        return Ok(Some(f));
    }
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Marks a snapshot used now (its folder's modification time), for [`evict`]'s order.
fn touch(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|f| f.set_modified(SystemTime::now())) {
        tracing::debug!("{}: cannot mark it used: {e}", dir.display());
    }
}

/// The bytes of `blob`, or of its `.part`, already on disk.
fn present(blob: &Path) -> u64 {
    let name = blob.file_name().expect("a blob name").to_string_lossy();
    fs::metadata(blob)
        .or_else(|_| fs::metadata(blob.with_file_name(format!("{name}.part"))))
        .map_or(0, |m| m.len())
}

/// The repository folder of a snapshot path (`FOLDER/snapshots/COMMIT`).
fn repo_folder(snapshot: &Path) -> PathBuf {
    snapshot.parent().and_then(Path::parent).expect("FOLDER/snapshots/COMMIT").to_path_buf()
}

/// The link from `snapshots/COMMIT/PATH` to `blobs/ETAG`, relative as huggingface_hub makes it.
fn blob_link(path: &str, etag: &str) -> PathBuf {
    let mut link = PathBuf::new();
    for _ in 0..path.split('/').count() + 1 {
        link.push("..");
    }
    link.join("blobs").join(etag)
}

/// The sum of the declared sizes, or the first file without one.
fn declared_total(info: &Info) -> Result<u64, &str> {
    info.files.iter().try_fold(0u64, |sum, f| f.size.map(|s| sum.saturating_add(s)).ok_or(f.name.as_str()))
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut h = Sha256::new();
    io::copy(&mut File::open(path)?, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `NAME` or `OWNER/NAME` of letters, digits, `-`, `_`, `.`, as the hub allows.
fn check_repo_id(repo: &str) -> Result<(), FetchError> {
    let parts: Vec<&str> = repo.split('/').collect();
    let ok = parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && !p.contains("--")
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(FetchError::miner(format!("`{repo}` is not a hub repository id (OWNER/NAME)")))
    }
}

/// A file path of a repository: relative, without empty, `.` or `..` components.
fn check_path(what: &str, path: &str) -> Result<(), FetchError> {
    if path.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0')) {
        return Err(FetchError::miner(format!("{what}: `{path}` is not a relative file path")));
    }
    Ok(())
}

/// Percent-encoding of all but unreserved characters (and `/` when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    url[start..].find('/').map_or(url, |i| &url[..start + i])
}

fn header<'a>(resp: &'a Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `Content-Range: bytes START-END/TOTAL` as (START, TOTAL).
fn content_range(resp: &Response<ureq::Body>) -> Option<(u64, u64)> {
    let v = header(resp, "content-range")?.trim().strip_prefix("bytes ")?;
    let (range, total) = v.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()?))
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured).
fn retry_after(resp: &Response<ureq::Body>) -> Option<Duration> {
    header(resp, "retry-after")?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A transport failure: it may pass, except a description over its size limit.
fn transport(what: &str, e: &ureq::Error) -> FetchError {
    match e {
        ureq::Error::BodyExceedsLimit(n) => {
            FetchError::miner(format!("{what}: the hub's description is over {n} bytes"))
        }
        ureq::Error::Timeout(t) => FetchError::retryable(format!("{what}: timed out ({t})"), None),
        e => FetchError::retryable(format!("{what}: {e}"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_revisions_and_paths_as_the_hub_expects() {
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("a dir/b+c.bin", true), "a%20dir/b%2Bc.bin");
        assert_eq!(origin("http://127.0.0.1:8080/x/y"), "http://127.0.0.1:8080");
        assert_eq!(blob_link("config.json", "e1"), Path::new("../../blobs/e1"));
        assert_eq!(blob_link("a/b/c.bin", "e2"), Path::new("../../../../blobs/e2"));
    }

    #[test]
    fn repository_ids_and_paths_are_checked() {
        for ok in ["gpt2", "owner/name", "o-1/n_2.v3"] {
            assert!(check_repo_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b/c", "../x", "a/..", "a b/c", "a--b/c", "/a"] {
            assert_eq!(check_repo_id(bad).unwrap_err().kind, FetchErrorKind::Miner, "{bad}");
        }
        for bad in ["../etc", "a//b", "/abs", "a/./b", "a/"] {
            assert!(check_path("x", bad).is_err(), "{bad}");
        }
        assert!(check_path("x", "a/b.json").is_ok());
    }

    #[test]
    fn eviction_removes_the_oldest_snapshot_and_only_the_blobs_no_other_links_to() {
        let cache = tempfile::tempdir().unwrap();
        let f = cache.path().join("models--o--m");
        fs::create_dir_all(f.join("blobs")).unwrap();
        for (blob, n) in [("shared", 100), ("old", 50), ("new", 30)] {
            fs::write(f.join("blobs").join(blob), vec![0u8; n]).unwrap();
        }
        let (old, new) = ("a".repeat(40), "b".repeat(40));
        for (commit, own, ago) in [(&old, "old", 20), (&new, "new", 10)] {
            let dir = f.join("snapshots").join(commit);
            fs::create_dir_all(dir.join("sub")).unwrap();
            std::os::unix::fs::symlink(blob_link("w.bin", "shared"), dir.join("w.bin")).unwrap();
            std::os::unix::fs::symlink(blob_link("sub/x.bin", own), dir.join("sub/x.bin")).unwrap();
            let t = SystemTime::now() - Duration::from_secs(ago);
            File::open(&dir).unwrap().set_modified(t).unwrap();
        }
        fs::create_dir_all(f.join("refs")).unwrap();
        fs::write(f.join("refs/main"), &old).unwrap();
        // 180 bytes held; 100 more under 250: the older snapshot goes, with its own blob alone.
        let none = BTreeSet::new();
        let e = evict(cache.path(), 250, 100, &none).unwrap();
        assert_eq!(e, Eviction { evicted: vec![("o/m".into(), old.clone())], used: 130 });
        assert!(f.join("blobs/shared").exists() && !f.join("blobs/old").exists());
        assert!(!f.join("refs/main").exists(), "the ref to the evicted commit goes");
        // In use, by its branch: kept, even when that leaves no room.
        fs::write(f.join("refs/main"), &new).unwrap();
        let in_use = BTreeSet::from([("o/m".to_string(), "main".to_string())]);
        assert_eq!(evict(cache.path(), 10, 0, &in_use).unwrap(), Eviction { evicted: vec![], used: 130 });
        // Room already: nothing goes.
        assert_eq!(evict(cache.path(), 1000, 0, &none).unwrap().evicted, vec![]);
        let e = evict(cache.path(), 10, 0, &none).unwrap();
        assert_eq!(e, Eviction { evicted: vec![("o/m".into(), new)], used: 0 });
        assert_eq!(fs::read_dir(f.join("blobs")).unwrap().count(), 0);
    }

    #[test]
    fn the_environment_names_the_endpoint_token_cache_and_timeout() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let hub = Hub::from_env_vars(env(&[
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HUGGING_FACE_HUB_TOKEN", "t0"),
            ("HF_HOME", "/nowhere"),
            ("HF_HUB_OFFLINE", "1"),
            ("ARENA_HUB_TIMEOUT", "2.5"),
        ]));
        assert_eq!(hub.endpoint, "http://127.0.0.1:9");
        assert_eq!(hub.token.as_deref(), Some("t0"));
        assert_eq!(hub.cache, Path::new("/nowhere/hub"));
        assert!(hub.offline);
        assert_eq!(hub.read_timeout, Duration::from_millis(2500));
        let hub = Hub::from_env_vars(env(&[("HOME", "/h"), ("HF_HUB_OFFLINE", "0"), ("HF_TOKEN", "t1")]));
        assert_eq!(hub.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(hub.token.as_deref(), Some("t1"));
        assert_eq!(hub.cache, Path::new("/h/.cache/huggingface/hub"));
        assert!(!hub.offline);
    }
}
