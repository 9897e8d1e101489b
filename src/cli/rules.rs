//! `aiwarden rules lint` and `aiwarden rules test`: check rule files, run their examples.

use super::Failure;
use crate::backtest::{self, apply_overrides, parse_examples, Override};
use crate::config::Config;
use crate::detect::{Calendars, Engine, EngineSettings, Entitlements, RuleFile, RuleSet};
use crate::pipeline::rules;
use crate::record::AgentInfo;
use anyhow::{anyhow, Context};
use std::path::{Path, PathBuf};

/// The configuration given with `--config`, or the defaults.
pub(super) fn load_config(path: Option<&Path>) -> Result<Config, Failure> {
    match path {
        Some(path) => Config::load(path).map_err(Failure::config),
        None => Ok(Config::default()),
    }
}

/// Engine settings from the `[detect]` and `[agent]` sections.
pub(super) fn engine_settings(config: &Config) -> EngineSettings {
    EngineSettings {
        agent: AgentInfo::local(config.agent.hostname.as_deref()),
        deployment: config.agent.deployment_tag.clone(),
        allowed_lateness: config.detect.allowed_lateness,
        max_entities_per_rule: config.detect.max_entities_per_rule,
        evidence_sample: config.detect.evidence_sample,
    }
}

/// Read the rule files of `dir` (or the built-in pack).
pub(super) fn read_rule_files(dir: Option<&Path>) -> Result<Vec<RuleFile>, Failure> {
    rules::rule_files(dir)
        .context("reading the rules")
        .map_err(Failure::config)
}

/// The rule files as the agent runs them: `dir` (or the built-in pack) with the configured
/// overrides applied, so a lint or a back-test judges what is deployed.
pub(super) fn read_deployed_rule_files(
    dir: Option<&Path>,
    overrides: Option<&Path>,
) -> Result<Vec<RuleFile>, Failure> {
    let files = read_rule_files(dir)?;
    match overrides.filter(|dir| dir.exists()) {
        None => Ok(files),
        Some(overrides) => rules::apply_overrides(files, &read_rule_files(Some(overrides))?)
            .context("applying the rule overrides")
            .map_err(Failure::config),
    }
}

/// Validate every rule file, the entitlements and the calendars; list the rules.
pub fn lint(rules_dir: Option<PathBuf>, config: Option<PathBuf>) -> Result<(), Failure> {
    let config = load_config(config.as_deref())?;
    let dir = rules_dir.or(config.detect.rules_dir.clone());
    let files = read_deployed_rule_files(dir.as_deref(), config.detect.overrides_dir.as_deref())?;
    let mut errors = Vec::new();
    let mut listed = 0;
    for file in &files {
        match describe_rule(file) {
            Ok(line) => {
                println!("{line}");
                listed += 1;
            }
            Err(error) => errors.push(error),
        }
        if let Err(error) = parse_examples(file) {
            errors.push(error.to_string());
        }
    }
    // Duplicate ids are only visible across files.
    if errors.is_empty() {
        if let Err(error) = RuleSet::parse(&files) {
            errors.push(error.to_string());
        }
    }
    if let Err(error) = rules::load_entitlements(config.detect.entitlements_file.as_deref()) {
        errors.push(format!("entitlements: {error}"));
    }
    if let Err(error) =
        rules::load_calendars(config.detect.calendars_file.as_deref(), dir.as_deref())
    {
        errors.push(format!("calendars: {error}"));
    }
    for error in &errors {
        println!("error: {error}");
    }
    println!(
        "# {listed} of {} rule files valid, {} error(s)",
        files.len(),
        errors.len()
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::config(anyhow!(
            "{} error(s) in the rules (see above)",
            errors.len()
        )))
    }
}

/// One listing line for a valid rule file, or its error.
fn describe_rule(file: &RuleFile) -> Result<String, String> {
    let set = RuleSet::parse(std::slice::from_ref(file)).map_err(|e| e.to_string())?;
    let (set, enabled) = if set.is_empty() {
        // Disabled: compile it enabled to describe it.
        let mut copy = vec![file.clone()];
        let id = backtest::overrides::peek_id(&file.text).unwrap_or_default();
        let enable: Override = format!("{id}.enabled=true")
            .parse()
            .map_err(|e: backtest::OverrideError| e.to_string())?;
        apply_overrides(&mut copy, &[enable]).map_err(|e| e.to_string())?;
        (RuleSet::parse(&copy).map_err(|e| e.to_string())?, false)
    } else {
        (set, true)
    };
    let examples = parse_examples(file).map_or(0, |e| e.len());
    let line = set
        .info()
        .next()
        .map(|info| {
            format!(
                "{:<28} v{:<3} {:<9} {:<8} {:<8} {examples} example(s)",
                info.id,
                info.version,
                info.kind,
                info.severity.as_str(),
                if enabled { "enabled" } else { "disabled" },
            )
        })
        .ok_or_else(|| format!("{}: no rule", file.name));
    line
}

