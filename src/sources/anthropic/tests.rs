//! Pure parts of the `anthropic` source: mapping, categories, networks, buckets, cursor.

use super::activity::{activity_line, categorise, ip_network, Category};
use super::config::{AnthropicSourceConfig, StartAt};
use super::cursor::CursorStore;
use super::usage::{buckets, final_prefix, Report};
use crate::decode::decode_native;
use crate::record::EventType;
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

#[test]
fn activity_types_fall_into_categories_by_their_words() {
    let check = |name: &str, expected: Option<Category>| {
        assert_eq!(categorise(name), expected, "{name}");
    };
    check("admin_api_key_created", Some(Category::KeyCreated));
    check("api_key_deleted", Some(Category::KeyDeleted));
    check("api_key_updated", Some(Category::KeyChanged));
    check("org_member_role_updated", Some(Category::RoleChange));
    check("workspace_permission_granted", Some(Category::RoleChange));
    check(
        "organization_settings_updated",
        Some(Category::SettingsChange),
    );
    check("user_logged_in", Some(Category::SignIn));
    check("claude_file_uploaded", Some(Category::FileUpload));
    check("claude_file_downloaded", Some(Category::FileDownload));
    check("claude_chat_created", None);
    check("compliance_api_accessed", None);
    assert!(Category::RoleChange.is_policy() && !Category::SignIn.is_policy());
}

#[test]
fn networks_are_the_slash_24_or_slash_48() {
    assert_eq!(
        ip_network("203.0.113.77").as_deref(),
        Some("203.0.113.0/24")
    );
    assert_eq!(
        ip_network("2001:db8:aa:bb::1").as_deref(),
        Some("2001:db8:aa::/48")
    );
    assert_eq!(ip_network("not an address"), None);
}

fn decoded(activity: Value) -> crate::record::AuditRecord {
    decode_native(&activity_line(&activity)).unwrap()
}

#[test]
fn an_activity_decodes_as_a_canonical_record() {
    let record = decoded(json!({
        "id": "activity_01", "created_at": "2026-11-23T09:00:00Z", "organization_id": null,
        "actor": {"type": "user_actor", "email_address": "a@x.example", "user_id": "user_1",
                  "ip_address": "192.0.2.1", "user_agent": "curl"},
        "type": "org_member_role_updated", "role": "admin", "model": {"odd": true}
    }));
    assert_eq!(record.event_type, EventType::PolicyEvent);
    assert_eq!(record.user_id, "a@x.example");
    assert_eq!(record.ip_address.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        record.timestamp,
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
    );
    assert_eq!(record.extra["activity_type"], "org_member_role_updated");
    assert_eq!(record.extra["activity_category"], "role_change");
    assert_eq!(record.extra["role"], "admin");
    // A type-specific field named like a canonical one is kept beside it, not decoded as it.
    assert_eq!(record.extra["activity_model"]["odd"], true);
    assert!(record.model.is_empty());
    // The same activity always has the same event id (a SIEM de-duplicates re-sends).
    let again =
        decoded(json!({"id": "activity_01", "created_at": "2026-11-23T09:00:00Z", "type": "x"}));
    assert_eq!(again.event_id, record.event_id);
    assert!(uuid::Uuid::parse_str(&record.event_id).is_ok());
}

#[test]
fn actors_without_an_email_use_their_ids() {
    let api = decoded(
        json!({"id": "a1", "created_at": "2026-11-23T09:00:00Z", "type": "claude_chat_created",
        "actor": {"type": "api_actor", "api_key_id": "apikey_7"}}),
    );
    assert_eq!(api.user_id, "apikey_7");
    assert_eq!(api.event_type, EventType::PlatformActivity);
    let scim = decoded(
        json!({"id": "a2", "created_at": "2026-11-23T09:00:00Z", "type": "user_created",
        "actor": {"type": "scim_directory_sync_actor"}}),
    );
    assert_eq!(scim.user_id, "scim_directory_sync_actor");
}

