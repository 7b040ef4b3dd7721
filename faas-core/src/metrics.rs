//! [`Metrics`]: Prometheus metrics of function calls.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry as PromRegistry, Unit};

use crate::error::ErrorKind;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    function: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    function: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    function: String,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms .. about 65 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

/// Prometheus metrics of function calls, in the text exposition format.
///
/// | metric | type | labels |
/// |---|---|---|
/// | `faas_invocations_total` | counter | `function`, `outcome` (`success` or `error`) |
/// | `faas_errors_total` | counter | `function`, `kind` (an [`ErrorKind`] name) |
/// | `faas_invocation_duration_seconds` | histogram | `function` |
/// | `faas_in_flight` | gauge | `function` |
///
/// Every attempt of a retried delivery counts as one invocation. Calls of an
/// unknown function are not recorded (their names come from outside). Clones
/// share the same metrics.
///
/// ```
/// use faas_core::{FunctionDefinition, Invocation, LocalExecutor, Metrics, Registry};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let metrics = Metrics::new();
/// let registry = Registry::from([FunctionDefinition::from_handler("ping", || async { "pong" })]);
/// let executor = LocalExecutor::builder(registry).metrics(metrics.clone()).build();
/// executor.invoke("ping", Invocation::new("")).await.unwrap();
///
/// let text = metrics.encode();
/// assert!(text.contains(r#"faas_invocations_total{function="ping",outcome="success"} 1"#));
/// assert!(text.ends_with("# EOF\n"));
/// # });
/// ```
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

struct MetricsInner {
    registry: PromRegistry,
    /// The metrics of each function, looked up without building label sets.
    handles: RwLock<HashMap<Box<str>, Arc<FunctionHandles>>>,
    invocations: Family<OutcomeLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    duration: Family<FunctionLabels, Histogram, fn() -> Histogram>,
    in_flight: Family<FunctionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Self {
        let invocations = Family::<OutcomeLabels, Counter>::default();
        let errors = Family::<KindLabels, Counter>::default();
        let duration = Family::<FunctionLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        let in_flight = Family::<FunctionLabels, Gauge>::default();
        let mut registry = PromRegistry::default();
        register(&mut registry, &invocations, &errors, &duration, &in_flight);
        Metrics {
            inner: Arc::new(MetricsInner {
                registry,
                handles: RwLock::new(HashMap::new()),
                invocations,
                errors,
                duration,
                in_flight,
            }),
        }
    }

    /// Also exposes these metrics through another registry (e.g. an application's).
    pub fn register(&self, registry: &mut PromRegistry) {
        let inner = &self.inner;
        register(
            registry,
            &inner.invocations,
            &inner.errors,
            &inner.duration,
            &inner.in_flight,
        );
    }

    /// The metrics in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// The metrics of `function`, made on first use. Keep them: looking them up
    /// again costs a hash of the name.
    pub(crate) fn function(&self, function: &str) -> FunctionMetrics {
        let owner = Arc::downgrade(&self.inner);
        let handles = self
            .inner
            .handles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(function)
            .cloned();
        if let Some(handles) = handles {
            return FunctionMetrics { owner, handles };
        }
        let inner = &self.inner;
        let mut all = inner
            .handles
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let handles = all.entry(Box::from(function)).or_insert_with(|| {
            let outcome = |outcome| OutcomeLabels {
                function: function.to_owned(),
                outcome,
            };
            let labels = FunctionLabels {
                function: function.to_owned(),
            };
            // One statement each: a family's guard must be gone before the next
            // lookup in the same family, which may take its write lock.
            let success = inner.invocations.get_or_create(&outcome("success")).clone();
            let error = inner.invocations.get_or_create(&outcome("error")).clone();
            let duration = inner.duration.get_or_create(&labels).clone();
            let in_flight = inner.in_flight.get_or_create(&labels).clone();
            Arc::new(FunctionHandles {
                function: Box::from(function),
                success,
                error,
                duration,
                in_flight,
                errors: inner.errors.clone(),
                by_kind: std::array::from_fn(|_| OnceLock::new()),
            })
        });
        FunctionMetrics {
            owner,
            handles: Arc::clone(handles),
        }
    }
}

