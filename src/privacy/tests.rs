//! Pseudonyms, key files, IP masking and the per-sink transform.

use super::*;
use crate::record::{AlertEntity, AuditRecord, EventType, Output};
use chrono::{TimeZone, Utc};
use std::path::Path;
use std::sync::Arc;

fn key(id: &str, byte: u8) -> PseudonymKey {
    PseudonymKey::new(id, [byte; pseudonym::KEY_BYTES])
}

#[test]
fn pseudonyms_are_stable_per_key_and_differ_between_keys_and_values() {
    let k1 = key("k1", 7);
    let k2 = key("k2", 8);
    let a = k1.pseudonym("jdoe@acme.example");
    assert_eq!(a, k1.pseudonym("jdoe@acme.example"));
    assert!(
        a.starts_with("psn:k1:") && a.len() == "psn:k1:".len() + 32,
        "{a}"
    );
    assert_ne!(a, k1.pseudonym("jdoe@acme.exampl"));
    let b = k2.pseudonym("jdoe@acme.example");
    assert_ne!(a["psn:k1:".len()..], b["psn:k2:".len()..]);
    // Same id, other bytes: another pseudonym (the key, not its name, is what matters).
    assert_ne!(a, key("k1", 9).pseudonym("jdoe@acme.example"));
}

#[test]
fn pseudonym_matches_an_independent_hmac_sha256() {
    // python3 -c "import hmac,hashlib;
    //   print(hmac.new(b'\x11'*32, b'alice', hashlib.sha256).hexdigest()[:32])"
    assert_eq!(
        key("x", 0x11).pseudonym("alice"),
        "psn:x:ea497bac56964937ed2d5a6a77241026"
    );
}

#[test]
fn key_file_last_line_is_active_and_errors_never_show_key_material() {
    let text = format!(
        "# keys\n2026-01 {}\n\n2026-07 {}\n",
        "ab".repeat(32),
        "cd".repeat(32)
    );
    let keys = PseudonymKeys::parse(&text, Path::new("k")).unwrap();
    assert_eq!(keys.active().id(), "2026-07");
    assert_eq!(keys.all().len(), 2);
    assert!(!format!("{keys:?}").contains("abab"));

    for (bad, reason) in [
        ("k1 abcd\n", "64 hex digits"),
        ("k1\n", "expected"),
        ("k:1 00\n", "key id"),
        ("", "holds no key"),
    ] {
        let error = PseudonymKeys::parse(bad, Path::new("k"))
            .unwrap_err()
            .to_string();
        assert!(error.contains(reason), "{bad:?}: {error}");
    }
    let twice = format!("a {0}\na {0}\n", "00".repeat(32));
    assert!(PseudonymKeys::parse(&twice, Path::new("k"))
        .unwrap_err()
        .to_string()
        .contains("twice"));
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(&path, format!("k1 {}\n", "00".repeat(32))).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        PseudonymKeys::load(&path),
        Err(KeyError::TooOpen { .. })
    ));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(PseudonymKeys::load(&path).unwrap().active().id(), "k1");
}

#[test]
fn addresses_are_masked_to_their_prefix_or_removed() {
    let default = IpMasking::default();
    let check = |masking: &IpMasking, input: &str, expected: Option<&str>| {
        assert_eq!(masking.apply(input).as_deref(), expected, "{input}");
    };
    check(&default, "10.20.30.40", Some("10.20.30.0"));
    check(
        &default,
        "2001:db8:abcd:12:1:2:3:4",
        Some("2001:db8:abcd::"),
    );
    check(&default, "::ffff:192.0.2.77", Some("192.0.2.0"));
    check(&default, "gw-01.internal", None);
    let wide = IpMasking {
        mode: IpMaskMode::Prefix,
        ipv4_prefix: 16,
        ipv6_prefix: 32,
    };
    check(&wide, "10.20.30.40", Some("10.20.0.0"));
    check(&wide, "2001:db8:abcd:12::1", Some("2001:db8::"));
    let zero = IpMasking {
        ipv4_prefix: 0,
        ipv6_prefix: 0,
        ..wide
    };
    check(&zero, "10.20.30.40", Some("0.0.0.0"));
    let full = IpMasking {
        ipv4_prefix: 32,
        ipv6_prefix: 128,
        ..wide
    };
    check(&full, "10.20.30.40", Some("10.20.30.40"));
    let remove = IpMasking {
        mode: IpMaskMode::Remove,
        ..default
    };
    check(&remove, "10.20.30.40", None);
    let off = IpMasking {
        mode: IpMaskMode::Off,
        ..default
    };
    check(&off, "10.20.30.40", Some("10.20.30.40"));
}

