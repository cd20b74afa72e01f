//! Metrics for monitoring (`[metrics] listen`, off by default): `GET /metrics` answers in
//! the OpenMetrics text format Prometheus reads — libp2p's own metrics (connections,
//! bandwidth by protocol, identify, relay, hole punching, gossip) and the node's, read
//! from its status and its referral report at each scrape —, and `GET /health` answers 200
//! while the node answers and its store is sound, 503 otherwise. Counts only: nothing
//! personal, no names of organisations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use passerelle_node::api;
use passerelle_node::config::MetricsSection;
use passerelle_node::control::local_call;
use passerelle_node::node::{NodeHandle, StatusReport, StoreCheckState};
use passerelle_node::referral::report::Report;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// How long a scrape waits for the node.
const ASK: Duration = Duration::from_secs(10);
/// Who the node's reads are recorded as.
const BY: &str = "metrics";

/// Why the metrics cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// `[metrics] listen` is not an address.
    #[error("[metrics] listen: {0:?} is not an address and port such as 127.0.0.1:9464")]
    BadAddress(String),
    /// The address cannot be listened on.
    #[error("[metrics] listen: cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Where to serve the metrics; `None` when `[metrics]` asks for none.
pub fn address(section: &MetricsSection) -> Result<Option<SocketAddr>, MetricsError> {
    section
        .listen
        .as_deref()
        .map(|text| {
            text.trim()
                .parse()
                .map_err(|_| MetricsError::BadAddress(text.to_owned()))
        })
        .transpose()
}

#[derive(Clone)]
struct Metrics {
    handle: NodeHandle,
    libp2p: Arc<Registry>,
}

/// The metrics, served.
#[derive(Debug)]
pub struct RunningMetrics {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningMetrics {
    /// Where they are served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Serves the metrics of the node of `handle` (and its network's, `libp2p`) on `address`.
pub async fn serve(
    handle: NodeHandle,
    libp2p: Arc<Registry>,
    address: SocketAddr,
) -> Result<RunningMetrics, MetricsError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| MetricsError::Listen { address, source })?;
    let address = listener
        .local_addr()
        .map_err(|source| MetricsError::Listen { address, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(Metrics { handle, libp2p });
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "the metrics stopped being served");
        }
    });
    Ok(RunningMetrics {
        address,
        stop,
        task,
    })
}

async fn status(handle: &NodeHandle) -> Option<StatusReport> {
    tokio::time::timeout(ASK, local_call(handle, api::Status {}, BY))
        .await
        .ok()?
        .ok()
}

