//! [`Registry`]: the functions a host serves, by name, with their live state.

#[cfg(feature = "local")]
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
#[cfg(feature = "local")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tower::{Layer, Service};

use crate::definition::{FunctionDefinition, FunctionMeta};
use crate::error::FunctionError;
use crate::error::{Error, Result};
use crate::function::{FunctionService, ServiceFunction, SharedFunction};
use crate::invocation::Invocation;
use crate::layer::InFlightLimit;
#[cfg(feature = "local")]
use crate::layer::{InvocationPolicyLayer, RetryLayer};
#[cfg(feature = "local")]
use crate::logs::{FunctionLog, InvocationLog};
#[cfg(feature = "local")]
use crate::metrics::{FunctionMetrics, Metrics};
use crate::output::Response;
use crate::policy::InvocationPolicy;

/// The longest function name accepted.
const MAX_NAME_LEN: usize = 253;

/// The functions a host serves. Cheap to clone: clones share the same set.
///
/// Names are unique: registering a second function under a name in use is an
/// error ([`Error::DuplicateFunction`]). A name is 1 to 253 characters of ASCII
/// letters, digits, `-`, `_` and `.`.
///
/// ```
/// use faas_core::{FunctionDefinition, Registry};
///
/// async fn ping() -> &'static str { "pong" }
///
/// let registry = Registry::new();
/// registry.register(FunctionDefinition::from_handler("ping", ping)).unwrap();
/// assert!(registry.register(FunctionDefinition::from_handler("ping", ping)).is_err());
/// assert_eq!(registry.names(), ["ping"]);
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    functions: Arc<RwLock<BTreeMap<String, RegisteredFunction>>>,
    layers: Arc<RwLock<Vec<CallLayer>>>,
}

/// A tower layer made object-safe: wraps a function in it.
type CallLayer = Arc<dyn Fn(SharedFunction) -> SharedFunction + Send + Sync>;

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a function.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateFunction`] when the name is in use,
    /// [`Error::InvalidDefinition`] when the name is not valid.
    pub fn register(&self, definition: FunctionDefinition) -> Result<()> {
        validate_name(definition.name())?;
        let mut functions = self.write();
        if functions.contains_key(definition.name()) {
            return Err(Error::DuplicateFunction {
                name: definition.name().to_owned(),
            });
        }
        let registered = RegisteredFunction::new(definition, &self.read_layers());
        functions.insert(registered.name().to_owned(), registered);
        Ok(())
    }

    /// Wraps every function, those registered now and later, in `layer`, for
    /// every call: what [`LocalExecutorBuilder::layer`](crate::LocalExecutorBuilder::layer)
    /// does. Layers added later wrap those added before.
    ///
    /// The functions registered now are registered again, wrapped, with fresh
    /// counters: add layers before serving. Clones of the registry share its
    /// layers.
    ///
    /// ```
    /// use faas_core::{Extension, FunctionDefinition, Invocation, Registry};
    ///
    /// async fn greet(Extension(greeting): Extension<&'static str>) -> &'static str { greeting }
    ///
    /// let registry = Registry::from([FunctionDefinition::from_handler("greet", greet)]);
    /// registry.layer(Extension("hello"));
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let f = registry.get("greet").unwrap();
    /// assert_eq!(f.function().call(Invocation::new("")).await.unwrap().body(), "hello");
    /// # });
    /// ```
    pub fn layer<L>(&self, layer: L)
    where
        L: Layer<FunctionService> + Send + Sync + 'static,
        L::Service: Service<Invocation, Response = Response, Error = FunctionError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Invocation>>::Future: Send + 'static,
    {
        let layer: CallLayer = Arc::new(move |function: SharedFunction| -> SharedFunction {
            Arc::new(ServiceFunction::new(
                layer.layer(FunctionService::new(function)),
            ))
        });
        let mut functions = self.write();
        let mut layers = self
            .layers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        layers.push(layer);
        for registered in functions.values_mut() {
            let definition = registered.definition().clone();
            *registered = RegisteredFunction::new(definition, &layers);
        }
    }

    fn read_layers(&self) -> Vec<CallLayer> {
        self.layers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Adds a function and returns the registry, for chaining.
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register).
    pub fn try_with(self, definition: FunctionDefinition) -> Result<Self> {
        self.register(definition)?;
        Ok(self)
    }

    /// A registry of `definitions`.
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register), for the first definition that fails.
    pub fn try_from_iter(
        definitions: impl IntoIterator<Item = FunctionDefinition>,
    ) -> Result<Self> {
        let registry = Registry::new();
        for definition in definitions {
            registry.register(definition)?;
        }
        Ok(registry)
    }

    /// Adds a function or replaces the one of the same name; returns the replaced one.
    ///
    /// Calls already running on the replaced function finish on it; new calls go
    /// to the new one, with fresh in-flight limits and counters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDefinition`] when the name is not valid.
    pub fn replace(&self, definition: FunctionDefinition) -> Result<Option<RegisteredFunction>> {
        validate_name(definition.name())?;
        let registered = RegisteredFunction::new(definition, &self.read_layers());
        Ok(self
            .write()
            .insert(registered.name().to_owned(), registered))
    }

    /// Removes a function; returns it if it was there.
    pub fn remove(&self, name: &str) -> Option<RegisteredFunction> {
        self.write().remove(name)
    }

    /// The function named `name`.
    pub fn get(&self, name: &str) -> Option<RegisteredFunction> {
        self.read().get(name).cloned()
    }

    /// Whether a function is named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// The functions, sorted by name (a snapshot).
    pub fn iter(&self) -> impl Iterator<Item = RegisteredFunction> + use<> {
        self.read()
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// How many functions there are.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, RegisteredFunction>> {
        self.functions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, RegisteredFunction>> {
        self.functions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("functions", &self.names())
            .finish()
    }
}