#[test]
fn masking_in_place_forwards_exactly_what_apply_gives_and_knows_when_nothing_changes() {
    let inputs = [
        "10.20.30.40",
        "10.20.30.0",
        "0.0.0.0",
        "255.255.255.255",
        "192.168.001.1",
        "010.20.30.40",
        " 10.20.30.0",
        "10.20.30.0 ",
        "+10.20.30.0",
        "10.20.30",
        "2001:db8:abcd::",
        "2001:DB8:abcd::",
        "2001:db8:abcd:0::",
        "2001:db8:abcd:12:1:2:3:4",
        "::ffff:192.0.2.0",
        "::ffff:192.0.2.77",
        "gw-01.internal",
        "",
    ];
    let default = IpMasking::default();
    let maskings = [
        default,
        IpMasking {
            ipv4_prefix: 0,
            ipv6_prefix: 0,
            ..default
        },
        IpMasking {
            ipv4_prefix: 32,
            ipv6_prefix: 128,
            ..default
        },
        IpMasking {
            ipv4_prefix: 13,
            ipv6_prefix: 61,
            ..default
        },
        IpMasking {
            mode: IpMaskMode::Remove,
            ..default
        },
        IpMasking {
            mode: IpMaskMode::Off,
            ..default
        },
    ];
    for masking in maskings {
        for input in inputs {
            let expected = masking.apply(input);
            assert_eq!(
                masking.changes(input),
                expected.as_deref() != Some(input),
                "{masking:?} {input:?}"
            );
            let mut in_place = Some(input.to_string());
            masking.mask_in_place(&mut in_place);
            assert_eq!(in_place, expected, "{masking:?} {input:?}");
        }
        let mut absent = None;
        masking.mask_in_place(&mut absent);
        assert_eq!(absent, None);
    }
}

#[test]
fn luhn_and_iban_checks() {
    assert!(redact::card_is_valid("4111 1111 1111 1111"));
    assert!(!redact::card_is_valid("4111 1111 1111 1112"));
    assert!(!redact::card_is_valid("1234 5678 9012 3452"));
    assert!(redact::iban_is_valid("DE89 3704 0044 0532 0130 00"));
    assert!(redact::iban_is_valid("GB82WEST12345698765432"));
    assert!(!redact::iban_is_valid("GB82WEST12345698765433"));
    let redactor = Redactor::new(&[]).unwrap();
    // A greedy match that swallowed a trailing group is cut back to the valid number.
    assert_eq!(
        redactor.redact("IBAN DE89 3704 0044 0532 0130 00 1234 please"),
        "IBAN [REDACTED:iban] 1234 please"
    );
    assert_eq!(
        redactor.redact("db: postgres://app:s3cr3t@db.internal/prod"),
        "db: postgres://app:[REDACTED:password_in_url]@db.internal/prod"
    );
}

fn transform(pseudonymise: bool) -> Transform {
    let keys = pseudonymise.then(|| PseudonymKeys::from_keys(vec![key("k1", 3)]).unwrap());
    Transform::new(
        keys,
        vec!["user.email".into(), "resource_owner".into()],
        IpMasking::default(),
        Redactor::new(&[]).unwrap(),
    )
}

fn event() -> AuditRecord {
    let mut record = AuditRecord::new(
        "e1",
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
        EventType::ApiRequest,
        "jdoe@acme.example",
        "s1",
    );
    record.ip_address = Some("10.20.30.40".into());
    record.prompt_raw = Some("my key is AKIAIOSFODNN7EXAMPLE, mail jdoe@acme.example".into());
    record.extra.insert(
        "user".into(),
        serde_json::json!({"email": "jdoe@acme.example", "name": "kept"}),
    );
    record
        .extra
        .insert("resource_owner".into(), serde_json::json!("asmith"));
    record
}

#[test]
fn events_leave_pseudonymised_masked_and_redacted_per_sink_policy() {
    let transform = transform(true);
    let item = Output::Event(Arc::new(event()));
    let pseudonym = transform.pseudonym("jdoe@acme.example").unwrap();

    let quiet = transform.apply(&item, &SinkPrivacy::default());
    let Output::Event(out) = quiet.as_ref() else {
        panic!()
    };
    assert_eq!(out.user_id, pseudonym);
    assert_eq!(out.ip_address.as_deref(), Some("10.20.30.0"));
    assert_eq!(out.prompt_raw, None);
    assert_eq!(out.extra["user"]["email"], pseudonym.as_str());
    assert_eq!(out.extra["user"]["name"], "kept");
    assert_eq!(
        out.extra["resource_owner"],
        transform.pseudonym("asmith").unwrap().as_str()
    );
    assert!(!out.extra.contains_key(REAL_USER_ID));

    let open = SinkPrivacy {
        forward_content: true,
        real_identity: true,
    };
    let loud = transform.apply(&item, &open);
    let Output::Event(out) = loud.as_ref() else {
        panic!()
    };
    assert_eq!(
        out.prompt_raw.as_deref(),
        Some("my key is [REDACTED:aws_access_key], mail [REDACTED:email]")
    );
    assert_eq!(out.extra[REAL_USER_ID], "jdoe@acme.example");
    assert_eq!(out.user_id, pseudonym);
}

