//! The canonical audit record (SPEC §2) and typed access to its fields.

use super::fields;
use super::vocabulary::{Classification, EventType};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

/// One normalised audit event, whatever format it arrived in.
///
/// Typed fields hold what the detections use; `extra` keeps every field the decoder did not
/// recognise, in arrival order, so nothing a SIEM might want is dropped. The record has no
/// `Serialize` of its own: serialise it through [`RecordView`], which makes the caller say
/// whether raw prompt and response text may leave the process.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Unique id, kept from the source so a SIEM can de-duplicate resends.
    pub event_id: String,
    /// Event time (UTC); all windows run on it.
    pub timestamp: DateTime<Utc>,
    /// What happened.
    pub event_type: EventType,
    /// The acting user.
    pub user_id: String,
    /// The session the event belongs to.
    pub session_id: String,
    /// The application or gateway.
    pub application_id: String,
    /// The model used.
    pub model: String,
    /// Department of the user, when known.
    pub department: Option<String>,
    /// SHA-256 hex of the prompt.
    pub prompt_hash: Option<String>,
    /// SHA-256 hex of the response.
    pub response_hash: Option<String>,
    /// Input tokens.
    pub prompt_tokens: Option<u64>,
    /// Output tokens.
    pub completion_tokens: Option<u64>,
    /// Latency in milliseconds.
    pub latency_ms: Option<u64>,
    /// Classification of the data the event touched.
    pub data_classification: Option<Classification>,
    /// MCP servers or tools called.
    pub mcp_integrations: Vec<String>,
    /// How many MCP calls this event stands for (an `mcp_call` event without it counts one).
    pub mcp_calls: Option<u64>,
    /// Policy flags raised upstream.
    pub policy_flags: Vec<String>,
    /// Security flags raised upstream.
    pub security_flags: Vec<String>,
    /// Client address as received (masking happens on the way out).
    pub ip_address: Option<String>,
    /// `success` or `error`.
    pub status: Option<String>,
    /// Error kind.
    pub error_type: Option<String>,
    /// Why the model stopped.
    pub stop_reason: Option<String>,
    /// Raw prompt text: scanned in memory, forwarded only where a sink allows it.
    pub prompt_raw: Option<String>,
    /// Raw response text: scanned in memory, forwarded only where a sink allows it.
    pub response_raw: Option<String>,
    /// Fields the decoder did not recognise, kept verbatim.
    pub extra: Map<String, Value>,
}

impl AuditRecord {
    /// A record with the required fields set and everything else empty (tests and decoders).
    pub fn new(
        event_id: impl Into<String>,
        timestamp: DateTime<Utc>,
        event_type: EventType,
        user_id: impl Into<String>,
        session_id: impl Into<String>,
    ) -> Self {
        AuditRecord {
            event_id: event_id.into(),
            timestamp,
            event_type,
            user_id: user_id.into(),
            session_id: session_id.into(),
            application_id: String::new(),
            model: String::new(),
            department: None,
            prompt_hash: None,
            response_hash: None,
            prompt_tokens: None,
            completion_tokens: None,
            latency_ms: None,
            data_classification: None,
            mcp_integrations: Vec::new(),
            mcp_calls: None,
            policy_flags: Vec::new(),
            security_flags: Vec::new(),
            ip_address: None,
            status: None,
            error_type: None,
            stop_reason: None,
            prompt_raw: None,
            response_raw: None,
            extra: Map::new(),
        }
    }

