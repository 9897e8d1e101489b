//! `kind = "baseline"`: an entity's daily count or sum against its own trailing daily average.
//!
//! Days are UTC calendar days. The average is taken over the entity's *active* days (days with
//! a non-zero value) in the trailing `history_days`, not over every calendar day: weekends,
//! leave and the weeks before someone's first use would otherwise drag the average towards zero
//! and make every ordinary working day look like a spike.
//!
//! `min_zscore` adds a second test, ANDed with the ratio: the robust z-score of the current
//! day against the same active days, `(today - median) / (1.4826 × MAD)`. The ratio alone
//! treats a user whose days swing between 10 and 200 like one who always does 100; the
//! z-score asks whether today is unusual *for how much this entity varies*, and median and
//! MAD (median absolute deviation) are not dragged up by the very spikes being looked for.

use super::parse::BaselineDoc;
use super::Aggregate;

/// The compiled `[baseline]` section.
#[derive(Debug, Clone)]
pub(crate) struct BaselineSpec {
    /// What each matching event contributes to its day.
    pub aggregate: Aggregate,
    /// What the value counts, for alert details (`tokens`, `requests`).
    pub unit: String,
    /// Days of history before the current day that form the baseline.
    pub history_days: u32,
    /// The current day fires above `ratio` × the average.
    pub ratio: f64,
    /// The current day must reach at least this much to fire (small numbers are noise).
    pub min_volume: f64,
    /// Active days of history required before the rule may fire for an entity.
    pub min_history_days: u32,
    /// When set, the current day's robust z-score must also reach this.
    pub min_zscore: Option<f64>,
}

/// A year of daily sums per entity is the most a baseline may keep.
const MAX_HISTORY_DAYS: u32 = 366;

/// Fewest active history days a z-score is computed from.
const MIN_ZSCORE_HISTORY: u32 = 3;

impl BaselineSpec {
    /// Validate the section; errors are `(field path, message)`.
    pub(super) fn compile(doc: BaselineDoc) -> Result<BaselineSpec, (String, String)> {
        let aggregate = Aggregate::compile(doc.aggregate, doc.field.as_deref(), "baseline")?;
        if !(1..=MAX_HISTORY_DAYS).contains(&doc.history_days) {
            return Err((
                "baseline.history_days".into(),
                format!("must be between 1 and {MAX_HISTORY_DAYS}"),
            ));
        }
        if !(doc.ratio.is_finite() && doc.ratio > 1.0) {
            return Err((
                "baseline.ratio".into(),
                format!(
                    "must be a number above 1 (the multiple of the average that is a spike), found {}",
                    doc.ratio
                ),
            ));
        }
        if !(doc.min_volume.is_finite() && doc.min_volume >= 0.0) {
            return Err((
                "baseline.min_volume".into(),
                format!(
                    "must be zero or a positive number, found {}",
                    doc.min_volume
                ),
            ));
        }
        if !(1..=doc.history_days).contains(&doc.min_history_days) {
            return Err((
                "baseline.min_history_days".into(),
                format!("must be between 1 and history_days ({})", doc.history_days),
            ));
        }
        if let Some(z) = doc.min_zscore {
            if !(z.is_finite() && z > 0.0) {
                return Err((
                    "baseline.min_zscore".into(),
                    format!("must be a positive number (e.g. 3.5), found {z}"),
                ));
            }
            // A median absolute deviation needs a few days to mean anything.
            if doc.min_history_days < MIN_ZSCORE_HISTORY {
                return Err((
                    "baseline.min_zscore".into(),
                    format!(
                        "needs min_history_days of at least {MIN_ZSCORE_HISTORY}, found {}",
                        doc.min_history_days
                    ),
                ));
            }
        }
        let unit = match (doc.unit, &aggregate) {
            (Some(unit), _) if !unit.trim().is_empty() => unit.trim().to_string(),
            (_, Aggregate::Count) => "events".to_string(),
            (_, Aggregate::Sum(_)) => doc.field.unwrap_or_default().trim().to_string(),
        };
        Ok(BaselineSpec {
            aggregate,
            unit,
            history_days: doc.history_days,
            ratio: doc.ratio,
            min_volume: doc.min_volume,
            min_history_days: doc.min_history_days,
            min_zscore: doc.min_zscore,
        })
    }
}
