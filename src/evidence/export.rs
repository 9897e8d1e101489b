//! Reading records back from SIEM exports: whatever shape the export has, yield the stored
//! documents (with their stamps) one by one.
//!
//! Accepted, per file (detected from the content, not the name, except `.csv`):
//! - JSON lines: aiwarden's own file sink; Splunk `-output rawdata` (`_raw` lines); Splunk
//!   `-output json` / REST `export` (`{"result":{"_raw":"…"}}` per line); Elasticsearch hits
//!   one per line (`{"_source":{…}}`, e.g. from elasticdump); Sentinel rows; a Kafka topic
//!   dumped one value per line (`kcat -C -e`, `kafka-console-consumer`) or as `kcat -J`
//!   envelopes (`{"topic","partition","offset","key","payload":"…"}`).
//! - Syslog files: a line whose text ends in a JSON object after a header of any template
//!   (rsyslog's `RSYSLOG_FileFormat`, `RSYSLOG_SyslogProtocol23Format`, a custom one): the JSON
//!   MSG is the record.
//! - One JSON document: an array of any of those; an Elasticsearch `_search` response
//!   (`hits.hits[]._source`); a Log Analytics query response (`tables[].columns` + `rows`); a
//!   Splunk REST `results` answer.
//! - CSV with a header row (Log Analytics "Export to CSV", Splunk `outputcsv`): one row per
//!   record; JSON-looking cells are read as JSON.

use serde_json::{Map, Value};
use std::path::Path;

/// One document read from an export, with where it came from.
#[derive(Debug, Clone)]
pub struct ExportedRecord {
    /// `file:line` (or `file:#index` inside one JSON document).
    pub origin: String,
    /// The stored document.
    pub document: Map<String, Value>,
}

/// What reading a file gave.
#[derive(Debug, Default)]
pub struct ExportRead {
    /// The documents.
    pub records: Vec<ExportedRecord>,
    /// Lines or items that were not a JSON object (`origin: reason`).
    pub unreadable: Vec<String>,
}

/// Read one export file.
pub fn read_export(path: &Path) -> std::io::Result<ExportRead> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let name = path.display().to_string();
    let is_csv = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    Ok(if is_csv {
        read_csv(&text, &name)
    } else {
        read_json(&text, &name)
    })
}

/// Read JSON text: one document, or JSON lines.
pub fn read_json(text: &str, name: &str) -> ExportRead {
    let mut read = ExportRead::default();
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        if let Ok(whole) = serde_json::from_str::<Value>(text) {
            if is_container(&whole) {
                collect(whole, &format!("{name}:#"), &mut read, 0);
                return read;
            }
        }
    }
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{name}:{}", index + 1);
        match serde_json::from_str::<Value>(line) {
            Ok(value) => collect(value, &origin, &mut read, 0),
            Err(error) => match trailing_object(line) {
                Some(object) => collect(object, &origin, &mut read, 0),
                None => read.unreadable.push(format!("{origin}: {error}")),
            },
        }
    }
    read
}

/// Most `{` of a line tried as the start of its trailing JSON object (a syslog header with
/// braces in its structured data needs a few; a line of garbage must not cost quadratic time).
const TRAILING_OBJECT_TRIES: usize = 16;

/// The JSON object a line ends with, after a header that is not JSON (a syslog line): the
/// leftmost `{` from which the rest of the line is one JSON object.
fn trailing_object(line: &str) -> Option<Value> {
    let line = line.trim_end();
    if !line.ends_with('}') {
        return None;
    }
    line.match_indices('{')
        .take(TRAILING_OBJECT_TRIES)
        .find_map(
            |(start, _)| match serde_json::from_str::<Value>(&line[start..]) {
                Ok(object @ Value::Object(_)) => Some(object),
                _ => None,
            },
        )
}

/// A whole-file document holding many records (rather than one record on one line).
fn is_container(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Object(map) => {
            map.get("hits").and_then(|h| h.get("hits")).is_some()
                || map.get("tables").is_some_and(Value::is_array)
                || map.get("results").is_some_and(Value::is_array)
        }
        _ => false,
    }
}

