//! `arena_runtime::fetch` against the loopback hub (`arena_e2e::hub`): models land in the hub
//! cache in huggingface_hub's layout; the miner's faults (missing, private, oversized, lying
//! repositories) and the hub's (5xx, 429, stalls) are told apart; a disk cap evicts the least
//! recently used model no job uses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arena_e2e::hub::{Fault, HubRepo, TestHub};
use arena_runtime::datasets::cached_snapshot;
use arena_runtime::fetch::{FetchError, FetchErrorKind, Hub};
use serde_json::json;

/// A client of `server` filling `cache`, with short timeouts and backoffs.
fn client(server: &TestHub, cache: &Path) -> Hub {
    Hub {
        endpoint: server.endpoint(),
        token: None,
        offline: false,
        cache: cache.to_path_buf(),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(1),
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..Hub::from_env_vars(|_| None)
    }
}

fn tiny(id: &str) -> HubRepo {
    HubRepo::new(
        id,
        &[
            ("config.json", br#"{"architectures": ["LlamaForCausalLM"]}"#),
            ("model.safetensors", &[7u8; 300]),
            ("sub dir/tokenizer.json", b"{}"),
        ],
    )
}

fn fetch_err(hub: &Hub, repo: &str, max_bytes: Option<u64>) -> FetchError {
    hub.fetch_model(repo, "main", max_bytes).expect_err("the fetch fails")
}

fn folder(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// Neither a snapshot nor a blob (finished or partial) of `repo` is in `cache`.
fn assert_nothing_cached(cache: &Path, repo: &str) {
    assert_eq!(cached_snapshot(cache, "models", repo, "main"), None);
    let f = folder(cache, repo);
    for d in ["snapshots", "blobs"] {
        let n = std::fs::read_dir(f.join(d)).map(|e| e.count()).unwrap_or(0);
        assert_eq!(n, 0, "{repo}: {d} is not empty");
    }
}

#[test]
fn a_model_lands_in_huggingface_hubs_layout_and_is_read_from_the_cache_next_time() {
    let plain = tiny("owner/plain");
    let lfs = tiny("owner/lfs").lfs();
    let server = TestHub::start(vec![plain.clone(), lfs.clone()]);
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server, cache.path());
    for repo in [&plain, &lfs] {
        let dir = hub.fetch_model(&repo.id, "main", Some(10_000)).unwrap();
        let f = folder(cache.path(), &repo.id);
        assert_eq!(dir, f.join("snapshots").join(&repo.commit));
        assert_eq!(std::fs::read_to_string(f.join("refs/main")).unwrap(), repo.commit);
        for (name, bytes) in &repo.files {
            assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
            let link = std::fs::read_link(dir.join(name)).unwrap();
            let ups = "../".repeat(name.split('/').count() + 1);
            assert_eq!(link, PathBuf::from(format!("{ups}blobs/{}", repo.etag(name))), "{name}");
        }
        let blobs: Vec<String> = std::fs::read_dir(f.join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(blobs.iter().all(|b| !b.ends_with(".part")), "{blobs:?}");
        assert_eq!(cached_snapshot(cache.path(), "models", &repo.id, "main"), Some(dir.clone()));
        assert_eq!(cached_snapshot(cache.path(), "models", &repo.id, &repo.commit), Some(dir.clone()));
        // One description, then each file's first byte and its bytes (through the CDN for LFS).
        let reqs = server.requests_for(&repo.id);
        assert_eq!(reqs[0].target, format!("/api/models/{}/revision/main?blobs=true", repo.id));
        assert!(reqs.iter().any(|r| r.target.ends_with("/sub%20dir/tokenizer.json")), "{reqs:?}");
        let served = reqs.iter().filter(|r| r.is_download() && r.target.starts_with("/cdn/") == repo.lfs);
        assert_eq!(served.count(), 3, "{reqs:?}");
    }
    assert!(server.requests_for(&lfs.id).iter().any(|r| r.target.starts_with("/cdn/")));
    // Cached: by branch or by commit, no request.
    let before = server.requests().len();
    assert!(hub.fetch_model(&plain.id, "main", None).is_ok());
    assert!(hub.fetch_model(&lfs.id, &lfs.commit, None).is_ok());
    assert_eq!(server.requests().len(), before);
}

#[test]
fn the_environment_names_the_hub_the_token_and_the_cache() {
    let private = tiny("owner/private").token("s3cret");
    let server = TestHub::start(vec![private.clone()]);
    let cache = tempfile::tempdir().unwrap();
    let endpoint = format!("{}/", server.endpoint());
    let cache_dir = cache.path().to_str().unwrap().to_string();
    let env = |token: Option<&'static str>| {
        let (endpoint, cache_dir) = (endpoint.clone(), cache_dir.clone());
        move |k: &str| match k {
            "HF_ENDPOINT" => Some(endpoint.clone()),
            "HF_HUB_CACHE" => Some(cache_dir.clone()),
            "HF_TOKEN" => token.map(String::from),
            "ARENA_HUB_TIMEOUT" => Some("2".into()),
            _ => None,
        }
    };
    let e = Hub::from_env_vars(env(None)).fetch_model(&private.id, "main", None).unwrap_err();
    assert_eq!(e.kind, FetchErrorKind::Miner, "{e}");
    assert!(e.message.contains("owner/private@main") && e.message.contains("HTTP 401"), "{e}");
    let hub = Hub::from_env_vars(env(Some("s3cret")));
    assert_eq!(hub.endpoint, server.endpoint(), "the trailing slash is trimmed");
    let dir = hub.fetch_model(&private.id, "main", None).unwrap();
    assert!(dir.starts_with(cache.path()));
    let reqs = server.requests_for(&private.id);
    assert!(reqs.iter().skip(1).all(|r| r.authorization.as_deref() == Some("Bearer s3cret")), "{reqs:?}");
}

#[test]
fn a_model_over_max_bytes_is_refused_before_any_download() {
    let big = tiny("owner/big");
    let total: usize = big.files.iter().map(|(_, b)| b.len()).sum();
    let server = TestHub::start(vec![big.clone()]);
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server, cache.path());
    let limit = total as u64 - 1;
    let e = fetch_err(&hub, &big.id, Some(limit));
    assert_eq!(e.kind, FetchErrorKind::Miner, "{e}");
    assert!(e.message.contains(&format!("{total} bytes exceeds max_bytes {limit}")), "{e}");
    let reqs = server.requests_for(&big.id);
    assert_eq!(reqs.len(), 1, "only the description: {reqs:?}");
    assert_nothing_cached(cache.path(), &big.id);
    assert!(
        hub.fetch_model(&big.id, "main", Some(total as u64)).is_ok(),
        "a model of exactly max_bytes fits"
    );
}

