//! `POST /v1/events`: framing a body into lines, validating them, and answering.

use crate::decode::{DecodeError, DecodeOptions, Decoder, Format, Mapping};
use crate::sources::framing::LineSplitter;
use crate::sources::receiver::{
    content_encoding_is_gzip, media_type, read_body, BearerAuth, Intake, IntakeError,
};
use crate::sources::{Line, LineData};
use axum::extract::State as Extract;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

/// Most per-line errors listed in one answer.
const MAX_LISTED_ERRORS: usize = 100;

pub(super) struct State {
    pub intake: Intake,
    pub auth: BearerAuth,
    pub validator: Validator,
    pub max_line_bytes: usize,
}

/// Decodes lines to tell the client which ones it rejects, with the source's own settings but
/// state of its own, so validating never moves the pipeline's derived sessions.
pub(super) struct Validator {
    pub format: Format,
    pub mapping: Mapping,
    pub options: DecodeOptions,
}

impl Validator {
    fn check(&self, lines: &[Line]) -> Vec<(usize, DecodeError)> {
        let mut decoder = Decoder::new(self.format, self.mapping.clone(), self.options.clone());
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            match &line.data {
                LineData::Complete(bytes) => {
                    decoder.decode(bytes, &mut out);
                    if let Some(error) = out.drain(..).find_map(Result::err) {
                        errors.push((index + 1, error));
                    }
                }
                LineData::TooLong { length, .. } => errors.push((
                    index + 1,
                    DecodeError::new(
                        crate::decode::Reason::LineTooLong,
                        format!("record of {length} bytes is longer than max_line_bytes"),
                    ),
                )),
            }
        }
        errors
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn retry_later(status: StatusCode, seconds: u64, message: &str) -> Response {
    (
        status,
        [(header::RETRY_AFTER, seconds.to_string())],
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}

pub(super) async fn events(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let intake = &state.intake;
    let retry_after = intake.limits().retry_after_seconds();
    if intake.shutting_down() {
        return retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            retry_after,
            "shutting down",
        );
    }
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !state.auth.allows(authorization) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({ "error": "missing or invalid bearer token" })),
        )
            .into_response();
    }
    let array = match media_type(&headers).as_deref() {
        Some("application/x-ndjson" | "application/jsonl" | "application/ndjson") => false,
        Some("application/json") => true,
        _ => {
            return answer(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({ "error": "use Content-Type application/x-ndjson or application/json" }),
            )
        }
    };
    let Some(gzip) = content_encoding_is_gzip(&headers) else {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({ "error": "use Content-Encoding gzip or none" }),
        );
    };
    let body = match read_body(body, gzip, intake.limits()).await {
        Ok(body) => body,
        Err(error) => return answer(error.status(), json!({ "error": error.to_string() })),
    };
    let lines = if array {
        match frame_array(&body, state.max_line_bytes) {
            Ok(lines) => lines,
            Err(message) => return answer(StatusCode::BAD_REQUEST, json!({ "error": message })),
        }
    } else {
        let mut splitter = LineSplitter::new(0, state.max_line_bytes);
        let mut lines = Vec::new();
        splitter.push(&body, &mut lines);
        splitter.finish(&mut lines);
        lines
    };
    if lines.is_empty() {
        return answer(StatusCode::ACCEPTED, json!({ "accepted": 0 }));
    }
    let errors = state.validator.check(&lines);
    let total = lines.len();
    // Rejected lines go down the pipeline too, to be counted and dead-lettered like any bad
    // input; the answer tells the client which they were.
    match intake.submit("POST /v1/events", lines).await {
        Ok(()) => {}
        Err(IntakeError::Saturated) => {
            return retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                retry_after,
                "saturated, retry later",
            )
        }
        Err(error) => {
            return retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                retry_after,
                &error.to_string(),
            )
        }
    }
    let accepted = total - errors.len();
    if errors.is_empty() {
        return answer(StatusCode::ACCEPTED, json!({ "accepted": accepted }));
    }
    let listed: Vec<Value> = errors
        .iter()
        .take(MAX_LISTED_ERRORS)
        .map(|(line, error)| json!({ "line": line, "reason": error.reason.as_str(), "detail": error.detail }))
        .collect();
    answer(
        StatusCode::BAD_REQUEST,
        json!({ "accepted": accepted, "rejected": errors.len(), "errors": listed }),
    )
}

/// A JSON array (or a single object) into one line per element, offsets being element indexes.
fn frame_array(body: &[u8], max_line_bytes: usize) -> Result<Vec<Line>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        format!(
            "the body is not JSON (line {}, column {})",
            error.line(),
            error.column()
        )
    })?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return Err("the body must be a JSON array of records or one record".into()),
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let bytes = item.to_string().into_bytes();
            let data = if bytes.len() > max_line_bytes {
                LineData::TooLong {
                    length: bytes.len() as u64,
                    prefix: bytes[..256.min(bytes.len())].to_vec(),
                }
            } else {
                LineData::Complete(bytes)
            };
            Line {
                offset: index as u64,
                data,
            }
        })
        .collect())
}
