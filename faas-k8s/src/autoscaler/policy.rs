//! [`ScalingPolicy`]: the bounds and targets one function scales by.

use std::time::Duration;

use crate::error::{Error, Result};

/// How one function scales: its bounds, its target load per replica, and the
/// windows the decider averages over.
///
/// The defaults follow Knative's pod autoscaler: a 60 s stable window, a 6 s
/// panic window entered when the panic window asks for twice the ready
/// replicas, at most halving per decision when scaling in, and scale to zero
/// after 30 s without traffic or pending work.
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::autoscaler::ScalingPolicy;
///
/// let policy = ScalingPolicy::builder()
///     .min_replicas(0)
///     .max_replicas(10)
///     .target_concurrency(4.0)
///     .scale_to_zero_grace(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(policy.max_replicas(), 10);
/// # Ok::<(), faas_k8s::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicy {
    min_replicas: u32,
    max_replicas: u32,
    target_concurrency: f64,
    target_pending: f64,
    scale_to_zero_grace: Duration,
    stable_window: Duration,
    panic_window: Duration,
    panic_threshold: f64,
    max_scale_down_rate: f64,
}

impl Default for ScalingPolicy {
    fn default() -> Self {
        ScalingPolicy {
            min_replicas: 0,
            max_replicas: 100,
            target_concurrency: 10.0,
            target_pending: 10.0,
            scale_to_zero_grace: Duration::from_secs(30),
            stable_window: Duration::from_secs(60),
            panic_window: Duration::from_secs(6),
            panic_threshold: 2.0,
            max_scale_down_rate: 2.0,
        }
    }
}

impl ScalingPolicy {
    /// A builder starting from the defaults.
    pub fn builder() -> ScalingPolicyBuilder {
        ScalingPolicyBuilder {
            policy: ScalingPolicy::default(),
        }
    }

    /// The fewest replicas; `0` allows scale to zero.
    pub fn min_replicas(&self) -> u32 {
        self.min_replicas
    }

    /// The most replicas.
    pub fn max_replicas(&self) -> u32 {
        self.max_replicas
    }

    /// Calls in flight one replica should carry.
    pub fn target_concurrency(&self) -> f64 {
        self.target_concurrency
    }

    /// Pending event-source work one replica should carry.
    pub fn target_pending(&self) -> f64 {
        self.target_pending
    }

    /// How long a function stays at one replica with no traffic and no pending work
    /// before it scales to zero.
    pub fn scale_to_zero_grace(&self) -> Duration {
        self.scale_to_zero_grace
    }

    /// The window the stable decision averages over.
    pub fn stable_window(&self) -> Duration {
        self.stable_window
    }

    /// The window the panic decision averages over.
    pub fn panic_window(&self) -> Duration {
        self.panic_window
    }

    /// Panic mode starts when the panic window wants this many times the ready replicas.
    pub fn panic_threshold(&self) -> f64 {
        self.panic_threshold
    }

    /// One decision scales in to no fewer than `ready / rate` replicas.
    pub fn max_scale_down_rate(&self) -> f64 {
        self.max_scale_down_rate
    }
}

/// Builds a [`ScalingPolicy`]; [`build`](Self::build) checks it.
#[derive(Debug, Clone)]
#[must_use]
pub struct ScalingPolicyBuilder {
    policy: ScalingPolicy,
}

impl ScalingPolicyBuilder {
    /// Sets the fewest replicas (`0` allows scale to zero).
    pub fn min_replicas(mut self, min: u32) -> Self {
        self.policy.min_replicas = min;
        self
    }

    /// Sets the most replicas.
    pub fn max_replicas(mut self, max: u32) -> Self {
        self.policy.max_replicas = max;
        self
    }

    /// Sets the calls in flight one replica should carry.
    pub fn target_concurrency(mut self, target: f64) -> Self {
        self.policy.target_concurrency = target;
        self
    }

    /// Sets the pending event-source work one replica should carry.
    pub fn target_pending(mut self, target: f64) -> Self {
        self.policy.target_pending = target;
        self
    }

    /// Sets how long an idle function waits at one replica before scaling to zero.
    pub fn scale_to_zero_grace(mut self, grace: Duration) -> Self {
        self.policy.scale_to_zero_grace = grace;
        self
    }

    /// Sets the stable window.
    pub fn stable_window(mut self, window: Duration) -> Self {
        self.policy.stable_window = window;
        self
    }

    /// Sets the panic window.
    pub fn panic_window(mut self, window: Duration) -> Self {
        self.policy.panic_window = window;
        self
    }

    /// Sets the ratio of wanted to ready replicas that starts panic mode.
    pub fn panic_threshold(mut self, threshold: f64) -> Self {
        self.policy.panic_threshold = threshold;
        self
    }

    /// Sets how fast one decision may scale in (`2.0`: to half the ready replicas).
    pub fn max_scale_down_rate(mut self, rate: f64) -> Self {
        self.policy.max_scale_down_rate = rate;
        self
    }

    /// The policy.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when `min > max`, `max` is zero, a target is not a
    /// positive number, the panic window is empty or longer than the stable window,
    /// the panic threshold is not above 1 or the scale-down rate is below 1.
    pub fn build(self) -> Result<ScalingPolicy> {
        let p = self.policy;
        let invalid = |reason: String| Err(Error::InvalidConfig(reason));
        if p.max_replicas == 0 {
            return invalid("max replicas must be at least 1".to_owned());
        }
        if p.min_replicas > p.max_replicas {
            return invalid(format!(
                "min replicas ({}) is above max replicas ({})",
                p.min_replicas, p.max_replicas
            ));
        }
        for (name, value) in [
            ("target concurrency", p.target_concurrency),
            ("target pending", p.target_pending),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return invalid(format!("{name} must be a positive number, not {value}"));
            }
        }
        if p.panic_window.is_zero() || p.panic_window > p.stable_window {
            return invalid(format!(
                "the panic window ({:?}) must be non-empty and no longer than the stable window ({:?})",
                p.panic_window, p.stable_window
            ));
        }
        if !(p.panic_threshold.is_finite() && p.panic_threshold > 1.0) {
            return invalid(format!(
                "the panic threshold must be above 1, not {}",
                p.panic_threshold
            ));
        }
        if !(p.max_scale_down_rate.is_finite() && p.max_scale_down_rate >= 1.0) {
            return invalid(format!(
                "the max scale-down rate must be at least 1, not {}",
                p.max_scale_down_rate
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_inconsistent_bounds_and_targets() {
        let cases = [
            ScalingPolicy::builder().max_replicas(0),
            ScalingPolicy::builder().min_replicas(3).max_replicas(2),
            ScalingPolicy::builder().target_concurrency(0.0),
            ScalingPolicy::builder().target_pending(f64::NAN),
            ScalingPolicy::builder().panic_window(Duration::ZERO),
            ScalingPolicy::builder().panic_window(Duration::from_secs(120)),
            ScalingPolicy::builder().panic_threshold(1.0),
            ScalingPolicy::builder().max_scale_down_rate(0.5),
        ];
        for builder in cases {
            let error = builder.clone().build().unwrap_err();
            assert!(
                matches!(error, Error::InvalidConfig(_)),
                "{builder:?}: {error}"
            );
        }
        assert!(ScalingPolicy::builder().build().is_ok());
    }
}