impl FromIterator<FunctionDefinition> for Registry {
    /// # Panics
    ///
    /// When two definitions share a name or a name is invalid: that is a mistake
    /// in the program, found at start-up. Use [`Registry::try_from_iter`] to handle it.
    fn from_iter<I: IntoIterator<Item = FunctionDefinition>>(definitions: I) -> Self {
        match Registry::try_from_iter(definitions) {
            Ok(registry) => registry,
            Err(error) => panic!("cannot build the function registry: {error}"),
        }
    }
}

impl From<Vec<FunctionDefinition>> for Registry {
    /// # Panics
    ///
    /// As [`FromIterator`]: on a duplicate or invalid name.
    fn from(definitions: Vec<FunctionDefinition>) -> Self {
        definitions.into_iter().collect()
    }
}

impl<const N: usize> From<[FunctionDefinition; N]> for Registry {
    /// # Panics
    ///
    /// As [`FromIterator`]: on a duplicate or invalid name.
    fn from(definitions: [FunctionDefinition; N]) -> Self {
        definitions.into_iter().collect()
    }
}

fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("the name is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("the name is longer than 253 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("the name may hold only ASCII letters, digits, `-`, `_` and `.`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidDefinition {
            name: name.to_owned(),
            reason: reason.to_owned(),
        }),
        None => Ok(()),
    }
}

/// A function in a [`Registry`], with its live state: in-flight limit, counters,
/// and whether it is serving. Cheap to clone.
#[derive(Clone)]
pub struct RegisteredFunction {
    inner: Arc<RegisteredInner>,
}

struct RegisteredInner {
    definition: FunctionDefinition,
    /// The definition's function inside the registry's layers.
    function: SharedFunction,
    /// The name, shared with the context of every call.
    name: Arc<str>,
    /// Its metrics and log, kept from the first call so later calls look
    /// nothing up by name.
    #[cfg(feature = "local")]
    metrics: OnceLock<FunctionMetrics>,
    #[cfg(feature = "local")]
    log: OnceLock<FunctionLog>,
    limiter: Arc<InFlightLimit>,
    /// The policy's layers, built once: every attempt runs through them.
    #[cfg(feature = "local")]
    policy_layer: InvocationPolicyLayer,
    #[cfg(feature = "local")]
    retry_layer: RetryLayer,
    serving: AtomicBool,
    replicas: AtomicU32,
    invocations: AtomicU64,
    failures: AtomicU64,
}

