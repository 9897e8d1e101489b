//! Strict mocks of the Elasticsearch and Kibana APIs `aiwarden connectors install elastic` uses:
//! `PUT _ilm/policy`, `PUT _component_template`, `PUT _index_template` (which must name
//! component templates that exist, as Elasticsearch requires), and Kibana's saved-object and
//! detection-rule imports (multipart `file`, `kbn-xsrf`, NDJSON whose objects carry the
//! attributes Kibana needs and whose references resolve). Every departure is a violation.

// The helpers hand the handler its finished answer as the error; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    policies: BTreeMap<String, Value>,
    components: BTreeMap<String, Value>,
    index_templates: BTreeMap<String, Value>,
    saved_objects: BTreeMap<(String, String), Value>,
    rules: BTreeMap<String, Value>,
    /// Every request in order, as `METHOD path`.
    log: Vec<String>,
    violations: Vec<String>,
    /// Answer the next request whose path starts with this with that status.
    fail_next: Option<(String, u16)>,
}

struct MockState {
    authorization: String,
    inner: Mutex<Inner>,
}

/// Elasticsearch and Kibana, each on its own port.
#[derive(Clone)]
pub struct ElasticAdminMock {
    pub elasticsearch: SocketAddr,
    pub kibana: SocketAddr,
    state: Arc<MockState>,
}

impl ElasticAdminMock {
    /// Start both; `authorization` is the exact header value expected by both.
    pub async fn start(authorization: &str) -> ElasticAdminMock {
        let state = Arc::new(MockState {
            authorization: authorization.to_string(),
            inner: Mutex::new(Inner::default()),
        });
        let elasticsearch = Router::new()
            .route("/_ilm/policy/{name}", put(ilm_policy))
            .route("/_component_template/{name}", put(component_template))
            .route("/_index_template/{name}", put(index_template))
            .fallback(unexpected)
            .with_state(Arc::clone(&state));
        let kibana = Router::new()
            .route("/api/saved_objects/_import", post(saved_objects_import))
            .route("/api/detection_engine/rules/_import", post(rules_import))
            .fallback(unexpected)
            .with_state(Arc::clone(&state));
        let mut addresses = Vec::new();
        for app in [elasticsearch, kibana] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addresses.push(listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        }
        ElasticAdminMock {
            elasticsearch: addresses[0],
            kibana: addresses[1],
            state,
        }
    }

    pub fn elasticsearch_url(&self) -> String {
        format!("http://{}", self.elasticsearch)
    }

    pub fn kibana_url(&self) -> String {
        format!("http://{}", self.kibana)
    }

    /// Answer the next request to a path starting with `prefix` with `status`.
    pub fn fail_next(&self, prefix: &str, status: u16) {
        self.state.inner.lock().unwrap().fail_next = Some((prefix.to_string(), status));
    }

    pub fn log(&self) -> Vec<String> {
        self.state.inner.lock().unwrap().log.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.inner.lock().unwrap().violations.clone()
    }

    pub fn index_templates(&self) -> BTreeMap<String, Value> {
        self.state.inner.lock().unwrap().index_templates.clone()
    }

    pub fn components(&self) -> BTreeSet<String> {
        self.state
            .inner
            .lock()
            .unwrap()
            .components
            .keys()
            .cloned()
            .collect()
    }

    pub fn saved_objects(&self) -> BTreeSet<(String, String)> {
        self.state
            .inner
            .lock()
            .unwrap()
            .saved_objects
            .keys()
            .cloned()
            .collect()
    }

    pub fn rules(&self) -> BTreeMap<String, Value> {
        self.state.inner.lock().unwrap().rules.clone()
    }
}

fn es_error(status: u16, kind: &str, reason: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({"error": {"type": kind, "reason": reason}, "status": status})),
    )
        .into_response()
}

/// Log the request and apply the checks every call shares: credentials, a scripted failure.
fn admit(state: &MockState, headers: &HeaderMap, method: &str, path: &str) -> Option<Response> {
    let mut inner = state.inner.lock().unwrap();
    inner.log.push(format!("{method} {path}"));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&state.authorization) {
        return Some(es_error(
            401,
            "security_exception",
            "missing authentication credentials",
        ));
    }
    if let Some((prefix, status)) = inner.fail_next.clone() {
        if path.starts_with(&prefix) {
            inner.fail_next = None;
            return Some(es_error(status, "scripted_failure", "scripted by the test"));
        }
    }
    None
}

/// A JSON body with `Content-Type: application/json`, or a 400 and a violation.
fn json_body(
    state: &MockState,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<Value, Response> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        state
            .inner
            .lock()
            .unwrap()
            .violations
            .push(format!("{what}: Content-Type {content_type}"));
        return Err(es_error(
            406,
            "media_type",
            "Content-Type header [] is not supported",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        state
            .inner
            .lock()
            .unwrap()
            .violations
            .push(format!("{what}: body is not JSON: {e}"));
        es_error(400, "parse_exception", "request body is required")
    })
}

