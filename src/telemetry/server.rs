//! The agent's own HTTP endpoints on a loopback address: `/metrics` (Prometheus text) and
//! `/health` (liveness) and `/ready` (no sink refused by its SIEM, no source stopped on an error). Off the data path: a slow scraper cannot slow the pipeline.

use super::{exposition, Metrics, SinkHealth};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// 200 while no sink is failing (healthy, or degraded and retrying), 503 when one is refused by
/// its SIEM; the body lists every sink's state and reason.
fn ready(metrics: &Metrics) -> axum::response::Response {
    let sinks = metrics.sink_health();
    let sources = metrics.source_health();
    let failing = sinks
        .values()
        .chain(sources.values())
        .any(|health| matches!(health, SinkHealth::Failing(_)));
    let states = |components: &std::collections::BTreeMap<String, SinkHealth>| {
        components
            .iter()
            .map(|(name, health)| {
                let reason = match health {
                    SinkHealth::Healthy => None,
                    SinkHealth::Degraded(reason) | SinkHealth::Failing(reason) => {
                        Some(reason.clone())
                    }
                };
                (
                    name.clone(),
                    serde_json::json!({"state": health.as_str(), "reason": reason}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
    };
    let body = serde_json::json!({
        "ready": !failing,
        "sinks": states(&sinks),
        "sources": states(&sources),
    });
    let status = if failing {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    } else {
        axum::http::StatusCode::OK
    };
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Serve until `stop` is cancelled; returns the bound address (port 0 picks a free one).
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let ready_metrics = Arc::clone(&metrics);
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&metrics);
                async move {
                    (
                        [(
                            CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        exposition::render(&metrics),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/health",
            get(|| async { ([(CONTENT_TYPE, "application/json")], "{\"status\":\"ok\"}") }),
        )
        .route("/ready", get(move || async move { ready(&ready_metrics) }));
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "The metrics endpoint stopped.");
        }
    });
    Ok(bound)
}