/// `GET /health`.
async fn health(State(metrics): State<Metrics>) -> Response {
    let Some(status) = status(&metrics.handle).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"not answering"}"#,
        )
            .into_response();
    };
    let sound = status.store_check.state != StoreCheckState::Damaged;
    let body = serde_json::json!({
        "status": if sound { "ok" } else { "store damaged" },
        "version": status.version,
        "uptime_seconds": status.uptime_seconds,
        "peers": status.network.peers.len(),
        "store_check": status.store_check.state,
    });
    (
        if sound {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge: Gauge = Gauge::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let counter: Counter = Counter::default();
    counter.inc_by(value);
    registry.register(name, help, counter);
}

fn as_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The node's own metrics, from its status and its referral report.
pub fn node_registry(status: &StatusReport, report: Option<&Report>) -> Registry {
    let mut r = Registry::with_prefix("passerelle");
    gauge(&mut r, "up", "The node answers", 1);
    gauge(
        &mut r,
        "uptime_seconds",
        "Seconds since the node started",
        as_i64(status.uptime_seconds),
    );
    gauge(
        &mut r,
        "documents",
        "Signed documents held (organisations and the network)",
        as_i64(status.documents.len()),
    );
    gauge(
        &mut r,
        "changes_stored",
        "Signed changes held, all documents",
        as_i64(status.documents.iter().map(|d| d.changes).sum::<usize>()),
    );
    gauge(
        &mut r,
        "changes_pending",
        "Received changes waiting for a change they depend on",
        as_i64(status.pending_changes),
    );
    let refused = Family::<Vec<(String, String)>, Counter>::default();
    // Every reason from zero, so that a rate over it means something from the first scrape.
    for code in passerelle_node::sync::RejectionCode::ALL {
        refused
            .get_or_create(&vec![("reason".to_owned(), code.as_str().to_owned())])
            .inc_by(0);
    }
    for (reason, n) in &status.rejected_by_reason {
        refused
            .get_or_create(&vec![("reason".to_owned(), reason.clone())])
            .inc_by(*n);
    }
    r.register(
        "changes_refused",
        "Received changes refused since start, by reason",
        refused,
    );
    counter(
        &mut r,
        "documents_received_whole",
        "Documents received whole (a bundle) since start",
        status.documents_received_whole,
    );
    let peers = Family::<Vec<(String, String)>, Gauge>::default();
    for path in ["direct", "relayed"] {
        let n = status
            .network
            .peers
            .iter()
            .filter(|p| p.relayed == (path == "relayed"))
            .count();
        peers
            .get_or_create(&vec![("path".to_owned(), path.to_owned())])
            .set(as_i64(n));
    }
    r.register("peers", "Connected peers, direct or through a relay", peers);
    let bytes = Family::<Vec<(String, String)>, Counter>::default();
    for (direction, via, n) in [
        ("in", "catch_up", status.network.sync_bytes_received),
        ("out", "catch_up", status.network.sync_bytes_sent),
        ("in", "gossip", status.network.gossip_bytes_received),
    ] {
        bytes
            .get_or_create(&vec![
                ("direction".to_owned(), direction.to_owned()),
                ("via".to_owned(), via.to_owned()),
            ])
            .inc_by(n);
    }
    r.register(
        "sync_bytes",
        "Bytes of signed changes exchanged since start",
        bytes,
    );
    counter(
        &mut r,
        "connections_refused",
        "Connections refused at the gate since start",
        status.network.connections_refused,
    );
    counter(
        &mut r,
        "peers_cut_off",
        "Peers cut off since start (misbehaviour)",
        status.network.peers_cut_off,
    );
    counter(
        &mut r,
        "network_tasks_shed",
        "Network work shed since start (too many tasks)",
        status.network.tasks_shed,
    );
    gauge(
        &mut r,
        "case_files_held",
        "Case files held (encrypted)",
        as_i64(status.case_files_held),
    );
    gauge(
        &mut r,
        "case_files_waiting",
        "Case-file deliveries and erasure requests waiting for the other node",
        as_i64(status.case_outbox),
    );
    counter(
        &mut r,
        "case_files_refused",
        "Case-file messages refused since start",
        status.case_files_refused,
    );
    gauge(
        &mut r,
        "store_bytes",
        "Size of the store on disk",
        as_i64(status.store_bytes),
    );
    gauge(
        &mut r,
        "store_damaged",
        "1 when the background check found the store damaged",
        i64::from(status.store_check.state == StoreCheckState::Damaged),
    );
    if let Some(at) = status.last_snapshot_at {
        gauge(
            &mut r,
            "last_snapshot_timestamp_seconds",
            "When a snapshot of a document was last written (since start)",
            at,
        );
    }
    if let Some(finished) = status.store_check.finished_at {
        gauge(
            &mut r,
            "store_check_finished_timestamp_seconds",
            "When the background check of the store last finished",
            finished,
        );
    }
    if let Some(report) = report {
        let referrals = Family::<Vec<(String, String)>, Gauge>::default();
        // Every count (`min_count` 1): the node's own monitoring, as the board shows them.
        for (state, n) in &report.by_status {
            if let Some(n) = n.shown() {
                referrals
                    .get_or_create(&vec![("status".to_owned(), state.clone())])
                    .set(as_i64(n));
            }
        }
        r.register("referrals", "Referrals on the board, by status", referrals);
    }
    r
}

/// `GET /metrics`.
async fn metrics(State(metrics): State<Metrics>) -> Response {
    let Some(status) = status(&metrics.handle).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the node does not answer\n",
        )
            .into_response();
    };
    let report: Option<Report> = tokio::time::timeout(
        ASK,
        local_call(
            &metrics.handle,
            api::ReferralReport {
                min_count: Some(1),
                ..api::ReferralReport::default()
            },
            BY,
        ),
    )
    .await
    .ok()
    .and_then(Result::ok);
    let mut text = String::new();
    if encode(&mut text, &metrics.libp2p).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    // One exposition: libp2p's families, then the node's, one `# EOF` at the end.
    if let Some(body) = text.strip_suffix("# EOF\n") {
        text.truncate(body.len());
    }
    if encode(&mut text, &node_registry(&status, report.as_ref())).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