async fn unexpected(State(state): State<Arc<MockState>>, uri: Uri) -> Response {
    state
        .inner
        .lock()
        .unwrap()
        .violations
        .push(format!("unexpected request {uri}"));
    es_error(404, "not_found", "no handler")
}

async fn ilm_policy(
    State(state): State<Arc<MockState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = admit(&state, &headers, "PUT", &format!("/_ilm/policy/{name}")) {
        return answer;
    }
    let policy = match json_body(&state, &headers, &body, "ILM policy") {
        Ok(policy) => policy,
        Err(answer) => return answer,
    };
    if !policy["policy"]["phases"].is_object() {
        state
            .inner
            .lock()
            .unwrap()
            .violations
            .push(format!("ILM policy {name} has no policy.phases"));
        return es_error(400, "x_content_parse_exception", "[policy] phases required");
    }
    state.inner.lock().unwrap().policies.insert(name, policy);
    Json(json!({"acknowledged": true})).into_response()
}

async fn component_template(
    State(state): State<Arc<MockState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = admit(
        &state,
        &headers,
        "PUT",
        &format!("/_component_template/{name}"),
    ) {
        return answer;
    }
    let template = match json_body(&state, &headers, &body, "component template") {
        Ok(template) => template,
        Err(answer) => return answer,
    };
    let mut inner = state.inner.lock().unwrap();
    if !template["template"].is_object() {
        inner
            .violations
            .push(format!("component template {name} has no template"));
        return es_error(400, "x_content_parse_exception", "[template] required");
    }
    // The settings name a lifecycle policy, which must be there first.
    if let Some(policy) = template["template"]["settings"]["index"]["lifecycle"]["name"].as_str() {
        if !inner.policies.contains_key(policy) {
            inner.violations.push(format!(
                "component template {name} before ILM policy {policy}"
            ));
        }
    }
    inner.components.insert(name, template);
    Json(json!({"acknowledged": true})).into_response()
}

