//! Shared timing and reporting for Tessera's benchmarks.
//!
//! Every benchmark measures Tessera and the baseline it is judged against in the same run,
//! on the same inputs, and prints both with their ratio, so that a figure never depends on
//! a number measured on another day or another machine. Timing assertions never appear in
//! tests; figures go to `docs/performance.md`.
//!
//! ```
//! use std::time::Duration;
//! use tessera_benches::{Measurement, ratio_line};
//!
//! let ours = Measurement::run("ours", 3, || std::hint::black_box(1 + 1));
//! let base = Measurement::run("baseline", 3, || std::hint::black_box(2 + 2));
//! assert!(ours.best() <= ours.median());
//! println!("{}", ratio_line(&ours, &base));
//! ```
#![deny(missing_docs)]

use std::time::{Duration, Instant};

/// Wall-clock samples of one piece of work.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// What was measured.
    pub name: String,
    samples: Vec<Duration>,
}

impl Measurement {
    /// Runs `work` `runs` times (at least once) and records each wall time.
    pub fn run<T>(name: &str, runs: usize, mut work: impl FnMut() -> T) -> Self {
        let samples = (0..runs.max(1))
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(work());
                start.elapsed()
            })
            .collect();
        Self {
            name: name.to_owned(),
            samples,
        }
    }

    /// Builds a measurement from durations taken elsewhere (e.g. a child process).
    pub fn from_samples(name: &str, samples: Vec<Duration>) -> Self {
        Self {
            name: name.to_owned(),
            samples,
        }
    }

    /// The fastest sample: the least disturbed by other work on the machine.
    pub fn best(&self) -> Duration {
        self.samples.iter().copied().min().unwrap_or_default()
    }

    /// The median sample.
    pub fn median(&self) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }
}

/// `ours / baseline` on the median times; below 1.0 means Tessera is faster.
pub fn ratio(ours: &Measurement, baseline: &Measurement) -> f64 {
    ours.median().as_secs_f64() / baseline.median().as_secs_f64().max(f64::MIN_POSITIVE)
}

/// One printable line: both medians and the ratio.
pub fn ratio_line(ours: &Measurement, baseline: &Measurement) -> String {
    format!(
        "{}: {:.3?} (median of {}) vs {}: {:.3?} (median of {}) -> ratio {:.2}x",
        ours.name,
        ours.median(),
        ours.samples.len(),
        baseline.name,
        baseline.median(),
        baseline.samples.len(),
        ratio(ours, baseline)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_known_samples() {
        let ours = Measurement::from_samples("a", vec![Duration::from_millis(30); 3]);
        let base = Measurement::from_samples("b", vec![Duration::from_millis(20); 3]);
        assert!((ratio(&ours, &base) - 1.5).abs() < 1e-9);
        assert!(ratio_line(&ours, &base).contains("1.50x"));
    }

    #[test]
    fn median_and_best() {
        let m = Measurement::from_samples(
            "m",
            [5, 1, 3]
                .iter()
                .map(|&n| Duration::from_millis(n))
                .collect(),
        );
        assert_eq!(m.best(), Duration::from_millis(1));
        assert_eq!(m.median(), Duration::from_millis(3));
    }
}
