//! A strict Anthropic organisation API (FORMATS.md §5): the Compliance API Activity Feed with
//! cursor paging (`after_id` towards older, `before_id` towards newer, `has_more`, `limit` up
//! to 5000, `first_id`/`last_id`), its filters, and the usage (messages, Claude Code) and cost
//! reports paged with `next_page`/`page`. Every request must carry the key in `x-api-key`,
//! `anthropic-version: 2023-06-01` and an aiwarden `User-Agent`; anything else is a violation.
//! Answers can be scripted (429 with `retry-after`, 500, …) ahead of the real ones.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A scripted answer, served instead of the next real one.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub retry_after: Option<u64>,
}

#[derive(Default)]
struct Inner {
    key: String,
    /// Activities, newest first.
    activities: Vec<Value>,
    /// Messages-report results per bucket start (hourly buckets).
    usage: BTreeMap<String, Vec<Value>>,
    /// Claude Code entries per day (`YYYY-MM-DD`).
    claude_code: BTreeMap<String, Vec<Value>>,
    script: VecDeque<Scripted>,
    /// Every request: path and raw query.
    requests: Vec<(String, String)>,
    violations: Vec<String>,
}

/// The running mock.
#[derive(Clone)]
pub struct AnthropicMock {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl AnthropicMock {
    /// Start on a loopback port, accepting `key`.
    pub async fn start(key: &str) -> AnthropicMock {
        let inner = Arc::new(Mutex::new(Inner {
            key: key.to_string(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/compliance/activities", get(activities))
            .route("/v1/organizations/usage_report/messages", get(messages))
            .route(
                "/v1/organizations/usage_report/claude_code",
                get(claude_code),
            )
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        AnthropicMock { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Add activities that happened after every one so far (given oldest first).
    pub fn push_activities(&self, activities: Vec<Value>) {
        let mut inner = self.inner.lock().unwrap();
        for activity in activities {
            inner.activities.insert(0, activity);
        }
    }

    pub fn set_usage(&self, bucket_start: &str, results: Vec<Value>) {
        let mut inner = self.inner.lock().unwrap();
        inner.usage.insert(bucket_start.to_string(), results);
    }

    pub fn set_claude_code(&self, day: &str, entries: Vec<Value>) {
        let mut inner = self.inner.lock().unwrap();
        inner.claude_code.insert(day.to_string(), entries);
    }

    pub fn script(&self, answers: &[Scripted]) {
        self.inner
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().cloned());
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().unwrap().violations.clone()
    }
}

/// An activity in the feed's documented shape.
pub fn activity(n: usize, kind: &str, email: &str, ip: &str, extra: Value) -> Value {
    let mut value = json!({
        "id": format!("activity_{n:06}"),
        "created_at": format!("2026-11-23T{:02}:{:02}:{:02}Z", 8 + n / 3600, (n / 60) % 60, n % 60),
        "organization_id": "org_01Wv6QeBcDfGhJkLmNpQrSt8",
        "organization_uuid": "abcdef01-2345-6789-abcd-ef0123456789",
        "actor": {
            "type": "user_actor",
            "email_address": email,
            "user_id": format!("user_{email}"),
            "ip_address": ip,
            "user_agent": "Mozilla/5.0"
        },
        "type": kind,
    });
    if let (Some(object), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        object.extend(extra.clone());
    }
    value
}

fn error(status: StatusCode, kind: &str) -> Response {
    (
        status,
        Json(json!({"type": "error", "error": {"type": kind, "message": "mock"}})),
    )
        .into_response()
}

/// The checks every endpoint shares; `Err` is the answer to give instead.
fn common(
    inner: &mut Inner,
    path: &str,
    headers: &HeaderMap,
    query: &Option<String>,
) -> Result<Vec<(String, String)>, Box<Response>> {
    inner
        .requests
        .push((path.to_string(), query.clone().unwrap_or_default()));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("anthropic-version") != Some("2023-06-01") {
        inner
            .violations
            .push(format!("{path}: missing or wrong anthropic-version"));
    }
    if !header("user-agent").is_some_and(|ua| ua.starts_with("aiwarden/")) {
        inner
            .violations
            .push(format!("{path}: no aiwarden User-Agent"));
    }
    if headers.contains_key("authorization") {
        inner.violations.push(format!(
            "{path}: the key goes in x-api-key, not Authorization"
        ));
    }
    if let Some(scripted) = inner.script.pop_front() {
        let mut response = error(
            StatusCode::from_u16(scripted.status).unwrap(),
            "scripted_error",
        );
        if let Some(after) = scripted.retry_after {
            response
                .headers_mut()
                .insert("retry-after", after.to_string().parse().unwrap());
        }
        return Err(Box::new(response));
    }
    if header("x-api-key") != Some(inner.key.as_str()) {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
        )));
    }
    let pairs = form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok(pairs)
}

async fn activities(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let pairs = match common(&mut inner, "activities", &headers, &query) {
        Ok(pairs) => pairs,
        Err(answer) => return *answer,
    };
    let mut limit = 100usize;
    let (mut before, mut after, mut since) = (None, None, None);
    let mut types = Vec::new();
    let mut actors = Vec::new();
    for (key, value) in &pairs {
        match key.as_str() {
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=5000).contains(&n) => limit = n,
                _ => {
                    inner
                        .violations
                        .push(format!("limit out of range: {value}"));
                    return error(StatusCode::BAD_REQUEST, "invalid_request_error");
                }
            },
            "before_id" => before = Some(value.clone()),
            "after_id" => after = Some(value.clone()),
            "created_at.gte" => since = Some(value.clone()),
            "activity_types[]" => types.push(value.clone()),
            "actor_ids[]" => actors.push(value.clone()),
            "organization_ids[]" => {}
            other => {
                inner
                    .violations
                    .push(format!("unknown query parameter {other}"));
                return error(StatusCode::BAD_REQUEST, "invalid_request_error");
            }
        }
    }
    if before.is_some() && after.is_some() {
        inner
            .violations
            .push("before_id and after_id together".into());
        return error(StatusCode::BAD_REQUEST, "invalid_request_error");
    }
    let since = since.map(|s| chrono::DateTime::parse_from_rfc3339(&s).unwrap());
    let list: Vec<&Value> = inner
        .activities
        .iter()
        .filter(|a| types.is_empty() || types.iter().any(|t| a["type"] == t.as_str()))
        .filter(|a| actors.is_empty() || actors.iter().any(|t| a["actor"]["user_id"] == t.as_str()))
        .filter(|a| {
            // A malformed activity (a test of the reader's tolerance) is never filtered out.
            let created = a["created_at"].as_str();
            let created = created.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            since.is_none_or(|since| created.is_none_or(|created| created >= since))
        })
        .collect();
    let index_of = |id: &str| list.iter().position(|a| a["id"] == id);
    let (page, has_more): (Vec<&Value>, bool) = match (&before, &after) {
        (Some(id), _) => {
            let Some(i) = index_of(id) else {
                return error(StatusCode::BAD_REQUEST, "invalid_request_error");
            };
            // The page just newer than the cursor, still newest first.
            let start = i.saturating_sub(limit);
            (list[start..i].to_vec(), start > 0)
        }
        (_, Some(id)) => {
            let Some(i) = index_of(id) else {
                return error(StatusCode::BAD_REQUEST, "invalid_request_error");
            };
            let end = (i + 1 + limit).min(list.len());
            (list[i + 1..end].to_vec(), end < list.len())
        }
        _ => (
            list.iter().take(limit).copied().collect(),
            list.len() > limit,
        ),
    };
    let first_id = page.first().map(|a| a["id"].clone()).unwrap_or(Value::Null);
    let last_id = page.last().map(|a| a["id"].clone()).unwrap_or(Value::Null);
    Json(json!({"data": page, "has_more": has_more, "first_id": first_id, "last_id": last_id}))
        .into_response()
}

async fn messages(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let pairs = match common(&mut inner, "usage_messages", &headers, &query) {
        Ok(pairs) => pairs,
        Err(answer) => return *answer,
    };
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let parse = |s: Option<String>| s.and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok());
    let (Some(start), Some(end)) = (parse(get("starting_at")), parse(get("ending_at"))) else {
        inner
            .violations
            .push("usage: starting_at/ending_at missing or not RFC 3339".into());
        return error(StatusCode::BAD_REQUEST, "invalid_request_error");
    };
    if get("bucket_width").as_deref() != Some("1h") {
        inner
            .violations
            .push("usage: the mock serves 1h buckets".into());
    }
    let offset: usize = get("page")
        .and_then(|p| p.strip_prefix('p')?.parse().ok())
        .unwrap_or(0);
    // Hourly buckets from start to end, 24 per page.
    let mut buckets = Vec::new();
    let mut at = start;
    while at < end {
        let key = at
            .to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let next = at + chrono::TimeDelta::hours(1);
        buckets.push(json!({
            "starting_at": key,
            "ending_at": next.to_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "results": inner.usage.get(&key).cloned().unwrap_or_default(),
        }));
        at = next;
    }
    let page: Vec<Value> = buckets.iter().skip(offset).take(24).cloned().collect();
    let more = offset + 24 < buckets.len();
    Json(json!({
        "data": page,
        "has_more": more,
        "next_page": if more { Value::from(format!("p{}", offset + 24)) } else { Value::Null },
    }))
    .into_response()
}

async fn claude_code(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut inner = inner.lock().unwrap();
    let pairs = match common(&mut inner, "usage_claude_code", &headers, &query) {
        Ok(pairs) => pairs,
        Err(answer) => return *answer,
    };
    let day = pairs
        .iter()
        .find(|(k, _)| k == "starting_at")
        .map(|(_, v)| v.clone());
    let Some(day) = day.filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()) else {
        inner
            .violations
            .push("claude_code: starting_at must be YYYY-MM-DD".into());
        return error(StatusCode::BAD_REQUEST, "invalid_request_error");
    };
    let entries = inner.claude_code.get(&day).cloned().unwrap_or_default();
    Json(json!({"data": entries, "has_more": false, "next_page": null})).into_response()
}