async fn index_template(
    State(state): State<Arc<MockState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = admit(&state, &headers, "PUT", &format!("/_index_template/{name}")) {
        return answer;
    }
    let template = match json_body(&state, &headers, &body, "index template") {
        Ok(template) => template,
        Err(answer) => return answer,
    };
    let mut inner = state.inner.lock().unwrap();
    let missing: Vec<String> = template["composed_of"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .filter(|c| !inner.components.contains_key(*c))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !missing.is_empty() {
        inner
            .violations
            .push(format!("index template {name} before {missing:?}"));
        return es_error(
            400,
            "invalid_index_template_exception",
            &format!("index template [{name}] specifies component templates {missing:?} that do not exist"),
        );
    }
    if !template["index_patterns"].is_array() || !template["data_stream"].is_object() {
        inner.violations.push(format!(
            "index template {name} lacks index_patterns or data_stream"
        ));
        return es_error(
            400,
            "action_request_validation_exception",
            "index_patterns missing",
        );
    }
    inner.index_templates.insert(name, template);
    Json(json!({"acknowledged": true})).into_response()
}

/// The NDJSON of a Kibana import: `kbn-xsrf`, `?overwrite=true`, multipart with a `file` part.
fn import_file(
    state: &MockState,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<Vec<Value>, Response> {
    let path = uri.path().to_string();
    if let Some(answer) = admit(state, headers, "POST", &path) {
        return Err(answer);
    }
    let mut problems = Vec::new();
    if headers.get("kbn-xsrf").is_none() {
        problems.push("no kbn-xsrf header".to_string());
    }
    if uri.query() != Some("overwrite=true") {
        problems.push(format!("query {:?}, not overwrite=true", uri.query()));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or("");
    let text = String::from_utf8_lossy(body).to_string();
    let file = if boundary.is_empty() {
        problems.push(format!("Content-Type {content_type}"));
        None
    } else {
        // One part, named `file`, with an .ndjson file name, closed by the final boundary.
        text.strip_prefix(&format!("--{boundary}\r\n"))
            .and_then(|rest| rest.strip_suffix(&format!("\r\n--{boundary}--\r\n")))
            .and_then(|part| part.split_once("\r\n\r\n"))
            .filter(|(head, _)| head.contains("name=\"file\"") && head.contains(".ndjson\""))
            .map(|(_, content)| content.to_string())
    };
    let Some(file) = file else {
        problems.push("no multipart part `file` with an .ndjson file".to_string());
        state
            .inner
            .lock()
            .unwrap()
            .violations
            .extend(problems.iter().map(|p| format!("{path}: {p}")));
        return Err((
            StatusCode::BAD_REQUEST,
            Json(
                json!({"statusCode": 400, "error": "Bad Request", "message": problems.join("; ")}),
            ),
        )
            .into_response());
    };
    if !problems.is_empty() {
        state
            .inner
            .lock()
            .unwrap()
            .violations
            .extend(problems.iter().map(|p| format!("{path}: {p}")));
        return Err((
            StatusCode::BAD_REQUEST,
            Json(
                json!({"statusCode": 400, "error": "Bad Request", "message": problems.join("; ")}),
            ),
        )
            .into_response());
    }
    let mut objects = Vec::new();
    for line in file.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(object) => objects.push(object),
            Err(e) => {
                state
                    .inner
                    .lock()
                    .unwrap()
                    .violations
                    .push(format!("{path}: a line is not JSON: {e}"));
                return Err((
                    StatusCode::BAD_REQUEST,
                    Json(json!({"statusCode": 400, "message": "invalid NDJSON"})),
                )
                    .into_response());
            }
        }
    }
    Ok(objects)
}

async fn saved_objects_import(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let objects = match import_file(&state, &headers, &uri, &body) {
        Ok(objects) => objects,
        Err(answer) => return answer,
    };
    let in_file: BTreeSet<(String, String)> = objects
        .iter()
        .map(|o| {
            (
                o["type"].as_str().unwrap_or("").to_string(),
                o["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for object in &objects {
        let (kind, id) = (
            object["type"].as_str().unwrap_or(""),
            object["id"].as_str().unwrap_or(""),
        );
        let known_type = matches!(
            kind,
            "index-pattern" | "search" | "dashboard" | "visualization" | "lens"
        );
        let missing: Vec<Value> = object["references"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                !in_file.contains(&(
                    r["type"].as_str().unwrap_or("").to_string(),
                    r["id"].as_str().unwrap_or("").to_string(),
                ))
            })
            .collect();
        if !known_type || id.is_empty() || !object["attributes"]["title"].is_string() {
            errors.push(json!({"id": id, "type": kind, "error": {"type": "unsupported_type"}}));
        } else if !missing.is_empty() {
            errors.push(json!({"id": id, "type": kind, "error": {"type": "missing_references", "references": missing}}));
        } else if kind == "dashboard"
            && serde_json::from_str::<Value>(
                object["attributes"]["panelsJSON"].as_str().unwrap_or(""),
            )
            .is_err()
        {
            errors.push(json!({"id": id, "type": kind, "error": {"type": "unknown", "message": "panelsJSON is not JSON"}}));
        } else {
            accepted.push(((kind.to_string(), id.to_string()), object.clone()));
        }
    }
    let mut inner = state.inner.lock().unwrap();
    for error in &errors {
        inner
            .violations
            .push(format!("saved object refused: {error}"));
    }
    let count = accepted.len();
    inner.saved_objects.extend(accepted);
    Json(json!({"success": errors.is_empty(), "successCount": count, "errors": errors}))
        .into_response()
}

/// What Kibana's rule import requires of one rule (the rule schema's required fields).
fn rule_problems(rule: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for key in [
        "rule_id",
        "name",
        "description",
        "type",
        "query",
        "severity",
        "language",
    ] {
        if !rule[key].is_string() {
            problems.push(format!("{key} missing"));
        }
    }
    if rule["risk_score"].as_u64().is_none_or(|r| r > 100) {
        problems.push("risk_score must be 0..=100".into());
    }
    if !matches!(
        rule["severity"].as_str(),
        Some("low" | "medium" | "high" | "critical")
    ) {
        problems.push(format!("severity {}", rule["severity"]));
    }
    match (rule["type"].as_str(), rule["language"].as_str()) {
        (Some("esql"), Some("esql")) => {
            if rule.get("index").is_some() {
                problems.push("an esql rule takes no index".into());
            }
        }
        (Some("query"), Some("kuery" | "lucene")) => {
            if rule["index"].as_array().is_none_or(|i| i.is_empty()) {
                problems.push("a query rule needs index".into());
            }
        }
        other => problems.push(format!("type/language {other:?}")),
    }
    for entry in rule["threat"].as_array().cloned().unwrap_or_default() {
        let tactic = &entry["tactic"];
        if !entry["framework"].is_string()
            || !tactic["id"].is_string()
            || !tactic["name"].is_string()
            || !tactic["reference"].is_string()
        {
            problems.push(format!("threat entry {entry}"));
        }
    }
    problems
}

async fn rules_import(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let rules = match import_file(&state, &headers, &uri, &body) {
        Ok(rules) => rules,
        Err(answer) => return answer,
    };
    let mut errors = Vec::new();
    let mut inner = state.inner.lock().unwrap();
    for rule in &rules {
        let problems = rule_problems(rule);
        let id = rule["rule_id"].as_str().unwrap_or("").to_string();
        if problems.is_empty() {
            inner.rules.insert(id, rule.clone());
        } else {
            inner
                .violations
                .push(format!("rule {id} refused: {problems:?}"));
            errors.push(json!({"rule_id": id, "error": {"status_code": 400, "message": problems.join("; ")}}));
        }
    }
    Json(json!({
        "success": errors.is_empty(),
        "success_count": rules.len() - errors.len(),
        "rules_count": rules.len(),
        "errors": errors,
    }))
    .into_response()
}
