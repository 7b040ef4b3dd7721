//! Result lines: one JSON object per measurement on standard output, which
//! `cargo xtask bench` collects into `BENCHMARKS.md`.

use serde::Serialize;

/// One measured figure of a benchmark, with its baseline from the same run.
#[derive(Debug, Serialize)]
pub struct Measurement {
    /// The benchmark's id, e.g. `B2`.
    pub id: &'static str,
    /// What was measured, e.g. `req/s`.
    pub metric: String,
    /// The figure of the thing under test.
    pub value: f64,
    /// The same figure of the baseline.
    pub baseline: f64,
    /// `value / baseline`.
    pub ratio: f64,
    /// Free-form detail: parameters of the run.
    pub detail: String,
}

impl Measurement {
    /// A measurement of `value` against `baseline`.
    pub fn new(
        id: &'static str,
        metric: impl Into<String>,
        value: f64,
        baseline: f64,
        detail: impl Into<String>,
    ) -> Self {
        let ratio = if baseline == 0.0 {
            0.0
        } else {
            value / baseline
        };
        Self {
            id,
            metric: metric.into(),
            value,
            baseline,
            ratio,
            detail: detail.into(),
        }
    }

    /// Prints the measurement as one `BENCH {json}` line.
    pub fn emit(&self) {
        println!(
            "BENCH {}",
            serde_json::to_string(self).expect("a measurement serializes")
        );
    }
}
