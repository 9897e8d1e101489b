//! The field catalogue (`record::catalogue`) against what the sinks emit and what the SIEM
//! templates declare: a field a sink adds, drops or retypes without the catalogue fails here,
//! and so does a template or table that declares a field with another type. The samples are
//! stamped by the evidence chain as the driver stamps them, and checkpoint records are checked
//! too, so the chain's fields cannot drift from the templates either.

use super::{full_alert, full_event, read_json};
use aiwarden::evidence::encoded::{checkpoint_encoded, stamp_encoded, EncodedShape};
use aiwarden::evidence::{CheckpointSigner, EvidenceConfig, SinkEvidence};
use aiwarden::privacy::{
    IpMaskMode, IpMasking, PseudonymKey, PseudonymKeys, Redactor, SinkPrivacy, Transform,
};
use aiwarden::record::catalogue::{
    CatalogueField, FieldKind, Siem, ALERT_FIELDS, CHAIN_FIELDS, CHECKPOINT_FIELDS, EVENT_FIELDS,
    SPLUNK_INDEXED_ALERT, SPLUNK_INDEXED_EVENT,
};
use aiwarden::record::{Alert, AuditRecord, Output, RecordView};
use aiwarden::sinks::elastic::{alert_document, event_document, DocumentSettings};
use aiwarden::sinks::sentinel::{alert_row, event_row};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Sentinel's dynamic columns whose inside the catalogue names (`Extra.role`, `Chain.seq`).
const DYNAMIC_COLUMNS: &[&str] = &["Extra", "Chain", "Checkpoint"];

/// The fields of a checkpoint record: its own and its stamp.
fn checkpoint_catalogue() -> Vec<CatalogueField> {
    CHECKPOINT_FIELDS
        .iter()
        .chain(CHAIN_FIELDS)
        .copied()
        .collect()
}

/// Each sample stamped into a fresh chain of `shape`, then the signed checkpoint of that chain,
/// both as the driver queues them; `document` reads the stored object out of the bytes.
fn stamped(
    shape: &EncodedShape,
    samples: Vec<Vec<u8>>,
    document: impl Fn(&[u8]) -> Value,
) -> (Vec<Value>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("checkpoint.key");
    std::fs::write(&key, CheckpointSigner::generate().secret_hex()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = EvidenceConfig {
        enabled: true,
        signing_key_file: Some(key),
        agent_id: Some("agent-7".into()),
        ..Default::default()
    };
    let mut evidence = SinkEvidence::open(&config, dir.path(), "siem", shape.location()).unwrap();
    let records = samples
        .into_iter()
        .map(|mut bytes| {
            stamp_encoded(&mut evidence, shape, &mut bytes).unwrap();
            document(&bytes)
        })
        .collect();
    let (_, checkpoint) = checkpoint_encoded(&mut evidence, shape, true).unwrap();
    (records, document(&checkpoint))
}

fn json_bytes(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The document line of a `_bulk` pair.
fn bulk_document(bytes: &[u8]) -> Value {
    let text = std::str::from_utf8(bytes).unwrap();
    serde_json::from_str(text.lines().nth(1).unwrap()).unwrap()
}

fn bulk_pair(document: &Value) -> Vec<u8> {
    format!("{}\n{document}\n", json!({"create": {}})).into_bytes()
}

/// A Sentinel row with its dynamic columns' insides as `Column.key` leaves beside it.
fn with_dynamic_insides(row: Value) -> Vec<Value> {
    let mut inside = Map::new();
    for column in DYNAMIC_COLUMNS {
        if let Some(object) = row.get(*column).and_then(Value::as_object) {
            for (key, value) in object {
                inside.insert(format!("{column}.{key}"), value.clone());
            }
        }
    }
    vec![row, Value::Object(inside)]
}

/// An event with every typed field and the pass-through fields the catalogue names (those
/// Sentinel keeps inside `Extra`).
fn full_event_with_extra() -> aiwarden::record::AuditRecord {
    let mut event = full_event();
    for field in EVENT_FIELDS {
        if let (Some(name), Some(column)) = (field.canonical, field.sentinel) {
            if column.starts_with("Extra.") {
                event
                    .extra
                    .insert(name.into(), json!(format!("{name}-value")));
            }
        }
    }
    event
}

/// The alert and event as a sink with `real_identity = true` receives them: the user
/// pseudonymised and the real user beside it, so `real_user_id` is emitted and checked too.
fn as_real_identity_sink_gets_them(alert: Alert, event: AuditRecord) -> (Alert, AuditRecord) {
    let keys = PseudonymKeys::from_keys(vec![PseudonymKey::new("k1", [7; 32])]).unwrap();
    let transform = Transform::new(
        Some(keys),
        Vec::new(),
        IpMasking {
            mode: IpMaskMode::Off,
            ..IpMasking::default()
        },
        Redactor::new(&[]).unwrap(),
    );
    let policy = SinkPrivacy {
        forward_content: true,
        real_identity: true,
    };
    let alert = match transform
        .apply(&Output::Alert(alert.into()), &policy)
        .into_owned()
    {
        Output::Alert(alert) => Alert::clone(&alert),
        Output::Event(_) => unreachable!(),
    };
    let event = match transform
        .apply(&Output::Event(event.into()), &policy)
        .into_owned()
    {
        Output::Event(event) => AuditRecord::clone(&event),
        Output::Alert(_) => unreachable!(),
    };
    assert_eq!(alert.entity.real_user_id.as_deref(), Some("u-1"));
    assert_eq!(event.extra["real_user_id"], "u-1");
    (alert, event)
}

/// Leaf paths and values; arrays and `stop_at` objects are leaves.
fn leaves<'a>(
    value: &'a Value,
    prefix: &str,
    stop_at: &[&str],
    out: &mut BTreeMap<String, &'a Value>,
) {
    match value {
        Value::Object(map) if !stop_at.contains(&prefix) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, stop_at, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other);
        }
    }
}