#[test]
fn nothing_to_change_borrows_the_item() {
    let mut record = event();
    record.ip_address = None;
    let item = Output::Event(Arc::new(record));
    assert!(matches!(
        transform(false).apply(&item, &SinkPrivacy::default()),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn alerts_carry_the_pseudonym_in_entity_and_words_and_the_real_user_only_when_allowed() {
    let transform = transform(true);
    let alert = crate::record::Alert {
        alert_id: "a1".into(),
        timestamp: Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
        rule_id: "token-spike".into(),
        rule_version: 1,
        severity: crate::record::Severity::Low,
        title: "Token spike".into(),
        details: "user_id jdoe@acme.example: 97139 tokens".into(),
        entity: AlertEntity {
            entity_type: "user_id".into(),
            entity_key: "jdoe@acme.example".into(),
            user_id: Some("jdoe@acme.example".into()),
            session_id: Some("s1".into()),
            department: None,
            application_id: None,
            real_user_id: None,
        },
        observed: 1.0,
        baseline: None,
        threshold: 1.0,
        window: None,
        evidence: Default::default(),
        tags: vec![],
        source: "aiwarden".into(),
        deployment: "d".into(),
        agent: Default::default(),
        suppressed_count: 0,
        auto_blocked: false,
    };
    let pseudonym = transform.pseudonym("jdoe@acme.example").unwrap();
    let item = Output::Alert(Arc::new(alert));
    let out = transform.apply(&item, &SinkPrivacy::default());
    let Output::Alert(out) = out.as_ref() else {
        panic!()
    };
    assert_eq!(out.entity.user_id.as_deref(), Some(pseudonym.as_str()));
    assert_eq!(out.entity.entity_key, pseudonym);
    assert_eq!(out.details, format!("user_id {pseudonym}: 97139 tokens"));
    assert_eq!(out.entity.real_user_id, None);
    let json = serde_json::to_string(out.as_ref()).unwrap();
    assert!(!json.contains("jdoe"), "{json}");

    let allowed = transform.apply(
        &item,
        &SinkPrivacy {
            real_identity: true,
            ..Default::default()
        },
    );
    let Output::Alert(allowed) = allowed.as_ref() else {
        panic!()
    };
    assert_eq!(
        allowed.entity.real_user_id.as_deref(),
        Some("jdoe@acme.example")
    );
}

#[test]
fn config_validation_names_the_key() {
    let config = PrivacyConfig {
        pseudonymise: true,
        ..Default::default()
    };
    assert_eq!(config.validate().unwrap_err().0, "key_file");
    let config = PrivacyConfig {
        ipv4_prefix: 33,
        ..Default::default()
    };
    assert_eq!(config.validate().unwrap_err().0, "ipv4_prefix");
    let config = PrivacyConfig {
        redact_patterns: vec![ExtraPattern {
            name: "x".into(),
            pattern: "[".into(),
        }],
        ..Default::default()
    };
    assert_eq!(config.validate().unwrap_err().0, "redact_patterns");
}

#[test]
fn a_copy_without_content_is_the_record_without_its_text() {
    let mut record = event();
    record.response_raw = Some("the answer".into());
    record.mcp_integrations = vec!["github".into()];
    let mut expected = record.clone();
    expected.prompt_raw = None;
    expected.response_raw = None;
    assert_eq!(record.clone_without_content(), expected);
}

#[test]
fn a_transform_from_config_redacts_with_the_operator_patterns_it_compiles_later() {
    let config = PrivacyConfig {
        redact_patterns: vec![ExtraPattern {
            name: "employee_id".into(),
            pattern: r"\bEMP-\d{6}\b".into(),
        }],
        ..Default::default()
    };
    let transform = Transform::from_config(&config).unwrap();
    let mut record = event();
    record.prompt_raw = Some("EMP-123456 asked".into());
    let item = Output::Event(Arc::new(record));
    let policy = SinkPrivacy {
        forward_content: true,
        real_identity: false,
    };
    let Output::Event(out) = transform.apply(&item, &policy).into_owned() else {
        panic!("an event stays an event");
    };
    assert_eq!(
        out.prompt_raw.as_deref(),
        Some("[REDACTED:employee_id] asked")
    );
    let bad = PrivacyConfig {
        redact_patterns: vec![ExtraPattern {
            name: "bad".into(),
            pattern: "(".into(),
        }],
        ..Default::default()
    };
    assert!(Transform::from_config(&bad).is_err());
}
