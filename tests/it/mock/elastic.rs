//! A strict Elasticsearch `_bulk` endpoint for data streams (PROTOCOLS.md §2): API-key or basic
//! auth, NDJSON with `create` actions only into `logs-aiwarden.(alerts|events)-<ns>`, `@timestamp`
//! required, `_id` de-duplicated with 409, per-item answers by position, scripted failures.

use super::decode_body;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A scripted answer for the next `_bulk` request, or a scripted item failure.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Answer the whole request with this status (and `Retry-After` seconds).
    Whole {
        status: u16,
        retry_after: Option<u64>,
    },
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Scripted>,
    /// `_id` → item failures to answer before accepting it: (status, error type).
    item_failures: HashMap<String, VecDeque<(u16, &'static str)>>,
    /// Stored documents by stream, then `_id`.
    streams: BTreeMap<String, BTreeMap<String, Value>>,
    requests: usize,
    duplicates: usize,
    violations: Vec<String>,
    templates_checked: usize,
}

struct MockState {
    authorization: String,
    inner: Mutex<Inner>,
}

/// A running mock.
#[derive(Clone)]
pub struct ElasticMock {
    pub addr: SocketAddr,
    state: Arc<MockState>,
}

impl ElasticMock {
    /// Start; `authorization` is the exact header value expected.
    pub async fn start(authorization: &str) -> ElasticMock {
        let state = Arc::new(MockState {
            authorization: authorization.to_string(),
            inner: Mutex::new(Inner::default()),
        });
        let app = Router::new()
            .route("/_bulk", post(bulk))
            .route("/_index_template/{name}", get(template))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        ElasticMock { addr, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, answers: Vec<Scripted>) {
        self.state.inner.lock().unwrap().script.extend(answers);
    }

    /// Make item `_id` fail with these (status, error type) answers before it is accepted.
    pub fn fail_item(&self, id: &str, failures: Vec<(u16, &'static str)>) {
        self.state
            .inner
            .lock()
            .unwrap()
            .item_failures
            .insert(id.to_string(), failures.into());
    }

    pub fn documents(&self, stream: &str) -> BTreeMap<String, Value> {
        self.state
            .inner
            .lock()
            .unwrap()
            .streams
            .get(stream)
            .cloned()
            .unwrap_or_default()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.inner.lock().unwrap().violations.clone()
    }

    pub fn requests(&self) -> usize {
        self.state.inner.lock().unwrap().requests
    }

    pub fn duplicates(&self) -> usize {
        self.state.inner.lock().unwrap().duplicates
    }

    pub fn templates_checked(&self) -> usize {
        self.state.inner.lock().unwrap().templates_checked
    }
}

fn error(status: u16, kind: &str, reason: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({"error": {"type": kind, "reason": reason}, "status": status})),
    )
        .into_response()
}

fn stream_name_ok(index: &str) -> bool {
    ["logs-aiwarden.alerts-", "logs-aiwarden.events-"]
        .iter()
        .any(|prefix| {
            index
                .strip_prefix(prefix)
                .is_some_and(|ns| !ns.is_empty() && !ns.contains('-'))
        })
}

async fn template(State(state): State<Arc<MockState>>, Path(name): Path<String>) -> Response {
    state.inner.lock().unwrap().templates_checked += 1;
    let known = name == "logs-aiwarden.alerts" || name == "logs-aiwarden.events";
    if known {
        (
            StatusCode::OK,
            Json(json!({"index_templates": [{"name": name}]})),
        )
            .into_response()
    } else {
        error(
            404,
            "resource_not_found_exception",
            "index template matching [x] not found",
        )
    }
}

async fn bulk(State(state): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(state.authorization.as_str())
    {
        return error(401, "security_exception", "unable to authenticate user");
    }
    let mut inner = state.inner.lock().unwrap();
    inner.requests += 1;
    if let Some(Scripted::Whole {
        status,
        retry_after,
    }) = inner.script.pop_front()
    {
        let mut response = error(status, "scripted", "scripted answer");
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
        }
        return response;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/x-ndjson") {
        inner
            .violations
            .push("content-type is not application/x-ndjson".into());
    }
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !user_agent.starts_with("aiwarden/") {
        inner.violations.push(format!("user-agent {user_agent:?}"));
    }
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok());
    let Some(plain) = decode_body(encoding, &body) else {
        return error(
            400,
            "illegal_argument_exception",
            "unsupported content encoding",
        );
    };
    if !plain.ends_with(b"\n") {
        return error(
            400,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        );
    }
    let lines: Vec<&[u8]> = plain
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() || lines.len() % 2 != 0 {
        return error(
            400,
            "action_request_validation_exception",
            "Validation Failed: no requests added or odd lines",
        );
    }
    let mut items = Vec::new();
    let mut errors = false;
    for pair in lines.chunks(2) {
        let (Ok(action), Ok(document)) = (
            serde_json::from_slice::<Value>(pair[0]),
            serde_json::from_slice::<Value>(pair[1]),
        ) else {
            return error(
                400,
                "x_content_parse_exception",
                "malformed action or document",
            );
        };
        let Some(create) = action.get("create") else {
            inner
                .violations
                .push(format!("action is not create: {action}"));
            return error(
                400,
                "illegal_argument_exception",
                "only write ops with an op_type of create are allowed in data streams",
            );
        };
        let index = create["_index"].as_str().unwrap_or("").to_string();
        let id = create["_id"].as_str().unwrap_or("").to_string();
        let backing = format!(".ds-{index}-2026.11.24-000001");
        let item = if !stream_name_ok(&index) {
            inner.violations.push(format!("bad stream {index}"));
            json!({"create": {"_index": index, "_id": id, "status": 404, "error": {"type": "index_not_found_exception", "reason": "no such index"}}})
        } else if id.is_empty() {
            inner.violations.push("missing _id".into());
            json!({"create": {"_index": backing, "status": 400, "error": {"type": "illegal_argument_exception", "reason": "no _id"}}})
        } else if let Some((status, kind)) = inner
            .item_failures
            .get_mut(&id)
            .and_then(VecDeque::pop_front)
        {
            json!({"create": {"_index": backing, "_id": id, "status": status, "error": {"type": kind, "reason": "scripted"}}})
        } else if document.get("@timestamp").and_then(Value::as_str).is_none() {
            inner.violations.push(format!("{id}: no @timestamp"));
            json!({"create": {"_index": backing, "_id": id, "status": 400, "error": {"type": "document_parsing_exception", "reason": "data stream timestamp field [@timestamp] is missing"}}})
        } else if inner
            .streams
            .get(&index)
            .is_some_and(|docs| docs.contains_key(&id))
        {
            inner.duplicates += 1;
            json!({"create": {"_index": backing, "_id": id, "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "document already exists"}}})
        } else {
            inner
                .streams
                .entry(index)
                .or_default()
                .insert(id.clone(), document);
            json!({"create": {"_index": backing, "_id": id, "status": 201, "result": "created"}})
        };
        if item["create"]["status"].as_u64().unwrap_or(0) >= 300 {
            errors = true;
        }
        items.push(item);
    }
    (
        StatusCode::OK,
        Json(json!({"took": 5, "errors": errors, "items": items})),
    )
        .into_response()
}
