//! The `anthropic` source end to end against the strict mock of the Anthropic API: headers and
//! key, cursor paging, retries, a refused key, restarts at the committed cursor, mapping.

use crate::mock::anthropic::{activity, AnthropicMock, Scripted};
use crate::util::{binary, read_json_lines};
use aiwarden::config::Config;
use aiwarden::pipeline::{Pipeline, Shutdown};
use aiwarden::telemetry::{Metrics, SinkHealth};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "sk-ant-api01-mock-compliance-key-000";

/// One agent directory: key file, state, output.
struct Agent {
    dir: tempfile::TempDir,
}

impl Agent {
    fn new(key: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), format!("{key}\n")).unwrap();
        Agent { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, mock: &AnthropicMock, source_extra: &str) -> String {
        format!(
            r#"
[agent]
state_dir = "{dir}/state"

[telemetry]
enabled = false

[sources.claude]
type = "anthropic"
api_key = {{ file = "{dir}/key" }}
base_url = "{url}"
start_at = "2026-11-01T00:00:00Z"
page_limit = 10
interval = "100ms"
retry_initial_backoff = "10ms"
retry_max_backoff = "50ms"
{source_extra}

[sinks.out]
type = "file"
path = "{dir}/out.jsonl"
records = "both"
"#,
            dir = self.dir.path().display(),
            url = mock.url()
        )
    }

    /// Run the agent until `done` holds for the events written (or 20 s), then stop it.
    async fn run_until(
        &self,
        mock: &AnthropicMock,
        source_extra: &str,
        done: impl Fn(&[Value], &Metrics) -> bool,
    ) -> (Vec<Value>, Arc<Metrics>) {
        let path = self.path("aiwarden.toml");
        std::fs::write(&path, self.config(mock, source_extra)).unwrap();
        let config = Config::load(&path).unwrap();
        let pipeline = Pipeline::new(config);
        let metrics = pipeline.metrics();
        let shutdown = Shutdown::new();
        let running = tokio::spawn(pipeline.run(shutdown.clone()));
        let start = Instant::now();
        loop {
            let events = self.events();
            if done(&events, &metrics) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "condition not reached; {} events written, requests {:?}",
                events.len(),
                mock.requests()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        shutdown.begin(Duration::from_secs(2));
        running.await.unwrap().unwrap();
        (self.events(), metrics)
    }

    /// The events (not alerts) written so far.
    fn events(&self) -> Vec<Value> {
        read_json_lines(&self.path("out.jsonl"))
            .into_iter()
            .filter(|v| v.get("event_type").is_some())
            .collect()
    }

    fn cursor(&self) -> Value {
        let text = std::fs::read_to_string(self.path("state/checkpoints/claude.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

fn feed(range: std::ops::Range<usize>) -> Vec<Value> {
    range
        .map(|n| {
            activity(
                n,
                "claude_chat_created",
                "jdoe@acme.example",
                "192.0.2.34",
                json!({"claude_chat_id": format!("chat_{n}")}),
            )
        })
        .collect()
}

fn activity_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["activity_id"].as_str().map(str::to_string))
        .collect()
}

fn expected_ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("activity_{n:06}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_the_feed_arrive_in_order_with_the_key_and_headers() {
    let mock = AnthropicMock::start(KEY).await;
    mock.push_activities(feed(0..35));
    let agent = Agent::new(KEY);
    let (events, _) = agent
        .run_until(&mock, "", |events, _| events.len() >= 35)
        .await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    assert_eq!(
        activity_ids(&events),
        expected_ids(0..35),
        "oldest first, each once"
    );
    let requests = mock.requests();
    // The first start walks the window towards older pages, then goes forward page by page.
    assert!(requests[0]
        .1
        .contains("created_at.gte=2026-11-01T00%3A00%3A00Z"));
    assert!(requests.iter().any(|(_, q)| q.contains("after_id=")));
    assert!(requests.iter().any(|(_, q)| q.contains("before_id=")));
    assert!(requests.iter().all(|(_, q)| q.contains("limit=10")));
    assert_eq!(agent.cursor()["activities"]["last_id"], "activity_000034");
    let first = &events[0];
    assert_eq!(first["event_type"], "platform_activity");
    assert_eq!(first["activity_type"], "claude_chat_created");
    assert_eq!(first["user_id"], "jdoe@acme.example");
    // Addresses leave the host masked to their /24 unless [privacy] says otherwise.
    assert_eq!(first["ip_address"], "192.0.2.0");
    assert_eq!(first["ip_network"], "192.0.2.0/24");
    assert_eq!(first["user_agent"], "Mozilla/5.0");
    assert_eq!(first["organization_id"], "org_01Wv6QeBcDfGhJkLmNpQrSt8");
    assert_eq!(first["claude_chat_id"], "chat_0");
    assert_eq!(first["timestamp"], "2026-11-23T08:00:00.000Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_without_loss() {
    let mock = AnthropicMock::start(KEY).await;
    mock.push_activities(feed(0..12));
    mock.script(&[
        Scripted {
            status: 429,
            retry_after: Some(1),
        },
        Scripted {
            status: 500,
            retry_after: None,
        },
        Scripted {
            status: 503,
            retry_after: None,
        },
    ]);
    let agent = Agent::new(KEY);
    let start = Instant::now();
    let (events, _) = agent
        .run_until(&mock, "", |events, _| events.len() >= 12)
        .await;
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "retry-after honoured"
    );
    assert_eq!(activity_ids(&events), expected_ids(0..12));
    assert_eq!(mock.violations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_one_configuration_error_and_loses_nothing() {
    let mock = AnthropicMock::start(KEY).await;
    mock.push_activities(feed(0..5));
    let agent = Agent::new("sk-ant-api01-expired-key");
    let (events, metrics) = agent
        .run_until(&mock, "", |_, metrics| {
            matches!(
                metrics.source_health().get("claude"),
                Some(SinkHealth::Failing(_))
            )
        })
        .await;
    assert!(events.is_empty());
    let reason = match metrics.source_health().get("claude") {
        Some(SinkHealth::Failing(reason)) => reason.clone(),
        other => panic!("expected failing, got {other:?}"),
    };
    assert!(
        reason.contains("401") && reason.contains("api_key"),
        "{reason}"
    );
    assert!(
        !reason.contains("expired-key"),
        "the key never appears: {reason}"
    );
    assert!(
        agent.cursor()["activities"].get("last_id").is_none(),
        "nothing committed"
    );

    // The operator replaces the key file: the same state resumes and nothing was lost.
    std::fs::write(agent.path("key"), KEY).unwrap();
    let (events, metrics) = agent
        .run_until(&mock, "", |events, _| events.len() >= 5)
        .await;
    assert_eq!(activity_ids(&events), expected_ids(0..5));
    assert_eq!(
        metrics.source_health().get("claude"),
        Some(&SinkHealth::Healthy)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_at_the_committed_cursor() {
    let mock = AnthropicMock::start(KEY).await;
    mock.push_activities(feed(0..15));
    let agent = Agent::new(KEY);
    agent
        .run_until(&mock, "", |events, _| events.len() >= 15)
        .await;
    std::fs::remove_file(agent.path("out.jsonl")).unwrap();
    mock.push_activities(feed(15..27));
    let (events, _) = agent
        .run_until(&mock, "", |events, _| events.len() >= 12)
        .await;
    // Only what came after the cursor: nothing skipped, nothing repeated.
    assert_eq!(activity_ids(&events), expected_ids(15..27));
    let after_restart: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|(_, q)| q.contains("created_at.gte"))
        .collect();
    assert_eq!(
        after_restart.len(),
        2,
        "the window is walked on the first start only: {after_restart:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_types_pass_through_and_policy_changes_are_policy_events() {
    let mock = AnthropicMock::start(KEY).await;
    mock.push_activities(vec![
        activity(1, "quantum_widget_frobnicated", "eve@acme.example", "2001:db8:1:2::7", json!({"widget": {"size": 3}, "status": "odd"})),
        activity(2, "admin_api_key_created", "eve@acme.example", "192.0.2.9", json!({"api_key_id": "apikey_01"})),
        json!({"id": "activity_000003", "created_at": "2026-11-23T08:00:03Z", "type": "api_key_deleted",
               "actor": {"type": "api_actor", "api_key_id": "apikey_99"}}),
        json!({"no_id": true}),
    ]);
    let agent = Agent::new(KEY);
    let (events, metrics) = agent
        .run_until(&mock, "", |events, _| events.len() >= 3)
        .await;
    let unknown = &events[0];
    assert_eq!(unknown["event_type"], "platform_activity");
    assert_eq!(unknown["activity_type"], "quantum_widget_frobnicated");
    assert_eq!(unknown["widget"]["size"], 3);
    assert_eq!(
        unknown["activity_status"], "odd",
        "a clashing field is kept under a prefix"
    );
    assert_eq!(unknown["ip_network"], "2001:db8:1::/48");
    assert_eq!(events[1]["event_type"], "policy_event");
    assert_eq!(events[1]["activity_category"], "key_created");
    assert_eq!(events[1]["activity_api_key_id"], "apikey_01");
    assert_eq!(
        events[2]["user_id"], "apikey_99",
        "an API actor is its key id"
    );
    assert_eq!(events[2]["activity_category"], "key_deleted");
    // The activity without an id is dead-lettered, not dropped silently.
    let dead = read_json_lines(&agent.path("state/dead_letter.jsonl"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(metrics.total("records_dead_lettered_total"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_buckets_are_emitted_once_when_final() {
    let mock = AnthropicMock::start(KEY).await;
    let now = chrono::Utc::now();
    let hour = |back: i64| {
        use chrono::DurationRound;
        (now - chrono::TimeDelta::hours(back))
            .duration_trunc(chrono::TimeDelta::hours(1))
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let result = |tokens: u64| {
        json!({"uncached_input_tokens": tokens, "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 0},
               "cache_read_input_tokens": 5, "output_tokens": 100, "api_key_id": "apikey_01", "workspace_id": "wrkspc_01", "model": "claude-sonnet-4-6"})
    };
    // Final: ended more than the 1 h settle ago. Not final: the bucket that ended just now.
    mock.set_usage(&hour(4), vec![result(1000)]);
    mock.set_usage(&hour(3), vec![result(2000)]);
    mock.set_usage(&hour(1), vec![result(9999)]);
    let day = (now - chrono::TimeDelta::days(2))
        .format("%Y-%m-%d")
        .to_string();
    mock.set_claude_code(&day, vec![json!({
        "date": format!("{day}T00:00:00Z"), "actor": {"type": "user_actor", "email_address": "dev@acme.example"},
        "organization_id": "org_1", "customer_type": "api", "terminal_type": "vscode",
        "core_metrics": {"num_sessions": 3},
        "model_breakdown": [{"model": "claude-sonnet-4-6", "tokens": {"input": 100, "output": 50, "cache_read": 10, "cache_creation": 5},
                             "estimated_cost": {"currency": "USD", "amount": 125}}]})]);
    let agent = Agent::new(KEY);
    let extra = "activities = false\n[sources.claude.usage]\nmessages = true\nclaude_code = true\nbackfill = \"3d\"\ninterval = \"100ms\"";
    let (events, _) = agent
        .run_until(&mock, extra, |events, _| events.len() >= 3)
        .await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    let tokens: Vec<u64> = events
        .iter()
        .filter(|e| e["usage_report"] == "messages")
        .map(|e| e["usage_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(
        tokens,
        vec![1115, 2115],
        "final buckets once, in order; the open one waits"
    );
    let code = events
        .iter()
        .find(|e| e["usage_report"] == "claude_code")
        .unwrap();
    assert_eq!(code["event_type"], "usage");
    assert_eq!(code["user_id"], "dev@acme.example");
    assert_eq!(code["usage_tokens"], 165);
    assert_eq!(code["cost_usd"], 1.25);
    assert!(
        events.iter().all(|e| e.get("prompt_tokens").is_none()),
        "aggregates stay out of per-call token fields"
    );

    // A second run re-reads only what is not final yet and emits nothing twice.
    std::fs::remove_file(agent.path("out.jsonl")).unwrap();
    let polled = mock.requests().len();
    let (events, _) = agent
        .run_until(&mock, extra, |_, _| mock.requests().len() >= polled + 4)
        .await;
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn check_config_never_prints_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aiwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstate_dir = \"{}\"\n[sources.claude]\ntype = \"anthropic\"\napi_key = \"{KEY}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("anthropic"), "{text}");
    assert!(!text.contains(KEY), "{text}");
}
