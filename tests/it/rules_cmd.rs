//! The analyst's commands through the binary: `rules lint`, `rules test` and `replay`.

use crate::util::{binary, read_json_lines, AgentDir};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(binary())
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The shipped rules copied into `dir/rules`.
fn copy_rules(agent: &AgentDir) -> PathBuf {
    let dir = agent.path("rules");
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// A configuration with the demo's entitlements (replay reads `[detect]`).
fn demo_config(agent: &AgentDir) -> PathBuf {
    let entitlements =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/entitlements.toml");
    agent.write_config(&format!(
        r#"
[sources.audit]
type = "file"
include = ["{{dir}}/nothing/*.jsonl"]
[detect]
entitlements_file = "{}"
"#,
        entitlements.display()
    ))
}

fn demo_stream() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/audit.jsonl")
}

/// The table row of a rule: (alerts, entities, top entities text).
fn row(out: &str, rule: &str) -> (u64, u64, String) {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(rule))
        .unwrap_or_else(|| panic!("no row for {rule} in {out}"));
    let mut parts = line.split_whitespace();
    parts.next();
    let alerts = parts.next().unwrap().parse().unwrap();
    let entities = parts.next().unwrap().parse().unwrap();
    (alerts, entities, parts.collect::<Vec<_>>().join(" "))
}

