//! Strict in-process mocks of the SIEM protocols: they check what PROTOCOLS.md requires, record
//! what they accepted, note every violation, and answer from a script.

pub mod anthropic;
pub mod elastic;
pub mod elastic_admin;
pub mod sentinel;
pub mod splunk_hec;
pub mod syslog;

use std::io::Read;

/// Undo `Content-Encoding: gzip`; `None` for an encoding the receiver does not take.
pub fn decode_body(encoding: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    match encoding {
        None | Some("identity") => Some(body.to_vec()),
        Some("gzip") => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut plain)
                .ok()?;
            Some(plain)
        }
        Some(_) => None,
    }
}

/// A TCP proxy in front of `target` that drops the first `drop_first` connections as soon as
/// they are accepted (a peer that hangs up mid-request), then forwards the rest.
pub async fn flaky_proxy(target: std::net::SocketAddr, drop_first: usize) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut accepted = 0;
        while let Ok((mut inbound, _)) = listener.accept().await {
            accepted += 1;
            if accepted <= drop_first {
                // Read a little so the client has sent its request, then hang up.
                let mut buffer = [0u8; 64];
                let _ = tokio::io::AsyncReadExt::read(&mut inbound, &mut buffer).await;
                drop(inbound);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

/// A loopback port with nothing listening on it (yet).
pub fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