fn collect(value: Value, origin: &str, read: &mut ExportRead, depth: usize) {
    if depth > 4 {
        read.unreadable.push(format!("{origin}: nested too deep"));
        return;
    }
    match value {
        Value::Array(items) => {
            for (index, item) in items.into_iter().enumerate() {
                collect(item, &format!("{origin}{index}"), read, depth + 1);
            }
        }
        Value::Object(mut map) => {
            if let Some(hits) = map
                .get_mut("hits")
                .and_then(|h| h.get_mut("hits"))
                .map(Value::take)
            {
                return collect(hits, &format!("{origin}hits."), read, depth + 1);
            }
            if let Some(Value::Array(tables)) = map.remove("tables") {
                for (t, table) in tables.into_iter().enumerate() {
                    for (r, row) in table_rows(&table).into_iter().enumerate() {
                        read.records.push(ExportedRecord {
                            origin: format!("{origin}tables.{t}.{r}"),
                            document: row,
                        });
                    }
                }
                return;
            }
            if let Some(results) = map.remove("results").filter(Value::is_array) {
                return collect(results, &format!("{origin}results."), read, depth + 1);
            }
            if let Some(result) = map.remove("result").filter(Value::is_object) {
                return collect(result, origin, read, depth + 1);
            }
            if let Some(source) = map.remove("_source").filter(Value::is_object) {
                return collect(source, origin, read, depth + 1);
            }
            // `kcat -J`: the message value as JSON text in `payload`.
            if map.contains_key("topic") && map.contains_key("offset") {
                if let Some(Value::String(payload)) = map.get("payload") {
                    match serde_json::from_str::<Value>(payload) {
                        Ok(parsed @ Value::Object(_)) => {
                            return collect(parsed, origin, read, depth + 1)
                        }
                        _ => {
                            read.unreadable
                                .push(format!("{origin}: payload is not a JSON object"));
                            return;
                        }
                    }
                }
            }
            if let Some(Value::String(raw)) = map.get("_raw") {
                match serde_json::from_str::<Value>(raw) {
                    Ok(parsed @ Value::Object(_)) => {
                        return collect(parsed, origin, read, depth + 1)
                    }
                    _ => {
                        read.unreadable
                            .push(format!("{origin}: _raw is not a JSON object"));
                        return;
                    }
                }
            }
            read.records.push(ExportedRecord {
                origin: origin.to_string(),
                document: map,
            });
        }
        _ => read.unreadable.push(format!("{origin}: not a JSON object")),
    }
}

/// Rows of a Log Analytics query table as objects keyed by column name.
fn table_rows(table: &Value) -> Vec<Map<String, Value>> {
    let columns: Vec<String> = table
        .get("columns")
        .and_then(Value::as_array)
        .map(|columns| {
            columns
                .iter()
                .map(|c| {
                    c.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    let Some(rows) = table.get("rows").and_then(Value::as_array) else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(Value::as_array)
        .map(|cells| {
            columns
                .iter()
                .cloned()
                .zip(cells.iter().cloned())
                .collect::<Map<String, Value>>()
        })
        .collect()
}

/// Read CSV with a header row; empty cells are absent values.
pub fn read_csv(text: &str, name: &str) -> ExportRead {
    let mut read = ExportRead::default();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            read.unreadable.push(format!("{name}: {error}"));
            return read;
        }
    };
    for (index, row) in reader.records().enumerate() {
        // Line numbers: the header is line 1.
        let origin = format!("{name}:{}", index + 2);
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                read.unreadable.push(format!("{origin}: {error}"));
                continue;
            }
        };
        let mut document = Map::new();
        for (header, cell) in headers.iter().zip(row.iter()) {
            if cell.is_empty() {
                continue;
            }
            document.insert(header.to_string(), Value::String(cell.to_string()));
        }
        if let Some(Value::String(raw)) = document.get("_raw") {
            if let Ok(Value::Object(parsed)) = serde_json::from_str::<Value>(raw) {
                document = parsed;
            }
        }
        read.records.push(ExportedRecord { origin, document });
    }
    read
}