#[test]
fn rules_cmd_lint_passes_on_the_shipped_pack() {
    let output = run(&["rules", "lint"], &[]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    for rule in ["mcp-volume", "token-spike", "prompt-injection"] {
        assert!(out.lines().any(|l| l.starts_with(rule)), "{out}");
    }
    assert!(out.contains("mcp-volume") && out.contains("threshold") && out.contains("enabled"));
    assert!(out.contains("0 error(s)"), "{out}");
}

#[test]
fn rules_cmd_lint_names_file_rule_field_and_line_and_exits_2() {
    let agent = AgentDir::new();
    let dir = copy_rules(&agent);
    let text = std::fs::read_to_string(dir.join("mcp-volume.toml")).unwrap();
    std::fs::write(
        dir.join("mcp-volume.toml"),
        text.replace("window = \"10m\"", "window = \"ten minutes\""),
    )
    .unwrap();
    let token = std::fs::read_to_string(dir.join("token-spike.toml")).unwrap();
    std::fs::write(
        dir.join("token-spike.toml"),
        token.replace("enabled = true", "enabled = false"),
    )
    .unwrap();
    let output = run(&["rules", "lint", "--rules-dir"], &[&dir]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    let error = out
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(error.contains("mcp-volume.toml"), "{error}");
    assert!(error.contains("rule `mcp-volume`"), "{error}");
    assert!(error.contains("threshold.tiers"), "{error}");
    assert!(error.contains("line "), "{error}");
    // The other rules are still listed, a disabled one as such.
    assert!(
        out.lines()
            .any(|l| l.starts_with("token-spike") && l.contains("disabled")),
        "{out}"
    );
}

#[test]
fn rules_cmd_test_passes_on_the_shipped_pack() {
    let output = run(&["rules", "test"], &[]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(!out.contains("FAIL") && !out.contains("NONE"), "{out}");
    assert!(out.contains("PASS mcp-volume #1"), "{out}");
    assert!(out.contains(" 0 failed"), "{out}");
}

#[test]
fn rules_cmd_test_fails_naming_the_wrong_example() {
    let agent = AgentDir::new();
    let dir = copy_rules(&agent);
    let text = std::fs::read_to_string(dir.join("mcp-auth-failures.toml")).unwrap();
    let broken = text.replace(
        "expect = [{ entity_key = \"u1\", severity = \"medium\" }]",
        "expect = [{ entity_key = \"u1\", severity = \"high\" }]",
    );
    assert_ne!(text, broken);
    std::fs::write(dir.join("mcp-auth-failures.toml"), broken).unwrap();
    let output = run(&["rules", "test", "--rules-dir"], &[&dir]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(fail.contains("mcp-auth-failures #1"), "{fail}");
    assert!(
        fail.contains("six failures in three minutes fire"),
        "{fail}"
    );
    assert!(
        fail.contains("missing [mcp-auth-failures u1 high]"),
        "{fail}"
    );
    assert!(
        fail.contains("unexpected [mcp-auth-failures u1 medium]"),
        "{fail}"
    );
    assert!(out.contains("1 failed"), "{out}");
}

#[test]
fn replay_of_the_demo_prints_exactly_its_alerts() {
    let agent = AgentDir::new();
    let config = demo_config(&agent);
    let alerts_out = agent.path("alerts.jsonl");
    let output = run(
        &["replay", "--config"],
        &[
            &config,
            &demo_stream(),
            Path::new("--alerts-out"),
            &alerts_out,
        ],
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(row(&out, "mcp-volume"), (2, 1, "s-demo-burst (2)".into()));
    assert_eq!(row(&out, "token-spike").0, 1);
    assert_eq!(
        row(&out, "restricted-unauthorised"),
        (1, 1, "eve@acme.example (1)".into())
    );
    assert_eq!(row(&out, "prompt-injection").0, 0);
    assert!(out.contains("4 alert(s)"), "{out}");
    assert!(out.contains("invalid_json 1"), "bad lines by reason: {out}");

    let alerts = read_json_lines(&alerts_out);
    let mut found: Vec<String> = alerts
        .iter()
        .map(|a| format!("{} {} {}", a["rule_id"], a["entity_key"], a["severity"]))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            r#""mcp-volume" "s-demo-burst" "high""#,
            r#""mcp-volume" "s-demo-burst" "medium""#,
            r#""restricted-unauthorised" "eve@acme.example" "high""#,
            r#""token-spike" "mallory@acme.example" "low""#,
        ]
    );

    // Deterministic: a second run writes the same alerts.
    let again = agent.path("again.jsonl");
    let output = run(
        &["replay", "--config"],
        &[&config, &demo_stream(), Path::new("--alerts-out"), &again],
    );
    assert!(output.status.success());
    assert_eq!(
        std::fs::read(&alerts_out).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn replay_set_overrides_a_rule_parameter() {
    let agent = AgentDir::new();
    let config = demo_config(&agent);
    let alerts_out = agent.path("alerts.jsonl");
    let output = run(
        &[
            "replay",
            "--set",
            "mcp-volume.threshold.tiers.0.above=200",
            "--set",
            "token-spike.enabled=false",
            "--config",
        ],
        &[
            &config,
            &demo_stream(),
            Path::new("--alerts-out"),
            &alerts_out,
        ],
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(row(&out, "mcp-volume").0, 1);
    assert!(!out.contains("token-spike"), "disabled: {out}");
    let alerts = read_json_lines(&alerts_out);
    assert!(alerts
        .iter()
        .all(|a| !(a["rule_id"] == "mcp-volume" && a["severity"] == "medium")));

    let output = run(
        &["replay", "--set", "no-such-rule.enabled=false"],
        &[&demo_stream()],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no-such-rule"),
        "{}",
        stderr(&output)
    );
    let output = run(
        &["replay", "--set", "mcp-volume.threshold.tiers.7.above=1"],
        &[&demo_stream()],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("tiers.7"), "{}", stderr(&output));
}

#[test]
fn replay_from_after_the_incidents_yields_no_alerts() {
    let output = run(
        &["replay", "--from", "2026-11-24T00:00:00Z"],
        &[&demo_stream()],
    );
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains(" 0 alert(s)"), "{out}");
    assert!(out.contains("outside --from/--to"), "{out}");
    assert_eq!(row(&out, "mcp-volume").0, 0);
}

#[test]
fn replay_reads_gzipped_input() {
    let agent = AgentDir::new();
    let config = demo_config(&agent);
    let gz = agent.path("audit.jsonl.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
    encoder
        .write_all(&std::fs::read(demo_stream()).unwrap())
        .unwrap();
    encoder.finish().unwrap();
    let output = run(&["replay", "--config"], &[&config, &gz]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(row(&out, "mcp-volume"), (2, 1, "s-demo-burst (2)".into()));
    assert!(out.contains("4 alert(s)"), "{out}");
}

#[test]
fn rules_cmd_lint_checks_the_configured_entitlements_and_calendars() {
    let agent = AgentDir::new();
    std::fs::write(
        agent.path("entitlements.toml"),
        "[restricted]\nuser = [\"a\"]\n",
    )
    .unwrap();
    std::fs::write(
        agent.path("calendars.toml"),
        "[default]\ntimezone = \"Nowhere/City\"\nhours = \"09:00-17:00\"\n",
    )
    .unwrap();
    let config = agent.write_config(
        r#"
[sources.audit]
type = "file"
include = ["{dir}/*.jsonl"]
[detect]
entitlements_file = "{dir}/entitlements.toml"
calendars_file = "{dir}/calendars.toml"
"#,
    );
    let output = run(&["rules", "lint", "--config"], &[&config]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("error: entitlements:") && l.contains("entitlements.toml")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("error: calendars:") && l.contains("Nowhere/City")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("mcp-volume")), "{out}");
}

#[test]
fn replay_seeds_baselines_for_a_first_start() {
    let agent = AgentDir::new();
    // History: the demo stream up to the incident day.
    let text = std::fs::read_to_string(demo_stream()).unwrap();
    let (history, last_day): (Vec<&str>, Vec<&str>) = text
        .lines()
        .partition(|line| !line.contains("\"2026-11-23T"));
    std::fs::write(agent.path("history.jsonl"), history.join("\n") + "\n").unwrap();
    let state = agent.path("state");
    let seeded = run(
        &["replay", "--seed-state", state.to_str().unwrap()],
        &[&agent.path("history.jsonl")],
    );
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    assert!(state.join("detection-state.json").exists());

    // A first start that only ever sees the last day still knows mallory's usual volume.
    std::fs::create_dir(agent.path("in")).unwrap();
    let mut file = std::fs::File::create(agent.path("in/today.jsonl")).unwrap();
    for line in &last_day {
        writeln!(file, "{line}").unwrap();
    }
    agent.write_config(&format!(
        "[agent]\nstate_dir = \"{{dir}}/state\"\n{}",
        crate::util::TAIL_TO_FILES
    ));
    let mut child = agent.spawn();
    crate::util::wait_until(std::time::Duration::from_secs(20), "the last day", || {
        crate::util::count_lines(&agent.path("events.jsonl")) >= last_day.len()
    });
    assert!(crate::util::terminate(&mut child, std::time::Duration::from_secs(20)).success());
    let alerts = read_json_lines(&agent.path("alerts.jsonl"));
    assert!(
        alerts
            .iter()
            .any(|a| a["rule_id"] == "token-spike" && a["entity_key"] == "mallory@acme.example"),
        "the seeded baseline saw mallory's spike: {alerts:#?}"
    );
}
