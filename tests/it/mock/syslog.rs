//! A strict syslog receiver (PROTOCOLS.md §4) on 127.0.0.1: RFC 6587 octet counting or newline
//! framing over TCP or TLS (RFC 5425, with a test CA made by `rcgen`), or RFC 5426 datagrams.
//! Every message is parsed per RFC 5424 (PRI, version, header fields, structured data, BOM);
//! anything malformed is noted as a violation and, on a stream, ends the connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{crypto, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// How the stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    OctetCounting,
    Newline,
}

/// One parsed RFC 5424 message.
#[derive(Debug, Clone)]
pub struct Message {
    pub pri: u8,
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    /// SD-ELEMENTs: id and params in order.
    pub sd: Vec<(String, Vec<(String, String)>)>,
    pub bom: bool,
    pub msg: String,
    /// Which connection (1-based; 0 for UDP) carried it.
    pub connection: usize,
    /// Bytes of the whole message (the datagram, or the frame without framing).
    pub len: usize,
}

impl Message {
    /// A param of the first SD-ELEMENT.
    pub fn param(&self, name: &str) -> Option<&str> {
        let (_, params) = self.sd.first()?;
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// MSG as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.msg)
            .unwrap_or_else(|e| panic!("MSG is not JSON ({e}): {}", self.msg))
    }

    /// `event_id` or `alert_id` of a JSON MSG.
    pub fn record_id(&self) -> String {
        let json = self.json();
        json["alert_id"]
            .as_str()
            .or(json["event_id"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

#[derive(Default)]
struct State {
    messages: Vec<Message>,
    violations: Vec<String>,
    connections: usize,
    drops: usize,
    drop_after: Option<usize>,
    unclean_closes: usize,
    ended: usize,
}

/// A running receiver.
#[derive(Clone)]
pub struct SyslogMock {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// A CA and a server certificate for 127.0.0.1 and localhost, made fresh for a test.
pub struct TestCa {
    pub acceptor: TlsAcceptor,
    /// The CA certificate (PEM), for `tls.ca_file`.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        let key = PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
        let config =
            ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
                .unwrap();
        TestCa {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_file,
            _dir: dir,
        }
    }
}

impl SyslogMock {
    /// A TCP receiver (plain, or TLS with `tls`) on a free port.
    pub async fn stream(framing: Framing, tls: Option<TlsAcceptor>) -> SyslogMock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, framing, tls)
    }

    /// A plain TCP receiver on a given address (to come up after the sink started).
    pub async fn stream_on(address: SocketAddr, framing: Framing) -> SyslogMock {
        let listener = TcpListener::bind(address).await.unwrap();
        Self::serve(listener, framing, None)
    }

    fn serve(listener: TcpListener, framing: Framing, tls: Option<TlsAcceptor>) -> SyslogMock {
        let mock = SyslogMock {
            address: listener.local_addr().unwrap(),
            state: Arc::default(),
        };
        let state = Arc::clone(&mock.state);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let connection = {
                    let mut state = state.lock().unwrap();
                    state.connections += 1;
                    state.connections
                };
                let state = Arc::clone(&state);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => read_stream(tcp, framing, connection, &state).await,
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => read_stream(stream, framing, connection, &state).await,
                            Err(error) => violation(&state, format!("TLS handshake: {error}")),
                        },
                    }
                    state.lock().unwrap().ended += 1;
                });
            }
        });
        mock
    }

    /// A UDP receiver on a free port.
    pub async fn udp() -> SyslogMock {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mock = SyslogMock {
            address: socket.local_addr().unwrap(),
            state: Arc::default(),
        };
        let state = Arc::clone(&mock.state);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 65_536];
            while let Ok(len) = socket.recv(&mut buffer).await {
                record(&state, &buffer[..len], 0);
            }
        });
        mock
    }

    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Close the connection (once) as soon as `count` messages have arrived in all.
    pub fn drop_after(&self, count: usize) {
        self.state.lock().unwrap().drop_after = Some(count);
    }

    pub fn messages(&self) -> Vec<Message> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    pub fn drops(&self) -> usize {
        self.state.lock().unwrap().drops
    }

    /// Connections that ended (either side closed).
    pub fn ended(&self) -> usize {
        self.state.lock().unwrap().ended
    }

    /// TLS connections that ended without close_notify.
    pub fn unclean_closes(&self) -> usize {
        self.state.lock().unwrap().unclean_closes
    }

    /// Wait until `count` messages have arrived (a flushed write is not yet a read one).
    pub async fn wait_for(&self, count: usize) {
        self.wait(Duration::from_secs(10), &format!("{count} messages"), |m| {
            m.messages().len() >= count
        })
        .await;
    }

    /// Wait until `condition` holds for the state, or fail after `timeout`.
    pub async fn wait(
        &self,
        timeout: Duration,
        what: &str,
        condition: impl Fn(&SyslogMock) -> bool,
    ) {
        let start = Instant::now();
        while !condition(self) {
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn violation(state: &Mutex<State>, text: String) {
    state.lock().unwrap().violations.push(text);
}

/// Parse and keep one message; false when it was malformed.
fn record(state: &Mutex<State>, bytes: &[u8], connection: usize) -> bool {
    match parse(bytes) {
        Ok(mut message) => {
            message.connection = connection;
            state.lock().unwrap().messages.push(message);
            true
        }
        Err(reason) => {
            violation(
                state,
                format!("{reason}: {:?}", String::from_utf8_lossy(bytes)),
            );
            false
        }
    }
}

async fn read_stream<S: AsyncRead + Unpin>(
    mut stream: S,
    framing: Framing,
    connection: usize,
    state: &Mutex<State>,
) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = match stream.read(&mut chunk).await {
            Ok(read) => read,
            Err(error) => {
                // rustls reports a close without close_notify as UnexpectedEof.
                state.lock().unwrap().unclean_closes += 1;
                if error.kind() != std::io::ErrorKind::UnexpectedEof {
                    violation(state, format!("read: {error}"));
                }
                return;
            }
        };
        if read == 0 {
            if !buffer.is_empty() {
                violation(
                    state,
                    format!(
                        "connection closed mid-frame: {:?}",
                        String::from_utf8_lossy(&buffer)
                    ),
                );
            }
            return;
        }
        buffer.extend_from_slice(&chunk[..read]);
        loop {
            let frame = match framing {
                Framing::OctetCounting => octet_frame(&buffer),
                Framing::Newline => Ok(buffer
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|end| (0, end, end + 1))),
            };
            let (start, end, next) = match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(reason) => return violation(state, reason),
            };
            if !record(state, &buffer[start..end], connection) {
                return;
            }
            buffer.drain(..next);
        }
        let mut guard = state.lock().unwrap();
        if guard
            .drop_after
            .is_some_and(|count| guard.messages.len() >= count)
        {
            guard.drop_after = None;
            guard.drops += 1;
            return; // dropping the stream closes the connection
        }
    }
}

/// RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`, MSG-LEN = NONZERO-DIGIT *DIGIT. The message's
/// start, end and the next frame's start, once complete.
fn octet_frame(buffer: &[u8]) -> Result<Option<(usize, usize, usize)>, String> {
    let Some(&first) = buffer.first() else {
        return Ok(None);
    };
    if !(b'1'..=b'9').contains(&first) {
        return Err(format!(
            "frame does not start with MSG-LEN: {:?}",
            String::from_utf8_lossy(&buffer[..buffer.len().min(40)])
        ));
    }
    let digits = buffer.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 7 {
        return Err("MSG-LEN longer than 7 digits".into());
    }
    match buffer.get(digits) {
        None => return Ok(None),
        Some(b' ') => {}
        Some(other) => return Err(format!("MSG-LEN followed by {:?}, not SP", *other as char)),
    }
    let len: usize = std::str::from_utf8(&buffer[..digits])
        .unwrap()
        .parse()
        .unwrap();
    let start = digits + 1;
    Ok((buffer.len() >= start + len).then_some((start, start + len, start + len)))
}

/// A header field: 1..=max printable US-ASCII characters, then SP.
fn token<'a>(rest: &mut &'a [u8], name: &str, max: usize) -> Result<&'a str, String> {
    let end = rest
        .iter()
        .position(|&b| b == b' ')
        .ok_or(format!("{name}: no SP after it"))?;
    let field = &rest[..end];
    if field.is_empty() || field.len() > max || !field.iter().all(|b| (33..=126).contains(b)) {
        return Err(format!("{name}: not 1..={max} printable US-ASCII"));
    }
    *rest = &rest[end + 1..];
    Ok(std::str::from_utf8(field).unwrap())
}