fn json_fits(kind: FieldKind, value: &Value) -> bool {
    match kind {
        FieldKind::Keyword | FieldKind::Text | FieldKind::Date | FieldKind::Ip => value.is_string(),
        FieldKind::Long => value.is_i64() || value.is_u64(),
        FieldKind::Double => value.is_number(),
        FieldKind::Boolean => value.is_boolean(),
        FieldKind::KeywordList => value
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string)),
        FieldKind::Object => value.is_object(),
    }
}

/// Every emitted leaf is catalogued with its type, and every catalogued name is emitted.
fn check_emitted(
    what: &str,
    siem: Siem,
    catalogue: &[CatalogueField],
    samples: &[Value],
    stop_at: &[&str],
) {
    let mut emitted = BTreeMap::new();
    for sample in samples {
        leaves(sample, "", stop_at, &mut emitted);
    }
    let known: BTreeMap<&str, FieldKind> = catalogue
        .iter()
        .filter_map(|f| f.name_in(siem).map(|name| (name, f.kind)))
        .collect();
    let mut problems = Vec::new();
    for (path, value) in &emitted {
        match known.get(path.as_str()) {
            None => problems.push(format!("{path} is emitted but not in the catalogue")),
            Some(kind) if !json_fits(*kind, value) => {
                problems.push(format!("{path} = {value} is not {kind:?} as catalogued"))
            }
            Some(_) => {}
        }
    }
    for name in known.keys() {
        if !emitted.contains_key(*name) {
            problems.push(format!("{name} is catalogued but the sink never emits it"));
        }
    }
    assert!(problems.is_empty(), "{what} {siem:?}: {problems:#?}");
}

