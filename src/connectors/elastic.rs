//! `aiwarden connectors install elastic`: the ILM policy, component and index templates through
//! the Elasticsearch API, and on request the Kibana saved objects (data views, the governance
//! dashboard) and the Elastic Security detection rules through the Kibana API.
//!
//! Order matters: an index template names its component templates and the settings name the
//! ILM policy, so each is put after what it refers to. Every call is idempotent (`PUT` of a
//! named object, imports with `overwrite=true`), so running it again updates in place.
//!
//! APIs followed: Elasticsearch `PUT _ilm/policy/<name>`, `PUT _component_template/<name>`,
//! `PUT _index_template/<name>`; Kibana `POST /api/saved_objects/_import` and
//! `POST /api/detection_engine/rules/_import` (multipart `file`, header `kbn-xsrf`).

use crate::net::http::error_chain;
use crate::sinks::elastic::ElasticAuth;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;

/// The ILM policy: name and body.
pub const ILM_POLICY: (&str, &str) = (
    "aiwarden",
    include_str!("../../connectors/elastic/ilm/aiwarden.json"),
);

/// Component templates, in installation order: name and body.
pub const COMPONENT_TEMPLATES: &[(&str, &str)] = &[
    (
        "aiwarden@settings",
        include_str!("../../connectors/elastic/component_templates/aiwarden@settings.json"),
    ),
    (
        "aiwarden.alerts@mappings",
        include_str!("../../connectors/elastic/component_templates/aiwarden.alerts@mappings.json"),
    ),
    (
        "aiwarden.events@mappings",
        include_str!("../../connectors/elastic/component_templates/aiwarden.events@mappings.json"),
    ),
];

/// Index templates of the two data streams: name and body.
pub const INDEX_TEMPLATES: &[(&str, &str)] = &[
    (
        "logs-aiwarden.alerts",
        include_str!("../../connectors/elastic/index_templates/logs-aiwarden.alerts.json"),
    ),
    (
        "logs-aiwarden.events",
        include_str!("../../connectors/elastic/index_templates/logs-aiwarden.events.json"),
    ),
];

/// Kibana saved objects (data views, ES|QL searches, the governance dashboard) as NDJSON.
pub const SAVED_OBJECTS: &str = include_str!("../../connectors/elastic/kibana/aiwarden.ndjson");

/// Elastic Security detection rules (converted from the Sigma export) as NDJSON.
pub const DETECTION_RULES: &str =
    include_str!("../../connectors/elastic/detection_rules/aiwarden.ndjson");

/// Where and how to install.
#[derive(Debug, Clone)]
pub struct ElasticTarget {
    /// The HTTP client (TLS settings of the sink).
    pub client: reqwest::Client,
    /// Elasticsearch base URL.
    pub elasticsearch: String,
    /// Kibana base URL, needed for saved objects and rules.
    pub kibana: Option<String>,
    /// `ApiKey …` or `Basic …`, marked sensitive; Kibana takes the same credentials.
    pub authorization: HeaderValue,
}

/// What to install besides the templates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// Import the Kibana saved objects.
    pub saved_objects: bool,
    /// Import the detection rules.
    pub rules: bool,
}

/// Why an installation stopped.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The credentials cannot be resolved.
    #[error("credentials: {0}")]
    Credentials(String),
    /// Saved objects or rules were asked for without a Kibana URL.
    #[error("importing saved objects or rules needs the Kibana URL (--kibana)")]
    NoKibana,
    /// A request could not be sent or answered.
    #[error("{what}: {reason}")]
    Unreachable {
        /// The step.
        what: String,
        /// The transport error.
        reason: String,
    },
    /// The server refused a step.
    #[error("{what}: HTTP {status}: {reason}")]
    Refused {
        /// The step.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The server's reason (its `error.reason`, or the start of the body).
        reason: String,
    },
    /// Kibana answered 200 but did not import everything.
    #[error("{what}: {reason}")]
    Incomplete {
        /// The step.
        what: String,
        /// The import errors Kibana listed.
        reason: String,
    },
}

/// The `Authorization` header for an Elastic sink's credentials.
pub fn authorization(auth: &ElasticAuth) -> Result<HeaderValue, InstallError> {
    crate::sinks::elastic::authorization(auth)
        .map_err(|error| InstallError::Credentials(error.to_string()))
}

/// Install the templates, then what `options` asks for; one line per step done.
pub async fn install(
    target: &ElasticTarget,
    options: InstallOptions,
) -> Result<Vec<String>, InstallError> {
    if (options.saved_objects || options.rules) && target.kibana.is_none() {
        return Err(InstallError::NoKibana);
    }
    let mut done = Vec::new();
    let base = target.elasticsearch.trim_end_matches('/');
    let (policy, body) = ILM_POLICY;
    put_json(target, &format!("{base}/_ilm/policy/{policy}"), body).await?;
    done.push(format!("ILM policy {policy}"));
    for (name, body) in COMPONENT_TEMPLATES {
        put_json(target, &format!("{base}/_component_template/{name}"), body).await?;
        done.push(format!("component template {name}"));
    }
    for (name, body) in INDEX_TEMPLATES {
        put_json(target, &format!("{base}/_index_template/{name}"), body).await?;
        done.push(format!("index template {name}"));
    }
    let kibana = target.kibana.as_deref().unwrap_or("").trim_end_matches('/');
    if options.saved_objects {
        let url = format!("{kibana}/api/saved_objects/_import?overwrite=true");
        let answer = import(target, &url, "aiwarden-kibana.ndjson", SAVED_OBJECTS).await?;
        check_import("Kibana saved objects", &answer, "successCount")?;
        done.push(format!(
            "Kibana saved objects: {} imported",
            answer["successCount"]
        ));
    }
    if options.rules {
        let url = format!("{kibana}/api/detection_engine/rules/_import?overwrite=true");
        let answer = import(target, &url, "aiwarden-rules.ndjson", DETECTION_RULES).await?;
        check_import("detection rules", &answer, "success_count")?;
        done.push(format!(
            "detection rules: {} imported",
            answer["success_count"]
        ));
    }
    Ok(done)
}