impl RegisteredFunction {
    fn new(definition: FunctionDefinition, layers: &[CallLayer]) -> Self {
        let function = layers
            .iter()
            .fold(Arc::clone(definition.function()), |function, layer| {
                layer(function)
            });
        let limiter = Arc::new(
            definition
                .policy()
                .max_in_flight()
                .map_or_else(InFlightLimit::unlimited, InFlightLimit::new),
        );
        let replicas = definition.meta().scaling.min_replicas.max(1);
        #[cfg(feature = "local")]
        let policy_layer =
            InvocationPolicyLayer::with_limiter(definition.policy(), Arc::clone(&limiter));
        #[cfg(feature = "local")]
        let retry_layer = RetryLayer::new(definition.policy().retry().clone());
        RegisteredFunction {
            inner: Arc::new(RegisteredInner {
                #[cfg(feature = "local")]
                policy_layer,
                #[cfg(feature = "local")]
                retry_layer,
                name: Arc::from(definition.name()),
                function,
                #[cfg(feature = "local")]
                metrics: OnceLock::new(),
                #[cfg(feature = "local")]
                log: OnceLock::new(),
                definition,
                limiter,
                serving: AtomicBool::new(true),
                replicas: AtomicU32::new(replicas),
                invocations: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            }),
        }
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    #[cfg(feature = "local")]
    /// The function's name, to share without copying it.
    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.inner.name
    }

    /// The definition it was registered with.
    pub fn definition(&self) -> &FunctionDefinition {
        &self.inner.definition
    }

    /// The function's metadata.
    pub fn meta(&self) -> &FunctionMeta {
        self.inner.definition.meta()
    }

    /// The function as the registry serves it: the definition's, inside the
    /// registry's [layers](Registry::layer).
    pub fn function(&self) -> &SharedFunction {
        &self.inner.function
    }

    /// How it is called.
    pub fn policy(&self) -> &InvocationPolicy {
        self.inner.definition.policy()
    }

    /// The count of its calls in flight against the policy's limit
    /// ([`InFlightLimit::unlimited`] when the policy sets none).
    pub fn limiter(&self) -> &Arc<InFlightLimit> {
        &self.inner.limiter
    }

    /// Whether it accepts calls (false once scaled to zero).
    pub fn is_serving(&self) -> bool {
        self.inner.serving.load(Ordering::Acquire)
    }

    /// The replicas it was scaled to (in-process, all share one process).
    pub fn replicas(&self) -> u32 {
        if self.is_serving() {
            self.inner.replicas.load(Ordering::Acquire)
        } else {
            0
        }
    }

    /// Scales it: 0 stops accepting calls (they fail with
    /// [`Unavailable`](crate::ErrorKind::Unavailable)), more starts again.
    pub fn set_replicas(&self, replicas: u32) {
        if replicas > 0 {
            self.inner.replicas.store(replicas, Ordering::Release);
        }
        self.inner.serving.store(replicas > 0, Ordering::Release);
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.inner.limiter.in_flight()
    }

    /// Calls finished since registration (attempts, each retry counted).
    pub fn invocation_count(&self) -> u64 {
        self.inner.invocations.load(Ordering::Acquire)
    }

    /// Calls finished with an error since registration.
    pub fn failure_count(&self) -> u64 {
        self.inner.failures.load(Ordering::Acquire)
    }