#[test]
fn missing_private_and_unknown_revisions_are_the_miners_fault() {
    let server = TestHub::start(vec![
        tiny("owner/gated").fault(Fault::Status(403)),
        tiny("owner/private").fault(Fault::Status(401)),
        tiny("owner/model"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server, cache.path());
    for (repo, revision, status) in [
        ("owner/missing", "main", "HTTP 404"),
        ("owner/model", "no-such-branch", "HTTP 404"),
        ("owner/private", "main", "HTTP 401"),
        ("owner/gated", "main", "HTTP 403"),
    ] {
        let e = hub.fetch_model(repo, revision, None).unwrap_err();
        assert_eq!(e.kind, FetchErrorKind::Miner, "{e}");
        assert!(e.message.contains(&format!("{repo}@{revision}")) && e.message.contains(status), "{e}");
        assert!(server.requests_for(repo).len() <= 1, "{repo}: not retried");
    }
    let e = hub.fetch_model("../../etc", "main", None).unwrap_err();
    assert_eq!(e.kind, FetchErrorKind::Miner, "{e}");
}

#[test]
fn server_errors_and_rate_limits_are_retried_and_transient_once_the_attempts_are_spent() {
    let server = TestHub::start(vec![
        tiny("owner/flaky").fault(Fault::First { times: 2, status: 500, retry_after: None }),
        tiny("owner/limited").fault(Fault::First { times: 1, status: 429, retry_after: Some(1) }),
        tiny("owner/down").fault(Fault::Status(503)),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server, cache.path());
    assert!(hub.fetch_model("owner/flaky", "main", None).is_ok());
    assert_eq!(
        server.requests_for("owner/flaky")[..3].iter().filter(|r| r.target.starts_with("/api/")).count(),
        3
    );
    let t = Instant::now();
    assert!(hub.fetch_model("owner/limited", "main", None).is_ok());
    assert!(t.elapsed() >= Duration::from_secs(1), "Retry-After is honoured: {:?}", t.elapsed());
    let e = fetch_err(&hub, "owner/down", None);
    assert_eq!(e.kind, FetchErrorKind::Transient, "{e}");
    assert!(e.message.contains("owner/down@main") && e.message.contains("HTTP 503"), "{e}");
    assert_eq!(server.requests_for("owner/down").len(), 3, "the attempts are spent");
}

#[test]
fn a_stalled_hub_fails_within_the_timeouts() {
    let server = TestHub::start(vec![
        tiny("owner/slow").fault(Fault::Slow(Duration::from_secs(30))),
        tiny("owner/stalled").fault(Fault::Stall(Duration::from_secs(30))),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let hub = Hub { attempts: 2, ..client(&server, cache.path()) };
    for repo in ["owner/slow", "owner/stalled"] {
        let t = Instant::now();
        let e = fetch_err(&hub, repo, None);
        assert_eq!(e.kind, FetchErrorKind::Transient, "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "{repo}: {:?}", t.elapsed());
        assert!(e.message.contains(&format!("{repo}@main")), "{e}");
        assert_eq!(cached_snapshot(cache.path(), "models", repo, "main"), None);
    }
}

#[test]
fn a_hub_that_lies_about_sizes_or_hashes_leaves_no_snapshot() {
    let server = TestHub::start(vec![
        tiny("owner/short").fault(Fault::LyingSize),
        tiny("owner/long").fault(Fault::LyingBody),
        tiny("owner/hash").lfs().fault(Fault::BadSha),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server, cache.path());
    for (repo, says) in [("owner/short", "serves"), ("owner/long", "serves"), ("owner/hash", "sha256")] {
        let e = fetch_err(&hub, repo, None);
        assert_eq!(e.kind, FetchErrorKind::Miner, "{e}");
        assert!(e.message.contains(says) && e.message.contains(&format!("{repo}@main")), "{e}");
        assert_nothing_cached(cache.path(), repo);
    }
}

#[test]
fn two_fetches_of_one_model_at_once_make_one_snapshot() {
    let repo = tiny("owner/shared").lfs();
    let server = TestHub::start(vec![repo.clone()]);
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server, cache.path());
    let dirs: Vec<PathBuf> = std::thread::scope(|s| {
        let runs: Vec<_> =
            (0..2).map(|_| s.spawn(|| hub.fetch_model(&repo.id, "main", None).unwrap())).collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(dirs[0], dirs[1]);
    for (name, bytes) in &repo.files {
        assert_eq!(&std::fs::read(dirs[0].join(name)).unwrap(), bytes);
    }
}

#[test]
fn a_dataset_file_is_fetched_into_the_datasets_cache() {
    let data = HubRepo::new("datasets/owner/data", &[("train/part-0.jsonl", b"{\"text\": \"a\"}\n")]);
    let server = TestHub::start(vec![data.clone()]);
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server, cache.path());
    let path = hub.fetch_dataset_file("owner/data", "main", "train/part-0.jsonl").unwrap();
    let snapshot = cache.path().join("datasets--owner--data/snapshots").join(&data.commit);
    assert_eq!(path, snapshot.join("train/part-0.jsonl"));
    assert_eq!(std::fs::read(&path).unwrap(), data.files[0].1);
    assert_eq!(cached_snapshot(cache.path(), "datasets", "owner/data", "main"), Some(snapshot));
    let e = hub.fetch_dataset_file("owner/data", "main", "missing.jsonl").unwrap_err();
    assert!(e.message.contains("HTTP 404"), "{e}");
}

/// Sets a snapshot's last use (its folder's modification time) `secs_ago` seconds back.
fn used_ago(dir: &Path, secs_ago: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs_ago);
    std::fs::File::open(dir).unwrap().set_modified(t).unwrap();
}

#[test]
fn the_disk_cap_evicts_the_least_recently_used_model_no_job_uses() {
    let model = |id: &str, byte: u8| HubRepo::new(id, &[("model.safetensors", &[byte; 400])]).lfs();
    let huge = HubRepo::new("o/huge", &[("model.safetensors", &[4; 1200])]).lfs();
    let server = TestHub::start(vec![model("o/a", 1), model("o/b", 2), model("o/c", 3), huge]);
    let cache = tempfile::tempdir().unwrap();
    let in_use: Arc<std::sync::Mutex<BTreeSet<(String, String)>>> = Arc::default();
    let hub = {
        let in_use = Arc::clone(&in_use);
        Hub {
            max_bytes: Some(1000),
            in_use: Arc::new(move || in_use.lock().unwrap().clone()),
            ..client(&server, cache.path())
        }
    };
    let a = hub.fetch_model("o/a", "main", None).unwrap();
    let b = hub.fetch_model("o/b", "main", None).unwrap();
    used_ago(&a, 20);
    used_ago(&b, 10);
    // 800 bytes held, 400 more needed: a, the least recently used, goes.
    let c = hub.fetch_model("o/c", "main", None).unwrap();
    assert!(!a.exists() && b.exists() && c.exists());
    assert_nothing_cached(cache.path(), "o/a");
    // b is in use (named by its branch): c goes, though b is older.
    used_ago(&c, 5);
    in_use.lock().unwrap().insert(("o/b".into(), "main".into()));
    let a = hub.fetch_model("o/a", "main", None).unwrap();
    assert!(a.exists() && b.exists() && !c.exists());
    // Both left are in use: no room, and the fetch fails as one that may pass.
    in_use.lock().unwrap().insert(("o/a".into(), a.file_name().unwrap().to_string_lossy().into_owned()));
    let e = fetch_err(&hub, "o/c", None);
    assert_eq!(e.kind, FetchErrorKind::Transient, "{e}");
    assert!(e.message.contains("disk cap: 400 bytes needed, 800 of 1000"), "{e}");
    assert!(a.exists() && b.exists());
    let downloads = server.requests_for("o/c").iter().filter(|r| r.target.starts_with("/cdn/")).count();
    assert_eq!(downloads, 1, "c's first download only");
    // A model larger than the cap itself can never be had.
    let e = fetch_err(&hub, "o/huge", None);
    assert_eq!(e.kind, FetchErrorKind::Miner, "{e}");
    assert!(e.message.contains("1200 bytes, more than the hub cache's disk cap 1000"), "{e}");
    // Offline, the cache is read as it is: nothing is evicted, nothing fetched.
    let offline = Hub { offline: true, ..hub.clone() };
    assert_eq!(fetch_err(&offline, "o/c", None).kind, FetchErrorKind::Offline);
    assert!(a.exists() && b.exists());
}

/// The validator's preparation (`prepare_with_hub`, per submission): a repository the miner got
/// wrong fails that submission alone; one the hub fails (or a disk cap the round's own models
/// fill) fails the round, to be tried again, and blames no miner.
#[test]
fn a_validator_round_blames_the_miner_only_for_the_miners_faults() {
    let sum = |id: &str| HubRepo::new(id, &[("behaviour.json", br#"{"kind": "sum"}"#)]);
    let server =
        TestHub::start(vec![sum("miner/a"), sum("miner/b"), sum("miner/down").fault(Fault::Status(503))]);
    let dir = tempfile::tempdir().unwrap();
    let comps = arena_runtime::checker::load_competitions(&[arena_e2e::chaos_competition(dir.path(), "")])
        .unwrap_or_else(|o| panic!("{:?}", o.diagnostics));
    let plugins = [arena_e2e::chaos_plugin().parent().unwrap().to_path_buf()];
    let prepare = |hub: &Hub, repos: &[&str]| {
        let subs: Vec<serde_json::Value> = repos
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let uid = i as u64 + 1;
                let hotkey = format!("h{uid}");
                json!({"uid": uid, "hotkey": hotkey, "block": 10, "competition": "chaos",
                       "repo": r, "revision": "main"})
            })
            .collect();
        let file: arena_core::round::SubmissionsFile =
            serde_json::from_value(json!({"block": 1005, "submissions": subs})).unwrap();
        let hashes = [(1000, "0x01".to_string())].into();
        let plan = arena_core::round::plan(&comps, &file, 1005, &hashes).unwrap();
        arena_runtime::ops::round::prepare_with_hub(&comps, &file, dir.path(), &plan, &plugins, true, hub)
    };
    let cache = tempfile::tempdir().unwrap();
    let hub = client(&server, cache.path());
    let prepared = prepare(&hub, &["miner/a", "miner/gone"]).unwrap();
    assert_eq!(prepared.unavailable[0], None);
    let why = prepared.unavailable[1].as_deref().unwrap();
    assert!(why.contains("submissions[1].repo") && why.contains("HTTP 404"), "{why}");
    let e = prepare(&hub, &["miner/a", "miner/down"]).err().expect("the round fails");
    let f = e.downcast_ref::<FetchError>().expect("a fetch error");
    assert_eq!(f.kind, FetchErrorKind::Transient, "{e:#}");
    // A cap with room for one model: the round's first model is not evicted for its second.
    let cache = tempfile::tempdir().unwrap();
    let one = sum("x").files[0].1.len() as u64;
    let capped = Hub { max_bytes: Some(one + one / 2), ..client(&server, cache.path()) };
    let e = prepare(&capped, &["miner/a", "miner/b"]).err().expect("no room for both");
    assert!(format!("{e:#}").contains("disk cap"), "{e:#}");
    assert!(cached_snapshot(cache.path(), "models", "miner/a", "main").is_some());
}
