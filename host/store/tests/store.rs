//! The store's protocol on SQLite: claims, heartbeats, fenced completion, retries, the reaper,
//! orphans after a restart, first-committed-wins results, rounds and documents.

use arena_store::{Lease, NewResult, NewRun, RoundState, Sqlite, Store, SubmissionRow};

const LEASE: Lease = Lease { millis: 1_000 };

fn result(outcome: &str) -> NewResult {
    NewResult {
        outcome: outcome.into(),
        wall_ms: 5,
        plugin_sha256: "ab".into(),
        arena_version: "0.1.0".into(),
    }
}

fn runs(keys: &[&str]) -> Vec<NewRun> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| NewRun { run: i as u32, dedup_key: k.to_string(), payload: format!("{{\"run\":{i}}}") })
        .collect()
}

async fn store(dir: &tempfile::TempDir) -> Sqlite {
    Sqlite::open(&dir.path().join("v.sqlite")).await.unwrap()
}

#[tokio::test]
async fn a_job_is_claimed_once_and_its_result_commits_with_the_token_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let round = s.create_round(100, "{}", "{}", &runs(&["k1", "k2"]), 2, 0).await.unwrap();
    assert_eq!(round.state, RoundState::Running);

    let a = s.claim("eval", "slot-a", LEASE, 10).await.unwrap().unwrap();
    let b = s.claim("eval", "slot-b", LEASE, 10).await.unwrap().unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!((a.attempt, a.token), (1, 1));
    assert!(s.claim("eval", "slot-c", LEASE, 10).await.unwrap().is_none(), "two jobs, two claims");

    // A wrong token commits nothing.
    assert!(!s.complete(a.id, a.token + 1, &result("wrong"), 20).await.unwrap());
    assert!(s.heartbeat(a.id, a.token, LEASE, 500).await.unwrap());
    assert!(s.complete(a.id, a.token, &result("first"), 600).await.unwrap());
    // Completing twice: the second is fenced out (the job is done).
    assert!(!s.complete(a.id, a.token, &result("second"), 700).await.unwrap());
    assert!(!s.heartbeat(a.id, a.token, LEASE, 700).await.unwrap());

    let results = s.round_results(round.id).await.unwrap();
    assert_eq!(results.len(), 2);
    let done: Vec<_> = results.iter().filter_map(|(_, r)| r.as_ref()).collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome, "first");
    assert_eq!(s.job_counts().await.unwrap()["done"], 1);
}

#[tokio::test]
async fn a_zombie_whose_lease_was_reaped_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let round = s.create_round(1, "{}", "{}", &runs(&["k"]), 3, 0).await.unwrap();
    let zombie = s.claim("eval", "a", LEASE, 0).await.unwrap().unwrap();
    // Its lease runs out without a heartbeat; the reaper puts the job back (attempts remain).
    assert!(s.reap(999).await.unwrap().is_empty());
    assert_eq!(s.job_counts().await.unwrap()["running"], 1, "not expired yet");
    assert!(s.reap(1_001).await.unwrap().is_empty());
    assert_eq!(s.job_counts().await.unwrap()["queued"], 1);
    let live = s.claim("eval", "b", LEASE, 1_002).await.unwrap().unwrap();
    assert_eq!((live.attempt, live.token), (2, 2));
    // The zombie wakes up: its heartbeat and its completion are refused.
    assert!(!s.heartbeat(zombie.id, zombie.token, LEASE, 1_003).await.unwrap());
    assert!(!s.complete(zombie.id, zombie.token, &result("zombie"), 1_004).await.unwrap());
    assert!(s.complete(live.id, live.token, &result("live"), 1_005).await.unwrap());
    let results = s.round_results(round.id).await.unwrap();
    assert_eq!(results[0].1.as_ref().unwrap().outcome, "live");
    assert_eq!(results[0].1.as_ref().unwrap().attempt, 2);
    let jobs = s.open_jobs().await.unwrap();
    assert!(jobs.is_empty(), "{jobs:?}");
}

