//! Lock-free counters and histograms, written out in the Prometheus text format (0.0.4).
//!
//! Hot paths only touch atomics (a request: two adds and a bucket add); the text is made when
//! `/metrics` is scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram of durations with fixed upper bounds (seconds).
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus +Inf; not cumulative (summed when written).
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

/// Bounds for request latencies: 0.25 ms to 10 s.
pub(crate) const REQUEST_BOUNDS: &[f64] =
    &[0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Bounds for making a thumbnail and preview: 10 ms to 20 s.
pub(crate) const RENDER_BOUNDS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 20.0];

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.iter().position(|&b| secs <= b).unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(d.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The `_bucket`, `_sum` and `_count` lines; `labels` is empty or ends in a comma.
    pub(crate) fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self.bounds.get(i).map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
        }
        let plain = labels.trim_end_matches(',');
        let braces = if plain.is_empty() { String::new() } else { format!("{{{plain}}}") };
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new(RENDER_BOUNDS)
    }
}

/// `# HELP` and `# TYPE` lines.
pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_in_inf() {
        let h = Histogram::new(&[0.001, 0.01]);
        for ms in [0, 5, 5, 50] {
            h.observe(Duration::from_millis(ms));
        }
        let mut out = String::new();
        h.write(&mut out, "x", "route=\"a\",");
        assert_eq!(
            out,
            "x_bucket{route=\"a\",le=\"0.001\"} 1\nx_bucket{route=\"a\",le=\"0.01\"} 3\n\
             x_bucket{route=\"a\",le=\"+Inf\"} 4\nx_sum{route=\"a\"} 0.06\nx_count{route=\"a\"} 4\n"
        );
        let mut plain = String::new();
        Histogram::new(&[1.0]).write(&mut plain, "y", "");
        assert!(plain.contains("y_sum 0\n") && plain.contains("y_bucket{le=\"+Inf\"} 0\n"), "{plain}");
    }
}
