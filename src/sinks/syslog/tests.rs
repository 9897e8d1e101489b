//! Messages to the byte (PROTOCOLS.md §4), escaping, limits and configuration, without a network.

use super::cef::{write_extension_value, write_header_field};
use super::encoder::write_param_value;
use super::*;
use crate::record::{AgentInfo, Alert, AlertEntity, AuditRecord, EventType, Evidence, Severity};
use std::sync::Arc;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn settings(format: PayloadFormat, bom: bool) -> MessageSettings {
    MessageSettings::new(
        Facility::Local0,
        "gw-01",
        "aiwarden",
        "4242",
        32473,
        bom,
        format,
    )
}

fn time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-23T09:14:03.512Z")
        .unwrap()
        .to_utc()
}

fn alert() -> Alert {
    Alert {
        alert_id: "9f1c2d3e-0000-5000-8000-000000000001".into(),
        timestamp: time(),
        rule_id: "mcp-volume".into(),
        rule_version: 1,
        severity: Severity::Medium,
        title: "MCP call volume".into(),
        details: "55 MCP calls in 10m (threshold 50)".into(),
        entity: AlertEntity {
            entity_type: "session_id".into(),
            entity_key: "s-19".into(),
            user_id: Some("u-7f3a".into()),
            session_id: Some("s-19".into()),
            department: Some("engineering".into()),
            application_id: Some("code-assistant".into()),
            real_user_id: None,
        },
        observed: 55.0,
        baseline: None,
        threshold: 50.0,
        window: Some("10m".into()),
        evidence: Evidence {
            event_ids: vec!["e-1".into()],
            event_count: 55,
        },
        tags: vec!["mcp".into(), "ATLAS:AML.T0034".into()],
        source: "aiwarden".into(),
        deployment: "claude_deployment".into(),
        agent: AgentInfo {
            host: "gw-01".into(),
            version: VERSION.into(),
        },
        suppressed_count: 0,
        auto_blocked: false,
    }
}

fn event() -> AuditRecord {
    let mut record = AuditRecord::new("e-1", time(), EventType::ApiRequest, "u-7f3a", "s-19");
    record.application_id = "code-assistant".into();
    record.department = Some("engineering".into());
    record.ip_address = Some("10.1.2.3".into());
    record.prompt_raw = Some("secret prompt".into());
    record
}

fn message(item: &Output, settings: &MessageSettings, content: bool) -> Vec<u8> {
    let mut out = Vec::new();
    encode(item, settings, content, &mut out).unwrap();
    out
}

#[test]
fn an_alert_as_json_to_the_byte() {
    let alert = Arc::new(alert());
    let got = message(
        &Output::Alert(alert.clone()),
        &settings(PayloadFormat::Json, true),
        false,
    );
    let mut want = b"<132>1 2026-11-23T09:14:03.512Z gw-01 aiwarden 4242 alert [aiwarden@32473 rule_id=\"mcp-volume\" severity=\"medium\" user_id=\"u-7f3a\" session_id=\"s-19\"] \xEF\xBB\xBF".to_vec();
    want.extend(serde_json::to_vec(alert.as_ref()).unwrap());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(got, want);
}

#[test]
fn an_event_as_json_to_the_byte_honouring_forward_content() {
    let record = Arc::new(event());
    let item = Output::Event(record.clone());
    let got = message(&item, &settings(PayloadFormat::Json, false), false);
    let mut want = b"<134>1 2026-11-23T09:14:03.512Z gw-01 aiwarden 4242 event [aiwarden@32473 event_type=\"api_request\" user_id=\"u-7f3a\" session_id=\"s-19\"] ".to_vec();
    want.extend(serde_json::to_vec(&crate::record::RecordView::without_content(&record)).unwrap());
    assert_eq!(got, want);
    assert!(!String::from_utf8_lossy(&got).contains("secret prompt"));
    let with_content = message(&item, &settings(PayloadFormat::Json, false), true);
    assert!(String::from_utf8_lossy(&with_content).contains("\"prompt_raw\":\"secret prompt\""));
}