fn sd_name(rest: &mut &[u8], what: &str) -> Result<String, String> {
    let end = rest
        .iter()
        .position(|b| !(33..=126).contains(b) || matches!(b, b'=' | b']' | b'"'))
        .unwrap_or(rest.len());
    if end == 0 || end > 32 {
        return Err(format!("{what}: not 1..=32 allowed characters"));
    }
    let name = String::from_utf8(rest[..end].to_vec()).unwrap();
    *rest = &rest[end..];
    Ok(name)
}

fn sd_element(rest: &mut &[u8]) -> Result<(String, Vec<(String, String)>), String> {
    *rest = rest
        .strip_prefix(b"[")
        .ok_or("SD-ELEMENT must open with [")?;
    let id = sd_name(rest, "SD-ID")?;
    let mut params = Vec::new();
    loop {
        match rest.first() {
            Some(b']') => {
                *rest = &rest[1..];
                return Ok((id, params));
            }
            Some(b' ') => *rest = &rest[1..],
            _ => return Err("SD-ELEMENT: expected SP or ]".into()),
        }
        let name = sd_name(rest, "PARAM-NAME")?;
        *rest = rest
            .strip_prefix(b"=\"")
            .ok_or("PARAM-NAME must be followed by =\"")?;
        let mut value = Vec::new();
        loop {
            match rest.first().copied() {
                None => return Err("PARAM-VALUE not closed".into()),
                Some(b'"') => break,
                Some(b']') => return Err("unescaped ] in PARAM-VALUE".into()),
                Some(b'\\') if matches!(rest.get(1), Some(b'"' | b'\\' | b']')) => {
                    value.push(rest[1]);
                    *rest = &rest[2..];
                }
                Some(byte) => {
                    value.push(byte);
                    *rest = &rest[1..];
                }
            }
        }
        *rest = &rest[1..];
        params.push((
            name,
            String::from_utf8(value).map_err(|_| "PARAM-VALUE is not UTF-8")?,
        ));
    }
}

/// Parse one SYSLOG-MSG (RFC 5424 §6).
pub fn parse(bytes: &[u8]) -> Result<Message, String> {
    let mut rest = bytes.strip_prefix(b"<").ok_or("no PRI")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let pri_text = std::str::from_utf8(&rest[..digits]).unwrap();
    if !(1..=3).contains(&digits) || (digits > 1 && pri_text.starts_with('0')) {
        return Err("PRI: 1 to 3 digits without leading zero".into());
    }
    let pri: u8 = pri_text
        .parse()
        .ok()
        .filter(|pri| *pri <= 191)
        .ok_or("PRI over 191")?;
    rest = rest[digits..]
        .strip_prefix(b">1 ")
        .ok_or("PRI must be followed by >, VERSION 1 and SP")?;
    let timestamp = token(&mut rest, "TIMESTAMP", 64)?.to_string();
    if timestamp != "-" {
        chrono::DateTime::parse_from_rfc3339(&timestamp)
            .map_err(|e| format!("TIMESTAMP {timestamp}: {e}"))?;
        let fraction = timestamp
            .split('.')
            .nth(1)
            .map(|f| f.chars().take_while(char::is_ascii_digit).count());
        if !timestamp.contains('T') || fraction.is_some_and(|digits| digits > 6) {
            return Err(format!(
                "TIMESTAMP {timestamp}: uppercase T and at most 6 fraction digits"
            ));
        }
    }
    let hostname = token(&mut rest, "HOSTNAME", 255)?.to_string();
    let app_name = token(&mut rest, "APP-NAME", 48)?.to_string();
    let procid = token(&mut rest, "PROCID", 128)?.to_string();
    let msgid = token(&mut rest, "MSGID", 32)?.to_string();
    let mut sd = Vec::new();
    if let Some(after) = rest.strip_prefix(b"-") {
        rest = after;
    } else {
        while rest.first() == Some(&b'[') {
            sd.push(sd_element(&mut rest)?);
        }
        if sd.is_empty() {
            return Err("STRUCTURED-DATA: neither - nor an element".into());
        }
    }
    let msg = match rest {
        [] => &[][..],
        [b' ', msg @ ..] => msg,
        _ => return Err("STRUCTURED-DATA must be followed by SP MSG or end".into()),
    };
    let (bom, msg) = match msg.strip_prefix(b"\xEF\xBB\xBF") {
        Some(msg) => (true, msg),
        None => (false, msg),
    };
    let msg = String::from_utf8(msg.to_vec()).map_err(|_| "MSG is not UTF-8")?;
    Ok(Message {
        pri,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        sd,
        bom,
        msg,
        connection: 0,
        len: bytes.len(),
    })
}
