//! The circuit breaker: after repeated failed requests a sink stops hammering its SIEM, keeps
//! queueing, and sends one probe at a time, at growing intervals, until the SIEM answers again.

use crate::telemetry::Metrics;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Breaker state as exported in `aiwarden_sink_breaker_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed = 0,
    /// Requests wait; a probe goes out when the cool-down ends.
    Open = 1,
    /// One probe is out; the rest wait for its answer.
    HalfOpen = 2,
}

#[derive(Debug)]
enum Mode {
    Closed { failures: u32 },
    Open { until: Instant, cooldown: Duration },
    HalfOpen { cooldown: Duration },
}

/// Shared by a sink's delivery tasks.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    max_cooldown: Duration,
    mode: Mutex<Mode>,
    changed: Notify,
    sink: Arc<str>,
    metrics: Arc<Metrics>,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failed requests.
    pub fn new(
        threshold: u32,
        cooldown: Duration,
        max_cooldown: Duration,
        sink: Arc<str>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let breaker = Breaker {
            threshold: threshold.max(1),
            cooldown,
            max_cooldown: max_cooldown.max(cooldown),
            mode: Mutex::new(Mode::Closed { failures: 0 }),
            changed: Notify::new(),
            sink,
            metrics,
        };
        breaker.publish(BreakerState::Closed);
        breaker
    }

    fn lock(&self) -> MutexGuard<'_, Mode> {
        match self.mode.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn publish(&self, state: BreakerState) {
        self.metrics.set_gauge(
            "sink_breaker_state",
            vec![("sink", self.sink.to_string())],
            state as i64,
        );
    }

    /// The current state.
    #[cfg(test)]
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Mode::Closed { .. } => BreakerState::Closed,
            Mode::Open { .. } => BreakerState::Open,
            Mode::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Wait until a request may go out; false when the agent aborts meanwhile.
    pub async fn admit(&self, abort: &CancellationToken) -> bool {
        loop {
            let changed = self.changed.notified();
            let wait_until = {
                let mut mode = self.lock();
                match *mode {
                    Mode::Closed { .. } => return true,
                    Mode::Open { until, cooldown } if Instant::now() >= until => {
                        *mode = Mode::HalfOpen { cooldown };
                        drop(mode);
                        self.publish(BreakerState::HalfOpen);
                        tracing::info!(sink = %self.sink, "Circuit breaker half-open: sending one probe request.");
                        return true;
                    }
                    Mode::Open { until, .. } => Some(until),
                    Mode::HalfOpen { .. } => None,
                }
            };
            let timer = async {
                match wait_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = abort.cancelled() => return false,
                _ = changed => {}
                _ = timer => {}
            }
        }
    }

    /// The SIEM answered (whatever it said about the records): close the breaker.
    pub fn success(&self) {
        let mut mode = self.lock();
        let was_open = !matches!(*mode, Mode::Closed { .. });
        *mode = Mode::Closed { failures: 0 };
        drop(mode);
        if was_open {
            self.publish(BreakerState::Closed);
            tracing::info!(sink = %self.sink, "Circuit breaker closed: the SIEM answers again; draining the queue.");
            self.changed.notify_waiters();
        }
    }

    /// A request failed as a whole (transport error, 5xx, 429, configuration refused).
    pub fn failure(&self, reason: &str) {
        let mut mode = self.lock();
        let next = match *mode {
            Mode::Closed { failures } if failures + 1 < self.threshold => {
                *mode = Mode::Closed {
                    failures: failures + 1,
                };
                return;
            }
            Mode::Closed { .. } => {
                tracing::error!(sink = %self.sink, failures = self.threshold, reason, probe_in_s = self.cooldown.as_secs_f64(), "Circuit breaker open: the SIEM keeps failing; records stay queued and one probe goes out at a time.");
                self.metrics.add_counter(
                    "sink_breaker_trips_total",
                    vec![("sink", self.sink.to_string())],
                    1,
                );
                self.cooldown
            }
            Mode::HalfOpen { cooldown } | Mode::Open { cooldown, .. } => {
                let longer = (cooldown * 2).min(self.max_cooldown);
                tracing::warn!(sink = %self.sink, reason, probe_in_s = longer.as_secs_f64(), "Probe failed; the circuit breaker stays open.");
                longer
            }
        };
        *mode = Mode::Open {
            until: Instant::now() + next,
            cooldown: next,
        };
        drop(mode);
        self.publish(BreakerState::Open);
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(
            3,
            Duration::from_secs(10),
            Duration::from_secs(40),
            Arc::from("s"),
            Arc::new(Metrics::new()),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_probes_once_and_closes_on_success() {
        let breaker = breaker();
        let abort = CancellationToken::new();
        breaker.failure("503");
        breaker.failure("503");
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.failure("503");
        assert_eq!(breaker.state(), BreakerState::Open);
        let started = Instant::now();
        assert!(breaker.admit(&abort).await, "the probe is let through");
        assert!(started.elapsed() >= Duration::from_secs(10));
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        // Others wait for the probe's answer.
        let waiting = tokio::time::timeout(Duration::from_secs(60), breaker.admit(&abort)).await;
        assert!(
            waiting.is_err(),
            "a second request waits while the probe is out"
        );
        breaker.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.admit(&abort).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_doubles_the_cool_down_up_to_the_cap() {
        let breaker = breaker();
        let abort = CancellationToken::new();
        for _ in 0..3 {
            breaker.failure("down");
        }
        let mut waits = Vec::new();
        for _ in 0..4 {
            let started = Instant::now();
            assert!(breaker.admit(&abort).await);
            waits.push(started.elapsed().as_secs());
            breaker.failure("still down");
        }
        assert_eq!(waits, vec![10, 20, 40, 40]);
        abort.cancel();
        assert!(!breaker.admit(&abort).await, "abort ends the wait");
    }
}