    /// A copy without the raw prompt and response text, for a sink that may not receive it:
    /// the text (often kilobytes) is never copied only to be dropped.
    pub fn clone_without_content(&self) -> AuditRecord {
        let AuditRecord {
            event_id,
            timestamp,
            event_type,
            user_id,
            session_id,
            application_id,
            model,
            department,
            prompt_hash,
            response_hash,
            prompt_tokens,
            completion_tokens,
            latency_ms,
            data_classification,
            mcp_integrations,
            mcp_calls,
            policy_flags,
            security_flags,
            ip_address,
            status,
            error_type,
            stop_reason,
            prompt_raw: _,
            response_raw: _,
            extra,
        } = self;
        AuditRecord {
            event_id: event_id.clone(),
            timestamp: *timestamp,
            event_type: event_type.clone(),
            user_id: user_id.clone(),
            session_id: session_id.clone(),
            application_id: application_id.clone(),
            model: model.clone(),
            department: department.clone(),
            prompt_hash: prompt_hash.clone(),
            response_hash: response_hash.clone(),
            prompt_tokens: *prompt_tokens,
            completion_tokens: *completion_tokens,
            latency_ms: *latency_ms,
            data_classification: *data_classification,
            mcp_integrations: mcp_integrations.clone(),
            mcp_calls: *mcp_calls,
            policy_flags: policy_flags.clone(),
            security_flags: security_flags.clone(),
            ip_address: ip_address.clone(),
            status: status.clone(),
            error_type: error_type.clone(),
            stop_reason: stop_reason.clone(),
            prompt_raw: None,
            response_raw: None,
            extra: extra.clone(),
        }
    }

    /// Prompt plus completion tokens; `None` when neither is known.
    pub fn total_tokens(&self) -> Option<u64> {
        match (self.prompt_tokens, self.completion_tokens) {
            (None, None) => None,
            (p, c) => Some(p.unwrap_or(0).saturating_add(c.unwrap_or(0))),
        }
    }

    /// The value of a field for rule evaluation, or `None` when it is absent.
    pub fn get(&self, field: &Field) -> Option<FieldValue<'_>> {
        match field {
            Field::EventId => Some(FieldValue::Str(&self.event_id)),
            Field::Timestamp => None,
            Field::EventType => Some(FieldValue::Str(self.event_type.as_str())),
            Field::UserId => Some(FieldValue::Str(&self.user_id)),
            Field::SessionId => Some(FieldValue::Str(&self.session_id)),
            Field::ApplicationId => non_empty(&self.application_id),
            Field::Model => non_empty(&self.model),
            Field::Department => self.department.as_deref().map(FieldValue::Str),
            Field::PromptHash => self.prompt_hash.as_deref().map(FieldValue::Str),
            Field::ResponseHash => self.response_hash.as_deref().map(FieldValue::Str),
            Field::PromptTokens => self.prompt_tokens.map(|n| FieldValue::Num(n as f64)),
            Field::CompletionTokens => self.completion_tokens.map(|n| FieldValue::Num(n as f64)),
            Field::TotalTokens => self.total_tokens().map(|n| FieldValue::Num(n as f64)),
            Field::LatencyMs => self.latency_ms.map(|n| FieldValue::Num(n as f64)),
            Field::DataClassification => self
                .data_classification
                .map(|c| FieldValue::Str(c.as_str())),
            Field::McpIntegrations => Some(FieldValue::List(&self.mcp_integrations)),
            Field::McpCalls => self.mcp_calls.map(|n| FieldValue::Num(n as f64)),
            Field::PolicyFlags => Some(FieldValue::List(&self.policy_flags)),
            Field::SecurityFlags => Some(FieldValue::List(&self.security_flags)),
            Field::IpAddress => self.ip_address.as_deref().map(FieldValue::Str),
            Field::Status => self.status.as_deref().map(FieldValue::Str),
            Field::ErrorType => self.error_type.as_deref().map(FieldValue::Str),
            Field::StopReason => self.stop_reason.as_deref().map(FieldValue::Str),
            Field::PromptRaw => self.prompt_raw.as_deref().map(FieldValue::Str),
            Field::ResponseRaw => self.response_raw.as_deref().map(FieldValue::Str),
            Field::Extra(path) => lookup_path(&self.extra, path).and_then(FieldValue::from_json),
        }
    }
}

fn non_empty(s: &str) -> Option<FieldValue<'_>> {
    if s.is_empty() {
        None
    } else {
        Some(FieldValue::Str(s))
    }
}

fn lookup_path<'a>(map: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut current = map.get(first)?;
    for key in rest {
        current = current.as_object()?.get(key)?;
    }
    Some(current)
}

