//! OTLP/HTTP: `POST /v1/logs`, answered in the request's encoding.

use super::{transcode, Outcome, Receiver};
use crate::sources::receiver::{content_encoding_is_gzip, media_type, read_body, IntakeError};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use serde_json::json;
use std::sync::Arc;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

pub(super) fn router(receiver: Arc<Receiver>) -> axum::Router {
    axum::Router::new()
        .route("/v1/logs", axum::routing::post(export))
        .with_state(receiver)
}

/// A `google.rpc.Status` body in the request's encoding, with `Retry-After` when retryable.
fn failure(
    status: StatusCode,
    code: tonic::Code,
    message: &str,
    json_body: bool,
    retry: Option<u64>,
) -> Response {
    let body = if json_body {
        json!({ "code": code as i32, "message": message })
            .to_string()
            .into_bytes()
    } else {
        tonic_types::Status {
            code: code as i32,
            message: message.to_string(),
            details: Vec::new(),
        }
        .encode_to_vec()
    };
    let content_type = if json_body { JSON } else { PROTOBUF };
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(seconds) = retry {
        if let Ok(value) = seconds.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

async fn export(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let limits = receiver.intake.limits();
    let retry = Some(limits.retry_after_seconds());
    let json_body = match media_type(&headers).as_deref() {
        Some(PROTOBUF) => false,
        Some(JSON) => true,
        _ => {
            return failure(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tonic::Code::InvalidArgument,
                "use Content-Type application/x-protobuf or application/json",
                false,
                None,
            )
        }
    };
    if receiver.intake.shutting_down() {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            tonic::Code::Unavailable,
            "shutting down",
            json_body,
            retry,
        );
    }
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !receiver.auth.allows(authorization) {
        return failure(
            StatusCode::UNAUTHORIZED,
            tonic::Code::Unauthenticated,
            "missing or invalid bearer token",
            json_body,
            None,
        );
    }
    let Some(gzip) = content_encoding_is_gzip(&headers) else {
        return failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
            "use Content-Encoding gzip or none",
            json_body,
            None,
        );
    };
    let body = match read_body(body, gzip, limits).await {
        Ok(body) => body,
        Err(error) => {
            return failure(
                error.status(),
                tonic::Code::InvalidArgument,
                &error.to_string(),
                json_body,
                None,
            )
        }
    };
    let lines = if json_body {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .as_ref()
            .and_then(transcode::lines_from_json)
    } else {
        ExportLogsServiceRequest::decode(body.as_slice())
            .ok()
            .map(|request| transcode::lines_from_proto(&request))
    };
    let Some(lines) = lines else {
        return failure(
            StatusCode::BAD_REQUEST,
            tonic::Code::InvalidArgument,
            "the body is not an ExportLogsServiceRequest",
            json_body,
            None,
        );
    };
    match receiver.submit("POST /v1/logs", lines).await {
        Outcome::Accepted { rejected, message } => {
            let partial_success = (rejected > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected as i64,
                error_message: message.clone(),
            });
            if json_body {
                let body = match partial_success {
                    Some(_) => {
                        json!({ "partialSuccess": { "rejectedLogRecords": rejected.to_string(), "errorMessage": message } })
                    }
                    None => json!({}),
                };
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, JSON)],
                    body.to_string(),
                )
                    .into_response()
            } else {
                let body = ExportLogsServiceResponse { partial_success }.encode_to_vec();
                (StatusCode::OK, [(header::CONTENT_TYPE, PROTOBUF)], body).into_response()
            }
        }
        Outcome::Refused(IntakeError::Saturated) => failure(
            StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::ResourceExhausted,
            "saturated, retry later",
            json_body,
            retry,
        ),
        Outcome::Refused(error) => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            tonic::Code::Unavailable,
            &error.to_string(),
            json_body,
            retry,
        ),
    }
}
