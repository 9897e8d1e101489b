//! The `syslog` sink end to end against the strict receiver in `mock::syslog`, per transport,
//! and against a real rsyslog (`rsyslog.rs`).

pub(crate) mod rsyslog;

use crate::mock::syslog::{Framing, Message, SyslogMock, TestCa};
use crate::util::{read_json_lines, run_in_process, run_in_process_gated, session_events};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

fn sink(address: &str, records: &str, extra: &str) -> String {
    format!(
        r#"
[sinks.syslog]
type = "syslog"
address = "{address}"
records = "{records}"
hostname = "gw-test"
{extra}
[sinks.syslog.batch]
max_events = 10
timeout = "50ms"
[sinks.syslog.request]
retry_initial_backoff = "10ms"
retry_max_backoff = "200ms"
timeout = "2s"
"#
    )
}

fn dead_letters(state: &tempfile::TempDir) -> Vec<serde_json::Value> {
    read_json_lines(&state.path().join("dead_letter/syslog.jsonl"))
}

/// Every event `<prefix>-0..count` exactly once and in order, and exactly `alerts` alerts, each
/// with the PRI, MSGID, header and structured data the contract gives.
fn check_stream(messages: &[Message], prefix: &str, count: usize, alerts: usize) {
    let events: Vec<_> = messages.iter().filter(|m| m.msgid == "event").collect();
    let ids: Vec<_> = events.iter().map(|m| m.record_id()).collect();
    let want: Vec<_> = (0..count).map(|n| format!("{prefix}-{n}")).collect();
    assert_eq!(ids, want, "every event once, in order");
    let pid = std::process::id().to_string();
    for message in messages {
        assert_eq!(message.hostname, "gw-test");
        assert_eq!(message.app_name, "aiwarden");
        assert_eq!(message.procid, pid);
        assert!(message.bom, "MSG starts with the BOM");
        assert_eq!(message.sd.len(), 1);
        assert_eq!(message.sd[0].0, "aiwarden@32473");
    }
    for event in &events {
        assert_eq!(event.pri, 16 * 8 + 6, "local0.info");
        assert_eq!(event.param("user_id"), Some("u-7f3a"));
        assert_eq!(
            event.param("session_id"),
            Some(format!("s-{prefix}").as_str())
        );
        assert!(event.param("event_type").is_some());
        assert!(event.timestamp.starts_with("2026-11-23T10:") && event.timestamp.ends_with('Z'));
    }
    let found: Vec<_> = messages.iter().filter(|m| m.msgid == "alert").collect();
    assert_eq!(found.len(), alerts, "alerts");
    for alert in found {
        let json = alert.json();
        assert_eq!(alert.param("rule_id"), json["rule_id"].as_str());
        assert_eq!(alert.param("severity"), json["severity"].as_str());
        let severity = match json["severity"].as_str().unwrap() {
            "critical" => 2,
            "high" => 3,
            "medium" => 4,
            _ => 5,
        };
        assert_eq!(alert.pri, 16 * 8 + severity);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_octet_counting_delivers_every_record_once_in_order() {
    let mock = SyslogMock::stream(Framing::OctetCounting, None).await;
    // 55 MCP calls in one session: 55 events and one mcp-volume alert.
    let records = session_events("tcp", 55, json!({"event_type": "mcp_call"}));
    let (state, metrics) = run_in_process(&records, &sink(&mock.address(), "both", ""), None).await;
    mock.wait_for(56).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    let messages = mock.messages();
    check_stream(&messages, "tcp", 55, 1);
    let alert = messages.iter().find(|m| m.msgid == "alert").unwrap();
    assert_eq!(alert.param("rule_id"), Some("mcp-volume"));
    assert_eq!(alert.pri, 132);
    assert_eq!(mock.connections(), 1, "one connection kept");
    assert_eq!(metrics.total("sink_records_sent_total"), 56);
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newline_framing_delivers_every_record_once_in_order() {
    let mock = SyslogMock::stream(Framing::Newline, None).await;
    let records = session_events("nl", 25, json!({}));
    let toml = sink(&mock.address(), "events", "framing = \"newline\"");
    let (state, _) = run_in_process(&records, &toml, None).await;
    mock.wait_for(25).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    check_stream(&mock.messages(), "nl", 25, 0);
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sends_one_datagram_per_record() {
    let mock = SyslogMock::udp().await;
    let records = session_events("udp", 20, json!({}));
    let toml = sink(&mock.address(), "events", "transport = \"udp\"");
    let (_state, metrics) = run_in_process(&records, &toml, None).await;
    mock.wait(Duration::from_secs(5), "20 datagrams", |m| {
        m.messages().len() >= 20
    })
    .await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    check_stream(&mock.messages(), "udp", 20, 0);
    assert_eq!(metrics.total("sink_records_truncated_total"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_truncates_long_messages_at_a_utf8_boundary_and_counts_them() {
    let mock = SyslogMock::udp().await;
    let records = session_events("long", 5, json!({"note": "é".repeat(600)}));
    let extra = "transport = \"udp\"\nmax_message_bytes = 480";
    let toml = sink(&mock.address(), "events", extra);
    let (_state, metrics) = run_in_process(&records, &toml, None).await;
    mock.wait(Duration::from_secs(5), "5 datagrams", |m| {
        m.messages().len() >= 5
    })
    .await;
    // The mock refuses a MSG that is not valid UTF-8: a cut inside `é` would show here.
    assert_eq!(mock.violations(), Vec::<String>::new());
    for message in mock.messages() {
        assert!(message.len <= 480 && message.len >= 478, "{}", message.len);
        assert!(message.msg.ends_with('é'), "cut at a character boundary");
    }
    assert_eq!(metrics.total("sink_records_truncated_total"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_made_again_and_nothing_is_lost() {
    let mock = SyslogMock::stream(Framing::OctetCounting, None).await;
    mock.drop_after(15);
    let records = session_events("drop", 30, json!({}));
    let (first, rest) = records.split_at(15);
    let waiting = mock.clone();
    // The second half is read only once the receiver has taken the first and hung up.
    let gate = async move {
        waiting
            .wait(Duration::from_secs(10), "the receiver to drop", |m| {
                m.drops() == 1
            })
            .await;
    };
    let toml = sink(&mock.address(), "events", "");
    let (state, _) = run_in_process_gated(first, gate, rest, &toml).await;
    mock.wait_for(30).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    let messages = mock.messages();
    check_stream(&messages, "drop", 30, 0);
    assert_eq!(mock.connections(), 2, "one reconnect");
    let per_connection = messages.iter().fold(HashMap::new(), |mut counts, m| {
        *counts.entry(m.connection).or_insert(0) += 1;
        counts
    });
    assert_eq!(per_connection, HashMap::from([(1, 15), (2, 15)]));
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_comes_up_late_gets_everything() {
    // A free port with nothing listening yet: connections are refused and retried.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let late = tokio::spawn(async move {
        // Deliberately late (not a synchronisation): the first attempts must fail.
        tokio::time::sleep(Duration::from_millis(400)).await;
        SyslogMock::stream_on(address, Framing::OctetCounting).await
    });
    let records = session_events("late", 12, json!({}));
    let toml = sink(&address.to_string(), "events", "");
    let (state, metrics) = run_in_process(&records, &toml, None).await;
    let mock = late.await.unwrap();
    mock.wait_for(12).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    check_stream(&mock.messages(), "late", 12, 0);
    assert!(metrics.total("sink_errors_total") >= 1, "refused at first");
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_test_ca_delivers_every_record_once() {
    let ca = TestCa::new();
    let mock = SyslogMock::stream(Framing::OctetCounting, Some(ca.acceptor.clone())).await;
    let records = session_events("tls", 55, json!({"event_type": "mcp_call"}));
    let extra = format!(
        "transport = \"tls\"\ntls = {{ ca_file = \"{}\" }}",
        ca.ca_file.display()
    );
    let (state, _) = run_in_process(&records, &sink(&mock.address(), "both", &extra), None).await;
    mock.wait_for(56).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    check_stream(&mock.messages(), "tls", 55, 1);
    assert_eq!(mock.connections(), 1);
    mock.wait(Duration::from_secs(10), "the connection to end", |m| {
        m.ended() == 1
    })
    .await;
    assert_eq!(mock.unclean_closes(), 0, "closed with close_notify");
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_an_unknown_ca_keeps_the_records() {
    let ca = TestCa::new();
    let mock = SyslogMock::stream(Framing::OctetCounting, Some(ca.acceptor.clone())).await;
    let records = session_events("untrusted", 5, json!({}));
    let (state, metrics) = run_in_process(
        &records,
        &sink(&mock.address(), "events", "transport = \"tls\""),
        Some(Duration::from_millis(800)),
    )
    .await;
    assert!(mock.messages().is_empty());
    assert!(metrics.total("sink_errors_total") >= 1);
    assert_eq!(metrics.total("sink_records_sent_total"), 0);
    assert!(
        dead_letters(&state).is_empty(),
        "a TLS failure never dead-letters data"
    );
}

/// Split a CEF line into its 7 header fields and its extension pairs, undoing the escapes.
fn parse_cef(line: &str) -> (Vec<String>, HashMap<String, String>) {
    let mut chars = line.chars();
    let mut header = Vec::new();
    let mut field = String::new();
    while header.len() < 7 {
        match chars.next().expect("7 header fields") {
            '\\' => field.push(chars.next().unwrap()),
            '|' => header.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    let mut pairs = HashMap::new();
    let mut key: Option<String> = None;
    let mut text = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.push(match chars.next().unwrap() {
                'n' => '\n',
                'r' => '\r',
                other => other,
            }),
            '=' => {
                let (value, next) = match text.rsplit_once(' ') {
                    Some((value, next)) if key.is_some() => (value.to_string(), next.to_string()),
                    _ => (String::new(), text.clone()),
                };
                if let Some(key) = key.take() {
                    pairs.insert(key, value);
                }
                key = Some(next);
                text.clear();
            }
            c => text.push(c),
        }
    }
    if let Some(key) = key {
        pairs.insert(key, text);
    }
    (header, pairs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cef_payloads_parse_back() {
    let mock = SyslogMock::stream(Framing::OctetCounting, None).await;
    let records = session_events(
        "cef",
        55,
        json!({"event_type": "mcp_call", "ip_address": "10.9.8.7"}),
    );
    let (_state, _) = run_in_process(
        &records,
        &sink(&mock.address(), "both", "format = \"cef\""),
        None,
    )
    .await;
    mock.wait_for(56).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    let messages = mock.messages();
    assert_eq!(messages.len(), 56);
    let alert = messages.iter().find(|m| m.msgid == "alert").unwrap();
    let (header, ext) = parse_cef(&alert.msg);
    assert_eq!(header[..3], ["CEF:0", "aiwarden", "aiwarden"]);
    assert_eq!(header[4], "mcp-volume");
    assert_eq!(header[6], "5", "medium");
    assert_eq!(ext["suser"], "u-7f3a");
    assert_eq!(ext["cs1Label"], "sessionId");
    assert_eq!(ext["cs1"], "s-cef");
    assert_eq!(ext["cs2Label"], "department");
    assert_eq!(ext["cs2"], "engineering");
    assert_eq!(ext["cn1Label"], "observed");
    assert_eq!(ext["cn2Label"], "threshold");
    assert!(ext["cn1"].parse::<i64>().unwrap() > ext["cn2"].parse::<i64>().unwrap());
    assert_eq!(ext["externalId"].len(), 36, "the alert id");
    assert!(ext["msg"].contains("MCP"), "{}", ext["msg"]);
    let event = messages.iter().find(|m| m.msgid == "event").unwrap();
    let (header, ext) = parse_cef(&event.msg);
    assert_eq!((header[4].as_str(), header[6].as_str()), ("mcp_call", "1"));
    assert_eq!(ext["externalId"], "cef-0");
    // Masked to its /24 by default ([privacy] ip_mask).
    assert_eq!(ext["src"], "10.9.8.0");
    assert_eq!(ext["rt"], "1795428000000");
    assert_eq!(ext["dhost"], "code-assistant");
}
