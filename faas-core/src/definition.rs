//! [`FunctionDefinition`]: a function with its name and metadata (triggers,
//! policy, scaling hints), the unit a registry holds and a provider deploys.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use tower::{Layer, Service};

use crate::error::FunctionError;
use crate::function::{Function, FunctionService, ServiceFunction, SharedFunction};
use crate::handler::{Handler, handler_fn};
use crate::invocation::Invocation;
use crate::output::Response;
use crate::policy::InvocationPolicy;

/// What starts a function. Hosts read it to wire the function to its sources.
///
/// Serialized with a `kind` tag: `{"kind":"http","path":"/hello","methods":["POST"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TriggerSpec {
    /// An HTTP route.
    Http {
        /// The route template, e.g. `/hello` or `/orders/{id}` (`{name}` is
        /// one path segment, `{*rest}` the rest of the path), read by
        /// [`Path`](crate::Path).
        path: String,
        /// The accepted methods; empty means any.
        #[serde(default)]
        methods: Vec<String>,
    },
    /// A schedule.
    Cron {
        /// The cron expression, e.g. `0 */5 * * * *`.
        schedule: String,
        /// An IANA time zone, UTC when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timezone: Option<String>,
    },
    /// A message queue subscription.
    Queue {
        /// The broker or source, e.g. `nats` or `redis`.
        source: String,
        /// The subject, stream or channel.
        subject: String,
    },
    /// A NATS JetStream stream, read by a durable pull consumer (the server
    /// comes from the host's configuration).
    Nats {
        /// The stream.
        stream: String,
        /// The subjects read (wildcards allowed); the whole stream when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// The durable consumer's name; the function's name when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consumer: Option<String>,
    },
    /// A Redis stream, read as a member of a consumer group.
    #[serde(rename = "redis")]
    RedisStream {
        /// The stream's key.
        stream: String,
        /// The consumer group; the function's name when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    /// The row changes of a PostgreSQL table, through an outbox.
    Postgres {
        /// The table (`table` or `schema.table`).
        table: String,
    },
    /// Complete files appearing in a directory.
    Storage {
        /// The directory watched.
        dir: String,
    },
    /// Changes of Kubernetes objects of one kind (added, modified, deleted),
    /// watched on the cluster the host runs in.
    Kube {
        /// The API version: `v1` for the core group, else `group/version`.
        api_version: String,
        /// The kind of object, as in its `kind:` (`Deployment`, a custom
        /// resource's kind); named so beside the variant's `kind` tag.
        object_kind: String,
        /// The namespace watched; all namespaces when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        /// A label selector, e.g. `app=web,tier!=cache`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_selector: Option<String>,
        /// A field selector, e.g. `metadata.name=web`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field_selector: Option<String>,
    },
    /// A trigger this crate does not model, named and configured by key-value pairs.
    Custom {
        /// The trigger's name.
        name: String,
        /// Its settings.
        #[serde(default)]
        config: BTreeMap<String, String>,
    },
}

impl TriggerSpec {
    /// An HTTP route for `path`, any method.
    pub fn http(path: impl Into<String>) -> Self {
        TriggerSpec::Http {
            path: path.into(),
            methods: Vec::new(),
        }
    }

    /// A schedule in UTC.
    pub fn cron(schedule: impl Into<String>) -> Self {
        TriggerSpec::Cron {
            schedule: schedule.into(),
            timezone: None,
        }
    }

    /// A queue subscription.
    pub fn queue(source: impl Into<String>, subject: impl Into<String>) -> Self {
        TriggerSpec::Queue {
            source: source.into(),
            subject: subject.into(),
        }
    }

    /// A NATS JetStream stream, all its subjects, consumer named after the function.
    pub fn nats(stream: impl Into<String>) -> Self {
        TriggerSpec::Nats {
            stream: stream.into(),
            subject: None,
            consumer: None,
        }
    }

    /// A Redis stream, group named after the function.
    pub fn redis_stream(stream: impl Into<String>) -> Self {
        TriggerSpec::RedisStream {
            stream: stream.into(),
            group: None,
        }
    }

    /// The row changes of a PostgreSQL table.
    pub fn postgres(table: impl Into<String>) -> Self {
        TriggerSpec::Postgres {
            table: table.into(),
        }
    }

    /// The complete files appearing in a directory.
    pub fn storage(dir: impl Into<String>) -> Self {
        TriggerSpec::Storage { dir: dir.into() }
    }

    /// Changes of the objects of `kind` in `api_version` (`v1`,
    /// `apps/v1`, ...), in every namespace, with no selector.
    pub fn kube(api_version: impl Into<String>, kind: impl Into<String>) -> Self {
        TriggerSpec::Kube {
            api_version: api_version.into(),
            object_kind: kind.into(),
            namespace: None,
            label_selector: None,
            field_selector: None,
        }
    }