/// Run every example of every rule file through a fresh engine with the whole pack.
pub fn test(rules_dir: Option<PathBuf>) -> Result<(), Failure> {
    let config = Config::default();
    let files = read_rule_files(rules_dir.as_deref())?;
    RuleSet::parse(&files)
        .context("the rules are invalid (run `aiwarden rules lint`)")
        .map_err(Failure::config)?;
    let (mut passed, mut failed, mut without) = (0, 0, 0);
    for file in &files {
        let id = backtest::overrides::peek_id(&file.text).unwrap_or_default();
        let examples = parse_examples(file).map_err(Failure::config)?;
        if examples.is_empty() {
            println!("NONE {id}: no examples ({})", file.name);
            without += 1;
        }
        for example in examples {
            let alerts = run_example(&files, rules_dir.as_deref(), &config, &example, &file.name)?;
            match backtest::compare(&id, &example.expect, &alerts) {
                Ok(()) => {
                    passed += 1;
                    println!("PASS {id} #{}: {}", example.number, example.description);
                }
                Err(mismatch) => {
                    failed += 1;
                    println!(
                        "FAIL {id} #{}: {}: {mismatch}",
                        example.number, example.description
                    );
                }
            }
        }
    }
    println!("# {passed} passed, {failed} failed, {without} rule file(s) without examples");
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::runtime(anyhow!("{failed} example(s) failed")))
    }
}

/// The alerts one example raises.
fn run_example(
    files: &[RuleFile],
    rules_dir: Option<&Path>,
    config: &Config,
    example: &backtest::Example,
    file_name: &str,
) -> Result<Vec<crate::record::Alert>, Failure> {
    let what = |part: &str| format!("{file_name}: example {} {part}", example.number);
    let rule_set = RuleSet::parse(files).map_err(Failure::config)?;
    let entitlements = match &example.entitlements {
        Some(text) => Entitlements::parse(&what("entitlements"), text).map_err(Failure::config)?,
        None => Entitlements::default(),
    };
    let calendars = match &example.calendars {
        Some(text) => Calendars::parse(&what("calendars"), text).map_err(Failure::config)?,
        None => rules::load_calendars(None, rules_dir)
            .context("loading the calendars")
            .map_err(Failure::config)?,
    };
    let mut engine =
        Engine::new(rule_set, entitlements, engine_settings(config)).with_calendars(calendars);
    let mut alerts = Vec::new();
    for event in &example.events {
        engine.process(event, &mut alerts);
    }
    Ok(alerts)
}

/// The formats `rules export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Sigma rules (correlation rules for thresholds) plus pySigma processing pipelines.
    Sigma,
}

/// Write every rule as Sigma into `out/rules/`, the processing pipelines into
/// `out/pipelines/`, and the skipped rules with their reasons into `out/skipped.md`.
pub fn export(format: ExportFormat, out: &Path, rules_dir: Option<PathBuf>) -> Result<(), Failure> {
    let ExportFormat::Sigma = format;
    let files = read_rule_files(rules_dir.as_deref())?;
    let exported = crate::detect::sigma::export(&files)
        .context("the rules are invalid (run `aiwarden rules lint`)")
        .map_err(Failure::config)?;
    let rules_out = out.join("rules");
    let pipelines_out = out.join("pipelines");
    for dir in [&rules_out, &pipelines_out] {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {}", dir.display()))
            .map_err(Failure::runtime)?;
    }
    // An export replaces the previous one: a rule removed from the pack leaves no stale file.
    let stale = std::fs::read_dir(&rules_out)
        .with_context(|| format!("reading {}", rules_out.display()))
        .map_err(Failure::runtime)?;
    for entry in stale.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("aiwarden_") && name.ends_with(".yml") {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))
                .map_err(Failure::runtime)?;
        }
    }
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text)
            .with_context(|| format!("writing {}", path.display()))
            .map_err(Failure::runtime)
    };
    for file in &exported.files {
        write(rules_out.join(&file.file_name), &file.text)?;
        println!("exported {} -> rules/{}", file.rule_id, file.file_name);
    }
    for (name, text) in crate::detect::sigma::pipelines() {
        write(pipelines_out.join(name), &text)?;
    }
    let mut skipped = String::from(
        "# Rules without a Sigma form\n\nWritten by `aiwarden rules export --format sigma`. \
         These rules run only in aiwarden; their alerts reach the SIEM as aiwarden alerts.\n\n",
    );
    for rule in &exported.skipped {
        println!("skipped {}: {}", rule.rule_id, rule.reason);
        skipped.push_str(&format!("- `{}`: {}\n", rule.rule_id, rule.reason));
    }
    write(out.join("skipped.md"), &skipped)?;
    println!(
        "# {} rule(s) exported, {} skipped, 3 pipelines",
        exported.files.len(),
        exported.skipped.len()
    );
    Ok(())
}