/// A field of the record as named in a rule, resolved once when the rule is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// `event_id`
    EventId,
    /// `timestamp` (not comparable in conditions; use time-of-day conditions instead)
    Timestamp,
    /// `event_type`
    EventType,
    /// `user_id`
    UserId,
    /// `session_id`
    SessionId,
    /// `application_id`
    ApplicationId,
    /// `model`
    Model,
    /// `department`
    Department,
    /// `prompt_hash`
    PromptHash,
    /// `response_hash`
    ResponseHash,
    /// `prompt_tokens`
    PromptTokens,
    /// `completion_tokens`
    CompletionTokens,
    /// `total_tokens` (derived)
    TotalTokens,
    /// `latency_ms`
    LatencyMs,
    /// `data_classification`
    DataClassification,
    /// `mcp_integrations`
    McpIntegrations,
    /// `mcp_calls`
    McpCalls,
    /// `policy_flags`
    PolicyFlags,
    /// `security_flags`
    SecurityFlags,
    /// `ip_address`
    IpAddress,
    /// `status`
    Status,
    /// `error_type`
    ErrorType,
    /// `stop_reason`
    StopReason,
    /// `prompt_raw`
    PromptRaw,
    /// `response_raw`
    ResponseRaw,
    /// A field kept in `extra`, as a dotted path into nested objects.
    Extra(Vec<String>),
}

impl Field {
    /// Resolve a field name; names that are not canonical fields address `extra` by dotted path.
    pub fn parse(name: &str) -> Field {
        Field::canonical(name)
            .unwrap_or_else(|| Field::Extra(name.split('.').map(str::to_string).collect()))
    }

    /// The canonical field of this exact name (`total_tokens` included), without allocating:
    /// `None` for any other name.
    pub fn canonical(name: &str) -> Option<Field> {
        Some(match name {
            fields::EVENT_ID => Field::EventId,
            fields::TIMESTAMP => Field::Timestamp,
            fields::EVENT_TYPE => Field::EventType,
            fields::USER_ID => Field::UserId,
            fields::SESSION_ID => Field::SessionId,
            fields::APPLICATION_ID => Field::ApplicationId,
            fields::MODEL => Field::Model,
            fields::DEPARTMENT => Field::Department,
            fields::PROMPT_HASH => Field::PromptHash,
            fields::RESPONSE_HASH => Field::ResponseHash,
            fields::PROMPT_TOKENS => Field::PromptTokens,
            fields::COMPLETION_TOKENS => Field::CompletionTokens,
            fields::TOTAL_TOKENS => Field::TotalTokens,
            fields::LATENCY_MS => Field::LatencyMs,
            fields::DATA_CLASSIFICATION => Field::DataClassification,
            fields::MCP_INTEGRATIONS => Field::McpIntegrations,
            fields::MCP_CALLS => Field::McpCalls,
            fields::POLICY_FLAGS => Field::PolicyFlags,
            fields::SECURITY_FLAGS => Field::SecurityFlags,
            fields::IP_ADDRESS => Field::IpAddress,
            fields::STATUS => Field::Status,
            fields::ERROR_TYPE => Field::ErrorType,
            fields::STOP_REASON => Field::StopReason,
            fields::PROMPT_RAW => Field::PromptRaw,
            fields::RESPONSE_RAW => Field::ResponseRaw,
            _ => return None,
        })
    }
}

/// A borrowed field value as rules see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// Text.
    Str(&'a str),
    /// Any number (tokens, counts, latency).
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// A list of strings (flags, integrations).
    List(&'a [String]),
    /// Any other JSON value from `extra` (arrays of mixed values, objects).
    Json(&'a Value),
}

impl<'a> FieldValue<'a> {
    fn from_json(value: &'a Value) -> Option<Self> {
        match value {
            Value::Null => None,
            Value::Bool(b) => Some(FieldValue::Bool(*b)),
            Value::Number(n) => n.as_f64().map(FieldValue::Num),
            Value::String(s) => Some(FieldValue::Str(s)),
            other => Some(FieldValue::Json(other)),
        }
    }

    /// The value as a number, when it is one (or a string holding one).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Num(n) => Some(*n),
            FieldValue::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as text, when it is text.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            FieldValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A record prepared for serialisation, with an explicit decision on raw content.
///
/// Raw prompt and response text is written only when `include_content` is true, which a sink
/// sets only when its operator enabled content forwarding.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// The record to write.
    pub record: &'a AuditRecord,
    /// Whether `prompt_raw` and `response_raw` may be written.
    pub include_content: bool,
}

impl RecordView<'_> {
    /// A view that never writes raw content.
    pub fn without_content(record: &AuditRecord) -> RecordView<'_> {
        RecordView {
            record,
            include_content: false,
        }
    }
}

