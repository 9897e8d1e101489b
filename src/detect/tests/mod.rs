//! Tests of the detect module: small data-driven helpers, explicit event times.

mod baseline;
mod calendar;
mod conditions;
mod distinct;
mod engine;
mod first_seen;
mod operators;
mod pack;
mod rules;
mod snapshot;
mod syntax;
mod weeks;
mod window;
mod zscore;

use super::{Engine, EngineSettings, Entitlements, RuleFile, RuleSet};
use crate::record::{AgentInfo, Alert, AuditRecord, EventType};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The default rule pack, as shipped.
const MCP_VOLUME: &str = include_str!("../../../rules/mcp-volume.toml");
const TOKEN_SPIKE: &str = include_str!("../../../rules/token-spike.toml");
const RESTRICTED: &str = include_str!("../../../rules/restricted-unauthorised.toml");
const REQUEST_VOLUME: &str = include_str!("../../../rules/request-volume.toml");
const OFF_HOURS: &str = include_str!("../../../rules/off-hours-sensitive.toml");
const MCP_AUTH: &str = include_str!("../../../rules/mcp-auth-failures.toml");
const CROSS_USER: &str = include_str!("../../../rules/cross-user-access.toml");
const PROMPT_INJECTION: &str = include_str!("../../../rules/prompt-injection.toml");
const PROMPT_LEAK: &str = include_str!("../../../rules/system-prompt-leak.toml");
const CALENDARS: &str = include_str!("../../../rules/calendars.toml");
const ANTHROPIC_RULES: [(&str, &str); 8] = [
    (
        "anthropic-api-key-usage-spike.toml",
        include_str!("../../../rules/anthropic-api-key-usage-spike.toml"),
    ),
    (
        "anthropic-claude-code-usage-spike.toml",
        include_str!("../../../rules/anthropic-claude-code-usage-spike.toml"),
    ),
    (
        "anthropic-file-burst.toml",
        include_str!("../../../rules/anthropic-file-burst.toml"),
    ),
    (
        "anthropic-key-new-creator.toml",
        include_str!("../../../rules/anthropic-key-new-creator.toml"),
    ),
    (
        "anthropic-key-off-hours.toml",
        include_str!("../../../rules/anthropic-key-off-hours.toml"),
    ),
    (
        "anthropic-new-network.toml",
        include_str!("../../../rules/anthropic-new-network.toml"),
    ),
    (
        "anthropic-role-escalation.toml",
        include_str!("../../../rules/anthropic-role-escalation.toml"),
    ),
    (
        "anthropic-workspace-cost-spike.toml",
        include_str!("../../../rules/anthropic-workspace-cost-spike.toml"),
    ),
];
const TEMPLATE: &str = include_str!("../../../rules/template.toml.example");

/// 2024-05-01T00:00:00Z, the start of every test's event time.
const BASE: i64 = 1_714_521_600;

/// Event time `secs` seconds after [`BASE`].
fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(BASE + secs, 0).unwrap()
}

/// An `api_request` of `user` in `session` at `secs`.
fn request(id: &str, secs: i64, user: &str, session: &str) -> AuditRecord {
    AuditRecord::new(id, at(secs), EventType::ApiRequest, user, session)
}

/// An `mcp_call` standing for one call, in session `session` at `secs`.
fn mcp(id: &str, secs: i64, session: &str) -> AuditRecord {
    let mut record = AuditRecord::new(id, at(secs), EventType::McpCall, "u-1", session);
    record.mcp_calls = Some(1);
    record
}

fn settings() -> EngineSettings {
    EngineSettings {
        agent: AgentInfo {
            host: "test-host".into(),
            version: "0.0.0".into(),
        },
        deployment: "claude_deployment".into(),
        allowed_lateness: Duration::from_secs(300),
        max_entities_per_rule: 1000,
        evidence_sample: 3,
    }
}

fn files(rules: &[(&str, &str)]) -> Vec<RuleFile> {
    rules
        .iter()
        .map(|(name, text)| RuleFile {
            name: (*name).to_string(),
            text: (*text).to_string(),
        })
        .collect()
}

fn engine_with(
    rules: &[(&str, &str)],
    entitlements: Entitlements,
    settings: EngineSettings,
) -> Engine {
    let rules = RuleSet::parse(&files(rules)).unwrap();
    Engine::new(rules, entitlements, settings)
}

fn engine(rule: &str) -> Engine {
    engine_with(&[("rule.toml", rule)], Entitlements::default(), settings())
}

/// Feed every record; return every alert.
fn run(engine: &mut Engine, records: &[AuditRecord]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for record in records {
        engine.process(record, &mut alerts);
    }
    alerts
}

/// `n` MCP calls in `session`, spread evenly over `[start, start + span)` seconds.
fn burst(session: &str, n: usize, start: i64, span: i64) -> Vec<AuditRecord> {
    (0..n)
        .map(|i| {
            mcp(
                &format!("{session}-{i}"),
                start + span * i as i64 / n as i64,
                session,
            )
        })
        .collect()
}
