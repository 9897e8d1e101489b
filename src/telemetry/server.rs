//! The agent's own HTTP endpoints on a loopback address: `/metrics` (Prometheus text) and
//! `/health` (liveness). Off the data path: a slow scraper cannot slow the pipeline.

use super::{exposition, Metrics};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Serve until `stop` is cancelled; returns the bound address (port 0 picks a free one).
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
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
        );
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
