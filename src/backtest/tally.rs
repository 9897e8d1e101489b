//! Per-rule counts of a back-test: alerts, distinct entities, the busiest entities.

use crate::record::Alert;
use std::collections::BTreeMap;

/// Alerts counted per rule and entity, in a stable (sorted) order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    rules: BTreeMap<String, BTreeMap<String, u64>>,
}

/// One rule's line of the summary table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    /// The rule id.
    pub rule_id: String,
    /// Alerts raised.
    pub alerts: u64,
    /// Distinct entity keys alerted on.
    pub entities: usize,
    /// The entities with the most alerts (ties by key), at most three.
    pub top: Vec<(String, u64)>,
}

impl Tally {
    /// Count one alert.
    pub fn add(&mut self, alert: &Alert) {
        *self
            .rules
            .entry(alert.rule_id.clone())
            .or_default()
            .entry(alert.entity.entity_key.clone())
            .or_default() += 1;
    }

    /// Make sure `rule_id` has a row, with zero alerts if none came.
    pub fn include(&mut self, rule_id: &str) {
        self.rules.entry(rule_id.to_string()).or_default();
    }

    /// Alerts in all.
    pub fn total(&self) -> u64 {
        self.rules.values().flat_map(|e| e.values()).sum()
    }

    /// One row per rule, by rule id.
    pub fn rows(&self) -> Vec<RuleRow> {
        self.rules
            .iter()
            .map(|(rule_id, entities)| {
                let mut top: Vec<(String, u64)> =
                    entities.iter().map(|(k, n)| (k.clone(), *n)).collect();
                top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                top.truncate(3);
                RuleRow {
                    rule_id: rule_id.clone(),
                    alerts: entities.values().sum(),
                    entities: entities.len(),
                    top,
                }
            })
            .collect()
    }

    /// The table as text: a header and one line per rule.
    pub fn render(&self) -> String {
        let rows = self.rows();
        let width = rows
            .iter()
            .map(|r| r.rule_id.len())
            .chain([4])
            .max()
            .unwrap_or(4);
        let mut out = format!(
            "{:<width$}  {:>6}  {:>8}  TOP ENTITIES\n",
            "RULE", "ALERTS", "ENTITIES"
        );
        for row in rows {
            let top: Vec<String> = row
                .top
                .iter()
                .map(|(key, n)| format!("{key} ({n})"))
                .collect();
            out.push_str(&format!(
                "{:<width$}  {:>6}  {:>8}  {}\n",
                row.rule_id,
                row.alerts,
                row.entities,
                if top.is_empty() {
                    "-".to_string()
                } else {
                    top.join(", ")
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_count_alerts_entities_and_the_top_three() {
        let mut tally = Tally::default();
        let mut rows = Vec::new();
        for (rule, key, n) in [("a", "x", 3), ("a", "y", 1), ("a", "z", 2), ("a", "w", 2)] {
            rows.extend(std::iter::repeat_n((rule, key), n));
        }
        for (rule, key) in rows {
            tally
                .rules
                .entry(rule.into())
                .or_default()
                .entry(key.into())
                .or_insert(0);
            *tally.rules.get_mut(rule).unwrap().get_mut(key).unwrap() += 1;
        }
        tally.include("b");
        let rows = tally.rows();
        assert_eq!(rows[0].alerts, 8);
        assert_eq!(rows[0].entities, 4);
        assert_eq!(
            rows[0].top,
            vec![("x".into(), 3), ("w".into(), 2), ("z".into(), 2)]
        );
        assert_eq!(rows[1].alerts, 0);
        assert_eq!(tally.total(), 8);
        assert!(tally.render().contains("x (3), w (2), z (2)"));
    }
}