    /// The trigger's kind as written in the `kind` tag (`http`, `cron`, ...).
    pub fn kind(&self) -> &str {
        match self {
            TriggerSpec::Http { .. } => "http",
            TriggerSpec::Cron { .. } => "cron",
            TriggerSpec::Queue { .. } => "queue",
            TriggerSpec::Nats { .. } => "nats",
            TriggerSpec::RedisStream { .. } => "redis",
            TriggerSpec::Postgres { .. } => "postgres",
            TriggerSpec::Storage { .. } => "storage",
            TriggerSpec::Kube { .. } => "kube",
            TriggerSpec::Custom { .. } => "custom",
        }
    }
}

/// How a hosting platform should scale a function.
///
/// Built with its `with_*` methods from [`ScalingHints::new`] (or
/// `default()`); `#[non_exhaustive]`, so a hint added later breaks no caller.
///
/// ```
/// use faas_core::ScalingHints;
///
/// let hints = ScalingHints::new().with_min_replicas(1).with_max_replicas(10);
/// assert_eq!((hints.min_replicas, hints.max_replicas), (1, Some(10)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScalingHints {
    /// Replicas kept even without traffic (0 = scale to zero).
    #[serde(default)]
    pub min_replicas: u32,
    /// The most replicas; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u32>,
    /// In-flight calls per replica the autoscaler aims for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_concurrency: Option<u32>,
}

impl ScalingHints {
    /// No hints: scale to zero allowed, no maximum, the platform's target.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the replicas kept without traffic.
    #[must_use]
    pub fn with_min_replicas(mut self, min_replicas: u32) -> Self {
        self.min_replicas = min_replicas;
        self
    }

    /// Sets the most replicas.
    #[must_use]
    pub fn with_max_replicas(mut self, max_replicas: u32) -> Self {
        self.max_replicas = Some(max_replicas);
        self
    }

    /// Sets the in-flight calls per replica to aim for.
    #[must_use]
    pub fn with_target_concurrency(mut self, target_concurrency: u32) -> Self {
        self.target_concurrency = Some(target_concurrency);
        self
    }
}

/// A function's metadata: everything about it except its code.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FunctionMeta {
    /// The function's unique name.
    pub name: String,
    /// What it does, for humans.
    pub description: Option<String>,
    /// What starts it.
    pub triggers: Vec<TriggerSpec>,
    /// How it is called.
    pub policy: InvocationPolicy,
    /// How it should scale.
    pub scaling: ScalingHints,
}

impl FunctionMeta {
    /// Metadata with only a name, the rest default.
    pub fn new(name: impl Into<String>) -> Self {
        FunctionMeta {
            name: name.into(),
            description: None,
            triggers: Vec::new(),
            policy: InvocationPolicy::default(),
            scaling: ScalingHints::default(),
        }
    }
}

/// A function with its name and metadata.
///
/// ```
/// use std::time::Duration;
/// use faas_core::{FunctionDefinition, InvocationPolicy, Json, TriggerSpec};
///
/// async fn double(Json(n): Json<i64>) -> Json<i64> { Json(n * 2) }
///
/// let def = FunctionDefinition::from_handler("double", double)
///     .with_description("doubles a number")
///     .with_trigger(TriggerSpec::http("/double"))
///     .with_policy(InvocationPolicy::default().with_timeout(Duration::from_secs(2)));
/// assert_eq!(def.name(), "double");
/// assert_eq!(def.meta().triggers.len(), 1);
/// assert_eq!(def.policy().timeout(), Some(Duration::from_secs(2)));
/// ```
#[derive(Clone)]
pub struct FunctionDefinition {
    meta: FunctionMeta,
    function: SharedFunction,
}

impl FunctionDefinition {
    /// A definition of `function` named `name`.
    pub fn new(name: impl Into<String>, function: impl Function) -> Self {
        FunctionDefinition {
            meta: FunctionMeta::new(name),
            function: Arc::new(function),
        }
    }

    /// A definition of a shared function (no extra indirection).
    pub fn from_arc(name: impl Into<String>, function: SharedFunction) -> Self {
        FunctionDefinition {
            meta: FunctionMeta::new(name),
            function,
        }
    }

    /// A definition of an async fn.
    pub fn from_handler<H, Args>(name: impl Into<String>, handler: H) -> Self
    where
        H: Handler<Args>,
        Args: 'static,
    {
        FunctionDefinition::new(name, handler_fn(handler))
    }