#[test]
fn an_alert_as_cef_to_the_byte() {
    let got = message(
        &Output::Alert(Arc::new(alert())),
        &settings(PayloadFormat::Cef, false),
        false,
    );
    let want = format!(
        "<132>1 2026-11-23T09:14:03.512Z gw-01 aiwarden 4242 alert [aiwarden@32473 rule_id=\"mcp-volume\" severity=\"medium\" user_id=\"u-7f3a\" session_id=\"s-19\"] \
         CEF:0|aiwarden|aiwarden|{VERSION}|mcp-volume|MCP call volume|5|rt=1795425243512 \
         externalId=9f1c2d3e-0000-5000-8000-000000000001 cat=mcp,ATLAS:AML.T0034 suser=u-7f3a \
         dhost=code-assistant msg=55 MCP calls in 10m (threshold 50) cs1Label=sessionId cs1=s-19 \
         cs2Label=department cs2=engineering cs3Label=atlasTechnique cs3=AML.T0034 \
         cn1Label=observed cn1=55 cn2Label=threshold cn2=50"
    );
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

#[test]
fn an_event_as_cef_to_the_byte_without_content() {
    let got = message(
        &Output::Event(Arc::new(event())),
        &settings(PayloadFormat::Cef, true),
        true,
    );
    let want = format!(
        "<134>1 2026-11-23T09:14:03.512Z gw-01 aiwarden 4242 event [aiwarden@32473 event_type=\"api_request\" user_id=\"u-7f3a\" session_id=\"s-19\"] \u{feff}\
         CEF:0|aiwarden|aiwarden|{VERSION}|api_request|api_request|1|rt=1795425243512 externalId=e-1 \
         suser=u-7f3a src=10.1.2.3 dhost=code-assistant cs1Label=sessionId cs1=s-19 \
         cs2Label=department cs2=engineering"
    );
    assert_eq!(String::from_utf8(got).unwrap(), want);
}

#[test]
fn pri_is_facility_times_eight_plus_severity() {
    assert_eq!(Facility::Kern.code(), 0);
    assert_eq!(Facility::Local0.code(), 16);
    assert_eq!(Facility::Local7.code(), 23);
    let severities: Vec<_> = Severity::ALL.iter().map(|s| alert_severity(*s)).collect();
    assert_eq!(severities, vec![5, 4, 3, 2], "low, medium, high, critical");
    assert_eq!(
        pri(Facility::Local0, alert_severity(Severity::Critical)),
        130
    );
    assert_eq!(pri(Facility::Local0, alert_severity(Severity::Low)), 133);
    assert_eq!(pri(Facility::Local0, encoder::EVENT_SEVERITY), 134);
    assert_eq!(pri(Facility::Kern, 2), 2);
    assert_eq!(pri(Facility::Local7, 6), 190);
    assert_eq!(pri(Facility::Auth, 3), 35);
    let mut high = alert();
    high.severity = Severity::High;
    let got = message(
        &Output::Alert(Arc::new(high)),
        &settings(PayloadFormat::Cef, false),
        false,
    );
    assert!(got.starts_with(b"<131>1 "));
    assert!(String::from_utf8_lossy(&got).contains("|MCP call volume|8|"));
}

#[test]
fn timestamps_are_utc_with_at_most_six_fraction_digits() {
    let at = |text: &str| timestamp(chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc());
    assert_eq!(at("2026-11-23T09:14:03Z"), "2026-11-23T09:14:03Z");
    assert_eq!(
        at("2026-11-23T10:14:03.5+01:00"),
        "2026-11-23T09:14:03.500Z"
    );
    assert_eq!(
        at("2026-11-23T09:14:03.123456789Z"),
        "2026-11-23T09:14:03.123456Z"
    );
}

#[test]
fn header_fields_are_printable_ascii_within_their_limits() {
    assert_eq!(header_field("gw 01\u{e9}\n", 255), "gw_01__");
    assert_eq!(header_field("", 48), "-");
    assert_eq!(header_field(&"h".repeat(300), 255).len(), 255);
    let long = MessageSettings::new(
        Facility::User,
        &"h".repeat(300),
        &"a".repeat(60),
        &"9".repeat(200),
        u32::MAX,
        false,
        PayloadFormat::Cef,
    );
    let got = message(&Output::Event(Arc::new(event())), &long, false);
    let text = String::from_utf8(got).unwrap();
    let fields: Vec<_> = text.splitn(7, ' ').collect();
    assert_eq!(fields[0], "<14>1");
    assert_eq!(fields[2].len(), 255);
    assert_eq!(fields[3].len(), 48);
    assert_eq!(fields[4].len(), 128);
    assert_eq!(fields[5], "event");
    assert!(fields[6].starts_with("[aiwarden@4294967295 "));
    assert_eq!(long.hostname().len(), 255);
}

#[test]
fn structured_data_names_and_values_are_escaped() {
    let mut out = Vec::new();
    write_param_value(&mut out, "a\"b\\c]d é");
    assert_eq!(String::from_utf8(out).unwrap(), "a\\\"b\\\\c\\]d é");
    assert_eq!(sd_name("rule id=\"x]"), "ruleidx");
    assert_eq!(sd_name(&"n".repeat(40)).len(), 32);
    assert_eq!(sd_name("é"), "_");
    let mut tricky = alert();
    tricky.rule_id = "r\"]\\".into();
    tricky.entity.user_id = None;
    let got = message(
        &Output::Alert(Arc::new(tricky)),
        &settings(PayloadFormat::Cef, false),
        false,
    );
    let text = String::from_utf8(got).unwrap();
    assert!(
        text.contains(
            "[aiwarden@32473 rule_id=\"r\\\"\\]\\\\\" severity=\"medium\" session_id=\"s-19\"] "
        ),
        "{text}"
    );
    assert!(
        text.contains("|r\"]\\\\|"),
        "CEF header escapes only \\ and |: {text}"
    );
}

#[test]
fn cef_escapes_headers_and_extension_values() {
    let mut header = String::new();
    write_header_field(&mut header, "a|b\\c\nd=e", 512);
    assert_eq!(header, "a\\|b\\\\c d=e");
    let mut value = String::new();
    write_extension_value(&mut value, "x=y\\z|w\r\n", 1023);
    assert_eq!(value, "x\\=y\\\\z|w\\r\\n");
    let mut capped = String::new();
    write_header_field(&mut capped, &"é".repeat(600), 512);
    assert_eq!(capped.chars().count(), 512);
}

#[test]
fn cef_caps_lengths_and_places_addresses() {
    let mut long = alert();
    long.alert_id = "x".repeat(50);
    long.title = "t".repeat(600);
    long.rule_id = "r".repeat(1100);
    long.details = "d".repeat(2000);
    long.entity.department = Some("p".repeat(5000));
    long.observed = f64::NAN;
    long.threshold = 1e300;
    let line = cef_line(&Output::Alert(Arc::new(long)));
    let header: Vec<_> = line.splitn(8, '|').collect();
    assert_eq!(header[4].len(), 1023, "signature");
    assert_eq!(header[5].len(), 512, "name");
    let ext = header[7];
    assert!(ext.contains(&format!("externalId={} ", "x".repeat(40))));
    assert!(ext.contains(&format!("msg={} ", "d".repeat(1023))));
    assert!(ext.contains(&format!("cs2={} ", "p".repeat(4000))));
    assert!(ext.contains("cn1=0 "), "NaN is not a long: 0");
    assert!(ext.ends_with(&format!("cn2={}", i64::MAX)));

    let mut by_ip = alert();
    by_ip.entity.entity_type = "ip_address".into();
    by_ip.entity.entity_key = "2001:db8::7".into();
    assert!(cef_line(&Output::Alert(Arc::new(by_ip.clone()))).contains(" c6a2=2001:db8::7 "));
    by_ip.entity.entity_key = "192.0.2.9".into();
    assert!(cef_line(&Output::Alert(Arc::new(by_ip))).contains(" src=192.0.2.9 "));
    let mut record = event();
    record.ip_address = Some("10.1.2.x".into());
    let line = cef_line(&Output::Event(Arc::new(record)));
    assert!(!line.contains("src=") && !line.contains("c6a2="), "{line}");
}

#[test]
fn udp_truncation_cuts_at_a_utf8_boundary() {
    let mut text = "aé€".as_bytes().to_vec(); // 1 + 2 + 3 bytes
    assert!(!truncate_utf8(&mut text, 0, 6));
    assert!(truncate_utf8(&mut text, 0, 5));
    assert_eq!(text, "aé".as_bytes());
    let mut text = "aé€".as_bytes().to_vec();
    assert!(truncate_utf8(&mut text, 0, 2));
    assert_eq!(text, b"a");
    let mut text = "aé€".as_bytes().to_vec();
    assert!(truncate_utf8(&mut text, 0, 3));
    assert_eq!(text, "aé".as_bytes());
}

#[test]
fn udp_truncation_measures_and_cuts_only_the_message_after_earlier_records() {
    // Intake encodes a group into one buffer: earlier records must neither count nor be cut.
    let earlier = "€€€".as_bytes();
    let mut buffer = [earlier, "aé€".as_bytes()].concat();
    assert!(!truncate_utf8(&mut buffer, earlier.len(), 6));
    assert!(truncate_utf8(&mut buffer, earlier.len(), 2));
    assert_eq!(buffer, [earlier, b"a"].concat());
    // A message that is all continuation bytes past the limit is cut to nothing, not into
    // the record before it.
    let mut buffer = [earlier, "€".as_bytes()].concat();
    assert!(truncate_utf8(&mut buffer, earlier.len(), 1));
    assert_eq!(buffer, earlier);
}

#[test]
fn frames_are_octet_counted_or_newline_terminated() {
    let mut out = Vec::new();
    frame_octet_counted(b"<134>1 - - - - - - h\xC3\xA9", &mut out);
    assert_eq!(out, b"22 <134>1 - - - - - - h\xC3\xA9");
    let mut out = Vec::new();
    frame_newline(b"a\nb", &mut out);
    assert_eq!(out, b"a\\nb\n");
}

#[test]
fn udp_bodies_keep_messages_apart() {
    let messages: [&[u8]; 3] = [b"one", b"", b"three"];
    let mut body = Vec::new();
    for message in messages {
        body.extend_from_slice(&(message.len() as u32).to_be_bytes());
        body.extend_from_slice(message);
    }
    assert_eq!(datagrams(&body).collect::<Vec<_>>(), messages);
    assert_eq!(
        datagrams(&body[..body.len() - 1]).count(),
        2,
        "a cut message is not sent"
    );
}

#[derive(serde::Deserialize)]
struct Sinks {
    sink: SyslogSinkConfig,
}

fn parse(text: &str) -> Result<SyslogSinkConfig, String> {
    toml::from_str::<Sinks>(&format!("[sink]\n{text}"))
        .map(|sinks| sinks.sink)
        .map_err(|error| error.to_string())
}

#[test]
fn configuration_defaults_and_checks() {
    let config = parse("address = \"siem.example.com\"").unwrap();
    assert_eq!(config.transport, Transport::Tcp);
    assert_eq!(config.framing, Framing::OctetCounting);
    assert_eq!(config.format, PayloadFormat::Json);
    assert_eq!(config.facility, Facility::Local0);
    assert_eq!(config.app_name, "aiwarden");
    assert_eq!(config.enterprise_number, 32473);
    assert!(config.bom);
    assert_eq!(config.max_message_bytes, 2048);
    assert_eq!(
        config.host_port().unwrap(),
        ("siem.example.com".into(), 514)
    );
    assert_eq!(config.validate(), Ok(()));

    let tls = parse("address = \"siem.example.com\"\ntransport = \"tls\"").unwrap();
    assert_eq!(tls.host_port().unwrap().1, 6514);

    // A partial [request] keeps the syslog defaults for what it leaves out.
    let partial = parse("address = \"h:1\"\n[sink.request]\ntimeout = \"5s\"").unwrap();
    assert_eq!(partial.request.timeout, std::time::Duration::from_secs(5));
    assert_eq!(partial.validate(), Ok(()));
    let gzip = parse("address = \"h:1\"\n[sink.request]\ncompression = \"gzip\"").unwrap();
    assert_eq!(gzip.validate().unwrap_err().0, "request.compression");
    let two = parse("address = \"h:1\"\n[sink.request]\nconcurrency = 2").unwrap();
    assert_eq!(two.validate().unwrap_err().0, "request.concurrency");
    assert!(parse("address = \"h:1\"\n[sink.request]\nbogus = 1").is_err());
    assert!(
        parse("address = \"h:1\"\nport = 1").is_err(),
        "unknown keys are refused"
    );
    assert!(parse("address = \"h:1\"\nfacility = \"local9\"").is_err());

    let small = parse("address = \"h:1\"\nmax_message_bytes = 100").unwrap();
    assert_eq!(small.validate().unwrap_err().0, "max_message_bytes");
    let plain = parse("address = \"h:1\"\ntls = { ca_file = \"/ca.pem\" }").unwrap();
    assert_eq!(
        plain.validate().unwrap_err().0,
        "tls",
        "TLS settings without TLS"
    );
    let bad = parse("address = \"h:0\"").unwrap();
    assert_eq!(bad.validate().unwrap_err().0, "address");
}

#[test]
fn addresses_split_into_host_and_port() {
    assert_eq!(
        split_address("10.0.0.5:1514", 514),
        Ok(("10.0.0.5".into(), 1514))
    );
    assert_eq!(split_address("[::1]:6514", 514), Ok(("::1".into(), 6514)));
    assert_eq!(split_address("[::1]", 6514), Ok(("::1".into(), 6514)));
    assert_eq!(split_address("::1", 514), Ok(("::1".into(), 514)));
    assert_eq!(split_address("logs", 514), Ok(("logs".into(), 514)));
    assert!(split_address("", 514).is_err());
    assert!(split_address("logs:http", 514).is_err());
    assert!(split_address(":514", 514).is_err());
    assert!(split_address("[::1", 514).is_err());
    assert!(split_address("fe80::1:x:514", 514).is_err());
}