/// The metrics of one function, found once; a registry entry keeps them for the
/// [`Metrics`] its calls are counted in. Cheap to clone.
#[derive(Clone)]
pub(crate) struct FunctionMetrics {
    /// Which metrics they belong to; weak, so keeping them keeps nothing else alive.
    owner: Weak<MetricsInner>,
    handles: Arc<FunctionHandles>,
}

struct FunctionHandles {
    function: Box<str>,
    success: Counter,
    error: Counter,
    duration: Histogram,
    in_flight: Gauge,
    errors: Family<KindLabels, Counter>,
    /// The error counters by kind, each made on the first error of its kind.
    by_kind: [OnceLock<Counter>; ErrorKind::ALL.len()],
}

impl FunctionMetrics {
    /// Whether these are the function's handles in `metrics`.
    pub(crate) fn belongs_to(&self, metrics: &Metrics) -> bool {
        std::ptr::eq(self.owner.as_ptr(), Arc::as_ptr(&metrics.inner))
    }

    /// Counts a call as started; it stays in the in-flight gauge until the guard drops.
    pub(crate) fn start(&self) -> InFlightGuard<'_> {
        self.handles.in_flight.inc();
        InFlightGuard {
            gauge: &self.handles.in_flight,
        }
    }

    /// Records a finished call.
    pub(crate) fn record(&self, error: Option<ErrorKind>, elapsed: Duration) {
        let handles = &*self.handles;
        match error {
            None => handles.success.inc(),
            Some(kind) => {
                handles.error.inc();
                let counter = || {
                    handles
                        .errors
                        .get_or_create(&KindLabels {
                            function: handles.function.to_string(),
                            kind: kind.as_str(),
                        })
                        .clone()
                };
                match ErrorKind::ALL.iter().position(|known| *known == kind) {
                    Some(index) => handles.by_kind[index].get_or_init(counter).inc(),
                    None => counter().inc(),
                }
            }
        };
        handles.duration.observe(elapsed.as_secs_f64());
    }
}

fn register(
    registry: &mut PromRegistry,
    invocations: &Family<OutcomeLabels, Counter>,
    errors: &Family<KindLabels, Counter>,
    duration: &Family<FunctionLabels, Histogram, fn() -> Histogram>,
    in_flight: &Family<FunctionLabels, Gauge>,
) {
    registry.register(
        "faas_invocations",
        "Function calls, by outcome",
        invocations.clone(),
    );
    registry.register(
        "faas_errors",
        "Failed function calls, by error kind",
        errors.clone(),
    );
    registry.register_with_unit(
        "faas_invocation_duration",
        "Duration of function calls",
        Unit::Seconds,
        duration.clone(),
    );
    registry.register(
        "faas_in_flight",
        "Function calls running now",
        in_flight.clone(),
    );
}

/// Keeps a call in the in-flight gauge.
pub(crate) struct InFlightGuard<'a> {
    gauge: &'a Gauge,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_encodes() {
        let metrics = Metrics::new();
        let hello = metrics.function("hello");
        let guard = hello.start();
        assert!(
            metrics
                .encode()
                .contains("faas_in_flight{function=\"hello\"} 1")
        );
        drop(guard);
        assert!(hello.belongs_to(&metrics));
        assert!(!hello.belongs_to(&Metrics::new()));
        hello.record(None, Duration::from_millis(3));
        hello.record(Some(ErrorKind::Timeout), Duration::from_secs(1));
        metrics
            .function("hello")
            .record(Some(ErrorKind::Timeout), Duration::ZERO);
        let text = metrics.encode();
        assert!(
            text.contains("faas_invocations_total{function=\"hello\",outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("faas_invocations_total{function=\"hello\",outcome=\"error\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("faas_errors_total{function=\"hello\",kind=\"timeout\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("faas_invocation_duration_seconds_count{function=\"hello\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("faas_in_flight{function=\"hello\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn registers_into_another_registry() {
        let metrics = Metrics::new();
        metrics.function("f").record(None, Duration::ZERO);
        let mut registry = PromRegistry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("faas_invocations_total{function=\"f\",outcome=\"success\"} 1"));
    }
}
