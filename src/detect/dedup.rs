//! Suppression: one alert per rule, tier and entity per `suppress` window of event time.

/// Suppression state of one rule tier for one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Suppression {
    /// Event time (ms) of the alert that opened the window.
    opened: i64,
    /// Repeats suppressed since that alert, reported by the next one.
    pending: u64,
}

/// What to do with a rule tier that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Raise an alert carrying this many suppressed repeats.
    Emit {
        /// Repeats suppressed since the previous alert.
        suppressed: u64,
    },
    /// Inside the window: counted, not raised.
    Suppressed,
}

fn inside(slot: &Option<Suppression>, ts: i64, suppress_ms: i64) -> bool {
    // An out-of-order event before the alert that opened the window counts as inside it.
    slot.is_some_and(|s| ts.saturating_sub(s.opened) < suppress_ms)
}

/// The tier fired at `ts`: raise an alert, or count a suppressed repeat.
pub(crate) fn check(slot: &mut Option<Suppression>, ts: i64, suppress_ms: i64) -> Verdict {
    if inside(slot, ts, suppress_ms) {
        if let Some(s) = slot {
            s.pending += 1;
        }
        return Verdict::Suppressed;
    }
    let suppressed = slot.map_or(0, |s| s.pending);
    *slot = Some(Suppression {
        opened: ts,
        pending: 0,
    });
    Verdict::Emit { suppressed }
}

/// The tier fired at `ts` together with a more severe tier that speaks for it: count it as a
/// suppressed repeat, opening a window if none is open so it does not alert right after.
pub(crate) fn absorb(slot: &mut Option<Suppression>, ts: i64, suppress_ms: i64) {
    if inside(slot, ts, suppress_ms) {
        if let Some(s) = slot {
            s.pending += 1;
        }
        return;
    }
    let pending = slot.map_or(0, |s| s.pending) + 1;
    *slot = Some(Suppression {
        opened: ts,
        pending,
    });
}
