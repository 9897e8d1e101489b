//! Daily totals per entity for baseline rules: a fixed ring of UTC-day sums, not events.
//!
//! State per entity is `history_days + 1` floats plus a bounded evidence sample of the current
//! day, whatever the entity's volume.

use super::event_ref::EventRef;

/// Milliseconds in a day; days are UTC calendar days of the event time.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// One entity's daily sums: the current day and the `history_days` before it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct DailyTotals {
    /// Ring indexed by `day mod len`; `len = history_days + 1`.
    sums: Box<[f64]>,
    /// The newest day seen (days since the Unix epoch): "today" for this entity.
    newest_day: i64,
    /// Events counted today.
    today_events: u64,
    /// The oldest events of today, at most the evidence sample, sorted by time.
    evidence: Vec<(i64, EventRef)>,
}

/// The baseline as seen from the current day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct History {
    /// Average over the active days.
    pub average: f64,
    /// Days in the trailing history with a non-zero total.
    pub active_days: u32,
}

impl DailyTotals {
    /// Empty totals keeping `history_days` of history, positioned at event time `ts`.
    pub fn new(history_days: u32, ts: i64) -> DailyTotals {
        DailyTotals {
            sums: vec![0.0; history_days as usize + 1].into_boxed_slice(),
            newest_day: ts.div_euclid(DAY_MS),
            today_events: 0,
            evidence: Vec::new(),
        }
    }

    fn slot(&self, day: i64) -> usize {
        day.rem_euclid(self.sums.len() as i64) as usize
    }

    /// The current day (days since the epoch).
    pub fn today(&self) -> i64 {
        self.newest_day
    }

    /// Add an event; returns false when its day is older than the history kept.
    pub fn add(&mut self, ts: i64, value: f64, event_id: &str, sample: usize) -> bool {
        let day = ts.div_euclid(DAY_MS);
        let len = self.sums.len() as i64;
        if day <= self.newest_day - len {
            return false;
        }
        if day > self.newest_day {
            // Zero the days skipped over (all of them after a long silence).
            for d in (self.newest_day + 1..=day).rev().take(self.sums.len()) {
                let slot = self.slot(d);
                self.sums[slot] = 0.0;
            }
            self.newest_day = day;
            self.today_events = 0;
            self.evidence.clear();
        }
        let slot = self.slot(day);
        self.sums[slot] += value;
        if day == self.newest_day {
            self.today_events += 1;
            let pos = self.evidence.partition_point(|(t, _)| *t <= ts);
            if pos < sample {
                self.evidence.insert(pos, (ts, EventRef::new(event_id)));
                self.evidence.truncate(sample);
            }
        }
        true
    }

    /// The current day's total.
    pub fn today_total(&self) -> f64 {
        self.sums[self.slot(self.newest_day)]
    }

    /// Events counted in the current day.
    pub fn today_events(&self) -> u64 {
        self.today_events
    }

    /// Ids of the oldest events of the current day (the evidence sample).
    pub fn evidence(&self) -> Vec<String> {
        self.evidence.iter().map(|(_, id)| id.to_string()).collect()
    }

    /// Average over the active days among the `history_days` before the current day.
    pub fn history(&self) -> History {
        let (mut total, mut active_days) = (0.0, 0u32);
        for value in self.past_days() {
            if value > 0.0 {
                total += value;
                active_days += 1;
            }
        }
        let average = if active_days == 0 {
            0.0
        } else {
            total / f64::from(active_days)
        };
        History {
            average,
            active_days,
        }
    }

    /// The totals of the active days among the `history_days` before the current day.
    pub fn active_history(&self) -> Vec<f64> {
        self.past_days().filter(|value| *value > 0.0).collect()
    }

    /// The sums of the days before the current one, newest first. The ring is walked as two
    /// runs of slots: a remainder per day put an integer division in the hottest loop of the
    /// detect stage (perf annotate of `Engine::process`).
    fn past_days(&self) -> impl Iterator<Item = f64> + '_ {
        let today = self.slot(self.newest_day);
        let (before, after) = self.sums.split_at(today);
        before
            .iter()
            .rev()
            .chain(after.iter().skip(1).rev())
            .copied()
    }
}

/// Scales a median absolute deviation to estimate the standard deviation of normal data.
const MAD_SCALE: f64 = 1.4826;
/// Scales a mean absolute deviation likewise (used when the MAD is zero).
const MEAN_AD_SCALE: f64 = 1.2533;

/// The robust z-score of `today` against `history`: `(today - median) / (1.4826 × MAD)`.
///
/// When more than half the days are equal the MAD is zero; the mean absolute deviation
/// (scaled by 1.2533) stands in, as in the usual modified z-score. When every day is equal
/// any excess is infinitely unusual (+∞), and none is 0. `None` without history.
pub(crate) fn robust_zscore(today: f64, mut history: Vec<f64>) -> Option<f64> {
    let median = median_of(&mut history)?;
    let mut deviations: Vec<f64> = history.iter().map(|v| (v - median).abs()).collect();
    let mad = median_of(&mut deviations).unwrap_or(0.0);
    let spread = if mad > 0.0 {
        MAD_SCALE * mad
    } else {
        MEAN_AD_SCALE * deviations.iter().sum::<f64>() / deviations.len() as f64
    };
    let excess = today - median;
    Some(if spread > 0.0 {
        excess / spread
    } else if excess > 0.0 {
        f64::INFINITY
    } else {
        0.0
    })
}

/// The median (mean of the middle two for an even count); sorts `values`.
fn median_of(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_days_walk_the_ring_newest_first_from_any_position() {
        for history_days in [0, 1, 2, 6] {
            for newest_day in -3..20 {
                let mut days = DailyTotals::new(history_days, newest_day * DAY_MS);
                for (slot, sum) in days.sums.iter_mut().enumerate() {
                    *sum = slot as f64 + 1.0;
                }
                let by_remainder: Vec<f64> = (1..days.sums.len() as i64)
                    .map(|back| days.sums[days.slot(newest_day - back)])
                    .collect();
                let walked: Vec<f64> = days.past_days().collect();
                assert_eq!(
                    walked, by_remainder,
                    "{history_days} days, day {newest_day}"
                );
            }
        }
    }
}
