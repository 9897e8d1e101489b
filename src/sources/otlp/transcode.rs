//! OTLP protobuf messages → one OTLP/JSON export per log record (framing, not decoding: the
//! shape stays OTLP, only the encoding changes, so `claude_code_otel` reads it).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::{json, Map, Value};

/// One line per log record, each a one-record `ExportLogsServiceRequest` in OTLP/JSON.
pub fn lines_from_proto(request: &ExportLogsServiceRequest) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for resource_logs in &request.resource_logs {
        let resource = json!({
            "attributes": key_values(
                resource_logs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[])
            )
        });
        for scope_logs in &resource_logs.scope_logs {
            let scope = scope_logs
                .scope
                .as_ref()
                .map(|scope| json!({ "name": scope.name, "version": scope.version }))
                .unwrap_or_else(|| json!({}));
            for record in &scope_logs.log_records {
                lines.push(export_line(&resource, &scope, log_record(record)));
            }
        }
    }
    lines
}

/// One line per log record of an OTLP/JSON body (already parsed); `None` if its shape is not
/// that of an `ExportLogsServiceRequest`.
pub fn lines_from_json(request: &Value) -> Option<Vec<Vec<u8>>> {
    let object = request.as_object()?;
    let resource_logs = match object.get("resourceLogs") {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(value) => value.as_array()?,
    };
    let mut lines = Vec::new();
    for resource_log in resource_logs {
        let resource_log = resource_log.as_object()?;
        let resource = resource_log
            .get("resource")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let scope_logs = match resource_log.get("scopeLogs") {
            None | Some(Value::Null) => continue,
            Some(value) => value.as_array()?,
        };
        for scope_log in scope_logs {
            let scope_log = scope_log.as_object()?;
            let scope = scope_log.get("scope").cloned().unwrap_or_else(|| json!({}));
            let records = match scope_log.get("logRecords") {
                None | Some(Value::Null) => continue,
                Some(value) => value.as_array()?,
            };
            for record in records {
                lines.push(export_line(&resource, &scope, record.clone()));
            }
        }
    }
    Some(lines)
}

fn export_line(resource: &Value, scope: &Value, record: Value) -> Vec<u8> {
    json!({
        "resourceLogs": [{
            "resource": resource,
            "scopeLogs": [{ "scope": scope, "logRecords": [record] }]
        }]
    })
    .to_string()
    .into_bytes()
}

fn log_record(record: &LogRecord) -> Value {
    let mut out = Map::new();
    out.insert(
        "timeUnixNano".into(),
        Value::String(record.time_unix_nano.to_string()),
    );
    out.insert(
        "observedTimeUnixNano".into(),
        Value::String(record.observed_time_unix_nano.to_string()),
    );
    if record.severity_number != 0 {
        out.insert("severityNumber".into(), Value::from(record.severity_number));
    }
    if !record.severity_text.is_empty() {
        out.insert(
            "severityText".into(),
            Value::String(record.severity_text.clone()),
        );
    }
    if let Some(body) = &record.body {
        out.insert("body".into(), any_value_json(body));
    }
    if !record.event_name.is_empty() {
        out.insert("eventName".into(), Value::String(record.event_name.clone()));
    }
    out.insert("attributes".into(), key_values(&record.attributes));
    if !record.trace_id.is_empty() {
        out.insert(
            "traceId".into(),
            Value::String(hex::encode(&record.trace_id)),
        );
    }
    if !record.span_id.is_empty() {
        out.insert("spanId".into(), Value::String(hex::encode(&record.span_id)));
    }
    Value::Object(out)
}

fn key_values(list: &[KeyValue]) -> Value {
    Value::Array(
        list.iter()
            .map(|kv| {
                json!({
                    "key": kv.key,
                    "value": kv.value.as_ref().map(any_value_json).unwrap_or_else(|| json!({})),
                })
            })
            .collect(),
    )
}

fn any_value_json(value: &AnyValue) -> Value {
    use any_value::Value as Kind;
    match &value.value {
        // A string-table index only means something in profiles, never in logs.
        None | Some(Kind::StringValueStrindex(_)) => json!({}),
        Some(Kind::StringValue(s)) => json!({ "stringValue": s }),
        Some(Kind::BoolValue(b)) => json!({ "boolValue": b }),
        Some(Kind::IntValue(i)) => json!({ "intValue": i.to_string() }),
        Some(Kind::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(number) => json!({ "doubleValue": number }),
            None => json!({ "doubleValue": d.to_string() }),
        },
        Some(Kind::ArrayValue(array)) => json!({
            "arrayValue": { "values": array.values.iter().map(any_value_json).collect::<Vec<_>>() }
        }),
        Some(Kind::KvlistValue(list)) => {
            json!({ "kvlistValue": { "values": key_values(&list.values) } })
        }
        Some(Kind::BytesValue(bytes)) => {
            use base64::Engine;
            json!({ "bytesValue": base64::engine::general_purpose::STANDARD.encode(bytes) })
        }
    }
}
