//! The store on SQLite: one file, owned by one process (an exclusive `flock` on `FILE.lock`),
//! WAL with `synchronous = FULL` (a result must survive a power loss), one connection (a
//! single writer: no transaction ever upgrades from read to write, so `SQLITE_BUSY` cannot
//! reach a caller).

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlStr};

use crate::{
    Claimed, Expired, JobRow, Lease, NewResult, NewRun, ResultRow, RoundRow, RoundState, Store, SubmissionRow,
};

/// The store's schema, oldest first. A migration is never edited once released: a new one is
/// appended.
const MIGRATIONS: [(i64, &str, &str); 1] = [(1, "init", include_str!("../migrations/0001_init.sql"))];

pub struct Sqlite {
    pool: SqlitePool,
    path: PathBuf,
    /// Held for the store's life: the exclusive lock on `FILE.lock` (none when read-only).
    _lock: Option<std::fs::File>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite").field("path", &self.path).finish()
    }
}

fn int(x: u64, what: &str) -> Result<i64> {
    i64::try_from(x).with_context(|| format!("{what} {x} does not fit the store's integers"))
}

fn uint(x: i64, what: &str) -> Result<u64> {
    u64::try_from(x).with_context(|| format!("the store holds a negative {what} ({x})"))
}

impl Sqlite {
    /// Opens (or creates) the store at `path` and brings its schema up to date. Fails at once
    /// when another process holds it.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", Path::new(&lock_path).display()))?;
        // SAFETY: a plain syscall on a file descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            bail!(
                "the store {} is in use by another process (a validator already runs on it; \
                 an SQLite store belongs to one process)",
                path.display()
            );
        }
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("opening the store {}", path.display()))?;
        let migrations = MIGRATIONS
            .iter()
            .map(|(v, d, sql)| {
                Migration::new(*v, (*d).into(), MigrationType::Simple, SqlStr::from_static(sql), false)
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&pool)
            .await
            .with_context(|| format!("bringing the store {} up to date", path.display()))?;
        Ok(Self { pool, path: path.to_path_buf(), _lock: Some(lock) })
    }

    /// Opens the store at `path` to read it while its owner runs (`arena validator status`):
    /// no lock, no migration, no write.
    pub async fn open_read_only(path: &Path) -> Result<Self> {
        if !path.is_file() {
            bail!("no validator store at {}", path.display());
        }
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("opening the store {}", path.display()))?;
        Ok(Self { pool, path: path.to_path_buf(), _lock: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool (flushing the WAL into the file).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn round_row(r: &SqliteRow) -> Result<RoundRow> {
    Ok(RoundRow {
        id: r.try_get("id")?,
        block: uint(r.try_get("block")?, "block")?,
        state: RoundState::parse(r.try_get::<&str, _>("state")?)?,
        submissions: r.try_get("submissions")?,
        hashes: r.try_get("hashes")?,
        reason: r.try_get("reason")?,
        report: r.try_get("report")?,
        digest: r.try_get("digest")?,
        weights: r.try_get("weights")?,
        created_ms: uint(r.try_get("created_ms")?, "time")?,
        finished_ms: r.try_get::<Option<i64>, _>("finished_ms")?.map(|t| uint(t, "time")).transpose()?,
    })
}

fn claimed_row(r: &SqliteRow) -> Result<Claimed> {
    Ok(Claimed {
        id: r.try_get("id")?,
        dedup_key: r.try_get("dedup_key")?,
        payload: r.try_get("payload")?,
        attempt: r.try_get::<i64, _>("attempt")? as u32,
        max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
        token: r.try_get("lease_token")?,
    })
}

fn result_row(r: &SqliteRow) -> Result<ResultRow> {
    Ok(ResultRow {
        dedup_key: r.try_get("dedup_key")?,
        job_id: r.try_get("job_id")?,
        outcome: r.try_get("outcome")?,
        wall_ms: uint(r.try_get("wall_ms")?, "wall time")?,
        attempt: r.try_get::<i64, _>("attempt")? as u32,
        plugin_sha256: r.try_get("plugin_sha256")?,
        arena_version: r.try_get("arena_version")?,
        committed_ms: uint(r.try_get("committed_ms")?, "time")?,
    })
}

const ROUND_COLUMNS: &str = "SELECT id, block, state, submissions, hashes, reason, report, digest, weights, \
                             created_ms, finished_ms FROM rounds";

#[async_trait]
impl Store for Sqlite {
    async fn record_submission(&self, s: &SubmissionRow, now_ms: u64) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO submissions (competition, hotkey, commit_block, uid, entry, seen_block, seen_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&s.competition)
        .bind(&s.hotkey)
        .bind(int(s.commit_block, "block")?)
        .bind(i64::from(s.uid))
        .bind(&s.entry)
        .bind(int(s.seen_block, "block")?)
        .bind(int(now_ms, "time")?)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn submissions(&self) -> Result<Vec<SubmissionRow>> {
        let rows = sqlx::query(
            "SELECT competition, hotkey, commit_block, uid, entry, seen_block FROM submissions \
             ORDER BY competition, commit_block, hotkey",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SubmissionRow {
                    competition: r.try_get("competition")?,
                    hotkey: r.try_get("hotkey")?,
                    commit_block: uint(r.try_get("commit_block")?, "block")?,
                    uid: u16::try_from(r.try_get::<i64, _>("uid")?)
                        .context("a uid out of range in the store")?,
                    entry: r.try_get("entry")?,
                    seen_block: uint(r.try_get("seen_block")?, "block")?,
                })
            })
            .collect()
    }

    async fn create_round(
        &self,
        block: u64,
        submissions: &str,
        hashes: &str,
        runs: &[NewRun],
        max_attempts: u32,
        now_ms: u64,
    ) -> Result<RoundRow> {
        if let Some(r) = self.round(block).await? {
            return Ok(r);
        }
        let mut tx = self.pool.begin().await?;
        let now = int(now_ms, "time")?;
        let id: i64 = sqlx::query(
            "INSERT INTO rounds (block, state, submissions, hashes, created_ms) VALUES ($1, 'running', $2, $3, $4) \
             RETURNING id",
        )
        .bind(int(block, "block")?)
        .bind(submissions)
        .bind(hashes)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        for run in runs {
            sqlx::query("INSERT INTO round_runs (round, run, dedup_key) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(i64::from(run.run))
                .bind(&run.dedup_key)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO jobs (dedup_key, queue, payload, state, max_attempts, run_after_ms, created_ms) \
                 VALUES ($1, 'eval', $2, 'queued', $3, $4, $4) ON CONFLICT (dedup_key) DO NOTHING",
            )
            .bind(&run.dedup_key)
            .bind(&run.payload)
            .bind(i64::from(max_attempts.max(1)))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.round(block).await?.context("the round just created")
    }

    async fn skip_round(&self, block: u64, submissions: &str, reason: &str, now_ms: u64) -> Result<RoundRow> {
        let now = int(now_ms, "time")?;
        sqlx::query(
            "INSERT INTO rounds (block, state, submissions, hashes, reason, created_ms, finished_ms) \
             VALUES ($1, 'skipped', $2, '{}', $3, $4, $4) ON CONFLICT (block) DO NOTHING",
        )
        .bind(int(block, "block")?)
        .bind(submissions)
        .bind(reason)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.round(block).await?.context("the round just skipped")
    }

    async fn round(&self, block: u64) -> Result<Option<RoundRow>> {
        let sql = AssertSqlSafe(format!("{ROUND_COLUMNS} WHERE block = $1"));
        let row = sqlx::query(sql).bind(int(block, "block")?).fetch_optional(&self.pool).await?;
        row.as_ref().map(round_row).transpose()
    }

    async fn rounds(&self, limit: u32) -> Result<Vec<RoundRow>> {
        let sql = AssertSqlSafe(format!("{ROUND_COLUMNS} ORDER BY block DESC LIMIT $1"));
        let rows = sqlx::query(sql).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(round_row).collect()
    }

    async fn round_results(&self, round: i64) -> Result<Vec<(String, Option<ResultRow>)>> {
        let rows = sqlx::query(
            "SELECT rr.dedup_key AS key, r.dedup_key, r.job_id, r.outcome, r.wall_ms, r.attempt, r.plugin_sha256, \
             r.arena_version, r.committed_ms FROM round_runs rr LEFT JOIN results r ON r.dedup_key = rr.dedup_key \
             WHERE rr.round = $1 ORDER BY rr.run",
        )
        .bind(round)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let key: String = r.try_get("key")?;
                let result = match r.try_get::<Option<i64>, _>("job_id")? {
                    Some(_) => Some(result_row(r)?),
                    None => None,
                };
                Ok((key, result))
            })
            .collect()
    }

    async fn finish_round(
        &self,
        round: i64,
        report: &str,
        digest: &str,
        documents: &[(&str, &str)],
        now_ms: u64,
    ) -> Result<bool> {
        let now = int(now_ms, "time")?;
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE rounds SET state = 'done', report = $2, digest = $3, finished_ms = $4 \
             WHERE id = $1 AND state = 'running'",
        )
        .bind(round)
        .bind(report)
        .bind(digest)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for (key, value) in documents {
            put(&mut tx, key, value, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn abandon_round(&self, round: i64, reason: &str, now_ms: u64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE rounds SET state = 'skipped', reason = $2, finished_ms = $3 WHERE id = $1 AND state = 'running'",
        )
        .bind(round)
        .bind(reason)
        .bind(int(now_ms, "time")?)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_round_weights(&self, round: i64, outcome: &str) -> Result<()> {
        sqlx::query("UPDATE rounds SET weights = $2 WHERE id = $1")
            .bind(round)
            .bind(outcome)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim(&self, queue: &str, owner: &str, lease: Lease, now_ms: u64) -> Result<Option<Claimed>> {
        let now = int(now_ms, "time")?;
        let row = sqlx::query(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = attempt + 1, \
             lease_owner = $2, lease_expires_ms = $3 + $4 \
             WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND queue = $1 AND run_after_ms <= $3 \
                         ORDER BY run_after_ms, id LIMIT 1) \
               AND state = 'queued' \
             RETURNING id, dedup_key, payload, attempt, max_attempts, lease_token",
        )
        .bind(queue)
        .bind(owner)
        .bind(now)
        .bind(int(lease.millis, "lease")?)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(claimed_row).transpose()
    }

    async fn heartbeat(&self, job: i64, token: i64, lease: Lease, now_ms: u64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET lease_expires_ms = $3 + $4 WHERE id = $1 AND lease_token = $2 AND state = 'running'",
        )
        .bind(job)
        .bind(token)
        .bind(int(now_ms, "time")?)
        .bind(int(lease.millis, "lease")?)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn complete(&self, job: i64, token: i64, result: &NewResult, now_ms: u64) -> Result<bool> {
        let now = int(now_ms, "time")?;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE jobs SET state = 'done', finished_ms = $3, lease_expires_ms = NULL, lease_owner = NULL \
             WHERE id = $1 AND lease_token = $2 AND state = 'running' RETURNING dedup_key, attempt",
        )
        .bind(job)
        .bind(token)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let key: String = row.try_get("dedup_key")?;
        let attempt: i64 = row.try_get("attempt")?;
        sqlx::query(
            "INSERT INTO results (dedup_key, job_id, outcome, wall_ms, attempt, plugin_sha256, arena_version, \
             committed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&key)
        .bind(job)
        .bind(&result.outcome)
        .bind(int(result.wall_ms, "wall time")?)
        .bind(attempt)
        .bind(&result.plugin_sha256)
        .bind(&result.arena_version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn retry(&self, job: i64, token: i64, error: &str, backoff_ms: u64, now_ms: u64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', run_after_ms = $4 + $5, last_error = $3, lease_token = NULL, \
             lease_owner = NULL, lease_expires_ms = NULL \
             WHERE id = $1 AND lease_token = $2 AND state = 'running' AND attempt < max_attempts",
        )
        .bind(job)
        .bind(token)
        .bind(error)
        .bind(int(now_ms, "time")?)
        .bind(int(backoff_ms, "backoff")?)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn release(&self, job: i64, token: i64, why: &str, now_ms: u64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', max_attempts = max_attempts + 1, run_after_ms = $4, \
             last_error = $3, lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL \
             WHERE id = $1 AND lease_token = $2 AND state = 'running'",
        )
        .bind(job)
        .bind(token)
        .bind(why)
        .bind(int(now_ms, "time")?)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn reap(&self, now_ms: u64) -> Result<Vec<Expired>> {
        let now = int(now_ms, "time")?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE jobs SET state = 'queued', run_after_ms = $1, \
             last_error = 'lease expired: ' || coalesce(lease_owner, '?'), \
             lease_token = NULL, lease_owner = NULL, lease_expires_ms = NULL \
             WHERE state = 'running' AND lease_expires_ms < $1 AND attempt < max_attempts",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT id, dedup_key, payload, attempt, max_attempts, lease_token, lease_owner FROM jobs \
             WHERE state = 'running' AND lease_expires_ms < $1 ORDER BY id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(Expired {
                    claimed: claimed_row(r)?,
                    owner: r.try_get::<Option<String>, _>("lease_owner")?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn requeue_orphans(&self, why: &str, now_ms: u64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE jobs SET state = 'queued', max_attempts = max_attempts + 1, run_after_ms = $2, \
             last_error = $1 || coalesce(lease_owner, '?'), lease_token = NULL, lease_owner = NULL, \
             lease_expires_ms = NULL WHERE state = 'running'",
        )
        .bind(why)
        .bind(int(now_ms, "time")?)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn job_counts(&self) -> Result<BTreeMap<String, u64>> {
        let rows =
            sqlx::query("SELECT state, count(*) AS n FROM jobs GROUP BY state").fetch_all(&self.pool).await?;
        let mut out: BTreeMap<String, u64> =
            ["queued", "running", "done"].iter().map(|s| (s.to_string(), 0)).collect();
        for r in rows {
            out.insert(r.try_get("state")?, uint(r.try_get("n")?, "count")?);
        }
        Ok(out)
    }

    async fn open_jobs(&self) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(
            "SELECT id, dedup_key, payload, state, attempt, max_attempts, lease_owner, last_error FROM jobs \
             WHERE state != 'done' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(JobRow {
                    id: r.try_get("id")?,
                    dedup_key: r.try_get("dedup_key")?,
                    payload: r.try_get("payload")?,
                    state: r.try_get("state")?,
                    attempt: r.try_get::<i64, _>("attempt")? as u32,
                    max_attempts: r.try_get::<i64, _>("max_attempts")? as u32,
                    lease_owner: r.try_get("lease_owner")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }

    async fn prune(&self, keep: u32) -> Result<u64> {
        let Some(oldest_kept) = sqlx::query("SELECT block FROM rounds ORDER BY block DESC LIMIT 1 OFFSET $1")
            .bind(i64::from(keep.max(1)) - 1)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(0);
        };
        let oldest_kept: i64 = oldest_kept.try_get("block")?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM round_runs WHERE round IN (SELECT id FROM rounds WHERE block < $1)")
            .bind(oldest_kept)
            .execute(&mut *tx)
            .await?;
        let removed =
            sqlx::query("DELETE FROM rounds WHERE block < $1").bind(oldest_kept).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM results WHERE dedup_key NOT IN (SELECT dedup_key FROM round_runs)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM jobs WHERE state = 'done' AND dedup_key NOT IN (SELECT dedup_key FROM round_runs)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(removed.rows_affected())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM kv WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn put(&self, key: &str, value: &str, now_ms: u64) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        put(&mut conn, key, value, int(now_ms, "time")?).await
    }

    async fn size_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.as_os_str().to_owned();
            p.push(suffix);
            total += std::fs::metadata(Path::new(&p)).map(|m| m.len()).unwrap_or(0);
        }
        Ok(total)
    }
}

async fn put(conn: &mut sqlx::SqliteConnection, key: &str, value: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO kv (key, value, updated_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}
