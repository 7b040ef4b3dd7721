//! [`KubernetesProvider`]: faas-core's [`Provider`] on `Function` resources, so code written
//! against the in-process `LocalProvider` runs unchanged against a cluster.
//!
//! - `deploy`, `update`, `remove` write the `Function`; the operator does the rest.
//! - `status`, `list` and `watch` read the `Function`'s status as the operator reports it;
//!   `status` and `list` add the calls its running pods have answered (`invocation_count`, from
//!   the function runtime's `/metrics` on each pod, read the same way `invoke` goes: through the
//!   API server's pod proxy, or straight to the pod in the cluster; all pods at once, within two
//!   seconds, a pod that does not answer in time counting what it showed before); `watch`
//!   reports the operator's status only (its count stays 0);
//!   `wait_ready` returns once it is `Ready` for its current generation, or fails at once with
//!   the reason when the operator reports a failure (a missing Secret, an image that cannot
//!   run, a refused write).
//! - `scale` writes the `scale` subresource, as `kubectl scale function` does.
//! - `invoke` calls the function through the API server's service proxy (from anywhere a
//!   kubeconfig reaches) or, with [`InvokeRoute::InCluster`], straight to its Service.
//! - `logs` reads its pods' logs through the API server.
//!
//! Errors come as [`ProviderError`]: 404 is `NotFound`, 409 `Conflict`, 403 `Forbidden`,
//! 400/422 `Invalid`, an unreachable API server `Unavailable`.
//!
//! ```no_run
//! use faas_core::{FunctionDeployment, FunctionRef, Invocation, Provider};
//! use faas_k8s::provider::KubernetesProvider;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = KubernetesProvider::from_config(kube::Config::infer().await?)?;
//! provider
//!     .deploy(FunctionDeployment::new("hello").with_namespace("apps").with_image("faas.dev/function/hello"))
//!     .await?;
//! let hello = FunctionRef::new("apps", "hello");
//! provider.wait_ready(&hello, std::time::Duration::from_secs(60)).await?;
//! let answer = provider.invoke(&hello, Invocation::new("ada")).await?;
//! println!("{}", String::from_utf8_lossy(answer.body()));
//! # Ok(())
//! # }
//! ```

mod convert;
mod invoke;
mod logs;
mod metrics;

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::{
    FunctionDeployment, FunctionError, FunctionRef, FunctionStatus, Invocation, LogLine, LogQuery,
    Provider, ProviderError, ProviderResult, Response,
};
use futures::StreamExt as _;
use futures::stream::{self, BoxStream};
use http_body_util::Full;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};

pub use convert::{function_for, status_of};
pub use invoke::InvokeRoute;

use crate::function::Function;

/// The [`Provider`] of a Kubernetes cluster; see the [module](self) documentation.
#[derive(Clone)]
pub struct KubernetesProvider {
    client: Client,
    /// The client of requests relayed to a function's pods (calls, metrics), whose answers
    /// are the function's own and are never sent twice.
    calls: Client,
    route: InvokeRoute,
    http: HttpClient<HttpConnector, Full<Bytes>>,
    /// The last invocation count read from each pod.
    counts: metrics::PodCounts,
}

impl std::fmt::Debug for KubernetesProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesProvider")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

/// A client error as the provider error a caller matches on.
pub fn kube_error(error: kube::Error, function: &FunctionRef, doing: &str) -> ProviderError {
    match error {
        kube::Error::Api(status) => match status.code {
            404 => ProviderError::not_found(function),
            409 => ProviderError::Conflict {
                function: function.clone(),
                message: status.message,
            },
            403 | 401 => ProviderError::Forbidden {
                message: format!("{doing} {function}: {}", status.message),
            },
            400 | 422 => ProviderError::Invalid {
                message: format!("{doing} {function}: {}", status.message),
            },
            500.. => ProviderError::Unavailable {
                message: format!("{doing} {function}: {}", status.message),
                source: None,
            },
            _ => ProviderError::Failed {
                message: format!("{doing} {function}: {}", status.message),
                source: None,
            },
        },
        other => ProviderError::unavailable(format!("{doing} {function}"), other),
    }
}