async fn put_json(target: &ElasticTarget, url: &str, body: &str) -> Result<(), InstallError> {
    let what = format!("PUT {}", path_of(url));
    let request = target
        .client
        .put(url)
        .header(AUTHORIZATION, target.authorization.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    answer(&what, request).await.map(|_| ())
}

/// A multipart upload of one NDJSON file as the form field `file`, as Kibana's import wants.
async fn import(
    target: &ElasticTarget,
    url: &str,
    file_name: &str,
    ndjson: &str,
) -> Result<Value, InstallError> {
    let boundary = format!("aiwarden-{}", uuid::Uuid::new_v4().simple());
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/ndjson\r\n\r\n{ndjson}\r\n--{boundary}--\r\n"
    );
    let request = target
        .client
        .post(url)
        .header(AUTHORIZATION, target.authorization.clone())
        .header("kbn-xsrf", "aiwarden")
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body);
    answer(&format!("POST {}", path_of(url)), request).await
}

async fn answer(what: &str, request: reqwest::RequestBuilder) -> Result<Value, InstallError> {
    let response = request
        .send()
        .await
        .map_err(|error| InstallError::Unreachable {
            what: what.to_string(),
            reason: error_chain(&error),
        })?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|error| InstallError::Unreachable {
            what: what.to_string(),
            reason: error_chain(&error),
        })?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let reason = body["error"]["reason"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
    Err(InstallError::Refused {
        what: what.to_string(),
        status,
        reason,
    })
}

/// Kibana answers 200 with `errors` when some objects did not import.
fn check_import(what: &str, answer: &Value, count_key: &str) -> Result<(), InstallError> {
    let errors = answer["errors"].as_array().cloned().unwrap_or_default();
    if answer["success"] == Value::Bool(true) && errors.is_empty() && answer[count_key].is_u64() {
        return Ok(());
    }
    let reasons: Vec<String> = errors
        .iter()
        .take(5)
        .map(|error| {
            let id = error["id"]
                .as_str()
                .or_else(|| error["rule_id"].as_str())
                .unwrap_or("?");
            let message = error["error"]["message"]
                .as_str()
                .or_else(|| error["error"]["type"].as_str())
                .unwrap_or("refused");
            format!("{id}: {message}")
        })
        .collect();
    Err(InstallError::Incomplete {
        what: what.to_string(),
        reason: format!(
            "{} error(s): {}",
            errors.len(),
            if reasons.is_empty() {
                "no success reported".to_string()
            } else {
                reasons.join("; ")
            }
        ),
    })
}

/// The path of a URL, for messages (never the credentials, which are in headers).
fn path_of(url: &str) -> &str {
    url.find("://")
        .and_then(|scheme| {
            url[scheme + 3..]
                .find('/')
                .map(|slash| &url[scheme + 3 + slash..])
        })
        .unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_assets_are_valid_and_in_dependency_order() {
        let policy: Value = serde_json::from_str(ILM_POLICY.1).unwrap();
        assert!(policy["policy"]["phases"].is_object());
        let components: Vec<&str> = COMPONENT_TEMPLATES.iter().map(|(name, _)| *name).collect();
        for (_, body) in COMPONENT_TEMPLATES {
            let template: Value = serde_json::from_str(body).unwrap();
            assert!(template["template"].is_object());
        }
        for (name, body) in INDEX_TEMPLATES {
            let template: Value = serde_json::from_str(body).unwrap();
            for component in template["composed_of"].as_array().unwrap() {
                assert!(
                    components.contains(&component.as_str().unwrap()),
                    "{name} needs {component}, installed before it"
                );
            }
        }
        for ndjson in [SAVED_OBJECTS, DETECTION_RULES] {
            assert!(ndjson.lines().count() > 1);
            for line in ndjson.lines() {
                serde_json::from_str::<Value>(line).unwrap();
            }
        }
        assert_eq!(path_of("https://es:9200/_ilm/policy/x"), "/_ilm/policy/x");
    }

    #[test]
    fn a_partial_kibana_import_is_an_error_naming_the_objects() {
        let answer = serde_json::json!({
            "success": false, "successCount": 1,
            "errors": [{"id": "aiwarden-governance", "error": {"type": "missing_references"}}],
        });
        let error = check_import("Kibana saved objects", &answer, "successCount").unwrap_err();
        assert!(error
            .to_string()
            .contains("aiwarden-governance: missing_references"));
        let fine = serde_json::json!({"success": true, "success_count": 6, "errors": []});
        check_import("rules", &fine, "success_count").unwrap();
    }
}
