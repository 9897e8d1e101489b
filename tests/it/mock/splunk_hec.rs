//! A strict Splunk HEC (PROTOCOLS.md §1): token auth, concatenated envelopes with only the
//! contract's keys, flat indexed fields, gzip, channels and indexer acknowledgement, and the
//! documented `{"text", "code"}` answers.

use super::decode_body;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A scripted answer for the next event request (after authentication).
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Answer with this status and HEC body, optionally with `Retry-After` seconds.
    Reply {
        status: u16,
        body: Value,
        retry_after: Option<u64>,
    },
    /// Wait this long, then answer 503 code 9 without indexing anything.
    Slow(Duration),
}

/// One event request as seen.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub gzip: bool,
    pub envelopes: usize,
    pub channel: Option<String>,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Scripted>,
    accepted: Vec<Value>,
    requests: Vec<SeenRequest>,
    violations: Vec<String>,
    next_ack: u64,
    ack_polls: usize,
    /// Pending ack id → polls left before it reads true.
    pending_acks: HashMap<u64, u32>,
}

struct MockState {
    token: String,
    require_channel: bool,
    ack_after_polls: u32,
    inner: Mutex<Inner>,
    /// While set, every authenticated event request gets 503 code 9 (an outage).
    unavailable: std::sync::atomic::AtomicBool,
}

/// A running mock.
#[derive(Clone)]
pub struct HecMock {
    pub addr: SocketAddr,
    state: Arc<MockState>,
}

const ALLOWED_KEYS: &[&str] = &[
    "time",
    "host",
    "source",
    "sourcetype",
    "index",
    "event",
    "fields",
];

fn hec(status: u16, code: i64, text: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (status, Json(json!({"text": text, "code": code}))).into_response()
}

impl HecMock {
    /// Start on an ephemeral loopback port.
    pub async fn start(token: &str, require_channel: bool, ack_after_polls: u32) -> HecMock {
        Self::start_on(
            "127.0.0.1:0".parse().unwrap(),
            token,
            require_channel,
            ack_after_polls,
        )
        .await
    }

