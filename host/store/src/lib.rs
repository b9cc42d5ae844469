//! The validator's store: what `arena validator run` must not lose when it is killed.
//!
//! - **Submissions**: every commitment seen on chain, as the submission it makes (never
//!   forgotten, so a round replayed after a restart sees what it saw the first time).
//! - **Rounds**: one per round block, with its submissions and block hashes (so the plan is
//!   re-derived exactly), then its report, digest and EMA state, written in one transaction.
//! - **Jobs** under the lease protocol: a claim takes a lease and a fencing token (the attempt
//!   number, which only grows); heartbeats extend the lease; completion moves the job to `done`
//!   and inserts its result in one transaction, only if the token still holds, so a zombie's
//!   late completion commits nothing. Results are first committed wins, never overwritten.
//! - **Documents** (`kv`): the EMA state and the weight journal.
//!
//! [`Store`] is the interface the service uses; [`Sqlite`] implements it (one process owns the
//! file, enforced with an exclusive lock). A PostgreSQL implementation adds an `impl Store`.
//! Times are milliseconds since the Unix epoch, passed in by the caller, so tests can drive the
//! clock.

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

mod sqlite;

pub use sqlite::Sqlite;

/// A submission as recorded: `entry` is arena-core's `SubmissionEntry` as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionRow {
    pub competition: String,
    pub hotkey: String,
    pub commit_block: u64,
    pub uid: u16,
    pub entry: String,
    /// The block at which the validator first saw it.
    pub seen_block: u64,
}

/// A round's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundState {
    /// Its jobs are being evaluated.
    Running,
    /// Scored: report, digest and EMA state written.
    Done,
    /// Not run, with the reason (no submission to evaluate, a dataset unavailable, …).
    Skipped,
}

impl RoundState {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "running" => RoundState::Running,
            "done" => RoundState::Done,
            "skipped" => RoundState::Skipped,
            other => anyhow::bail!("the store holds a round in an unknown state `{other}`"),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoundRow {
    pub id: i64,
    pub block: u64,
    pub state: RoundState,
    /// SUBMISSIONS.json of the round.
    pub submissions: String,
    /// Block hashes by block (JSON object).
    pub hashes: String,
    pub reason: Option<String>,
    pub report: Option<String>,
    pub digest: Option<String>,
    /// What setting its weights became (JSON), once tried.
    pub weights: Option<String>,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
}

/// A run of a new round: its index in the plan, the key of the evaluation it is (two runs with
/// one key are one job), and what a worker needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub run: u32,
    pub dedup_key: String,
    pub payload: String,
}

/// A job claimed under a lease. `token` fences every later write about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: i64,
    pub dedup_key: String,
    pub payload: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub token: i64,
}

/// A job's result: the outcome (JSON), with what produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewResult {
    pub outcome: String,
    pub wall_ms: u64,
    pub plugin_sha256: String,
    pub arena_version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub dedup_key: String,
    pub job_id: i64,
    pub outcome: String,
    pub wall_ms: u64,
    pub attempt: u32,
    pub plugin_sha256: String,
    pub arena_version: String,
    pub committed_ms: u64,
}

/// A job in the queue, for status pages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    pub id: i64,
    pub dedup_key: String,
    pub payload: String,
    pub state: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
}

/// A lease that expired with no attempt left: its job must be completed with a failure (with
/// the token, which still fences it).
#[derive(Debug, Clone, PartialEq)]
pub struct Expired {
    pub claimed: Claimed,
    pub owner: String,
}

/// The lease protocol's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lease {
    pub millis: u64,
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Records a submission; false when it was already known.
    async fn record_submission(&self, s: &SubmissionRow, now_ms: u64) -> Result<bool>;
    async fn submissions(&self) -> Result<Vec<SubmissionRow>>;

    /// Creates the round at `block` with its runs (idempotent: a round that exists is returned
    /// as it is), and enqueues a job for each run whose key has none. One transaction.
    async fn create_round(
        &self,
        block: u64,
        submissions: &str,
        hashes: &str,
        runs: &[NewRun],
        max_attempts: u32,
        now_ms: u64,
    ) -> Result<RoundRow>;
    /// A round without runs, skipped for `reason`.
    async fn skip_round(&self, block: u64, submissions: &str, reason: &str, now_ms: u64) -> Result<RoundRow>;
    async fn round(&self, block: u64) -> Result<Option<RoundRow>>;
    /// The most recent rounds, newest first.
    async fn rounds(&self, limit: u32) -> Result<Vec<RoundRow>>;
    /// Per run of the round, in run order: its key and its result, once committed.
    async fn round_results(&self, round: i64) -> Result<Vec<(String, Option<ResultRow>)>>;
    /// Marks the round done with its report and digest, and writes the documents (the EMA
    /// state) in the same transaction. False when the round was not running.
    async fn finish_round(
        &self,
        round: i64,
        report: &str,
        digest: &str,
        documents: &[(&str, &str)],
        now_ms: u64,
    ) -> Result<bool>;
    /// Ends a running round without scores, for `reason` (its scoring failed, or it cannot be
    /// resumed). False when it was not running.
    async fn abandon_round(&self, round: i64, reason: &str, now_ms: u64) -> Result<bool>;
    /// Records what setting the round's weights became.
    async fn set_round_weights(&self, round: i64, outcome: &str) -> Result<()>;

    /// Claims the next queued job of `queue` whose time has come, under a lease for `owner`.
    async fn claim(&self, queue: &str, owner: &str, lease: Lease, now_ms: u64) -> Result<Option<Claimed>>;
    /// Extends the lease; false when it was lost (reaped, or the job moved on).
    async fn heartbeat(&self, job: i64, token: i64, lease: Lease, now_ms: u64) -> Result<bool>;
    /// Moves the job to done and commits its result, if the token still holds (false
    /// otherwise, and nothing is written). A result already committed for the key stays.
    async fn complete(&self, job: i64, token: i64, result: &NewResult, now_ms: u64) -> Result<bool>;
    /// Puts the job back in the queue after a failure worth another attempt, not before
    /// `now_ms + backoff_ms`; false when the token no longer holds or no attempt is left.
    async fn retry(&self, job: i64, token: i64, error: &str, backoff_ms: u64, now_ms: u64) -> Result<bool>;
    /// Puts the job back in the queue without counting the attempt (the validator is stopping).
    async fn release(&self, job: i64, token: i64, why: &str, now_ms: u64) -> Result<bool>;
    /// Leases expired before `now_ms`: jobs with attempts left go back to the queue (counted);
    /// the others are returned to be completed with a failure.
    async fn reap(&self, now_ms: u64) -> Result<Vec<Expired>>;
    /// At start, in single-process mode: every running job is an orphan of a previous process.
    /// Each goes back to the queue without counting the attempt. Returns how many.
    async fn requeue_orphans(&self, why: &str, now_ms: u64) -> Result<u64>;
    /// Jobs by state.
    async fn job_counts(&self) -> Result<BTreeMap<String, u64>>;
    /// Jobs not done, with their last error.
    async fn open_jobs(&self) -> Result<Vec<JobRow>>;

    /// Keeps the newest `keep` rounds (by block): older rounds go, with their runs, and every
    /// result and finished job no kept round refers to. Returns the rounds removed. Freed pages
    /// are reused, so a long-running store stays the size of what it keeps.
    async fn prune(&self, keep: u32) -> Result<u64>;

    async fn get(&self, key: &str) -> Result<Option<String>>;
    async fn put(&self, key: &str, value: &str, now_ms: u64) -> Result<()>;

    /// Bytes on disk (for metrics).
    async fn size_bytes(&self) -> Result<u64>;
}
