//! The field catalogue: every field a sink emits, with its type and its name in each SIEM.
//!
//! This is the single source of truth the SIEM content packs are built and checked against.
//! The Sigma processing pipelines (`aiwarden rules export`) are generated from it, and
//! `tests/it/connectors.rs` fails when a sink emits a field the catalogue does not list (or
//! lists with another type), when a template or table declares a catalogue field with another
//! type, or when a query, dashboard or saved search in `connectors/` names a field that is not
//! here. The canonical name is the one in the canonical JSON (what Splunk receives as the event
//! body, what rules name); Elastic names are ECS paths in the `_bulk` documents; Sentinel names
//! are the columns of `AIWardenEvents_CL` / `AIWardenAlerts_CL`.
//!
//! With `[evidence]` on, every record also carries its chain stamp ([`CHAIN_FIELDS`], listed in
//! both record lists), and each sink sends checkpoint records ([`CHECKPOINT_FIELDS`]): Splunk
//! sourcetype `aiwarden:checkpoint`, the Elastic events data stream, and both Sentinel tables
//! (each stream has its own chain).

use super::fields;

/// The type of a field, as a SIEM sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// An exact string (Elastic `keyword`, Sentinel `string`).
    Keyword,
    /// Free text (Elastic `text`/`match_only_text`, Sentinel `string`).
    Text,
    /// An integer (Elastic `long`, Sentinel `long`/`int`).
    Long,
    /// A floating-point number (Elastic `double`, Sentinel `real`).
    Double,
    /// `true` or `false`.
    Boolean,
    /// A point in time (RFC 3339 text on the wire).
    Date,
    /// An IP address (Elastic `ip`; text elsewhere).
    Ip,
    /// A list of exact strings (Elastic multi-valued `keyword`, Sentinel `dynamic`, Splunk
    /// `name{}` multi-value).
    KeywordList,
    /// A JSON object of fields passed through as they came (Sentinel `dynamic`).
    Object,
}

impl FieldKind {
    /// Whether the field holds a number.
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldKind::Long | FieldKind::Double)
    }
}

/// One field of a record, named in every SIEM that receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueField {
    /// The canonical name (the JSON key of the canonical record or alert, dotted when nested),
    /// or `None` for a field only a SIEM mapping adds (ECS `event.kind`, Sentinel `Extra`).
    pub canonical: Option<&'static str>,
    /// The type.
    pub kind: FieldKind,
    /// The ECS path in the Elastic document, when the Elastic sink emits it.
    pub elastic: Option<&'static str>,
    /// The Sentinel column, when the Sentinel sink emits it.
    pub sentinel: Option<&'static str>,
}

/// The SIEMs whose names the catalogue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Siem {
    /// Splunk: the canonical JSON as the event body (`KV_MODE = json`).
    Splunk,
    /// Elastic: ECS documents in the `logs-aiwarden.*` data streams.
    Elastic,
    /// Microsoft Sentinel: the custom tables' columns.
    Sentinel,
}

impl CatalogueField {
    /// The field's name in `siem`, when that SIEM receives it.
    pub fn name_in(&self, siem: Siem) -> Option<&'static str> {
        match siem {
            Siem::Splunk => self.canonical,
            Siem::Elastic => self.elastic,
            Siem::Sentinel => self.sentinel,
        }
    }

    /// The name a Splunk search uses: JSON arrays are extracted as `name{}`.
    pub fn splunk_search_name(&self) -> Option<String> {
        self.canonical.map(|name| match self.kind {
            FieldKind::KeywordList => format!("{name}{{}}"),
            _ => name.to_string(),
        })
    }
}

const fn both(
    canonical: &'static str,
    kind: FieldKind,
    elastic: &'static str,
    sentinel: &'static str,
) -> CatalogueField {
    CatalogueField {
        canonical: Some(canonical),
        kind,
        elastic: Some(elastic),
        sentinel: Some(sentinel),
    }
}

const fn only(
    kind: FieldKind,
    elastic: Option<&'static str>,
    sentinel: Option<&'static str>,
) -> CatalogueField {
    CatalogueField {
        canonical: None,
        kind,
        elastic,
        sentinel,
    }
}