    /// Its handles in `metrics`: those kept from the first call, unless that
    /// call was counted in other metrics.
    #[cfg(feature = "local")]
    pub(crate) fn metrics(&self, metrics: &Metrics) -> Cow<'_, FunctionMetrics> {
        let kept = self
            .inner
            .metrics
            .get_or_init(|| metrics.function(self.name()));
        if kept.belongs_to(metrics) {
            Cow::Borrowed(kept)
        } else {
            Cow::Owned(metrics.function(self.name()))
        }
    }

    /// Its log in `log`: the one kept from the first call, unless that call was
    /// written to another log.
    #[cfg(feature = "local")]
    pub(crate) fn log(&self, log: &InvocationLog) -> Cow<'_, FunctionLog> {
        let kept = self.inner.log.get_or_init(|| log.function(self.name()));
        if kept.belongs_to(log) {
            Cow::Borrowed(kept)
        } else {
            Cow::Owned(log.function(self.name()))
        }
    }

    /// Its policy's per-call layers, sharing its in-flight limit.
    #[cfg(feature = "local")]
    pub(crate) fn policy_layer(&self) -> &InvocationPolicyLayer {
        &self.inner.policy_layer
    }

    /// Its policy's retries, for deliveries that retry in-process.
    #[cfg(feature = "local")]
    pub(crate) fn retry_layer(&self) -> &RetryLayer {
        &self.inner.retry_layer
    }

    #[cfg(feature = "local")]
    /// Counts a call as running until the guard drops.
    #[cfg(feature = "local")]
    pub(crate) fn record_finished(&self, failed: bool) {
        self.inner.invocations.fetch_add(1, Ordering::AcqRel);
        if failed {
            self.inner.failures.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl fmt::Debug for RegisteredFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredFunction")
            .field("name", &self.name())
            .field("serving", &self.is_serving())
            .field("in_flight", &self.in_flight())
            .field("invocations", &self.invocation_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InvocationPolicy;

    fn def(name: &str) -> FunctionDefinition {
        FunctionDefinition::from_handler(name, || async { "ok" })
    }

    #[test]
    fn duplicates_are_refused() {
        let registry = Registry::new();
        registry.register(def("a")).unwrap();
        let err = registry.register(def("a")).unwrap_err();
        assert!(matches!(err, Error::DuplicateFunction { ref name } if name == "a"));
        assert_eq!(registry.len(), 1);
        assert!(Registry::try_from_iter([def("x"), def("x")]).is_err());
        assert!(
            Registry::new()
                .try_with(def("y"))
                .unwrap()
                .try_with(def("y"))
                .is_err()
        );
    }

    #[test]
    #[should_panic(expected = "already registered")]
    fn from_iter_panics_on_duplicates() {
        let _ = Registry::from_iter([def("d"), def("d")]);
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "a b", "a/b", "é"] {
            assert!(
                matches!(
                    Registry::new().register(def(bad)),
                    Err(Error::InvalidDefinition { .. })
                ),
                "{bad:?}"
            );
        }
        Registry::new().register(def("hello_world-2.v1")).unwrap();
    }

    #[test]
    fn lookup_remove_replace() {
        let registry: Registry = vec![def("b"), def("a")].into();
        assert_eq!(registry.names(), ["a", "b"]);
        assert_eq!(
            registry
                .iter()
                .map(|f| f.name().to_owned())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(registry.contains("a"));
        let clone = registry.clone();
        assert!(clone.remove("a").is_some());
        assert!(!registry.contains("a"));
        let old = registry
            .replace(def("b").with_policy(InvocationPolicy::default().with_max_in_flight(3)))
            .unwrap();
        assert!(old.is_some());
        assert_eq!(registry.get("b").unwrap().limiter().available(), 3);
        assert!(registry.get("nope").is_none());
    }

    #[test]
    fn scaling_to_zero_stops_serving() {
        let registry = Registry::from([def("s")]);
        let f = registry.get("s").unwrap();
        assert!(f.is_serving());
        assert_eq!(f.replicas(), 1);
        f.set_replicas(0);
        assert!(!f.is_serving());
        assert_eq!(f.replicas(), 0);
        f.set_replicas(3);
        assert_eq!(registry.get("s").unwrap().replicas(), 3);
    }

    #[tokio::test]
    #[cfg(feature = "local")]
    async fn in_flight_counts_the_calls_under_the_limit() {
        use tower::ServiceExt as _;

        use crate::Function as _;

        let registry = Registry::from([def("g")]);
        let f = registry.get("g").unwrap();
        let (started, wait) = tokio::sync::oneshot::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(Some(started)));
        let slow = crate::handler_fn(move || {
            drop(gate.lock().unwrap().take());
            std::future::pending::<()>()
        });
        let call = tokio::spawn(
            f.policy_layer()
                .layer(slow.into_service())
                .oneshot(Invocation::new("")),
        );
        let _ = wait.await;
        assert_eq!(f.in_flight(), 1);
        call.abort();
        let _ = call.await;
        assert_eq!(f.in_flight(), 0);
        f.record_finished(true);
        assert_eq!(f.invocation_count(), 1);
        assert_eq!(f.failure_count(), 1);
    }
}
