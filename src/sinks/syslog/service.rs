//! The transports: one TCP or TLS connection kept open (connected lazily, dropped on any error
//! and made again on the next attempt; the backoff between attempts is the driver's), or UDP
//! datagrams.
//!
//! A message counts as delivered once written to an established connection and flushed
//! (PROTOCOLS.md §4). Plain syslog has no application-level acknowledgement, so what a receiver
//! had not read when it closed the connection is lost with it; to narrow that window, a kept
//! connection is checked before each write (a receiver never sends, so a readable socket means
//! it closed) and made again when the receiver has gone.

use crate::net::http::error_chain;
use crate::sinks::driver::{Classified, ItemVerdict};
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// How long a probe waits for bytes the socket says are there (TLS tickets, alerts).
const PROBE_READ: Duration = Duration::from_millis(50);

/// An established stream.
enum Connection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection {
    fn tcp(&self) -> &TcpStream {
        match self {
            Connection::Plain(stream) => stream,
            Connection::Tls(stream) => stream.get_ref().0,
        }
    }

    async fn write_all(&mut self, body: &[u8]) -> io::Result<()> {
        match self {
            Connection::Plain(stream) => {
                stream.write_all(body).await?;
                stream.flush().await
            }
            Connection::Tls(stream) => {
                stream.write_all(body).await?;
                stream.flush().await
            }
        }
    }

    async fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(stream) => stream.read(buffer).await,
            Connection::Tls(stream) => stream.read(buffer).await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Connection::Plain(stream) => stream.shutdown().await,
            Connection::Tls(stream) => stream.shutdown().await,
        }
    }

    /// Whether the receiver still has the connection open.
    async fn still_open(&mut self) -> bool {
        let mut scratch = [0u8; 512];
        for _ in 0..8 {
            let mut peeked = [MaybeUninit::<u8>::uninit(); 1];
            // A syscall each time (MSG_PEEK on the non-blocking socket), unlike tokio's
            // readiness-cached reads, so a close that just arrived is seen.
            match socket2::SockRef::from(self.tcp()).peek(&mut peeked) {
                Ok(0) => return false,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
                // Bytes from the receiver: TLS session tickets or a close_notify. Read them
                // through the stream so TLS sees them.
                Ok(_) => match tokio::time::timeout(PROBE_READ, self.read(&mut scratch)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return false,
                    Ok(Ok(_)) => continue,
                    Err(_) => return true,
                },
            }
        }
        true
    }
}

/// TLS settings of a stream transport.
pub struct TlsSettings {
    /// The connector (trust store, client certificate).
    pub connector: TlsConnector,
    /// The name the server's certificate must carry.
    pub server_name: ServerName<'static>,
}

/// TCP or TLS: one connection, kept between requests.
pub struct StreamTransport {
    sink: String,
    host: String,
    port: u16,
    tls: Option<TlsSettings>,
    timeout: Duration,
    connection: Mutex<Option<Connection>>,
}

impl StreamTransport {
    /// A transport that connects on its first send.
    pub fn new(
        sink: &str,
        host: String,
        port: u16,
        tls: Option<TlsSettings>,
        timeout: Duration,
    ) -> Self {
        StreamTransport {
            sink: sink.to_string(),
            host,
            port,
            tls,
            timeout,
            connection: Mutex::new(None),
        }
    }

