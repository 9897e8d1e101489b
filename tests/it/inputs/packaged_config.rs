//! The commented source examples of the packaged configuration (`packaging/aiwarden.toml`) are
//! valid: every `# [sources.<name>] … # example` block, uncommented and added to the file, passes
//! `aiwarden check-config`. The file itself is checked as shipped by `config::tests` and by
//! `packaging/test-packages.sh`; this keeps the examples an operator copies from rotting.

use crate::util::binary;
use std::process::{Command, Output};

const PACKAGED: &str = include_str!("../../../packaging/aiwarden.toml");

/// The file followed by its source examples, uncommented: a block starts at a commented table
/// header marked `# example` and runs while lines are commented (`# # …` stays a comment).
fn with_source_examples(text: &str) -> String {
    let mut out = text.to_string();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if !(line.starts_with("# [sources.") && line.contains("# example")) {
            continue;
        }
        out.push('\n');
        out.push_str(&line[2..]);
        out.push('\n');
        while let Some(next) = lines.next_if(|next| next.starts_with("# ")) {
            out.push_str(&next[2..]);
            out.push('\n');
        }
    }
    out
}

fn check_config(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aiwarden.toml");
    std::fs::write(&path, text).unwrap();
    Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn the_packaged_source_examples_pass_check_config() {
    let text = with_source_examples(PACKAGED);
    let output = check_config(&text);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The effective configuration shows every example, so each was parsed, not skipped.
    for expected in [
        "[sources.gateway.mapping]\ncompletion_tokens = \"usage.output_tokens\"",
        "user_id = \"actor.id\"",
        "[sources.gateway_push]\ntype = \"http\"",
        "[sources.gateway_push.limits]",
        "[sources.claude_code]\ntype = \"otlp\"",
        "[sources.claude_code.decode]",
        "format = \"bedrock_invocation\"",
        "session_idle_gap = \"30m\"",
        "[sources.mixed]",
        "format = \"auto\"",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
}

#[test]
fn a_broken_example_would_fail_the_check() {
    let broken = PACKAGED.replace("# format = \"auto\"", "# format = \"automatic\"");
    assert_ne!(
        broken, PACKAGED,
        "the auto example is where this test expects it"
    );
    let output = check_config(&with_source_examples(&broken));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sources.mixed"), "{stderr}");
}
