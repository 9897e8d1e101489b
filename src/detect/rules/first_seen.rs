//! `kind = "first_seen"`: an entity shows a value of a field it has not shown before (a user
//! signing in from a new network, an actor creating a key for the first time).

use super::distinct::MAX_VALUES;
use super::parse::FirstSeenDoc;
use crate::record::Field;

/// The compiled `[first_seen]` section.
#[derive(Debug, Clone)]
pub(crate) struct FirstSeenSpec {
    /// The field whose values are remembered (each item of a list counts on its own).
    pub field: Field,
    /// A value not seen for this long (ms) is forgotten, and new again.
    pub remember_ms: i64,
    /// The entity's first this-much (ms) of event time only learns.
    pub learning_ms: i64,
    /// The learning period as written, shown in alerts.
    pub learning_text: String,
    /// Most values remembered per entity.
    pub max_values: usize,
    /// What the values are, for alert details (`IP networks`).
    pub unit: String,
}

const DAY_MS: i64 = 86_400_000;

impl FirstSeenSpec {
    /// Validate the section; errors are `(field path, message)`.
    pub(super) fn compile(doc: FirstSeenDoc) -> Result<FirstSeenSpec, (String, String)> {
        let field_name = doc.field.trim().to_string();
        let field = Field::parse(&field_name);
        if field_name.is_empty() || field == Field::Timestamp {
            return Err((
                "first_seen.field".into(),
                "must name the field whose new values are looked for (e.g. \"ip_network\")".into(),
            ));
        }
        let remember_ms = doc.remember.map_or(90 * DAY_MS, |d| d.ms);
        let (learning_ms, learning_text) = doc
            .learning
            .map_or((7 * DAY_MS, "7d".to_string()), |d| (d.ms, d.text));
        if learning_ms >= remember_ms {
            return Err((
                "first_seen.learning".into(),
                "must be shorter than `remember`".into(),
            ));
        }
        let max_values = doc.max_values.unwrap_or(256);
        if max_values == 0 || max_values > MAX_VALUES {
            return Err((
                "first_seen.max_values".into(),
                format!("must be between 1 and {MAX_VALUES}"),
            ));
        }
        let unit = match doc.unit {
            Some(unit) if !unit.trim().is_empty() => unit.trim().to_string(),
            _ => format!("{field_name} values"),
        };
        Ok(FirstSeenSpec {
            field,
            remember_ms,
            learning_ms,
            learning_text,
            max_values: max_values as usize,
            unit,
        })
    }
}
