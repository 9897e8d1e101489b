//! A strict Microsoft identity platform token endpoint and Azure Monitor Logs Ingestion API
//! (PROTOCOLS.md §3): client-credentials form, bearer tokens that expire, DCR and stream ids,
//! `api-version`, ≤ 1 MB bodies, JSON arrays whose rows carry `TimeGenerated` and only the
//! columns `connectors/sentinel/dcr.json` declares, with matching types. Like Log Analytics
//! (whose `transformKql: "source"` keeps only declared columns), it answers 204 to a row with an
//! undeclared column but stores the row without it, and records the violation: a column the
//! DCR lacks (e.g. the evidence chain's `Chain`) is missing from `rows()` as it would be from
//! the workspace.

use super::decode_body;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "0c8d5b6a-1111-2222-3333-444455556666";
pub const DCR: &str = "dcr-00000000000000000000000000000000";

/// Declared columns per stream, from the connector's DCR.
pub fn declared_columns() -> BTreeMap<String, BTreeMap<String, String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/connectors/sentinel/dcr.json");
    let dcr: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut streams = BTreeMap::new();
    for (stream, declaration) in dcr["properties"]["streamDeclarations"].as_object().unwrap() {
        let columns = declaration["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        streams.insert(stream.clone(), columns);
    }
    streams
}

fn type_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "string" => value.is_string(),
        "int" | "long" => value.is_i64() || value.is_u64(),
        "real" => value.is_number(),
        "boolean" => value.is_boolean(),
        "dynamic" => true,
        "datetime" => value
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        _ => false,
    }
}

/// A scripted answer for the next ingestion call (after authentication).
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub retry_after: Option<u64>,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, Instant>,
    tokens_issued: usize,
    script: VecDeque<Scripted>,
    rows: BTreeMap<String, Vec<Value>>,
    calls: usize,
    violations: Vec<String>,
    /// Revoke every token once (answers 401 to the next call) to test the refresh.
    revoke_next: bool,
}

struct MockState {
    secret: String,
    token_lifetime: Duration,
    columns: BTreeMap<String, BTreeMap<String, String>>,
    inner: Mutex<Inner>,
}

/// A running mock of both endpoints (authority and ingestion on one address).
#[derive(Clone)]
pub struct SentinelMock {
    pub addr: SocketAddr,
    state: Arc<MockState>,
}

impl SentinelMock {
    pub async fn start(secret: &str, token_lifetime: Duration) -> SentinelMock {
        let state = Arc::new(MockState {
            secret: secret.to_string(),
            token_lifetime,
            columns: declared_columns(),
            inner: Mutex::new(Inner::default()),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/dataCollectionRules/{dcr}/streams/{stream}", post(ingest))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        SentinelMock { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, answers: Vec<Scripted>) {
        self.state.inner.lock().unwrap().script.extend(answers);
    }

    pub fn revoke_tokens_once(&self) {
        self.state.inner.lock().unwrap().revoke_next = true;
    }

    pub fn rows(&self, stream: &str) -> Vec<Value> {
        self.state
            .inner
            .lock()
            .unwrap()
            .rows
            .get(stream)
            .cloned()
            .unwrap_or_default()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.inner.lock().unwrap().violations.clone()
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.inner.lock().unwrap().tokens_issued
    }

    pub fn calls(&self) -> usize {
        self.state.inner.lock().unwrap().calls
    }
}

async fn token(
    State(state): State<Arc<MockState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let aad = |status: u16, error: &str, description: &str| {
        (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    if tenant != TENANT {
        return aad(400, "invalid_request", "AADSTS90002: Tenant not found.");
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/x-www-form-urlencoded")
    {
        return aad(400, "invalid_request", "AADSTS900144: form body expected.");
    }
    let form: HashMap<String, String> = url_decode_form(&String::from_utf8_lossy(&body));
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad(400, "unsupported_grant_type", "AADSTS70003");
    }
    if form.get("scope").map(String::as_str) != Some("https://monitor.azure.com//.default") {
        return aad(
            400,
            "invalid_scope",
            "AADSTS70011: The provided value for scope is not valid.",
        );
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret") != Some(&state.secret)
    {
        return aad(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    let mut inner = state.inner.lock().unwrap();
    inner.tokens_issued += 1;
    let token = format!("eyJ0eXAi.token-{}", inner.tokens_issued);
    inner
        .tokens
        .insert(token.clone(), Instant::now() + state.token_lifetime);
    (StatusCode::OK, Json(json!({"token_type": "Bearer", "expires_in": state.token_lifetime.as_secs(), "access_token": token}))).into_response()
}

fn url_decode_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn ingest(
    State(state): State<Arc<MockState>>,
    Path((dcr, stream)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.inner.lock().unwrap();
    inner.calls += 1;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let valid = bearer
        .as_ref()
        .and_then(|t| inner.tokens.get(t))
        .is_some_and(|expires| Instant::now() < *expires);
    if !valid || inner.revoke_next {
        inner.revoke_next = false;
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": "InvalidToken", "message": "The provided token is invalid or expired."}}))).into_response();
    }
    if let Some(scripted) = inner.script.pop_front() {
        let mut response = (
            StatusCode::from_u16(scripted.status).unwrap(),
            Json(json!({"error": {"code": "Scripted", "message": "scripted"}})),
        )
            .into_response();
        if let Some(seconds) = scripted.retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
        }
        return response;
    }
    if query.get("api-version").map(String::as_str) != Some("2023-01-01") {
        inner
            .violations
            .push(format!("api-version {:?}", query.get("api-version")));
    }
    if headers.get("x-ms-client-request-id").is_none() {
        inner.violations.push("no x-ms-client-request-id".into());
    }
    if dcr != DCR {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "NotFound", "message": "DCR not found"}})),
        )
            .into_response();
    }
    let Some(columns) = state.columns.get(&stream) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "InvalidStream", "message": "stream not declared"}})),
        )
            .into_response();
    };
    if body.len() > 1_048_576 {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": {"code": "ContentLengthLimitExceeded", "message": "over 1 MB"}})),
        )
            .into_response();
    }
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok());
    let Some(plain) = decode_body(encoding, &body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": "InvalidContentEncoding", "message": "?"}})),
        )
            .into_response();
    };
    if plain.len() > 1_048_576 {
        inner
            .violations
            .push(format!("uncompressed body of {} bytes", plain.len()));
    }
    let rows = match serde_json::from_slice::<Value>(&plain) {
        Ok(Value::Array(rows)) if !rows.is_empty() => rows,
        Ok(Value::Array(_)) => {
            inner.violations.push("empty array".into());
            return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
        }
        _ => {
            inner.violations.push("body is not a JSON array".into());
            return StatusCode::NO_CONTENT.into_response();
        }
    };
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(object) = row.as_object() else {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"code": "InvalidData", "message": "row is not an object"}})),
            )
                .into_response();
        };
        if !object.contains_key("TimeGenerated") {
            inner.violations.push("row without TimeGenerated".into());
        }
        for (key, value) in object {
            match columns.get(key) {
                None => inner
                    .violations
                    .push(format!("{stream}: undeclared column {key}")),
                Some(kind) if !type_matches(kind, value) => inner
                    .violations
                    .push(format!("{stream}: column {key} is {kind} but got {value}")),
                _ => {}
            }
        }
        let declared: serde_json::Map<String, Value> = object
            .iter()
            .filter(|(key, _)| columns.contains_key(*key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        stored.push(Value::Object(declared));
    }
    inner.rows.entry(stream).or_default().extend(stored);
    StatusCode::NO_CONTENT.into_response()
}