    /// Connect (and for TLS, complete the handshake) once, then close: `check-config --connect`.
    pub async fn probe(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(Ok(_connection)) => Ok(()),
            Ok(Err(reason)) => Err(reason),
            Err(_) => Err(format!("no connection within {:?}", self.timeout)),
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| format!("cannot connect: {}", error_chain(&error)))?;
        // Frames are written whole; do not hold the last one back.
        let _ = tcp.set_nodelay(true);
        let connection = match &self.tls {
            None => Connection::Plain(tcp),
            Some(tls) => {
                let stream = tls
                    .connector
                    .connect(tls.server_name.clone(), tcp)
                    .await
                    .map_err(|error| format!("TLS handshake failed: {}", error_chain(&error)))?;
                Connection::Tls(Box::new(stream))
            }
        };
        tracing::info!(sink = %self.sink, host = %self.host, port = self.port, tls = self.tls.is_some(), "Connected to the syslog receiver.");
        Ok(connection)
    }

    async fn write(&self, slot: &mut Option<Connection>, body: &[u8]) -> Result<(), String> {
        let connection = match slot {
            Some(connection) => connection,
            None => slot.insert(self.connect().await?),
        };
        connection
            .write_all(body)
            .await
            .map_err(|error| format!("write failed: {}", error_chain(&error)))
    }

    /// Write one body of frames; any failure drops the connection and asks for a retry.
    pub async fn send(&self, body: &[u8]) -> Classified {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_mut() {
            if !connection.still_open().await {
                tracing::info!(sink = %self.sink, "The syslog receiver closed the connection; reconnecting.");
                *slot = None;
            }
        }
        let outcome = match tokio::time::timeout(self.timeout, self.write(&mut slot, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!(
                "no connection and write within {}",
                crate::config::duration::format(self.timeout)
            )),
        };
        match outcome {
            Ok(()) => Classified::Delivered,
            Err(reason) => {
                // A partly written frame would corrupt the stream: start afresh next time.
                *slot = None;
                Classified::Retry {
                    after: None,
                    reason: format!("{}:{}: {reason}", self.host, self.port),
                }
            }
        }
    }

    /// Close the connection cleanly (TLS close_notify, TCP FIN) at the end of the sink.
    pub async fn close(&self) {
        if let Some(mut connection) = self.connection.lock().await.take() {
            if let Err(error) = tokio::time::timeout(self.timeout, connection.shutdown())
                .await
                .unwrap_or_else(|_| {
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "shutdown timed out",
                    ))
                })
            {
                tracing::debug!(sink = %self.sink, %error, "Closing the syslog connection failed.");
            }
        }
    }
}

/// UDP: one datagram per message, fire-and-forget.
///
/// The socket is not connected, so ICMP "port unreachable" answers are not reported back
/// (nothing could be done about them anyway): only local errors fail a send.
pub struct DatagramTransport {
    host: String,
    port: u16,
    socket: Mutex<Option<(UdpSocket, SocketAddr)>>,
}

impl DatagramTransport {
    /// A transport that opens its socket on its first send.
    pub fn new(host: String, port: u16) -> Self {
        DatagramTransport {
            host,
            port,
            socket: Mutex::new(None),
        }
    }

    async fn open(&self) -> io::Result<(UdpSocket, SocketAddr)> {
        let target = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for the host"))?;
        let local = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        Ok((UdpSocket::bind(local).await?, target))
    }

    /// Send each message as a datagram. A local send error keeps that message and the ones
    /// after it for a retry; what was sent counts as delivered (nothing more can be known).
    pub async fn send<'a>(&self, messages: impl Iterator<Item = &'a [u8]>) -> Classified {
        let mut slot = self.socket.lock().await;
        let mut verdicts = Vec::new();
        let mut failure = None;
        for message in messages {
            if failure.is_none() {
                let sent = match slot.as_ref() {
                    Some((socket, target)) => socket.send_to(message, target).await,
                    None => match self.open().await {
                        Ok(opened) => {
                            let (socket, target) = slot.insert(opened);
                            socket.send_to(message, *target).await
                        }
                        Err(error) => Err(error),
                    },
                };
                match sent {
                    Ok(_) => {
                        verdicts.push(ItemVerdict::Delivered);
                        continue;
                    }
                    Err(error) => {
                        // Resolve and bind afresh next time (the address may have changed).
                        *slot = None;
                        failure = Some(format!(
                            "{}:{}: cannot send a datagram: {}",
                            self.host,
                            self.port,
                            error_chain(&error)
                        ));
                    }
                }
            }
            verdicts.push(ItemVerdict::Retry(failure.clone().unwrap_or_default()));
        }
        match failure {
            None => Classified::Delivered,
            Some(reason) if verdicts.first() != Some(&ItemVerdict::Delivered) => {
                Classified::Retry {
                    after: None,
                    reason,
                }
            }
            Some(_) => Classified::PerItem(verdicts),
        }
    }
}
