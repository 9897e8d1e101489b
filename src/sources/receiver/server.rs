//! The accept loop shared by the receivers: plain TCP or TLS, HTTP/1.1 and HTTP/2 (gRPC), with
//! a connection cap, handshake and header timeouts, and graceful shutdown.

use super::{ReceiverError, ReceiverLimits, ServerTlsConfig};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A bound listening socket with its TLS acceptor, ready to serve.
pub struct Listener {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Listener {
    /// Bind `address` (port 0 picks a free port) and load the certificate, if any.
    pub async fn bind(
        address: SocketAddr,
        tls: Option<&ServerTlsConfig>,
    ) -> Result<Listener, ReceiverError> {
        let tls = tls.map(ServerTlsConfig::acceptor).transpose()?;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ReceiverError::Bind { address, source })?;
        Ok(Listener { listener, tls })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }
}

/// Serve `router` on `listener` until `shutdown`, then let open requests finish.
pub async fn serve(
    listener: Listener,
    router: axum::Router,
    limits: &ReceiverLimits,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let read_timeout = limits.read_timeout;
    let tls = listener.tls.clone();
    loop {
        // Waiting for a slot before accepting leaves further clients in the kernel's queue.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "Cannot accept a connection.");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => {
                    serve_connection(TokioIo::new(stream), router, read_timeout, shutdown).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(TokioIo::new(stream), router, read_timeout, shutdown)
                                .await
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed.")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out."),
                    }
                }
            }
        });
    }
    // Every connection holds a permit: when all are back, every request has been answered.
    let _ = connections
        .acquire_many(limits.max_connections as u32)
        .await;
}

async fn serve_connection<I>(
    io: I,
    router: axum::Router,
    read_timeout: std::time::Duration,
    shutdown: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(read_timeout))
        .keep_alive_timeout(read_timeout);
    let service = TowerToHyperService::new(router);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "Receiver connection ended with an error.");
            }
        }
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