/// A field passed through from the input (kept in `extra`): a keyword in every SIEM, inside
/// Sentinel's dynamic `Extra` column.
const fn passed(
    canonical: &'static str,
    elastic: &'static str,
    sentinel: &'static str,
) -> CatalogueField {
    CatalogueField {
        canonical: Some(canonical),
        kind: FieldKind::Keyword,
        elastic: Some(elastic),
        sentinel: Some(sentinel),
    }
}

use FieldKind::{Boolean, Date, Double, Ip, Keyword, KeywordList, Long, Object, Text};

/// The evidence-chain stamp (`evidence::Stamp`): `chain` in Splunk's event JSON (and the JSON of
/// file, syslog and Kafka records), `aiwarden.chain` in Elastic documents, the dynamic `Chain`
/// column in Sentinel rows.
pub const CHAIN_FIELDS: &[CatalogueField] = &[
    CHAIN,
    CHAIN_VERSION,
    CHAIN_AGENT_ID,
    CHAIN_SINK,
    CHAIN_SEQ,
    CHAIN_PREV_HASH,
    CHAIN_HASH,
];
const CHAIN: CatalogueField = only(Object, None, Some("Chain"));
const CHAIN_VERSION: CatalogueField = both("chain.v", Long, "aiwarden.chain.v", "Chain.v");
const CHAIN_AGENT_ID: CatalogueField = both(
    "chain.agent_id",
    Keyword,
    "aiwarden.chain.agent_id",
    "Chain.agent_id",
);
const CHAIN_SINK: CatalogueField = both("chain.sink", Keyword, "aiwarden.chain.sink", "Chain.sink");
const CHAIN_SEQ: CatalogueField = both("chain.seq", Long, "aiwarden.chain.seq", "Chain.seq");
const CHAIN_PREV_HASH: CatalogueField = both(
    "chain.prev_hash",
    Keyword,
    "aiwarden.chain.prev_hash",
    "Chain.prev_hash",
);
const CHAIN_HASH: CatalogueField = both("chain.hash", Keyword, "aiwarden.chain.hash", "Chain.hash");

/// The real user behind the pseudonymous `user_id`, sent only to sinks with `real_identity =
/// true` (`privacy::REAL_USER_ID`). Events carry it in `extra`, so in Elastic it sits in the
/// canonical record (`aiwarden.event.*`); alerts name it like their other canonical fields
/// (`aiwarden.*`). Sentinel gives it a declared column in both tables rather than `Extra`.
const REAL_USER_EVENT: CatalogueField = both(
    "real_user_id",
    Keyword,
    "aiwarden.event.real_user_id",
    "RealUserId",
);
/// The real user on an alert (`AlertEntity::real_user_id`); see [`REAL_USER_EVENT`].
const REAL_USER_ALERT: CatalogueField = both(
    "real_user_id",
    Keyword,
    "aiwarden.real_user_id",
    "RealUserId",
);

/// Fields of a signed checkpoint record (`evidence::CheckpointBody` and where it sits), besides
/// its own chain stamp: Splunk sourcetype `aiwarden:checkpoint`, the Elastic events data stream,
/// a row of either Sentinel table.
pub const CHECKPOINT_FIELDS: &[CatalogueField] = &[
    both("record_type", Keyword, "aiwarden.record_type", "RecordType"),
    both("timestamp", Date, "@timestamp", "TimeGenerated"),
    both(
        "checkpoint.agent_id",
        Keyword,
        "aiwarden.checkpoint.agent_id",
        "Checkpoint.agent_id",
    ),
    both(
        "checkpoint.sink",
        Keyword,
        "aiwarden.checkpoint.sink",
        "Checkpoint.sink",
    ),
    both(
        "checkpoint.head_seq",
        Long,
        "aiwarden.checkpoint.head_seq",
        "Checkpoint.head_seq",
    ),
    both(
        "checkpoint.head_hash",
        Keyword,
        "aiwarden.checkpoint.head_hash",
        "Checkpoint.head_hash",
    ),
    both(
        "checkpoint.created",
        Date,
        "aiwarden.checkpoint.created",
        "Checkpoint.created",
    ),
    both(
        "checkpoint.key_id",
        Keyword,
        "aiwarden.checkpoint.key_id",
        "Checkpoint.key_id",
    ),
    both(
        "checkpoint.signature",
        Keyword,
        "aiwarden.checkpoint.signature",
        "Checkpoint.signature",
    ),
    only(Object, None, Some("Checkpoint")),
    only(Keyword, Some("event.kind"), None),
    only(Keyword, Some("event.action"), None),
    only(Keyword, Some("event.dataset"), None),
];

