use super::*;
use crate::sinks::RecordKinds;
use std::collections::HashMap;

/// Load `text` as a configuration file with the given environment overrides.
fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aiwarden.toml");
    std::fs::write(&path, text).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let environment = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .try_parsing(true)
        .source(Some(env));
    Config::load_with(&path, environment)
}

/// Expect an `Invalid` error at `key` whose reason mentions `needle`.
fn check_invalid(text: &str, key: &str, needle: &str) {
    match load(text, &[]) {
        Err(ConfigError::Invalid {
            key: got, reason, ..
        }) => {
            assert_eq!(got, key, "reason: {reason}");
            assert!(
                reason.contains(needle),
                "reason `{reason}` lacks `{needle}`"
            );
        }
        other => panic!("expected an invalid key `{key}`, got {other:?}"),
    }
}

const MINIMAL: &str = r#"
[sources.audit]
type = "file"
include = ["/tmp/*.jsonl"]
"#;

#[test]
fn minimal_config_gets_working_defaults() {
    let config = load(MINIMAL, &[]).unwrap();
    assert_eq!(config.agent.deployment_tag, "claude_deployment");
    assert_eq!(config.agent.state_dir, PathBuf::from("/var/lib/aiwarden"));
    assert_eq!(config.detect.allowed_lateness, Duration::from_secs(300));
    assert_eq!(config.agent.channel_capacity, 2);
    let sinks = config.effective_sinks();
    assert_eq!(
        sinks.len(),
        1,
        "alerts go to stdout when no sink is configured"
    );
    assert_eq!(sinks["stdout"].routing().records, RecordKinds::Alerts);
    assert_eq!(
        config.dead_letter_path(),
        PathBuf::from("/var/lib/aiwarden/dead_letter.jsonl")
    );
}

#[test]
fn the_packaged_example_config_is_valid() {
    let text = include_str!("../../packaging/aiwarden.toml");
    let config = load(text, &[]).unwrap();
    assert!(config.sources.contains_key("gateway"));
    assert!(config.sinks.contains_key("alerts_file"));
    let text = include_str!("../../examples/quickstart.toml");
    load(text, &[]).unwrap();
}

#[test]
fn environment_overrides_the_file() {
    let config = load(
        MINIMAL,
        &[
            ("AIWARDEN__AGENT__DEPLOYMENT_TAG", "prod_eu"),
            ("AIWARDEN__AGENT__CHANNEL_CAPACITY", "7"),
            ("AIWARDEN__DETECT__ALLOWED_LATENESS", "1m"),
        ],
    )
    .unwrap();
    assert_eq!(config.agent.deployment_tag, "prod_eu");
    assert_eq!(config.agent.channel_capacity, 7);
    assert_eq!(config.detect.allowed_lateness, Duration::from_secs(60));
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    check_invalid(
        &format!("{MINIMAL}\n[sinks.console]\ntype = \"stdout\"\nrecods = \"alerts\"\n"),
        "sinks.console",
        "unknown field `recods`",
    );
    check_invalid(
        &format!("{MINIMAL}\n[agnet]\nx = 1\n"),
        "agnet",
        "unknown field `agnet`",
    );
    check_invalid(
        &format!("[agent]\nstate_dirr = \"/x\"\n{MINIMAL}"),
        "agent.state_dirr",
        "unknown field `state_dirr`",
    );
    check_invalid(
        "[sources.audit]\ntype = \"file\"\ninclude = [\"/x\"]\nstart = \"end\"\n",
        "sources.audit",
        "unknown field `start`",
    );
}

#[test]
fn wrong_values_are_errors_naming_the_key() {
    check_invalid(
        &format!("[agent]\nchannel_capacity = \"many\"\n{MINIMAL}"),
        "agent.channel_capacity",
        "invalid",
    );
    check_invalid(
        &format!("[detect]\nallowed_lateness = \"soon\"\n{MINIMAL}"),
        "detect.allowed_lateness",
        "invalid duration",
    );
    check_invalid(
        "[sources.audit]\ntype = \"file\"\ninclude = [\"/x\"]\nstart_at = \"middle\"\n",
        // Inside a `type`-tagged table serde reports the table, and the reason names the value.
        "sources.audit",
        "unknown variant `middle`, expected `beginning` or `end`",
    );
    check_invalid(
        "[sources.audit]\ntype = \"pulsar\"\n",
        "sources.audit.type",
        "unknown variant `pulsar`",
    );
    check_invalid(
        "[sources.audit]\ntype = \"file\"\ninclude = [\"/x/[\"]\n",
        "sources.audit.include",
        "invalid glob",
    );
    check_invalid(
        "[agent]\ndeployment_tag = \"\"\n",
        "agent.deployment_tag",
        "empty",
    );
    check_invalid("[agent]\n", "sources", "no source configured");
    check_invalid(
        &format!("{MINIMAL}\n[sinks.\"bad name\"]\ntype = \"stdout\"\n"),
        "sinks.bad name",
        "names may use only",
    );
}

#[test]
fn parse_errors_name_the_file() {
    let error = load("[agent\nstate_dir = 1", &[]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("aiwarden.toml"), "{message}");
    let missing = Config::load(Path::new("/nonexistent/aiwarden.toml")).unwrap_err();
    assert!(missing
        .to_string()
        .contains("/nonexistent/aiwarden.toml: no such file"));
}

#[test]
fn effective_config_renders_as_toml_that_loads_again() {
    let config = load(MINIMAL, &[]).unwrap();
    let rendered = config.to_masked_toml();
    assert!(rendered.contains("[sources.audit]"), "{rendered}");
    assert!(rendered.contains("allowed_lateness = \"5m\""), "{rendered}");
    load(&rendered, &[]).unwrap();
}
