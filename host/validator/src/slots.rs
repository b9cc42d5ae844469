//! Worker slots: one per device of the configuration. A slot claims a job of the running round
//! from the store under a lease, runs it in an isolated worker (`arena worker`, its own process
//! group, killed with the validator), heartbeats while it runs, and commits the outcome with the
//! lease's token. A lost lease (the store gave the job to another slot) kills the worker and
//! drops its result; a stop request cancels it and puts the job back without counting the
//! attempt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arena_core::failure::{FailureKind, JobFailure};
use arena_core::round::Outcome;
use arena_plugin_api::Progress;
use arena_runtime::isolate::Supervisor;
use arena_store::{Claimed, Lease, NewResult, Sqlite, Store};
use tokio::task::JoinHandle;

use crate::rounds::{Payload, RoundCtx};
use crate::{Settings, now_ms, secs};

/// What the main loop and the slots share.
pub struct Shared {
    store: Arc<Sqlite>,
    pub metrics: Arc<crate::metrics::Metrics>,
    current: RwLock<Option<Arc<RoundCtx>>>,
    stopping: AtomicBool,
    /// A job's result was committed: the main loop looks at once whether its round is complete,
    /// instead of at its next poll.
    pub result_in: tokio::sync::Notify,
}

impl Shared {
    pub fn new(store: Arc<Sqlite>, metrics: Arc<crate::metrics::Metrics>) -> Arc<Self> {
        Arc::new(Self {
            store,
            metrics,
            current: RwLock::new(None),
            stopping: AtomicBool::new(false),
            result_in: tokio::sync::Notify::new(),
        })
    }

    /// The round whose jobs the slots run.
    pub fn current(&self) -> Option<Arc<RoundCtx>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_current(&self, ctx: Option<Arc<RoundCtx>>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = ctx;
    }

    /// Slots stop claiming, and cancel what runs.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst) || arena_runtime::cancel::requested()
    }
}

/// Starts one slot per device.
pub fn spawn(shared: &Arc<Shared>, s: &Arc<Settings>) -> Vec<JoinHandle<()>> {
    (0..s.devices.len().max(1))
        .map(|slot| tokio::spawn(slot_loop(Arc::clone(shared), Arc::clone(s), slot)))
        .collect()
}

const IDLE: Duration = Duration::from_millis(100);

async fn slot_loop(shared: Arc<Shared>, s: Arc<Settings>, slot: usize) {
    let owner = format!("{}/slot{slot}", s.instance);
    let lease = Lease { millis: secs(s.config.service.lease).as_millis() as u64 };
    let supervisor = match Supervisor::current_exe() {
        Ok(sup) => Arc::new(sup),
        Err(e) => {
            tracing::error!("slot {slot}: cannot find the worker executable: {e}");
            return;
        }
    };
    while !shared.stopping() {
        let Some(ctx) = shared.current() else {
            tokio::time::sleep(IDLE).await;
            continue;
        };
        let claimed = match shared.store.claim("eval", &owner, lease, now_ms()).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                tokio::time::sleep(IDLE).await;
                continue;
            }
            Err(e) => {
                tracing::warn!("slot {slot}: claiming a job: {e:#}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = run_claimed(&shared, &s, &ctx, &supervisor, slot, lease, &claimed).await {
            tracing::warn!("slot {slot}: job {}: {e:#}", claimed.id);
        }
    }
}

/// A job's progress, and its cancellation: the lease lost, or the validator stopping.
struct SlotProgress {
    cancel: Arc<AtomicBool>,
}

impl Progress for SlotProgress {
    fn report(&self, _done: u64, _total: u64, _message: &str) {}
    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

async fn run_claimed(
    shared: &Shared,
    s: &Settings,
    ctx: &RoundCtx,
    supervisor: &Arc<Supervisor>,
    slot: usize,
    lease: Lease,
    c: &Claimed,
) -> Result<()> {
    let store = &shared.store;
    let payload: Payload = serde_json::from_str(&c.payload).context("the job's payload")?;
    if payload.round != ctx.row.block {
        store.release(c.id, c.token, "queued by another round than the running one", now_ms()).await?;
        return Ok(());
    }
    let i = payload.run as usize;
    let start = Instant::now();
    let (outcome, lost) = match ctx.job(i, slot) {
        Err(outcome) => (outcome, false),
        Ok((job, limits)) => {
            let cancel = Arc::new(AtomicBool::new(false));
            let progress = SlotProgress { cancel: Arc::clone(&cancel) };
            let sup = Arc::clone(supervisor);
            let plugin_time = Arc::clone(&ctx.timing);
            let mut handle = tokio::task::spawn_blocking(move || {
                let (outcome, plugin) = sup.run_timed(&job, limits, &progress);
                plugin_time.add_plugin(plugin);
                outcome
            });
            let mut beat = tokio::time::interval(Duration::from_millis((lease.millis / 3).max(10)));
            beat.tick().await;
            let mut lost = false;
            let outcome: Outcome = loop {
                tokio::select! {
                    r = &mut handle => break r.unwrap_or_else(|e| {
                        Err(JobFailure::new(FailureKind::Internal, format!("the slot's task failed: {e}")))
                    }),
                    _ = beat.tick() => {
                        match store.heartbeat(c.id, c.token, lease, now_ms()).await {
                            Ok(true) => {}
                            Ok(false) => {
                                lost = true;
                                cancel.store(true, Ordering::SeqCst);
                            }
                            Err(e) => tracing::warn!("slot {slot}: heartbeat of job {}: {e:#}", c.id),
                        }
                        if shared.stopping() {
                            cancel.store(true, Ordering::SeqCst);
                        }
                    }
                }
            };
            (outcome, lost)
        }
    };
    shared.metrics.evaluation_seconds.observe(start.elapsed().as_secs_f64());
    ctx.timing.jobs_us.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
    if lost {
        tracing::warn!(
            "slot {slot}: job {} lost its lease; its worker was stopped and its result dropped",
            c.id
        );
        return Ok(());
    }
    let now = now_ms();
    match &outcome {
        Err(f) if f.kind == FailureKind::Cancelled && shared.stopping() => {
            store.release(c.id, c.token, "the validator stopped while it ran", now).await?;
            return Ok(());
        }
        Err(f) if f.kind.is_infrastructure() || f.kind == FailureKind::Cancelled => {
            let base = s.config.service.retry_backoff.max(0.0);
            let backoff = (base * 2f64.powi(c.attempt.saturating_sub(1) as i32)).min(900.0);
            if store.retry(c.id, c.token, &f.to_string(), (backoff * 1e3) as u64, now).await? {
                tracing::warn!(
                    "slot {slot}: run {i} of the round at block {} failed ({}); attempt {} of {} in {backoff:.1} s",
                    ctx.row.block,
                    f.kind.as_str(),
                    c.attempt + 1,
                    c.max_attempts
                );
                return Ok(());
            }
        }
        _ => {}
    }
    let result = NewResult {
        outcome: serde_json::to_string(&outcome)?,
        wall_ms: start.elapsed().as_millis() as u64,
        plugin_sha256: ctx.plugin_sha256(i).to_string(),
        arena_version: env!("CARGO_PKG_VERSION").into(),
    };
    if !store.complete(c.id, c.token, &result, now_ms()).await? {
        tracing::warn!("slot {slot}: job {} was taken over before it completed; its result is dropped", c.id);
    }
    shared.result_in.notify_one();
    Ok(())
}
