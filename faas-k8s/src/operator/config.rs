//! [`OperatorConfig`]: how the function operator runs.

use std::time::Duration;

/// The field manager the operator writes every object under (server-side apply).
pub const FIELD_MANAGER: &str = "faas-operator";

/// How the [`FunctionController`](super::FunctionController) runs.
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::operator::OperatorConfig;
///
/// let config = OperatorConfig::default()
///     .with_namespace("team-a")
///     .with_concurrency(8)
///     .with_forbidden_retry(Duration::from_secs(120));
/// assert_eq!(config.namespace.as_deref(), Some("team-a"));
/// assert_eq!(config.field_manager, "faas-operator");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OperatorConfig {
    /// The namespace whose Functions are reconciled; every namespace when `None`.
    pub namespace: Option<String>,
    /// The field manager of every write (server-side apply and status).
    pub field_manager: String,
    /// How many Functions are reconciled at once (0 = no limit).
    pub concurrency: u16,
    /// How long a progressing Function must stand still (its Deployment's counts and its pods'
    /// states unchanged) before its `Progressing` status is written: a rollout that keeps moving
    /// gets a single status write, when it is Ready. Failures are written at once.
    pub progress_report_delay: Duration,
    /// The first delay before a failed reconcile is retried; it doubles per failure of the
    /// same Function up to [`retry_max`](Self::retry_max).
    pub retry_min: Duration,
    /// The longest delay between retries of a failing Function.
    pub retry_max: Duration,
    /// How long the operator waits before trying again a write the API server refused for lack
    /// of permission (reported on the Function meanwhile).
    pub forbidden_retry: Duration,
    /// How often a Function waiting for a missing Secret is checked again.
    pub secret_retry: Duration,
    /// How often a Ready Function is checked again even without a change.
    pub resync: Duration,
    /// The name this instance gives itself in Events and Leases.
    pub instance: String,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            namespace: None,
            field_manager: FIELD_MANAGER.to_owned(),
            concurrency: 16,
            progress_report_delay: Duration::from_secs(15),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(300),
            forbidden_retry: Duration::from_secs(60),
            secret_retry: Duration::from_secs(10),
            resync: Duration::from_secs(600),
            instance: default_instance(),
        }
    }
}

/// The host name and process id: unique per running operator.
fn default_instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "faas-operator".to_owned());
    format!("{host}-{}", std::process::id())
}

impl OperatorConfig {
    /// Reconciles only the Functions of `namespace`.
    #[must_use]
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the field manager.
    #[must_use]
    pub fn with_field_manager(mut self, field_manager: impl Into<String>) -> Self {
        self.field_manager = field_manager.into();
        self
    }

    /// Sets how many Functions are reconciled at once.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: u16) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets how long a progressing Function must stand still before its status is written.
    #[must_use]
    pub fn with_progress_report_delay(mut self, delay: Duration) -> Self {
        self.progress_report_delay = delay;
        self
    }

    /// Sets the bounds of the per-Function retry back-off.
    #[must_use]
    pub fn with_retry(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min = min;
        self.retry_max = max.max(min);
        self
    }

    /// Sets the wait before a refused write is tried again.
    #[must_use]
    pub fn with_forbidden_retry(mut self, delay: Duration) -> Self {
        self.forbidden_retry = delay;
        self
    }

    /// Sets how often a missing Secret is looked for again.
    #[must_use]
    pub fn with_secret_retry(mut self, delay: Duration) -> Self {
        self.secret_retry = delay;
        self
    }

    /// Sets how often a Ready Function is checked without a change.
    #[must_use]
    pub fn with_resync(mut self, resync: Duration) -> Self {
        self.resync = resync;
        self
    }

    /// Sets this instance's name (Events, Leases).
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = instance.into();
        self
    }

    /// The delay before retry number `failures` (1 for the first) of a failing Function.
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(20);
        self.retry_min
            .saturating_mul(1 << exponent)
            .min(self.retry_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_per_failure_up_to_the_maximum() {
        let config =
            OperatorConfig::default().with_retry(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<u64> = (1..=6).map(|n| config.retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(config.retry_delay(u32::MAX), Duration::from_secs(10));
    }
}
