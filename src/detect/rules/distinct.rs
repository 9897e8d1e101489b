//! `kind = "distinct"`: how many different values of a field one entity shows within a
//! sliding window (MCP integrations per session, IP addresses per user).
//!
//! Memory per entity is bounded by `max_values`: when more distinct values are live in the
//! window, the least recently seen is forgotten. The rule still decides exactly, since
//! `max_values` must exceed `above`: a count that reaches the cap is past the bound anyway,
//! and the alert then reports "at least" the cap.

use super::parse::DistinctDoc;
use crate::record::Field;

/// The compiled `[distinct]` section.
#[derive(Debug, Clone)]
pub(crate) struct DistinctSpec {
    /// The field whose values are counted (each item of a list counts on its own).
    pub field: Field,
    /// Window length in milliseconds.
    pub window_ms: i64,
    /// The window as written, shown in alerts.
    pub window_text: String,
    /// The rule fires when more than this many distinct values are in the window.
    pub above: usize,
    /// Most distinct values remembered per entity.
    pub max_values: usize,
    /// What the values are, for alert details (`MCP integrations`).
    pub unit: String,
}

/// The largest `max_values` accepted: 10,000 remembered values per entity is already a lot
/// of memory once multiplied by `max_entities_per_rule`.
pub(crate) const MAX_VALUES: u32 = 10_000;

/// `max_values` when not given: room for twice the bound, so the observed count stays
/// informative past the bound, and at least 16.
fn default_max_values(above: u32) -> u32 {
    above.saturating_mul(2).clamp(16, MAX_VALUES)
}

impl DistinctSpec {
    /// Validate the section; errors are `(field path, message)`.
    pub(super) fn compile(doc: DistinctDoc) -> Result<DistinctSpec, (String, String)> {
        let field_name = doc.field.trim().to_string();
        let field = Field::parse(&field_name);
        if field_name.is_empty() || field == Field::Timestamp {
            return Err((
                "distinct.field".into(),
                "must name the field whose distinct values are counted (e.g. \"ip_address\")"
                    .into(),
            ));
        }
        if doc.above == 0 || doc.above >= MAX_VALUES {
            return Err((
                "distinct.above".into(),
                format!("must be between 1 and {}", MAX_VALUES - 1),
            ));
        }
        let max_values = doc.max_values.unwrap_or(default_max_values(doc.above));
        if max_values <= doc.above || max_values > MAX_VALUES {
            return Err((
                "distinct.max_values".into(),
                format!(
                    "must be more than `above` ({}) and at most {MAX_VALUES}, found {max_values}",
                    doc.above
                ),
            ));
        }
        let unit = match doc.unit {
            Some(unit) if !unit.trim().is_empty() => unit.trim().to_string(),
            _ => format!("distinct {field_name} values"),
        };
        Ok(DistinctSpec {
            field,
            window_ms: doc.window.ms,
            window_text: doc.window.text,
            above: doc.above as usize,
            max_values: max_values as usize,
            unit,
        })
    }
}