    /// A definition of any [`tower::Service`] of invocations: a hand-written
    /// service, or a stack of layers around one.
    ///
    /// ```
    /// use faas_core::{FunctionDefinition, FunctionError, Invocation, Registry, Response};
    ///
    /// let upper = tower::service_fn(|invocation: Invocation| async move {
    ///     let text = String::from_utf8_lossy(invocation.body()).to_uppercase();
    ///     Ok::<_, FunctionError>(Response::new(text.into()))
    /// });
    /// let registry = Registry::from([FunctionDefinition::from_service("upper", upper)]);
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let f = registry.get("upper").unwrap();
    /// assert_eq!(f.function().call(Invocation::new("hi")).await.unwrap().body(), "HI");
    /// # });
    /// ```
    pub fn from_service<S>(name: impl Into<String>, service: S) -> Self
    where
        S: Service<Invocation, Response = Response, Error = FunctionError>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        FunctionDefinition::new(name, ServiceFunction::new(service))
    }

    /// Wraps the function in a tower layer; the metadata stays. Layers added
    /// later wrap those added before (the last is the outermost).
    ///
    /// ```
    /// use std::time::Duration;
    /// use faas_core::layer::TimeoutLayer;
    /// use faas_core::{ErrorKind, FunctionDefinition, Invocation};
    ///
    /// async fn slow() { tokio::time::sleep(Duration::from_secs(60)).await }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let definition = FunctionDefinition::from_handler("slow", slow)
    ///     .layer(TimeoutLayer::new(Some(Duration::from_secs(1))));
    /// let error = definition.function().call(Invocation::new("")).await.unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Timeout);
    /// # });
    /// ```
    #[must_use]
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<FunctionService>,
        L::Service: Service<Invocation, Response = Response, Error = FunctionError>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Invocation>>::Future: Send + 'static,
    {
        self.function = Arc::new(ServiceFunction::new(
            layer.layer(FunctionService::new(self.function)),
        ));
        self
    }

    /// A definition with the given metadata.
    pub fn from_parts(meta: FunctionMeta, function: SharedFunction) -> Self {
        FunctionDefinition { meta, function }
    }

    /// Adds a trigger.
    #[must_use]
    pub fn with_trigger(mut self, trigger: TriggerSpec) -> Self {
        self.meta.triggers.push(trigger);
        self
    }

    /// Replaces the policy.
    #[must_use]
    pub fn with_policy(mut self, policy: InvocationPolicy) -> Self {
        self.meta.policy = policy;
        self
    }

    /// Replaces the scaling hints.
    #[must_use]
    pub fn with_scaling(mut self, scaling: ScalingHints) -> Self {
        self.meta.scaling = scaling;
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.meta.description = Some(description.into());
        self
    }

    /// The same function under another name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.meta.name = name.into();
        self
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The function's metadata.
    pub fn meta(&self) -> &FunctionMeta {
        &self.meta
    }

    /// The function's metadata, to change.
    pub fn meta_mut(&mut self) -> &mut FunctionMeta {
        &mut self.meta
    }

    /// The function itself.
    pub fn function(&self) -> &SharedFunction {
        &self.function
    }

    /// How the function is called.
    pub fn policy(&self) -> &InvocationPolicy {
        &self.meta.policy
    }

    /// The metadata and the function.
    pub fn into_parts(self) -> (FunctionMeta, SharedFunction) {
        (self.meta, self.function)
    }
}

impl fmt::Debug for FunctionDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionDefinition")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_specs_serialize_with_a_kind_tag() {
        let http = TriggerSpec::Http {
            path: "/hello".into(),
            methods: vec!["POST".into()],
        };
        let json = serde_json::to_value(&http).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "http", "path": "/hello", "methods": ["POST"]})
        );
        assert_eq!(serde_json::from_value::<TriggerSpec>(json).unwrap(), http);
        let cron: TriggerSpec =
            serde_json::from_str(r#"{"kind":"cron","schedule":"@hourly"}"#).unwrap();
        assert_eq!(cron, TriggerSpec::cron("@hourly"));
        assert_eq!(cron.kind(), "cron");
        assert_eq!(TriggerSpec::queue("nats", "orders").kind(), "queue");
    }

    #[test]
    fn event_source_specs_serialize_with_their_kind() {
        let nats: TriggerSpec =
            serde_json::from_str(r#"{"kind":"nats","stream":"ORDERS","subject":"orders.>"}"#)
                .unwrap();
        assert_eq!(
            nats,
            TriggerSpec::Nats {
                stream: "ORDERS".into(),
                subject: Some("orders.>".into()),
                consumer: None
            }
        );
        for (spec, kind) in [
            (TriggerSpec::nats("S"), "nats"),
            (TriggerSpec::redis_stream("s"), "redis"),
            (TriggerSpec::postgres("orders"), "postgres"),
            (TriggerSpec::storage("/srv/uploads"), "storage"),
            (TriggerSpec::kube("apps/v1", "Deployment"), "kube"),
        ] {
            assert_eq!(spec.kind(), kind);
            let json = serde_json::to_value(&spec).unwrap();
            assert_eq!(json["kind"], kind);
            assert_eq!(serde_json::from_value::<TriggerSpec>(json).unwrap(), spec);
        }
    }

    #[test]
    fn scaling_hints_builders() {
        let hints = ScalingHints::default()
            .with_min_replicas(1)
            .with_max_replicas(5)
            .with_target_concurrency(10);
        assert_eq!(hints.min_replicas, 1);
        assert_eq!(hints.max_replicas, Some(5));
        let json = serde_json::to_string(&ScalingHints::default()).unwrap();
        assert_eq!(json, r#"{"min_replicas":0}"#);
    }

    #[test]
    fn definition_builders() {
        let def = FunctionDefinition::from_handler("a", || async {})
            .with_name("b")
            .with_scaling(ScalingHints::default().with_min_replicas(2));
        assert_eq!(def.name(), "b");
        assert_eq!(def.meta().scaling.min_replicas, 2);
        assert!(format!("{def:?}").contains("\"b\""));
    }
}
