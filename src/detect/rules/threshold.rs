//! `kind = "threshold"`: a count or sum per entity in sliding windows, one or more tiers.

use super::parse::ThresholdDoc;
use super::Aggregate;
use crate::record::Severity;

/// The compiled `[threshold]` section.
#[derive(Debug, Clone)]
pub(crate) struct ThresholdSpec {
    /// What each matching event contributes.
    pub aggregate: Aggregate,
    /// What the value counts, for alert details (`MCP calls`, `tokens`).
    pub unit: String,
    /// The tiers, in file order; each fires and is suppressed on its own.
    pub tiers: Vec<Tier>,
}

/// One tier: fires when the value over the last `window` exceeds `above`.
#[derive(Debug, Clone)]
pub(crate) struct Tier {
    /// Window length in milliseconds.
    pub window_ms: i64,
    /// The window as written, shown in alerts.
    pub window_text: String,
    /// The bound the value must exceed.
    pub above: f64,
    /// This tier's severity (the rule's when not given).
    pub severity: Severity,
}

/// More tiers than this is a mistake, and each costs a running sum per entity.
const MAX_TIERS: usize = 8;

impl ThresholdSpec {
    /// Validate the section; errors are `(field path, message)`.
    pub(super) fn compile(
        doc: ThresholdDoc,
        rule_severity: Severity,
    ) -> Result<ThresholdSpec, (String, String)> {
        let aggregate = Aggregate::compile(doc.aggregate, doc.field.as_deref(), "threshold")?;
        if doc.tiers.is_empty() {
            return Err((
                "threshold.tiers".into(),
                "needs at least one `[[threshold.tiers]]` with `window` and `above`".into(),
            ));
        }
        if doc.tiers.len() > MAX_TIERS {
            return Err((
                "threshold.tiers".into(),
                format!("at most {MAX_TIERS} tiers"),
            ));
        }
        let mut tiers = Vec::with_capacity(doc.tiers.len());
        for (i, tier) in doc.tiers.into_iter().enumerate() {
            if !(tier.above.is_finite() && tier.above > 0.0) {
                return Err((
                    format!("threshold.tiers[{i}].above"),
                    format!("must be a positive number, found {}", tier.above),
                ));
            }
            tiers.push(Tier {
                window_ms: tier.window.ms,
                window_text: tier.window.text,
                above: tier.above,
                severity: tier.severity.unwrap_or(rule_severity),
            });
        }
        let unit = match (doc.unit, &aggregate) {
            (Some(unit), _) if !unit.trim().is_empty() => unit.trim().to_string(),
            (_, Aggregate::Count) => "events".to_string(),
            (_, Aggregate::Sum(_)) => doc.field.unwrap_or_default().trim().to_string(),
        };
        Ok(ThresholdSpec {
            aggregate,
            unit,
            tiers,
        })
    }

    /// The longest tier window: how much history an entity's window keeps.
    pub fn longest_window_ms(&self) -> i64 {
        self.tiers.iter().map(|t| t.window_ms).max().unwrap_or(0)
    }
}