#[tokio::test]
async fn retries_stop_at_max_attempts_and_the_reaper_hands_back_exhausted_leases() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.create_round(1, "{}", "{}", &runs(&["k"]), 2, 0).await.unwrap();
    let first = s.claim("eval", "a", LEASE, 0).await.unwrap().unwrap();
    assert!(s.retry(first.id, first.token, "crashed", 500, 10).await.unwrap());
    // Not before its backoff.
    assert!(s.claim("eval", "a", LEASE, 100).await.unwrap().is_none());
    let second = s.claim("eval", "a", LEASE, 510).await.unwrap().unwrap();
    assert_eq!(second.attempt, 2);
    // No attempt left: retry refuses, and the caller completes with the failure instead.
    assert!(!s.retry(second.id, second.token, "crashed again", 0, 520).await.unwrap());
    // Had it died instead, the reaper returns it to be failed, still fenced by its token.
    let expired = s.reap(510 + LEASE.millis + 1).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].claimed.token, second.token);
    assert_eq!(expired[0].owner, "a");
    assert!(s.complete(second.id, expired[0].claimed.token, &result("failed: lease"), 2_000).await.unwrap());
    let jobs = s.open_jobs().await.unwrap();
    assert!(jobs.is_empty());
}

#[tokio::test]
async fn orphans_and_cancelled_jobs_go_back_without_counting_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.sqlite");
    {
        let s = Sqlite::open(&path).await.unwrap();
        s.create_round(1, "{}", "{}", &runs(&["a", "b"]), 1, 0).await.unwrap();
        let a = s.claim("eval", "old-a", LEASE, 0).await.unwrap().unwrap();
        let _b = s.claim("eval", "old-b", LEASE, 0).await.unwrap().unwrap();
        assert!(s.release(a.id, a.token, "stopping", 5).await.unwrap());
        s.close().await;
        // `_b` is still running when the process goes away.
    }
    let s = Sqlite::open(&path).await.unwrap();
    assert_eq!(s.requeue_orphans("orphaned by ", 10).await.unwrap(), 1);
    let jobs = s.open_jobs().await.unwrap();
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        assert_eq!(j.state, "queued");
        assert_eq!((j.attempt, j.max_attempts), (1, 2), "{j:?}: one attempt used, one more allowed");
    }
    assert!(jobs.iter().any(|j| j.last_error.as_deref() == Some("orphaned by old-b")));
    // The fencing token keeps growing: the next claim is attempt 2.
    let c = s.claim("eval", "new", LEASE, 20).await.unwrap().unwrap();
    assert_eq!(c.token, 2);
}

#[tokio::test]
async fn a_store_belongs_to_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.sqlite");
    let _first = Sqlite::open(&path).await.unwrap();
    let e = Sqlite::open(&path).await.unwrap_err();
    assert!(format!("{e:#}").contains("in use by another process"), "{e:#}");
}

#[tokio::test]
async fn rounds_share_jobs_by_key_and_finish_with_their_documents() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let r1 = s.create_round(100, "subs-1", "{}", &runs(&["same", "only-1"]), 2, 0).await.unwrap();
    // Creating it again returns it unchanged (idempotent after a crash).
    let again = s.create_round(100, "other", "{}", &runs(&["x"]), 2, 1).await.unwrap();
    assert_eq!((again.id, again.submissions.as_str()), (r1.id, "subs-1"));
    while let Some(c) = s.claim("eval", "a", LEASE, 5).await.unwrap() {
        assert!(s.complete(c.id, c.token, &result(&c.dedup_key), 6).await.unwrap());
    }
    let r2 = s.create_round(200, "subs-2", "{}", &runs(&["same", "only-2"]), 2, 7).await.unwrap();
    // Only the new evaluation is queued; the shared one already has its result.
    let c = s.claim("eval", "a", LEASE, 8).await.unwrap().unwrap();
    assert_eq!(c.dedup_key, "only-2");
    assert!(s.claim("eval", "a", LEASE, 8).await.unwrap().is_none());
    let results = s.round_results(r2.id).await.unwrap();
    assert_eq!(results[0].1.as_ref().map(|r| r.outcome.as_str()), Some("same"));
    assert!(results[1].1.is_none());

    assert!(s.finish_round(r1.id, "{\"report\":1}", "d1", &[("ema", "{\"v\":1}")], 9).await.unwrap());
    assert!(!s.finish_round(r1.id, "{}", "d2", &[("ema", "{\"v\":2}")], 10).await.unwrap(), "finished once");
    assert_eq!(s.get("ema").await.unwrap().as_deref(), Some("{\"v\":1}"));
    let done = s.round(100).await.unwrap().unwrap();
    assert_eq!((done.state, done.digest.as_deref()), (RoundState::Done, Some("d1")));
    s.set_round_weights(r1.id, "{\"outcome\":\"set\"}").await.unwrap();
    let newest = s.rounds(10).await.unwrap();
    assert_eq!(newest.iter().map(|r| r.block).collect::<Vec<_>>(), vec![200, 100]);
    assert_eq!(newest[1].weights.as_deref(), Some("{\"outcome\":\"set\"}"));

    let skipped = s.skip_round(300, "subs-3", "no submission to evaluate", 11).await.unwrap();
    assert_eq!(
        (skipped.state, skipped.reason.as_deref()),
        (RoundState::Skipped, Some("no submission to evaluate"))
    );
}