/// Fields of a normalised audit event (`aiwarden:event`, `logs-aiwarden.events-*`,
/// `AIWardenEvents_CL`).
///
/// Elastic keeps the whole canonical record under `aiwarden.event.*` (ECS fields beside it), so
/// the canonical fields map there: one rule converts to one query whatever ECS adds.
pub const EVENT_FIELDS: &[CatalogueField] = &[
    both(
        fields::EVENT_ID,
        Keyword,
        "aiwarden.event.event_id",
        "EventId",
    ),
    both(
        fields::TIMESTAMP,
        Date,
        "aiwarden.event.timestamp",
        "TimeGenerated",
    ),
    both(
        fields::EVENT_TYPE,
        Keyword,
        "aiwarden.event.event_type",
        "EventType",
    ),
    both(fields::USER_ID, Keyword, "aiwarden.event.user_id", "UserId"),
    both(
        fields::SESSION_ID,
        Keyword,
        "aiwarden.event.session_id",
        "SessionId",
    ),
    both(
        fields::APPLICATION_ID,
        Keyword,
        "aiwarden.event.application_id",
        "ApplicationId",
    ),
    both(
        fields::DEPARTMENT,
        Keyword,
        "aiwarden.event.department",
        "Department",
    ),
    both(fields::MODEL, Keyword, "aiwarden.event.model", "Model"),
    both(
        fields::PROMPT_HASH,
        Keyword,
        "aiwarden.event.prompt_hash",
        "PromptHash",
    ),
    both(
        fields::RESPONSE_HASH,
        Keyword,
        "aiwarden.event.response_hash",
        "ResponseHash",
    ),
    both(
        fields::PROMPT_TOKENS,
        Long,
        "aiwarden.event.prompt_tokens",
        "PromptTokens",
    ),
    both(
        fields::COMPLETION_TOKENS,
        Long,
        "aiwarden.event.completion_tokens",
        "CompletionTokens",
    ),
    both(
        fields::LATENCY_MS,
        Long,
        "aiwarden.event.latency_ms",
        "LatencyMs",
    ),
    both(
        fields::DATA_CLASSIFICATION,
        Keyword,
        "aiwarden.event.data_classification",
        "DataClassification",
    ),
    both(
        fields::MCP_INTEGRATIONS,
        KeywordList,
        "aiwarden.event.mcp_integrations",
        "McpIntegrations",
    ),
    both(
        fields::MCP_CALLS,
        Long,
        "aiwarden.event.mcp_calls",
        "McpCalls",
    ),
    both(
        fields::POLICY_FLAGS,
        KeywordList,
        "aiwarden.event.policy_flags",
        "PolicyFlags",
    ),
    both(
        fields::SECURITY_FLAGS,
        KeywordList,
        "aiwarden.event.security_flags",
        "SecurityFlags",
    ),
    // A valid address becomes ECS `source.ip`; the sink keeps anything else under
    // `aiwarden.event.ip_address` (listed below), so queries use `source.ip`.
    both(fields::IP_ADDRESS, Ip, "source.ip", "IpAddress"),
    both(fields::STATUS, Keyword, "aiwarden.event.status", "Status"),
    both(
        fields::ERROR_TYPE,
        Keyword,
        "aiwarden.event.error_type",
        "ErrorType",
    ),
    both(
        fields::STOP_REASON,
        Keyword,
        "aiwarden.event.stop_reason",
        "StopReason",
    ),
    both(
        fields::PROMPT_RAW,
        Text,
        "aiwarden.event.prompt_raw",
        "PromptRaw",
    ),
    both(
        fields::RESPONSE_RAW,
        Text,
        "aiwarden.event.response_raw",
        "ResponseRaw",
    ),
    // Forwarded untyped from the input when present (kept in `extra`) and named by rules:
    // `resource_owner` (cross-user-access), and what the Anthropic activity poller adds.
    passed(
        "resource_owner",
        "aiwarden.event.resource_owner",
        "Extra.resource_owner",
    ),
    passed(
        "activity_category",
        "aiwarden.event.activity_category",
        "Extra.activity_category",
    ),
    passed(
        "activity_type",
        "aiwarden.event.activity_type",
        "Extra.activity_type",
    ),
    passed("role", "aiwarden.event.role", "Extra.role"),
    passed("new_role", "aiwarden.event.new_role", "Extra.new_role"),
    REAL_USER_EVENT,
    only(Keyword, Some("aiwarden.event.ip_address"), None),
    only(Object, None, Some("Extra")),
    only(Keyword, None, Some("Deployment")),
    only(Keyword, None, Some("AgentHost")),
    only(Date, Some("@timestamp"), None),
    only(Keyword, Some("event.kind"), None),
    only(KeywordList, Some("event.category"), None),
    only(KeywordList, Some("event.type"), None),
    only(Keyword, Some("event.action"), None),
    only(Keyword, Some("event.id"), None),
    only(Keyword, Some("event.dataset"), None),
    only(Keyword, Some("event.outcome"), None),
    only(Keyword, Some("user.id"), None),
    only(KeywordList, Some("related.user"), None),
    only(Keyword, Some("host.name"), None),
    only(Keyword, Some("agent.type"), None),
    only(Keyword, Some("agent.version"), None),
    only(Keyword, Some("labels.deployment"), None),
    only(Keyword, Some("labels.department"), None),
    only(Keyword, Some("labels.application_id"), None),
    only(Keyword, Some("gen_ai.operation.name"), None),
    only(Keyword, Some("gen_ai.request.model"), None),
    only(Keyword, Some("gen_ai.system"), None),
    only(Long, Some("gen_ai.usage.input_tokens"), None),
    only(Long, Some("gen_ai.usage.output_tokens"), None),
    only(Keyword, Some("gen_ai.tool.name"), None),
    CHAIN,
    CHAIN_VERSION,
    CHAIN_AGENT_ID,
    CHAIN_SINK,
    CHAIN_SEQ,
    CHAIN_PREV_HASH,
    CHAIN_HASH,
];