    /// Start on a given address (to come up where a sink is already trying to connect).
    pub async fn start_on(
        addr: SocketAddr,
        token: &str,
        require_channel: bool,
        ack_after_polls: u32,
    ) -> HecMock {
        let state = Arc::new(MockState {
            token: token.to_string(),
            require_channel,
            ack_after_polls,
            inner: Mutex::new(Inner::default()),
            unavailable: std::sync::atomic::AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/services/collector/event", post(event))
            .route("/services/collector/ack", post(ack))
            .route("/services/collector/health", get(health))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        HecMock { addr, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, answers: Vec<Scripted>) {
        self.state.inner.lock().unwrap().script.extend(answers);
    }

    /// Answer every event request with 503 (true) or serve normally again (false).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state
            .unavailable
            .store(unavailable, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many events were accepted so far (cheaper than cloning them).
    pub fn accepted_count(&self) -> usize {
        self.state.inner.lock().unwrap().accepted.len()
    }

    pub fn accepted(&self) -> Vec<Value> {
        self.state.inner.lock().unwrap().accepted.clone()
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.inner.lock().unwrap().requests.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.inner.lock().unwrap().violations.clone()
    }

    pub fn ack_polls(&self) -> usize {
        self.state.inner.lock().unwrap().ack_polls
    }
}

fn check_auth(state: &MockState, headers: &HeaderMap) -> Option<Response> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => Some(hec(401, 2, "Token is required")),
        Some(value) if value == format!("Splunk {}", state.token) => None,
        Some(value) if value.starts_with("Splunk ") => Some(hec(403, 4, "Invalid token")),
        Some(_) => Some(hec(401, 3, "Invalid authorization")),
    }
}

/// Check one envelope; the HEC code and text of the first problem.
fn check_envelope(envelope: &Value) -> Result<(), (i64, String)> {
    let Some(object) = envelope.as_object() else {
        return Err((6, "Invalid data format".into()));
    };
    if let Some(key) = object.keys().find(|k| !ALLOWED_KEYS.contains(&k.as_str())) {
        return Err((6, format!("Invalid data format: unexpected key {key}")));
    }
    match object.get("event") {
        None | Some(Value::Null) => return Err((12, "Event field is required".into())),
        Some(Value::String(s)) if s.is_empty() => {
            return Err((13, "Event field cannot be blank".into()))
        }
        Some(Value::Object(o)) if o.is_empty() => {
            return Err((13, "Event field cannot be blank".into()))
        }
        _ => {}
    }
    if let Some(time) = object.get("time") {
        if !time.is_number() {
            return Err((6, "Invalid data format: time".into()));
        }
    }
    if let Some(fields) = object.get("fields") {
        let flat = fields.as_object().is_some_and(|fields| {
            fields.values().all(|v| {
                v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
            })
        });
        if !flat {
            return Err((15, "Error in handling indexed fields".into()));
        }
    }
    Ok(())
}

async fn event(State(state): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = check_auth(&state, &headers) {
        return refusal;
    }
    if state.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
        return hec(503, 9, "Server is busy");
    }
    let scripted = state.inner.lock().unwrap().script.pop_front();
    match scripted {
        Some(Scripted::Reply {
            status,
            body,
            retry_after,
        }) => {
            let mut response = (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            return response;
        }
        Some(Scripted::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            return hec(503, 9, "Server is busy");
        }
        None => {}
    }
    let mut inner = state.inner.lock().unwrap();
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !user_agent.starts_with("aiwarden/") {
        inner.violations.push(format!("user-agent {user_agent:?}"));
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        inner
            .violations
            .push("content-type is not application/json".into());
    }
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok());
    let Some(plain) = decode_body(encoding, &body) else {
        return hec(415, 6, "Unsupported content encoding");
    };
    let channel = headers
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if state.require_channel && channel.is_none() {
        return hec(400, 10, "Data channel is missing");
    }
    if plain.iter().all(u8::is_ascii_whitespace) {
        inner.violations.push("empty batch sent".into());
        return hec(400, 5, "No data");
    }
    let mut envelopes = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(&plain).into_iter::<Value>();
    let mut failure = None;
    for (index, parsed) in stream.by_ref().enumerate() {
        let checked = parsed
            .map_err(|e| (6, format!("Invalid data format: {e}")))
            .and_then(|envelope| check_envelope(&envelope).map(|()| envelope));
        match checked {
            Ok(envelope) => envelopes.push(envelope),
            Err((code, text)) => {
                failure = Some((index, code, text));
                break;
            }
        }
    }
    inner.requests.push(SeenRequest {
        gzip: encoding == Some("gzip"),
        envelopes: envelopes.len(),
        channel: channel.clone(),
    });
    if let Some((index, code, text)) = failure {
        inner.violations.push(format!("envelope {index}: {text}"));
        // Envelopes before the bad one are indexed (unless acknowledgement is on: no ackId).
        if channel.is_none() {
            inner.accepted.extend(envelopes);
        }
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"text": text, "code": code, "invalid-event-number": index})),
        )
            .into_response();
    }
    inner.accepted.extend(envelopes);
    if channel.is_some() {
        let id = inner.next_ack;
        inner.next_ack += 1;
        let polls = state.ack_after_polls;
        inner.pending_acks.insert(id, polls);
        return (
            StatusCode::OK,
            Json(json!({"text": "Success", "code": 0, "ackId": id})),
        )
            .into_response();
    }
    hec(200, 0, "Success")
}

async fn ack(
    State(state): State<Arc<MockState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = check_auth(&state, &headers) {
        return refusal;
    }
    if !query.contains_key("channel") {
        return hec(400, 10, "Data channel is missing");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return hec(400, 6, "Invalid data format");
    };
    let mut inner = state.inner.lock().unwrap();
    inner.ack_polls += 1;
    let mut answer = serde_json::Map::new();
    for id in request["acks"].as_array().cloned().unwrap_or_default() {
        let Some(id) = id.as_u64() else { continue };
        let done = match inner.pending_acks.get_mut(&id) {
            Some(0) => {
                // Splunk forgets an id once it has said true.
                inner.pending_acks.remove(&id);
                true
            }
            Some(left) => {
                *left -= 1;
                false
            }
            None => false,
        };
        answer.insert(id.to_string(), Value::Bool(done));
    }
    (StatusCode::OK, Json(json!({"acks": answer}))).into_response()
}

async fn health(State(state): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(value) if value != format!("Splunk {}", state.token) => hec(400, 21, "Invalid token"),
        _ => hec(200, 17, "HEC is healthy"),
    }
}