#[test]
fn the_catalogue_is_exactly_what_each_sink_emits() {
    let (alert, event) = as_real_identity_sink_gets_them(full_alert(), full_event_with_extra());
    let checkpoints = checkpoint_catalogue();
    // Splunk receives the canonical JSON as the event body (HEC `event`).
    let view = RecordView {
        record: &event,
        include_content: true,
    };
    let splunk = EncodedShape::JsonLine;
    let (alerts, checkpoint) = stamped(&splunk, vec![json_bytes(&alert)], parse);
    check_emitted("alerts", Siem::Splunk, ALERT_FIELDS, &alerts, &[]);
    check_emitted(
        "checkpoints",
        Siem::Splunk,
        &checkpoints,
        &[checkpoint],
        &[],
    );
    let (events, _) = stamped(&splunk, vec![json_bytes(&view)], parse);
    check_emitted("events", Siem::Splunk, EVENT_FIELDS, &events, &[]);
    // Elastic: a valid IP goes to `source.ip`, anything else stays in the canonical record.
    let settings = DocumentSettings {
        namespace: "default".into(),
        host: "gw-01".into(),
        deployment: "claude_deployment".into(),
    };
    let mut odd = full_event_with_extra();
    odd.ip_address = Some("unknown".into());
    let elastic = EncodedShape::BulkPair {
        index: "logs-aiwarden.events-default".into(),
    };
    let (alerts, _) = stamped(
        &elastic,
        vec![bulk_pair(&alert_document(&alert))],
        bulk_document,
    );
    check_emitted("alerts", Siem::Elastic, ALERT_FIELDS, &alerts, &[]);
    let (events, checkpoint) = stamped(
        &elastic,
        vec![
            bulk_pair(&event_document(&event, &settings, true)),
            bulk_pair(&event_document(&odd, &settings, true)),
        ],
        bulk_document,
    );
    check_emitted("events", Siem::Elastic, EVENT_FIELDS, &events, &[]);
    check_emitted(
        "checkpoints",
        Siem::Elastic,
        &checkpoints,
        &[checkpoint],
        &[],
    );
    // Sentinel: `Extra`, `Chain` and `Checkpoint` are dynamic columns; the catalogue also names
    // what is inside them.
    let sentinel = EncodedShape::SentinelRow;
    let (alerts, _) = stamped(&sentinel, vec![json_bytes(&alert_row(&alert))], parse);
    let alerts: Vec<Value> = alerts.into_iter().flat_map(with_dynamic_insides).collect();
    check_emitted(
        "alerts",
        Siem::Sentinel,
        ALERT_FIELDS,
        &alerts,
        DYNAMIC_COLUMNS,
    );
    let row = event_row(&event, "claude_deployment", "gw-01", true);
    let (events, checkpoint) = stamped(&sentinel, vec![json_bytes(&row)], parse);
    let events: Vec<Value> = events.into_iter().flat_map(with_dynamic_insides).collect();
    check_emitted(
        "events",
        Siem::Sentinel,
        EVENT_FIELDS,
        &events,
        DYNAMIC_COLUMNS,
    );
    check_emitted(
        "checkpoints",
        Siem::Sentinel,
        &checkpoints,
        &with_dynamic_insides(checkpoint),
        DYNAMIC_COLUMNS,
    );
}

#[test]
fn a_field_the_catalogue_lacks_fails_the_check() {
    let sample = json!({"alert_id": "a", "new_field": 1});
    let outcome = std::panic::catch_unwind(|| {
        check_emitted(
            "alerts",
            Siem::Splunk,
            ALERT_FIELDS,
            std::slice::from_ref(&sample),
            &[],
        )
    });
    assert!(outcome.is_err(), "an uncatalogued field must fail");
}

#[test]
fn splunk_indexed_fields_are_catalogued_names() {
    let canonical: Vec<&str> = ALERT_FIELDS
        .iter()
        .chain(EVENT_FIELDS)
        .filter_map(|f| f.canonical)
        .collect();
    for name in SPLUNK_INDEXED_ALERT.iter().chain(SPLUNK_INDEXED_EVENT) {
        assert!(canonical.contains(name), "{name}");
    }
}

fn elastic_type_fits(kind: FieldKind, mapping: &str) -> bool {
    match kind {
        FieldKind::Keyword | FieldKind::KeywordList => {
            matches!(mapping, "keyword" | "constant_keyword")
        }
        FieldKind::Text => matches!(mapping, "text" | "match_only_text"),
        FieldKind::Long => mapping == "long",
        FieldKind::Double => mapping == "double",
        FieldKind::Boolean => mapping == "boolean",
        FieldKind::Date => mapping == "date",
        FieldKind::Ip => mapping == "ip",
        FieldKind::Object => mapping == "object" || mapping == "flattened",
    }
}