/// Fields of an alert (`aiwarden:alert`, `logs-aiwarden.alerts-*`, `AIWardenAlerts_CL`).
pub const ALERT_FIELDS: &[CatalogueField] = &[
    both("alert_id", Keyword, "event.id", "AlertId"),
    both("timestamp", Date, "@timestamp", "TimeGenerated"),
    both("rule_id", Keyword, "rule.id", "RuleId"),
    // Elastic carries the version as ECS `rule.version` (a keyword): listed apart below.
    CatalogueField {
        canonical: Some("rule_version"),
        kind: Long,
        elastic: None,
        sentinel: Some("RuleVersion"),
    },
    both("severity", Keyword, "aiwarden.severity", "Severity"),
    both("title", Keyword, "rule.name", "Title"),
    both("details", Text, "message", "Details"),
    both("entity_type", Keyword, "aiwarden.entity.type", "EntityType"),
    both("entity_key", Keyword, "aiwarden.entity.key", "EntityKey"),
    both("user_id", Keyword, "user.id", "UserId"),
    REAL_USER_ALERT,
    both("session_id", Keyword, "aiwarden.session_id", "SessionId"),
    both("department", Keyword, "labels.department", "Department"),
    both(
        "application_id",
        Keyword,
        "labels.application_id",
        "ApplicationId",
    ),
    both("observed", Double, "aiwarden.observed", "Observed"),
    both("baseline", Double, "aiwarden.baseline", "Baseline"),
    both("threshold", Double, "aiwarden.threshold", "Threshold"),
    both("window", Keyword, "aiwarden.window", "Window"),
    both(
        "evidence.event_ids",
        KeywordList,
        "aiwarden.evidence.event_ids",
        "EvidenceEventIds",
    ),
    both(
        "evidence.event_count",
        Long,
        "aiwarden.evidence.event_count",
        "EvidenceEventCount",
    ),
    both("tags", KeywordList, "tags", "Tags"),
    both("source", Keyword, "aiwarden.source", "Source"),
    both("deployment", Keyword, "labels.deployment", "Deployment"),
    both("agent.host", Keyword, "host.name", "AgentHost"),
    both("agent.version", Keyword, "agent.version", "AgentVersion"),
    both(
        "suppressed_count",
        Long,
        "aiwarden.suppressed_count",
        "SuppressedCount",
    ),
    both(
        "auto_blocked",
        Boolean,
        "aiwarden.auto_blocked",
        "AutoBlocked",
    ),
    only(Keyword, Some("rule.version"), None),
    only(
        KeywordList,
        Some("threat.technique.id"),
        Some("AtlasTechniques"),
    ),
    only(KeywordList, Some("threat.technique.name"), None),
    only(Keyword, Some("threat.framework"), None),
    only(Long, Some("event.severity"), None),
    only(Keyword, Some("event.kind"), None),
    only(KeywordList, Some("event.category"), None),
    only(KeywordList, Some("event.type"), None),
    only(Keyword, Some("event.action"), None),
    only(Keyword, Some("event.dataset"), None),
    only(Keyword, Some("rule.ruleset"), None),
    only(Text, Some("rule.description"), None),
    only(Keyword, Some("agent.type"), None),
    only(KeywordList, Some("related.user"), None),
    CHAIN,
    CHAIN_VERSION,
    CHAIN_AGENT_ID,
    CHAIN_SINK,
    CHAIN_SEQ,
    CHAIN_PREV_HASH,
    CHAIN_HASH,
];

