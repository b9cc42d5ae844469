-- arena's validator store, version 1. Times are milliseconds since the Unix epoch, given by the
-- caller (one clock for the process that owns the file).

-- Every commitment seen on chain, as the submission it makes to each competition.
CREATE TABLE submissions (
    competition TEXT NOT NULL,
    hotkey TEXT NOT NULL,
    commit_block INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    -- arena-core's SubmissionEntry, JSON.
    entry TEXT NOT NULL,
    seen_block INTEGER NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (competition, hotkey, commit_block)
);

-- One row per round block: what it evaluated, then what it decided.
CREATE TABLE rounds (
    id INTEGER PRIMARY KEY,
    block INTEGER NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'skipped')),
    -- The round's SUBMISSIONS.json and the block hashes its seeds came from (JSON).
    submissions TEXT NOT NULL,
    hashes TEXT NOT NULL,
    reason TEXT,
    report TEXT,
    digest TEXT,
    -- What setting this round's weights became (the emitter's outcome, JSON).
    weights TEXT,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER
);

-- Run i of a round is the job with this key (runs of later rounds that are the same
-- evaluation share the job and its result).
CREATE TABLE round_runs (
    round INTEGER NOT NULL REFERENCES rounds (id),
    run INTEGER NOT NULL,
    dedup_key TEXT NOT NULL,
    PRIMARY KEY (round, run)
);
CREATE INDEX round_runs_key ON round_runs (dedup_key);

-- Evaluation jobs, claimed under a lease whose token (the attempt) fences every later write.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    lease_token INTEGER,
    lease_owner TEXT,
    lease_expires_ms INTEGER,
    run_after_ms INTEGER NOT NULL,
    last_error TEXT,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE INDEX jobs_claim ON jobs (queue, run_after_ms) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_ms) WHERE state = 'running';

-- A job's result, committed in the transaction that moves the job to done; never overwritten.
CREATE TABLE results (
    dedup_key TEXT PRIMARY KEY,
    job_id INTEGER NOT NULL UNIQUE REFERENCES jobs (id),
    outcome TEXT NOT NULL,
    wall_ms INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    plugin_sha256 TEXT NOT NULL,
    arena_version TEXT NOT NULL,
    committed_ms INTEGER NOT NULL
);

-- Small documents: the EMA state, the weight journal.
CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