#[test]
fn an_unusable_activity_goes_through_as_it_came_for_the_dead_letter() {
    let line = activity_line(&json!({"created_at": "2026-11-23T09:00:00Z"}));
    assert!(decode_native(&line).is_err());
    assert_eq!(line, br#"{"created_at":"2026-11-23T09:00:00Z"}"#);
}

#[test]
fn only_the_final_head_of_the_buckets_is_emitted() {
    let page = json!({"data": [
        {"starting_at": "2026-11-23T10:00:00Z", "ending_at": "2026-11-23T11:00:00Z", "results": [
            {"uncached_input_tokens": "100", "cache_read_input_tokens": 5, "output_tokens": 50,
             "cache_creation": {"ephemeral_5m_input_tokens": 1, "ephemeral_1h_input_tokens": 2},
             "api_key_id": "apikey_1", "workspace_id": null, "model": "claude-opus-4"}]},
        {"starting_at": "2026-11-23T08:00:00Z", "ending_at": "2026-11-23T09:00:00Z", "results": []},
        {"starting_at": "2026-11-23T09:00:00Z", "ending_at": "2026-11-23T10:00:00Z", "results": []},
        {"starting_at": "garbage", "ending_at": "2026-11-23T10:00:00Z"}
    ]});
    let (all, unreadable) = buckets(Report::Messages, &page, "1h");
    assert_eq!(unreadable, 1);
    let final_before = Utc.with_ymd_and_hms(2026, 11, 23, 10, 30, 0).unwrap();
    let done = final_prefix(&all, final_before);
    assert_eq!(done.len(), 2, "08:00 and 09:00 are final, 10:00 is not");
    let line = &all[2].lines[0];
    let record = decode_native(line).unwrap();
    assert_eq!(record.event_type, EventType::Usage);
    assert_eq!(record.user_id, "apikey_1");
    assert_eq!(record.model, "claude-opus-4");
    assert_eq!(record.extra["input_tokens"], 108);
    assert_eq!(record.extra["usage_tokens"], 158);
    assert!(
        record.prompt_tokens.is_none(),
        "kept out of per-call token fields"
    );
    assert!(
        !record.extra.contains_key("workspace_id"),
        "null dimensions are left out"
    );
}

#[test]
fn cost_amounts_in_cents_become_dollars() {
    let page = json!({"data": [{"starting_at": "2026-11-22T00:00:00Z", "ending_at": "2026-11-23T00:00:00Z",
        "results": [{"currency": "USD", "amount": "1234.5", "workspace_id": "wrkspc_1", "description": "Claude Sonnet usage"}]}]});
    let (all, _) = buckets(Report::Cost, &page, "1d");
    let record = decode_native(&all[0].lines[0]).unwrap();
    assert_eq!(record.extra["cost_usd"], 12.345);
    assert_eq!(record.user_id, "wrkspc_1");
    assert_eq!(record.extra["usage_report"], "cost");
}

#[test]
fn the_cursor_survives_a_reload_and_refuses_an_unknown_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = CursorStore::load(dir.path(), "claude/feed").unwrap();
    assert!(store.path().ends_with("checkpoints/claude_feed.json"));
    store.cursor.activities.last_id = Some("activity_9".into());
    store.cursor.reports.insert(
        "messages".into(),
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap(),
    );
    store.persist().unwrap();
    let reloaded = CursorStore::load(dir.path(), "claude/feed").unwrap();
    assert_eq!(reloaded.cursor, store.cursor);
    std::fs::write(store.path(), r#"{"version":7}"#).unwrap();
    assert!(CursorStore::load(dir.path(), "claude/feed").is_err());
}

#[test]
fn configuration_is_checked_and_the_key_never_printed() {
    let parse = |text: &str| toml::from_str::<AnthropicSourceConfig>(text);
    let config =
        parse("api_key = \"sk-ant-admin01-secret\"\nstart_at = \"2026-11-01T00:00:00Z\"").unwrap();
    assert_eq!(
        config.start_at,
        StartAt::Time(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap())
    );
    assert!(config.validate().is_ok());
    assert!(!serde_json::to_string(&config).unwrap().contains("secret"));
    assert!(!format!("{config:?}").contains("secret"));
    assert!(parse("api_key = \"k\"\nstart_at = \"yesterday\"").is_err());
    let too_big = parse("api_key = \"k\"\npage_limit = 6000").unwrap();
    assert_eq!(too_big.validate().unwrap_err().0, "page_limit");
    let nothing = parse("api_key = \"k\"\nactivities = false").unwrap();
    assert_eq!(nothing.validate().unwrap_err().0, "activities");
}
