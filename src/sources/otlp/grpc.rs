//! OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export` through tonic.

use super::{transcode, Outcome, Receiver};
use crate::sources::receiver::{IntakeError, ReceiverLimits};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use std::sync::Arc;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

struct Service {
    receiver: Arc<Receiver>,
}

pub(super) fn router(receiver: Arc<Receiver>, limits: &ReceiverLimits) -> axum::Router {
    let service = LogsServiceServer::new(Service { receiver })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limits.max_body_bytes);
    tonic::service::Routes::new(service).into_axum_router()
}

/// A retryable status carrying a `RetryInfo` delay, which OTLP exporters honour.
fn retry_status(code: Code, message: &str, delay: std::time::Duration) -> Status {
    Status::with_error_details(code, message, ErrorDetails::with_retry_info(Some(delay)))
}

#[tonic::async_trait]
impl LogsService for Service {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let receiver = &self.receiver;
        let delay = receiver.intake.limits().retry_after;
        if receiver.intake.shutting_down() {
            return Err(retry_status(Code::Unavailable, "shutting down", delay));
        }
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        if !receiver.auth.allows(authorization) {
            return Err(Status::unauthenticated("missing or invalid bearer token"));
        }
        let lines = transcode::lines_from_proto(request.get_ref());
        match receiver.submit("LogsService/Export", lines).await {
            Outcome::Accepted { rejected, message } => {
                Ok(Response::new(ExportLogsServiceResponse {
                    partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                        rejected_log_records: rejected as i64,
                        error_message: message,
                    }),
                }))
            }
            Outcome::Refused(IntakeError::Saturated) => Err(retry_status(
                Code::ResourceExhausted,
                "saturated, retry later",
                delay,
            )),
            Outcome::Refused(error) => {
                Err(retry_status(Code::Unavailable, &error.to_string(), delay))
            }
        }
    }
}