impl KubernetesProvider {
    /// A provider using `client`, calling functions through the API server with it.
    ///
    /// kube's client retries answers of 429, 503 and 504 by default (up to 15 times, over
    /// minutes), and through the API server's proxy those are the function's own answers: an
    /// overloaded function or one at zero replicas would be called again and again. Build
    /// `client` with [`kube::Config::default_retry`] off, or use
    /// [`from_config`](Self::from_config), which does that for calls only.
    pub fn new(client: Client) -> Self {
        KubernetesProvider {
            calls: client.clone(),
            client,
            route: InvokeRoute::default(),
            http: invoke::http_client(),
            counts: metrics::PodCounts::default(),
        }
    }

    /// A provider for the cluster of `config`: its reads and writes of `Function`s retry as the
    /// client does by default, and its calls to functions are sent once.
    ///
    /// # Errors
    ///
    /// When no client can be built from `config`.
    ///
    /// ```no_run
    /// use faas_k8s::provider::KubernetesProvider;
    ///
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let provider = KubernetesProvider::from_config(kube::Config::infer().await?)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_config(config: kube::Config) -> Result<Self, kube::Error> {
        let client = Client::try_from(config.clone())?;
        let mut once = config;
        once.default_retry = false;
        let calls = Client::try_from(once)?;
        Ok(KubernetesProvider {
            client,
            calls,
            route: InvokeRoute::default(),
            http: invoke::http_client(),
            counts: metrics::PodCounts::default(),
        })
    }

    /// Calls functions by `route`.
    #[must_use]
    pub fn with_invoke_route(mut self, route: InvokeRoute) -> Self {
        self.route = route;
        self
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn count_reader(&self) -> metrics::CountReader<'_> {
        metrics::CountReader {
            client: &self.calls,
            http: &self.http,
            route: &self.route,
            counts: &self.counts,
        }
    }

    fn functions(&self, namespace: &str) -> Api<Function> {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn get(&self, function: &FunctionRef) -> ProviderResult<Function> {
        self.functions(&function.namespace)
            .get(&function.name)
            .await
            .map_err(|e| kube_error(e, function, "reading"))
    }

    fn namespaced(&self, deployment: FunctionDeployment) -> FunctionDeployment {
        if deployment.namespace.is_some() {
            deployment
        } else {
            let namespace = self.client.default_namespace().to_owned();
            deployment.with_namespace(namespace)
        }
    }
}

#[async_trait]
impl Provider for KubernetesProvider {
    async fn deploy(&self, deployment: FunctionDeployment) -> ProviderResult<()> {
        let deployment = self.namespaced(deployment);
        let reference = deployment.reference();
        let function = function_for(&deployment)?;
        self.functions(&reference.namespace)
            .create(&PostParams::default(), &function)
            .await
            .map_err(|e| match kube_error(e, &reference, "creating") {
                ProviderError::Conflict { function, .. } => ProviderError::Conflict {
                    function,
                    message: "a Function of this name exists; update it instead".to_owned(),
                },
                other => other,
            })?;
        Ok(())
    }

    async fn update(&self, deployment: FunctionDeployment) -> ProviderResult<()> {
        let deployment = self.namespaced(deployment);
        let reference = deployment.reference();
        let mut current = self.get(&reference).await?;
        let wanted = function_for(&deployment)?;
        // Keep the scale it has (written by `scale`, kubectl or an autoscaler).
        let replicas = current.spec.replicas;
        current.spec = wanted.spec;
        current.spec.replicas = replicas;
        current.metadata.labels = wanted.metadata.labels;
        current.metadata.annotations = wanted.metadata.annotations;
        self.functions(&reference.namespace)
            .replace(&reference.name, &PostParams::default(), &current)
            .await
            .map_err(|e| kube_error(e, &reference, "updating"))?;
        Ok(())
    }

    async fn remove(&self, function: &FunctionRef) -> ProviderResult<()> {
        self.functions(&function.namespace)
            .delete(&function.name, &DeleteParams::background())
            .await
            .map_err(|e| kube_error(e, function, "removing"))?;
        Ok(())
    }