fn mapped(properties: &Map<String, Value>, prefix: &str, out: &mut BTreeMap<String, String>) {
    for (key, field) in properties {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match field.get("properties").and_then(Value::as_object) {
            Some(children) => mapped(children, &path, out),
            None => {
                out.insert(path, field["type"].as_str().unwrap_or("object").to_string());
            }
        }
    }
}

#[test]
fn elastic_templates_map_the_catalogue_with_its_types_and_nothing_else() {
    // Checkpoints go to the events data stream (`EncodedShape::BulkPair`).
    let events: Vec<CatalogueField> = EVENT_FIELDS
        .iter()
        .chain(CHECKPOINT_FIELDS)
        .copied()
        .collect();
    for (component, catalogue) in [
        ("aiwarden.alerts@mappings", ALERT_FIELDS),
        ("aiwarden.events@mappings", events.as_slice()),
    ] {
        let template = read_json(&format!(
            "connectors/elastic/component_templates/{component}.json"
        ));
        let mut fields = BTreeMap::new();
        mapped(
            template["template"]["mappings"]["properties"]
                .as_object()
                .unwrap(),
            "",
            &mut fields,
        );
        let mut problems = Vec::new();
        for field in catalogue.iter() {
            let Some(name) = field.elastic else { continue };
            match fields.get(name) {
                None => problems.push(format!("{name} is not mapped")),
                Some(mapping) if !elastic_type_fits(field.kind, mapping) => problems.push(format!(
                    "{name} is {:?} but mapped as {mapping}",
                    field.kind
                )),
                Some(_) => {}
            }
        }
        for name in fields.keys() {
            // Elasticsearch itself fills `data_stream.*` for every document of a data stream.
            let known = catalogue.iter().any(|f| f.elastic == Some(name.as_str()));
            if !known && !name.starts_with("data_stream.") {
                problems.push(format!("{name} is mapped but no sink emits it"));
            }
        }
        assert!(problems.is_empty(), "{component}: {problems:#?}");
    }
}

fn sentinel_type_fits(kind: FieldKind, column: &str) -> bool {
    match kind {
        FieldKind::Keyword | FieldKind::Text | FieldKind::Ip => column == "string",
        FieldKind::Long => matches!(column, "long" | "int"),
        FieldKind::Double => column == "real",
        FieldKind::Boolean => column == "boolean",
        FieldKind::Date => column == "datetime",
        FieldKind::KeywordList | FieldKind::Object => column == "dynamic",
    }
}

#[test]
fn sentinel_tables_declare_the_catalogue_with_its_types_and_nothing_else() {
    let tables = read_json("connectors/sentinel/tables.json");
    // Each stream has its own chain, so each table also holds that chain's checkpoint rows.
    for (table, records) in [
        ("AIWardenAlerts_CL", ALERT_FIELDS),
        ("AIWardenEvents_CL", EVENT_FIELDS),
    ] {
        let catalogue: Vec<CatalogueField> =
            records.iter().chain(CHECKPOINT_FIELDS).copied().collect();
        let definition = tables["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == table)
            .unwrap();
        let columns: BTreeMap<String, String> = definition["properties"]["schema"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mut problems = Vec::new();
        for field in &catalogue {
            // `Extra.resource_owner` lives inside the dynamic `Extra` column.
            let Some(name) = field.sentinel.filter(|n| !n.contains('.')) else {
                continue;
            };
            match columns.get(name) {
                None => problems.push(format!("{name} is not declared")),
                Some(column) if !sentinel_type_fits(field.kind, column) => {
                    problems.push(format!("{name} is {:?} but declared {column}", field.kind))
                }
                Some(_) => {}
            }
        }
        for name in columns.keys() {
            if !catalogue.iter().any(|f| f.sentinel == Some(name.as_str())) {
                problems.push(format!("{name} is declared but no sink sends it"));
            }
        }
        assert!(problems.is_empty(), "{table}: {problems:#?}");
    }
}
