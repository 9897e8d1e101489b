//! Activity Feed records (FORMATS.md §5) as canonical audit records, one JSON line each.
//!
//! The source writes each activity as a native canonical record so the standard decoder reads
//! it: `event_type = platform_activity` (or `policy_event` for role, permission, key and
//! settings changes, so the policy rules see them), the activity `type` as `activity_type`, a
//! coarse `activity_category` the rules match on (the feed has hundreds of types, named by
//! pattern), the actor as `user_id`, and every type-specific field kept. An activity that is
//! not an object with an `id` and a `created_at` is written as it came: the decoder
//! dead-letters it with the reason, and reading goes on.

use crate::record::fields;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// The `application_id` of activity records.
pub const APPLICATION_ID: &str = "anthropic_compliance";

/// Namespace of the UUID v5 event ids derived from activity and bucket ids (fixed forever:
/// changing it would change every event id and break a SIEM's de-duplication).
pub(crate) const EVENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6d1f_3b2a_8c4e_4f0a_9b7d_2e5c_1a3f_0b64);

/// Names the mapping writes itself; a type-specific field of the same name is kept as
/// `activity_<name>` instead of overwriting (or mistyping) it.
const WRITTEN: &[&str] = &[
    "activity_id",
    "activity_type",
    "activity_category",
    "actor",
    "actor_type",
    "user_agent",
    "ip_network",
    "api_key_id",
];

/// Canonical fields of the record; same rule as [`WRITTEN`].
const CANONICAL: &[&str] = &[
    fields::EVENT_ID,
    fields::TIMESTAMP,
    fields::EVENT_TYPE,
    fields::USER_ID,
    fields::SESSION_ID,
    fields::APPLICATION_ID,
    fields::MODEL,
    fields::DEPARTMENT,
    fields::PROMPT_HASH,
    fields::RESPONSE_HASH,
    fields::PROMPT_TOKENS,
    fields::COMPLETION_TOKENS,
    fields::LATENCY_MS,
    fields::DATA_CLASSIFICATION,
    fields::MCP_INTEGRATIONS,
    fields::MCP_CALLS,
    fields::POLICY_FLAGS,
    fields::SECURITY_FLAGS,
    fields::IP_ADDRESS,
    fields::STATUS,
    fields::ERROR_TYPE,
    fields::STOP_REASON,
    fields::PROMPT_RAW,
    fields::RESPONSE_RAW,
];

/// What an activity is about, coarsely, for rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// An API or admin key was created.
    KeyCreated,
    /// A key was deleted, revoked or archived.
    KeyDeleted,
    /// A key was otherwise changed.
    KeyChanged,
    /// A role, permission or group membership changed.
    RoleChange,
    /// An organisation, workspace or product setting changed.
    SettingsChange,
    /// A sign-in (or its failure).
    SignIn,
    /// A file was uploaded (or created).
    FileUpload,
    /// A file was downloaded or exported.
    FileDownload,
}

impl Category {
    /// The wire value of `activity_category`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::KeyCreated => "key_created",
            Category::KeyDeleted => "key_deleted",
            Category::KeyChanged => "key_changed",
            Category::RoleChange => "role_change",
            Category::SettingsChange => "settings_change",
            Category::SignIn => "sign_in",
            Category::FileUpload => "file_upload",
            Category::FileDownload => "file_download",
        }
    }

    /// Whether activities of this category are policy events (SPEC §2: approvals, exceptions,
    /// permission changes).
    pub fn is_policy(self) -> bool {
        matches!(
            self,
            Category::KeyCreated
                | Category::KeyDeleted
                | Category::KeyChanged
                | Category::RoleChange
                | Category::SettingsChange
        )
    }
}

