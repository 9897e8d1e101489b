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
    /// Derived from the fields above, so not saved: rebuilt at the first `add` after a load.
    #[serde(skip)]
    hot: Option<Hot>,
}

/// What an event of the current day needs, kept beside the entity so that adding it touches
/// neither the ring nor the evidence's memory: those loads were the detect stage's hottest
/// instructions (cache misses; perf annotate of `Engine::process`), and the history walked
/// 30 days per event.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Hot {
    /// The ring slot of the current day.
    today_slot: usize,
    /// The current day's total (also stored in the ring).
    today_total: f64,
    /// The trailing history, which only changes when a day rolls over or a late event lands.
    history: History,
    /// The time of the newest event in the evidence sample (`i64::MIN` when it is empty).
    evidence_newest: i64,
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
            hot: None,
        }
    }

    /// Recompute the hot copy from the ring and the evidence.
    fn rebuild_hot(&mut self) -> Hot {
        let today_slot = self.slot(self.newest_day);
        let hot = Hot {
            today_slot,
            today_total: self.sums[today_slot],
            history: self.walk_history(),
            evidence_newest: self.evidence.last().map_or(i64::MIN, |(ts, _)| *ts),
        };
        self.hot = Some(hot);
        hot
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
        if day < self.newest_day {
            // A late event changes a past day, and so the history.
            let slot = self.slot(day);
            self.sums[slot] += value;
            self.rebuild_hot();
            return true;
        }
        let mut hot = match self.hot {
            Some(hot) if day == self.newest_day => hot,
            _ => {
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
                self.rebuild_hot()
            }
        };
        hot.today_total += value;
        self.sums[hot.today_slot] = hot.today_total;
        self.today_events += 1;
        // Events mostly come in time order: once the sample is full, a newer one is not kept,
        // and that is known without reading the sample.
        if ts >= hot.evidence_newest {
            if self.evidence.len() < sample {
                // In time order it goes last: no search through the sample.
                self.evidence.push((ts, EventRef::new(event_id)));
                hot.evidence_newest = ts;
            }
        } else {
            let pos = self.evidence.partition_point(|(t, _)| *t <= ts);
            if pos < sample {
                self.evidence.insert(pos, (ts, EventRef::new(event_id)));
                self.evidence.truncate(sample);
            }
            hot.evidence_newest = self.evidence.last().map_or(i64::MIN, |(t, _)| *t);
        }
        self.hot = Some(hot);
        true
    }

    /// The current day's total.
    pub fn today_total(&self) -> f64 {
        match &self.hot {
            Some(hot) => hot.today_total,
            None => self.sums[self.slot(self.newest_day)],
        }
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
        match &self.hot {
            Some(hot) => hot.history,
            None => self.walk_history(),
        }
    }

    /// [`DailyTotals::history`] from the ring.
    fn walk_history(&self) -> History {
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
    fn the_hot_copy_always_says_what_the_ring_and_the_sample_say() {
        let sample = 3;
        let mut days = DailyTotals::new(4, 0);
        // Today's events as (ts, id), to check the evidence against: the oldest `sample`.
        let mut today: Vec<(i64, String)> = Vec::new();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let mut clock = 0i64;
        for n in 0..5_000 {
            // Mostly forward in small steps; sometimes back (late, into earlier days too),
            // sometimes a jump of days or a long silence.
            clock += match next(100) {
                0..=79 => next(3_600_000) as i64,
                80..=91 => -(next(DAY_MS as u64 / 2) as i64),
                92..=97 => (1 + next(3)) as i64 * DAY_MS,
                _ => 40 * DAY_MS,
            };
            let ts = clock;
            let id = format!("e{n}");
            let day = ts.div_euclid(DAY_MS);
            let newest_before = days.today();
            let kept = days.add(ts, (next(1000) + 1) as f64, &id, sample);
            if !kept {
                continue;
            }
            if day > newest_before {
                today.clear();
            }
            if day == days.today() {
                today.push((ts, id));
                today.sort_by_key(|(ts, _)| *ts); // stable: equal times keep arrival order
            }
            let cached = days.hot.expect("add leaves the hot copy");
            let mut fresh = days.clone();
            assert_eq!(cached, fresh.rebuild_hot(), "after event {n} at {ts}");
            assert_eq!(days.history(), days.walk_history());
            let oldest: Vec<&str> = today
                .iter()
                .take(sample)
                .map(|(_, id)| id.as_str())
                .collect();
            assert_eq!(days.evidence(), oldest, "after event {n}");
        }
    }

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