impl<'a> RecordView<'a> {
    /// The same view without `ip_address`, for a sink that carries a valid address in a field
    /// of its own (ECS `source.ip`).
    pub fn without_ip_address(self) -> impl Serialize + 'a {
        WithoutIpAddress(self)
    }
}

impl Serialize for RecordView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_record(self, true, serializer)
    }
}

struct WithoutIpAddress<'a>(RecordView<'a>);

impl Serialize for WithoutIpAddress<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_record(&self.0, false, serializer)
    }
}

fn serialize_record<S: Serializer>(
    view: &RecordView<'_>,
    with_ip_address: bool,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let r = view.record;
    let mut map = serializer.serialize_map(None)?;
    map.serialize_entry(fields::EVENT_ID, &r.event_id)?;
    map.serialize_entry(
        fields::TIMESTAMP,
        &r.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
    )?;
    map.serialize_entry(fields::EVENT_TYPE, r.event_type.as_str())?;
    map.serialize_entry(fields::USER_ID, &r.user_id)?;
    map.serialize_entry(fields::SESSION_ID, &r.session_id)?;
    map.serialize_entry(fields::APPLICATION_ID, &r.application_id)?;
    if let Some(v) = &r.department {
        map.serialize_entry(fields::DEPARTMENT, v)?;
    }
    map.serialize_entry(fields::MODEL, &r.model)?;
    if let Some(v) = &r.prompt_hash {
        map.serialize_entry(fields::PROMPT_HASH, v)?;
    }
    if let Some(v) = &r.response_hash {
        map.serialize_entry(fields::RESPONSE_HASH, v)?;
    }
    if let Some(v) = r.prompt_tokens {
        map.serialize_entry(fields::PROMPT_TOKENS, &v)?;
    }
    if let Some(v) = r.completion_tokens {
        map.serialize_entry(fields::COMPLETION_TOKENS, &v)?;
    }
    if let Some(v) = r.latency_ms {
        map.serialize_entry(fields::LATENCY_MS, &v)?;
    }
    if let Some(v) = r.data_classification {
        map.serialize_entry(fields::DATA_CLASSIFICATION, v.as_str())?;
    }
    if !r.mcp_integrations.is_empty() {
        map.serialize_entry(fields::MCP_INTEGRATIONS, &r.mcp_integrations)?;
    }
    if let Some(v) = r.mcp_calls {
        map.serialize_entry(fields::MCP_CALLS, &v)?;
    }
    if !r.policy_flags.is_empty() {
        map.serialize_entry(fields::POLICY_FLAGS, &r.policy_flags)?;
    }
    if !r.security_flags.is_empty() {
        map.serialize_entry(fields::SECURITY_FLAGS, &r.security_flags)?;
    }
    if let Some(v) = r.ip_address.as_ref().filter(|_| with_ip_address) {
        map.serialize_entry(fields::IP_ADDRESS, v)?;
    }
    if let Some(v) = &r.status {
        map.serialize_entry(fields::STATUS, v)?;
    }
    if let Some(v) = &r.error_type {
        map.serialize_entry(fields::ERROR_TYPE, v)?;
    }
    if let Some(v) = &r.stop_reason {
        map.serialize_entry(fields::STOP_REASON, v)?;
    }
    if view.include_content {
        if let Some(v) = &r.prompt_raw {
            map.serialize_entry(fields::PROMPT_RAW, v)?;
        }
        if let Some(v) = &r.response_raw {
            map.serialize_entry(fields::RESPONSE_RAW, v)?;
        }
    }
    for (key, value) in &r.extra {
        map.serialize_entry(key, value)?;
    }
    map.end()
}
