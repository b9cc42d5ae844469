//! The validator's Prometheus metrics (`prometheus-client`), served at `/metrics` on the
//! address `service.metrics` names (loopback by default), beside the status page (`/`, HTML)
//! and its JSON (`/status.json`), both read from the store at each request. Read-only, and
//! nothing secret is in them: blocks, jobs, evaluation times, weight-setting outcomes,
//! predicted vtrust, store size, rounds and their scores.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::{Context, Result};
use arena_store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    /// The chain's block, as last read.
    pub block: Gauge,
    /// Seconds since the chain's block last moved (a stalled node shows here first).
    pub block_age_seconds: Gauge<f64, AtomicU64>,
    /// Jobs in the store, by state.
    pub jobs: Family<StateLabel, Gauge>,
    /// Wall-clock seconds of each evaluation run by a worker slot.
    pub evaluation_seconds: Histogram,
    /// Weight settings, by outcome (`set`, `committed`, `already_done`, `rate_limited`, `error`, …).
    pub weight_sets: Family<OutcomeLabel, Counter>,
    /// Rounds finished, by state (`done`, `skipped`).
    pub rounds: Family<StateLabel, Counter>,
    /// Connections to the chain made again after a failure or a stall.
    pub reconnects: Counter,
    /// Bytes of the store on disk.
    pub store_bytes: Gauge,
    /// The validator trust the weights being set are predicted to get (0..1; [`crate::vtrust`]),
    /// set with each prediction.
    pub predicted_vtrust: Gauge<f64, AtomicU64>,
    /// The share of those weights beyond consensus, which Yuma clips (0..1).
    pub consensus_distance: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("arena_validator");
        let m = Metrics {
            block: Gauge::default(),
            block_age_seconds: Gauge::default(),
            jobs: Family::default(),
            evaluation_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 18)),
            weight_sets: Family::default(),
            rounds: Family::default(),
            reconnects: Counter::default(),
            store_bytes: Gauge::default(),
            predicted_vtrust: Gauge::default(),
            consensus_distance: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("block", "The chain's block, as last read", m.block.clone());
        registry.register(
            "block_age_seconds",
            "Seconds since the chain's block last moved",
            m.block_age_seconds.clone(),
        );
        registry.register("jobs", "Evaluation jobs in the store, by state", m.jobs.clone());
        registry.register(
            "evaluation_seconds",
            "Wall-clock seconds of each evaluation a worker slot ran",
            m.evaluation_seconds.clone(),
        );
        registry.register("weight_sets", "Weight settings, by outcome", m.weight_sets.clone());
        registry.register("rounds", "Rounds finished, by state", m.rounds.clone());
        registry.register("reconnects", "Chain connections made again", m.reconnects.clone());
        registry.register("store_bytes", "Bytes of the store on disk", m.store_bytes.clone());
        registry.register(
            "predicted_vtrust",
            "Validator trust predicted for the weights being set",
            m.predicted_vtrust.clone(),
        );
        registry.register(
            "consensus_distance",
            "Share of the weights being set beyond consensus (clipped by Yuma)",
            m.consensus_distance.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    pub fn weight_set(&self, outcome: &str) {
        self.weight_sets.get_or_create(&OutcomeLabel { outcome: outcome.into() }).inc();
    }

    pub fn round(&self, state: &str) {
        self.rounds.get_or_create(&StateLabel { state: state.into() }).inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Rounds the status page reads.
const PAGE_ROUNDS: u32 = 10;

/// Serves `/metrics`, `/` and `/status.json` on `addr` until the process ends; returns the
/// address bound (a port of 0 picks a free one).
pub async fn serve<S: Store + 'static>(
    addr: &str,
    metrics: Arc<Metrics>,
    store: Arc<S>,
) -> Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let m = Arc::clone(&metrics);
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), answer(&mut socket, &m, store.as_ref()))
                        .await;
            });
        }
    });
    Ok(local)
}

/// One HTTP/1.1 exchange: `GET /metrics` gets the metrics, `GET /` the status page, `GET
/// /status.json` its JSON, anything else a 404; then the connection closes. Requests larger than
/// 8 KiB are not read past that.
async fn answer(socket: &mut tokio::net::TcpStream, m: &Metrics, store: &dyn Store) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    while n < buf.len() {
        let k = socket.read(&mut buf[n..]).await?;
        if k == 0 {
            break;
        }
        n += k;
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => {
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", m.encode())
        }
        ("GET", "/") => match crate::status::page(store, PAGE_ROUNDS, crate::now_ms()).await {
            Ok(html) => ("200 OK", "text/html; charset=utf-8", html),
            Err(e) => unavailable(&e),
        },
        ("GET", "/status.json") => match crate::status::status(store, PAGE_ROUNDS).await {
            Ok(st) => match serde_json::to_string_pretty(&st) {
                Ok(json) => ("200 OK", "application/json", json + "\n"),
                Err(e) => unavailable(&e.into()),
            },
            Err(e) => unavailable(&e),
        },
        ("GET", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: see /, /status.json, /metrics\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "read-only: GET /, /status.json, /metrics\n".into(),
        ),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(reply.as_bytes()).await?;
    socket.shutdown().await
}

/// A 503 with why the store could not be read (busy, or a round the page cannot read).
fn unavailable(e: &anyhow::Error) -> (&'static str, &'static str, String) {
    (
        "503 Service Unavailable",
        "text/plain; charset=utf-8",
        format!("the status cannot be read now: {e:#}\n"),
    )
}