    async fn list(&self, namespace: Option<&str>) -> ProviderResult<Vec<FunctionStatus>> {
        let api: Api<Function> = match namespace {
            Some(namespace) => self.functions(namespace),
            None => Api::all(self.client.clone()),
        };
        let scope = FunctionRef::new(namespace.unwrap_or("*"), "*");
        let params = ListParams::default();
        let reader = self.count_reader();
        let (functions, counts) = futures::join!(api.list(&params), reader.all(namespace));
        let mut list: Vec<FunctionStatus> = functions
            .map_err(|e| kube_error(e, &scope, "listing"))?
            .items
            .iter()
            .map(|function| {
                let status = status_of(function);
                let key = (
                    function.metadata.namespace.clone().unwrap_or_default(),
                    status.name.clone(),
                );
                let invocations = counts.get(&key).copied().unwrap_or(0);
                let in_flight = status.in_flight;
                status.with_invocations(invocations, in_flight)
            })
            .collect();
        list.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(list)
    }

    async fn status(&self, function: &FunctionRef) -> ProviderResult<FunctionStatus> {
        let status = status_of(&self.get(function).await?);
        let invocations = self.count_reader().function(function).await;
        let in_flight = status.in_flight;
        Ok(status.with_invocations(invocations, in_flight))
    }

    async fn scale(&self, function: &FunctionRef, replicas: u32) -> ProviderResult<()> {
        let replicas = i32::try_from(replicas).map_err(|_| ProviderError::Invalid {
            message: format!("{replicas} replicas is too many"),
        })?;
        self.functions(&function.namespace)
            .patch_scale(
                &function.name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": { "replicas": replicas } })),
            )
            .await
            .map_err(|e| kube_error(e, function, "scaling"))?;
        Ok(())
    }

    async fn invoke(
        &self,
        function: &FunctionRef,
        invocation: Invocation,
    ) -> Result<Response, FunctionError> {
        // A missing Function is NotFound, not a proxy error about a missing Service.
        self.get(function).await.map_err(FunctionError::from)?;
        match &self.route {
            InvokeRoute::ApiServerProxy => {
                let request = invoke::request_for(&invocation, &invoke::proxy_path(function))?;
                invoke::through_api_server(&self.calls, function, request).await
            }
            InvokeRoute::InCluster { cluster_domain } => {
                let url = invoke::service_url(function, cluster_domain);
                let request = invoke::request_for(&invocation, &url)?;
                invoke::in_cluster(&self.http, function, request).await
            }
        }
    }

    async fn logs(
        &self,
        function: &FunctionRef,
        options: LogQuery,
    ) -> BoxStream<'static, ProviderResult<LogLine>> {
        if let Err(error) = self.get(function).await {
            return stream::once(async move { Err(error) }).boxed();
        }
        match logs::function_logs(self.client.clone(), function, options).await {
            Ok(lines) => lines,
            Err(error) => stream::once(async move { Err(error) }).boxed(),
        }
    }

    async fn watch(
        &self,
        function: &FunctionRef,
    ) -> BoxStream<'static, ProviderResult<FunctionStatus>> {
        let api = self.functions(&function.namespace);
        let reference = function.clone();
        let mut last: Option<FunctionStatus> = None;
        let mut ended = false;
        watcher::watch_object(api, &function.name)
            .filter_map(move |event| {
                let item = if ended {
                    None
                } else {
                    match event {
                        Ok(Some(function)) => {
                            let status = status_of(&function);
                            if last.as_ref() == Some(&status) {
                                None
                            } else {
                                last = Some(status.clone());
                                Some(Ok(status))
                            }
                        }
                        Ok(None) => {
                            ended = true;
                            Some(Err(ProviderError::not_found(&reference)))
                        }
                        Err(e) => Some(Err(ProviderError::unavailable(
                            format!("watching {reference}"),
                            e,
                        ))),
                    }
                };
                futures::future::ready(item)
            })
            .scan(false, |stopped, item| {
                // End the stream after the first NotFound.
                if *stopped {
                    return futures::future::ready(None);
                }
                *stopped = matches!(item, Err(ProviderError::NotFound { .. }));
                futures::future::ready(Some(item))
            })
            .boxed()
    }
}