/// Indexed fields the Splunk sink sends beside the event body (HEC `fields`), by sourcetype.
pub const SPLUNK_INDEXED_ALERT: &[&str] =
    &["deployment", "rule_id", "severity", "user_id", "session_id"];
/// Indexed fields of `aiwarden:event` envelopes.
pub const SPLUNK_INDEXED_EVENT: &[&str] = &["deployment", "user_id", "session_id", "event_type"];

/// The event field with this canonical name.
pub fn event_field(canonical: &str) -> Option<&'static CatalogueField> {
    EVENT_FIELDS
        .iter()
        .find(|field| field.canonical == Some(canonical))
}

/// Every name `siem` knows for events, alerts and checkpoints, with its type.
pub fn names_in(siem: Siem) -> impl Iterator<Item = (&'static str, FieldKind)> {
    EVENT_FIELDS
        .iter()
        .chain(ALERT_FIELDS)
        .chain(CHECKPOINT_FIELDS)
        .filter_map(move |field| field.name_in(siem).map(|name| (name, field.kind)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_record_field_is_catalogued_once() {
        for name in fields::ALL {
            let found = EVENT_FIELDS
                .iter()
                .filter(|f| f.canonical == Some(*name))
                .count();
            assert_eq!(found, 1, "{name}");
        }
        assert_eq!(
            event_field(fields::POLICY_FLAGS).and_then(CatalogueField::splunk_search_name),
            Some("policy_flags{}".to_string())
        );
        assert_eq!(event_field("no_such_field"), None);
    }

    #[test]
    fn a_name_means_one_field_per_siem_and_record() {
        for (record, list) in [
            ("event", EVENT_FIELDS),
            ("alert", ALERT_FIELDS),
            ("checkpoint", CHECKPOINT_FIELDS),
        ] {
            for siem in [Siem::Splunk, Siem::Elastic, Siem::Sentinel] {
                let mut names: Vec<&str> = list.iter().filter_map(|f| f.name_in(siem)).collect();
                let all = names.len();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), all, "{record} {siem:?} has a duplicate name");
            }
        }
    }

    #[test]
    fn every_record_list_carries_the_whole_chain_stamp() {
        for list in [EVENT_FIELDS, ALERT_FIELDS] {
            for field in CHAIN_FIELDS {
                assert!(list.contains(field), "{field:?}");
            }
        }
        // A name two lists share means the same thing in both.
        for siem in [Siem::Splunk, Siem::Elastic, Siem::Sentinel] {
            for a in EVENT_FIELDS.iter().chain(ALERT_FIELDS) {
                for b in CHECKPOINT_FIELDS {
                    if a.name_in(siem).is_some() && a.name_in(siem) == b.name_in(siem) {
                        assert_eq!(a.kind, b.kind, "{siem:?} {:?}", a.name_in(siem));
                    }
                }
            }
        }
    }
}
