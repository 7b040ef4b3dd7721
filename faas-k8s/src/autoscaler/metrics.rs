//! [`TrafficMetrics`]: the Prometheus metrics of the gateway, the activator and the autoscaler.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::decider::DecisionReason;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    function: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    function: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    function: String,
    code: u16,
}

fn cold_start_histogram() -> Histogram {
    // 10 ms .. about 82 s.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// The Prometheus metrics of traffic and scale, labelled by function
/// (`namespace/name`).
///
/// | metric | type | labels |
/// |---|---|---|
/// | `faas_gateway_in_flight` | gauge | `function` |
/// | `faas_gateway_held` | gauge | `function`: calls held while no replica is ready |
/// | `faas_gateway_calls_total` | counter | `function`, `code` (the HTTP status answered) |
/// | `faas_gateway_cold_start_seconds` | histogram | `function`: from the first held call to a ready replica |
/// | `faas_autoscaler_decisions_total` | counter | `function`, `reason` (a [`DecisionReason`] name) |
/// | `faas_autoscaler_desired_replicas` | gauge | `function` |
///
/// Clones share the same metrics.
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::autoscaler::{DecisionReason, TrafficMetrics};
///
/// let metrics = TrafficMetrics::new();
/// metrics.decision("default/hello", 3, DecisionReason::Panic);
/// metrics.cold_start("default/hello", Duration::from_millis(180));
/// let text = metrics.encode();
/// assert!(text.contains(r#"faas_autoscaler_decisions_total{function="default/hello",reason="panic"} 1"#));
/// assert!(text.contains(r#"faas_autoscaler_desired_replicas{function="default/hello"} 3"#));
/// ```
#[derive(Clone)]
pub struct TrafficMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    in_flight: Family<FunctionLabels, Gauge>,
    held: Family<FunctionLabels, Gauge>,
    calls: Family<CallLabels, Counter>,
    cold_start: Family<FunctionLabels, Histogram, fn() -> Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    desired: Family<FunctionLabels, Gauge>,
}

impl Default for TrafficMetrics {
    fn default() -> Self {
        TrafficMetrics::new()
    }
}

impl fmt::Debug for TrafficMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrafficMetrics").finish_non_exhaustive()
    }
}

fn labels(function: &str) -> FunctionLabels {
    FunctionLabels {
        function: function.to_owned(),
    }
}

impl TrafficMetrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Self {
        let in_flight = Family::<FunctionLabels, Gauge>::default();
        let held = Family::<FunctionLabels, Gauge>::default();
        let calls = Family::<CallLabels, Counter>::default();
        let cold_start =
            Family::<FunctionLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                cold_start_histogram as fn() -> Histogram,
            );
        let decisions = Family::<DecisionLabels, Counter>::default();
        let desired = Family::<FunctionLabels, Gauge>::default();
        let mut registry = Registry::default();
        registry.register(
            "faas_gateway_in_flight",
            "Calls the gateway is proxying to a function's replicas",
            in_flight.clone(),
        );
        registry.register(
            "faas_gateway_held",
            "Calls held while the function has no ready replica",
            held.clone(),
        );
        registry.register(
            "faas_gateway_calls",
            "Calls answered by the gateway, by HTTP status",
            calls.clone(),
        );
        registry.register_with_unit(
            "faas_gateway_cold_start",
            "From the first call held at zero to a ready replica",
            Unit::Seconds,
            cold_start.clone(),
        );
        registry.register(
            "faas_autoscaler_decisions",
            "Scaling decisions, by reason",
            decisions.clone(),
        );
        registry.register(
            "faas_autoscaler_desired_replicas",
            "The replicas the last decision asked for",
            desired.clone(),
        );
        TrafficMetrics {
            inner: Arc::new(Inner {
                registry,
                in_flight,
                held,
                calls,
                cold_start,
                decisions,
                desired,
            }),
        }
    }

    /// The metrics in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Sets the calls in flight to `function`.
    pub fn set_in_flight(&self, function: &str, in_flight: u64) {
        self.inner
            .in_flight
            .get_or_create(&labels(function))
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    }

    /// Sets the calls held for `function`.
    pub fn set_held(&self, function: &str, held: u64) {
        self.inner
            .held
            .get_or_create(&labels(function))
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    /// Counts one call of `function` answered with `code`.
    pub fn call(&self, function: &str, code: u16) {
        self.inner
            .calls
            .get_or_create(&CallLabels {
                function: function.to_owned(),
                code,
            })
            .inc();
    }

    /// Records one cold start of `function`.
    pub fn cold_start(&self, function: &str, took: Duration) {
        self.inner
            .cold_start
            .get_or_create(&labels(function))
            .observe(took.as_secs_f64());
    }

    /// Records one decision for `function`.
    pub fn decision(&self, function: &str, replicas: u32, reason: DecisionReason) {
        self.inner
            .decisions
            .get_or_create(&DecisionLabels {
                function: function.to_owned(),
                reason: reason.as_str(),
            })
            .inc();
        self.inner
            .desired
            .get_or_create(&labels(function))
            .set(i64::from(replicas));
    }

    /// Forgets every series of `function` (it was removed).
    pub fn forget(&self, function: &str) {
        let l = labels(function);
        self.inner.in_flight.remove(&l);
        self.inner.held.remove(&l);
        self.inner.cold_start.remove(&l);
        self.inner.desired.remove(&l);
    }
}
