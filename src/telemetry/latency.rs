//! Latency distributions in HDR histograms: microsecond resolution, 3 significant figures, up
//! to an hour, constant memory whatever the traffic.

use hdrhistogram::Histogram;
use std::time::Duration;

/// The quantiles reported.
pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

/// One distribution.
#[derive(Debug)]
pub struct Latency {
    histogram: Option<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            // 1 µs .. 1 h at 3 significant figures: about 40 KiB, fixed.
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3).ok(),
        }
    }
}

/// Quantiles in seconds and the number of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// (quantile, seconds) for each of [`QUANTILES`].
    pub quantiles: Vec<(f64, f64)>,
    /// Samples recorded.
    pub count: u64,
}

impl Latency {
    /// Record one sample (clamped into range).
    pub fn record(&mut self, value: Duration) {
        if let Some(histogram) = self.histogram.as_mut() {
            let micros = (value.as_micros() as u64).clamp(1, 3_600_000_000);
            let _ = histogram.record(micros);
        }
    }

    /// The reported quantiles.
    pub fn summary(&self) -> Summary {
        match &self.histogram {
            Some(histogram) => Summary {
                quantiles: QUANTILES
                    .iter()
                    .map(|q| (*q, histogram.value_at_quantile(*q) as f64 / 1e6))
                    .collect(),
                count: histogram.len(),
            },
            None => Summary {
                quantiles: Vec::new(),
                count: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_samples() {
        let mut latency = Latency::default();
        for ms in 1..=1000u64 {
            latency.record(Duration::from_millis(ms));
        }
        let summary = latency.summary();
        assert_eq!(summary.count, 1000);
        let p50 = summary.quantiles[0].1;
        let p99 = summary.quantiles[2].1;
        assert!((p50 - 0.5).abs() < 0.005, "{p50}");
        assert!((p99 - 0.99).abs() < 0.005, "{p99}");
    }
}
