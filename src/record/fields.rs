//! Canonical field names of the audit record (SPEC §2), as they appear on the wire and in rules.

/// Unique id of the audit event (a UUID in well-behaved streams).
pub const EVENT_ID: &str = "event_id";
/// Event time, RFC 3339 UTC.
pub const TIMESTAMP: &str = "timestamp";
/// The acting user.
pub const USER_ID: &str = "user_id";
/// The assistant session.
pub const SESSION_ID: &str = "session_id";
/// The application or gateway that made the call.
pub const APPLICATION_ID: &str = "application_id";
/// Model name.
pub const MODEL: &str = "model";
/// Kind of event (`api_request`, `mcp_call`, ...).
pub const EVENT_TYPE: &str = "event_type";
/// SHA-256 hex of the prompt.
pub const PROMPT_HASH: &str = "prompt_hash";
/// SHA-256 hex of the response.
pub const RESPONSE_HASH: &str = "response_hash";
/// Input tokens.
pub const PROMPT_TOKENS: &str = "prompt_tokens";
/// Output tokens.
pub const COMPLETION_TOKENS: &str = "completion_tokens";
/// Derived: prompt plus completion tokens (never on the wire, usable in rules).
pub const TOTAL_TOKENS: &str = "total_tokens";
/// End-to-end latency in milliseconds.
pub const LATENCY_MS: &str = "latency_ms";
/// Data classification of what the event touched.
pub const DATA_CLASSIFICATION: &str = "data_classification";
/// Department of the user.
pub const DEPARTMENT: &str = "department";
/// MCP servers or tools called.
pub const MCP_INTEGRATIONS: &str = "mcp_integrations";
/// Number of MCP calls the event stands for.
pub const MCP_CALLS: &str = "mcp_calls";
/// Policy flags raised upstream.
pub const POLICY_FLAGS: &str = "policy_flags";
/// Security flags raised upstream.
pub const SECURITY_FLAGS: &str = "security_flags";
/// Client IP address.
pub const IP_ADDRESS: &str = "ip_address";
/// `success` or `error`.
pub const STATUS: &str = "status";
/// Error kind when `status = error`.
pub const ERROR_TYPE: &str = "error_type";
/// Why the model stopped.
pub const STOP_REASON: &str = "stop_reason";
/// Raw prompt text (sensitive: never forwarded by default).
pub const PROMPT_RAW: &str = "prompt_raw";
/// Raw response text (sensitive: never forwarded by default).
pub const RESPONSE_RAW: &str = "response_raw";

/// Every typed field of the canonical record, in wire order.
pub const ALL: &[&str] = &[
    EVENT_ID,
    TIMESTAMP,
    EVENT_TYPE,
    USER_ID,
    SESSION_ID,
    APPLICATION_ID,
    DEPARTMENT,
    MODEL,
    PROMPT_HASH,
    RESPONSE_HASH,
    PROMPT_TOKENS,
    COMPLETION_TOKENS,
    LATENCY_MS,
    DATA_CLASSIFICATION,
    MCP_INTEGRATIONS,
    MCP_CALLS,
    POLICY_FLAGS,
    SECURITY_FLAGS,
    IP_ADDRESS,
    STATUS,
    ERROR_TYPE,
    STOP_REASON,
    PROMPT_RAW,
    RESPONSE_RAW,
];