/// The category of an activity type, by the words in its name (`admin_api_key_created`,
/// `claude_file_uploaded`, `user_role_updated`, …); `None` for the rest.
pub fn categorise(activity_type: &str) -> Option<Category> {
    let name = activity_type.to_ascii_lowercase();
    let has = |word: &str| name.contains(word);
    let ends = |words: &[&str]| words.iter().any(|w| name.ends_with(w));
    if has("key") && !has("keyword") {
        return Some(if ends(&["_created", "_generated"]) {
            Category::KeyCreated
        } else if ends(&["_deleted", "_revoked", "_archived", "_disabled"]) {
            Category::KeyDeleted
        } else {
            Category::KeyChanged
        });
    }
    if has("role") || has("permission") || has("group_member") {
        return Some(Category::RoleChange);
    }
    if has("setting") {
        return Some(Category::SettingsChange);
    }
    if has("login") || has("sign_in") || has("signin") || has("logged_in") {
        return Some(Category::SignIn);
    }
    if has("file") {
        if ends(&["_uploaded", "_created", "_added"]) {
            return Some(Category::FileUpload);
        }
        if has("download") || has("export") {
            return Some(Category::FileDownload);
        }
    }
    None
}

/// The network of an address for "new network" rules: the /24 of an IPv4 address, the /48 of
/// an IPv6 one (a typical site allocation); `None` when it is not an address.
pub fn ip_network(address: &str) -> Option<String> {
    match address.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// One activity as a canonical JSON line; the activity as it came when it cannot be mapped.
pub fn activity_line(activity: &Value) -> Vec<u8> {
    match map_activity(activity) {
        Some(record) => Value::Object(record).to_string().into_bytes(),
        None => activity.to_string().into_bytes(),
    }
}

fn map_activity(activity: &Value) -> Option<Map<String, Value>> {
    let object = activity.as_object()?;
    let id = object.get("id")?.as_str().filter(|s| !s.is_empty())?;
    let created_at = object.get("created_at")?.as_str()?;
    let activity_type = object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let category = categorise(activity_type);
    let actor = object.get("actor").and_then(Value::as_object);
    let actor_text = |key: &str| {
        actor
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let actor_type = actor_text("type");
    // Email first (what a SIEM joins on), then the ids each actor kind carries.
    let user_id = actor_text("email_address")
        .or_else(|| actor_text("user_id"))
        .or_else(|| actor_text("api_key_id"))
        .or_else(|| actor_text("admin_api_key_id"))
        .or_else(|| actor_text("id"))
        .or(actor_type)
        .unwrap_or("unknown_actor");
    let event_type = match category {
        Some(c) if c.is_policy() => "policy_event",
        _ => "platform_activity",
    };
    let session_id = object
        .get("claude_chat_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(id);

    let mut record = Map::new();
    let event_id = uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, format!("activity:{id}").as_bytes());
    record.insert(fields::EVENT_ID.into(), event_id.to_string().into());
    record.insert(fields::TIMESTAMP.into(), created_at.into());
    record.insert(fields::EVENT_TYPE.into(), event_type.into());
    record.insert(fields::USER_ID.into(), user_id.into());
    record.insert(fields::SESSION_ID.into(), session_id.into());
    record.insert(fields::APPLICATION_ID.into(), APPLICATION_ID.into());
    record.insert("activity_id".into(), id.into());
    record.insert("activity_type".into(), activity_type.into());
    if let Some(category) = category {
        record.insert("activity_category".into(), category.as_str().into());
    }
    if let Some(actor_type) = actor_type {
        record.insert("actor_type".into(), actor_type.into());
    }
    if let Some(key) = actor_text("api_key_id") {
        record.insert("api_key_id".into(), key.into());
    }
    if let Some(ip) = actor_text("ip_address") {
        record.insert(fields::IP_ADDRESS.into(), ip.into());
        if let Some(network) = ip_network(ip) {
            record.insert("ip_network".into(), network.into());
        }
    }
    if let Some(agent) = actor_text("user_agent") {
        record.insert("user_agent".into(), agent.into());
    }
    if let Some(actor) = object.get("actor") {
        record.insert("actor".into(), actor.clone());
    }
    for (key, value) in object {
        if matches!(key.as_str(), "id" | "created_at" | "type" | "actor") {
            continue;
        }
        let name = if CANONICAL.contains(&key.as_str()) || WRITTEN.contains(&key.as_str()) {
            format!("activity_{key}")
        } else {
            key.clone()
        };
        record.insert(name, value.clone());
    }
    Some(record)
}
