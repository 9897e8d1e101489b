//! The Sentinel ARM template (`connectors/sentinel/azuredeploy.json`) is structurally a valid
//! deployment: every expression names a declared parameter or variable, every dependency is a
//! resource of the template, and each resource type has the properties its API requires
//! (Microsoft.SecurityInsights scheduled alert rules, Log Analytics saved searches, workbooks,
//! tables), with values from the sets those APIs accept.

use super::read_json;
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeSet;

/// Tactics Sentinel accepts on an analytics rule (the ATT&CK tactic names, compacted).
const TACTICS: &[&str] = &[
    "Reconnaissance",
    "ResourceDevelopment",
    "InitialAccess",
    "Execution",
    "Persistence",
    "PrivilegeEscalation",
    "DefenseEvasion",
    "CredentialAccess",
    "Discovery",
    "LateralMovement",
    "Collection",
    "Exfiltration",
    "CommandAndControl",
    "Impact",
];

fn iso_minutes(duration: &str) -> u64 {
    let re = Regex::new(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$").unwrap();
    let caps = re
        .captures(duration)
        .unwrap_or_else(|| panic!("`{duration}` is not an ISO 8601 duration"));
    let number = |i: usize| {
        caps.get(i)
            .map_or(0, |m| m.as_str().parse::<u64>().unwrap())
    };
    number(1) * 1440 + number(2) * 60 + number(3)
}

fn words(text: &str) -> BTreeSet<String> {
    Regex::new(r"[A-Za-z_][A-Za-z0-9_]*")
        .unwrap()
        .find_iter(text)
        .map(|m| m.as_str().to_string())
        .collect()
}

/// The `resourceId(...)` a resource of the template answers to.
fn resource_id(resource: &Value) -> String {
    let kind = resource["type"].as_str().unwrap();
    let name = resource["name"].as_str().unwrap();
    match name.strip_prefix("[concat(parameters('workspaceName'), '/") {
        Some(rest) => format!(
            "[resourceId('{kind}', parameters('workspaceName'), '{}')]",
            rest.trim_end_matches("')]")
        ),
        None => format!("[resourceId('{kind}', {name})]"),
    }
}

fn check_alert_rule(resource: &Value, problems: &mut Vec<String>) {
    let name = resource["name"].as_str().unwrap_or("");
    let properties = &resource["properties"];
    let mut fail = |what: String| problems.push(format!("{name}: {what}"));
    if resource["kind"] != "Scheduled" {
        fail("kind must be Scheduled".into());
    }
    let guid = Regex::new(r"/Microsoft\.SecurityInsights/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'\)\]$").unwrap();
    if !guid.is_match(name) {
        fail("the rule name must end in a GUID under Microsoft.SecurityInsights".into());
    }
    for key in [
        "displayName",
        "description",
        "query",
        "queryFrequency",
        "queryPeriod",
        "suppressionDuration",
        "triggerOperator",
    ] {
        if properties[key].as_str().is_none_or(|v| v.is_empty()) {
            fail(format!("{key} missing"));
        }
    }
    for key in ["enabled", "suppressionEnabled"] {
        if !properties[key].is_boolean() {
            fail(format!("{key} must be a boolean"));
        }
    }
    if !properties["triggerThreshold"].is_u64() {
        fail("triggerThreshold must be an integer".into());
    }
    if !matches!(
        properties["severity"].as_str(),
        Some("Informational" | "Low" | "Medium" | "High")
    ) {
        fail(format!("severity {}", properties["severity"]));
    }
    if !matches!(
        properties["triggerOperator"].as_str(),
        Some("GreaterThan" | "LessThan" | "Equal" | "NotEqual")
    ) {
        fail(format!("triggerOperator {}", properties["triggerOperator"]));
    }
    let frequency = iso_minutes(properties["queryFrequency"].as_str().unwrap_or(""));
    let period = iso_minutes(properties["queryPeriod"].as_str().unwrap_or(""));
    // The API's bounds: frequency 5 min to 14 days, period 5 min to 14 days, period >= frequency.
    if !(5..=20160).contains(&frequency) || !(5..=20160).contains(&period) || period < frequency {
        fail(format!(
            "queryFrequency {frequency} min / queryPeriod {period} min out of bounds"
        ));
    }
    for tactic in properties["tactics"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if !TACTICS.contains(&tactic.as_str().unwrap_or("")) {
            fail(format!("tactic {tactic} is not one Sentinel accepts"));
        }
    }
    let query = properties["query"].as_str().unwrap_or("");
    let table = query.split_whitespace().next().unwrap_or("");
    if !matches!(table, "AIWardenEvents_CL" | "AIWardenAlerts_CL") {
        fail(format!(
            "the query does not start with an aiwarden table: {query}"
        ));
    }
    // After a `summarize`, only its own columns remain; before, every column of the table.
    let visible = match query.rfind("summarize") {
        Some(at) => words(&query[at..]),
        None => words(query),
    };
    let summarizes = query.contains("summarize");
    let mut account = false;
    for mapping in properties["entityMappings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let identifiers: &[&str] = match mapping["entityType"].as_str() {
            Some("Account") => {
                account = true;
                &[
                    "Name",
                    "FullName",
                    "NTDomain",
                    "DnsDomain",
                    "UPNSuffix",
                    "Sid",
                    "AadTenantId",
                    "AadUserId",
                    "PUID",
                    "IsDomainJoined",
                    "DisplayName",
                    "ObjectGuid",
                ]
            }
            Some("IP") => &["Address"],
            other => {
                fail(format!("entity type {other:?}"));
                continue;
            }
        };
        for field in mapping["fieldMappings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let identifier = field["identifier"].as_str().unwrap_or("");
            let column = field["columnName"].as_str().unwrap_or("");
            if !identifiers.contains(&identifier) {
                fail(format!(
                    "{identifier} is not an identifier of {}",
                    mapping["entityType"]
                ));
            }
            if summarizes && !visible.contains(column) {
                fail(format!(
                    "entity column {column} is not in the query's result"
                ));
            }
        }
    }
    if !account {
        fail("no Account entity mapping".into());
    }
}