#[tokio::test]
async fn submissions_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let row = SubmissionRow {
        competition: "c".into(),
        hotkey: "hk".into(),
        commit_block: 10,
        uid: 3,
        entry: "{}".into(),
        seen_block: 12,
    };
    assert!(s.record_submission(&row, 0).await.unwrap());
    assert!(!s.record_submission(&SubmissionRow { seen_block: 99, ..row.clone() }, 1).await.unwrap());
    let newer = SubmissionRow { commit_block: 20, seen_block: 21, ..row.clone() };
    assert!(s.record_submission(&newer, 2).await.unwrap());
    assert_eq!(s.submissions().await.unwrap(), vec![row, newer]);
    s.put("k", "v1", 0).await.unwrap();
    s.put("k", "v2", 1).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some("v2"));
    assert!(s.size_bytes().await.unwrap() > 0);
}

#[tokio::test]
async fn pruning_keeps_the_newest_rounds_and_what_they_refer_to() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    // Five rounds; each has its own evaluation and one shared with every round.
    for b in 1..=5u64 {
        let own = format!("own-{b}");
        let r = s.create_round(b * 10, "{}", "{}", &runs(&["shared", &own]), 2, b).await.unwrap();
        while let Some(c) = s.claim("eval", "a", LEASE, b).await.unwrap() {
            assert!(s.complete(c.id, c.token, &result(&c.dedup_key), b).await.unwrap());
        }
        assert!(s.finish_round(r.id, "{}", "d", &[], b).await.unwrap());
    }
    assert_eq!(s.prune(2).await.unwrap(), 3);
    let blocks: Vec<u64> = s.rounds(10).await.unwrap().iter().map(|r| r.block).collect();
    assert_eq!(blocks, vec![50, 40]);
    // The kept rounds still have every result; the others' own results and jobs are gone.
    for r in s.rounds(10).await.unwrap() {
        assert!(s.round_results(r.id).await.unwrap().iter().all(|(_, x)| x.is_some()));
    }
    assert_eq!(s.job_counts().await.unwrap()["done"], 3, "shared, own-4, own-5");
    assert_eq!(s.prune(2).await.unwrap(), 0);
    // A new round still finds the shared result.
    let r6 = s.create_round(60, "{}", "{}", &runs(&["shared"]), 2, 9).await.unwrap();
    assert!(s.claim("eval", "a", LEASE, 9).await.unwrap().is_none());
    assert_eq!(s.round_results(r6.id).await.unwrap()[0].1.as_ref().unwrap().outcome, "shared");
}

#[tokio::test]
async fn a_round_that_cannot_be_scored_is_abandoned_once_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let r = s.create_round(7, "{}", "{}", &runs(&["k"]), 2, 0).await.unwrap();
    assert!(s.abandon_round(r.id, "its scores cannot become weights", 1).await.unwrap());
    assert!(!s.abandon_round(r.id, "again", 2).await.unwrap());
    assert!(!s.finish_round(r.id, "{}", "d", &[], 3).await.unwrap(), "no longer running");
    let row = s.round(7).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.reason.as_deref()),
        (RoundState::Skipped, Some("its scores cannot become weights"))
    );
}