#[test]
fn the_arm_template_is_a_valid_deployment_of_tables_dcr_rules_hunting_and_workbook() {
    let deploy = read_json("connectors/sentinel/azuredeploy.json");
    assert_eq!(
        deploy["$schema"],
        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
    );
    assert!(deploy["contentVersion"].is_string());
    let text = serde_json::to_string(&deploy).unwrap();
    let parameters = deploy["parameters"].as_object().unwrap();
    for caps in Regex::new(r"parameters\('([^']+)'\)")
        .unwrap()
        .captures_iter(&text)
    {
        assert!(
            parameters.contains_key(&caps[1]),
            "parameter {} is not declared",
            &caps[1]
        );
    }
    let variables = deploy["variables"].as_object().cloned().unwrap_or_default();
    for caps in Regex::new(r"variables\('([^']+)'\)")
        .unwrap()
        .captures_iter(&text)
    {
        assert!(
            variables.contains_key(&caps[1]),
            "variable {} is not declared",
            &caps[1]
        );
    }
    let resources = deploy["resources"].as_array().unwrap();
    let ids: BTreeSet<String> = resources.iter().map(resource_id).collect();
    let mut problems = Vec::new();
    let mut count = std::collections::BTreeMap::new();
    let mut names = BTreeSet::new();
    let workbook_name =
        Regex::new(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").unwrap();
    for resource in resources {
        let kind = resource["type"].as_str().unwrap_or("");
        *count.entry(kind.to_string()).or_insert(0) += 1;
        for key in ["type", "apiVersion", "name"] {
            if !resource[key].is_string() {
                problems.push(format!("a {kind} resource has no {key}"));
            }
        }
        if !names.insert((kind.to_string(), resource["name"].to_string())) {
            problems.push(format!("{kind} {} twice", resource["name"]));
        }
        for dependency in resource["dependsOn"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            if !ids.contains(dependency.as_str().unwrap_or("")) {
                problems.push(format!(
                    "{} depends on {dependency}, not in the template",
                    resource["name"]
                ));
            }
        }
        match kind {
            "Microsoft.OperationalInsights/workspaces/providers/alertRules" => {
                check_alert_rule(resource, &mut problems)
            }
            "Microsoft.OperationalInsights/workspaces/savedSearches" => {
                let properties = &resource["properties"];
                if properties["category"] != "Hunting Queries" {
                    problems.push(format!(
                        "{}: category must be Hunting Queries",
                        resource["name"]
                    ));
                }
                for key in ["displayName", "query"] {
                    if properties[key].as_str().is_none_or(|v| v.is_empty()) {
                        problems.push(format!("{}: {key} missing", resource["name"]));
                    }
                }
            }
            "Microsoft.Insights/workbooks" => {
                let properties = &resource["properties"];
                if !workbook_name.is_match(resource["name"].as_str().unwrap_or(""))
                    || resource["kind"] != "shared"
                {
                    problems.push("a workbook is named by a GUID and shared".into());
                }
                let data: Value =
                    serde_json::from_str(properties["serializedData"].as_str().unwrap_or(""))
                        .unwrap_or(Value::Null);
                if data["version"] != "Notebook/1.0"
                    || !properties["displayName"].is_string()
                    || !properties["sourceId"].is_string()
                {
                    problems.push("workbook: serializedData, displayName and sourceId".into());
                }
            }
            "Microsoft.OperationalInsights/workspaces/tables" => {
                if !resource["properties"]["schema"]["columns"].is_array() {
                    problems.push(format!("{}: no schema columns", resource["name"]));
                }
            }
            "Microsoft.Insights/dataCollectionRules" => {}
            other => problems.push(format!("unexpected resource type {other}")),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    let conversions = read_json("connectors/sigma/conversions.json");
    assert_eq!(
        count["Microsoft.OperationalInsights/workspaces/providers/alertRules"],
        conversions.as_array().unwrap().len(),
        "one analytics rule per converted detection"
    );
    assert!(count["Microsoft.OperationalInsights/workspaces/savedSearches"] >= 3);
    assert_eq!(count["Microsoft.Insights/workbooks"], 1);
}

#[test]
fn the_template_checks_catch_a_broken_rule() {
    let mut deploy = read_json("connectors/sentinel/azuredeploy.json");
    let rule = deploy["resources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["type"] == "Microsoft.OperationalInsights/workspaces/providers/alertRules")
        .unwrap();
    rule["properties"]["severity"] = "Critical".into();
    rule["properties"]["tactics"] = serde_json::json!(["LLMJailbreak"]);
    rule["properties"]["query"] = "UserId == \"x\"".into();
    let mut problems = Vec::new();
    check_alert_rule(rule, &mut problems);
    assert_eq!(problems.len(), 3, "{problems:?}");
}
