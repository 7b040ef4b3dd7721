//! What the tests of the hosting adapter share: the `Function` resource installed, an operator
//! running under exactly the permissions its code generates, and a virtual node that serves
//! registered functions in a network namespace (so Services get endpoints and the API server's
//! service proxy reaches the pods).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use faas_core::Registry;
use faas_k8s::node::AddressPool;
use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig};
use faas_k8s::node::network::PodNetwork;
use faas_k8s::node::{Capacity, KubeletTls, NodeConfig, PodBackend, ShutdownHandle, VirtualNode};
use faas_k8s::operator::{
    FunctionController, OperatorConfig, OperatorStats, cluster_role, install_crd,
    leader_election_role,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::wait::{self, Poll};
use crate::{Error, Result, TestCluster, TestNamespace};

/// The network namespace of the hosting tests' function pods.
pub const HOSTING_NETNS: &str = "faashost";
/// The range routed into [`HOSTING_NETNS`].
pub const HOSTING_NETNS_CIDR: &str = "10.213.0.0/16";

static NEXT_NODE: AtomicU8 = AtomicU8::new(0);

/// One hosting test at a time per test binary: function pods may land on any virtual node, so
/// the node a test starts must be the only one.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Installs (or upgrades) the `Function` CustomResourceDefinition and waits until it is served.
///
/// # Errors
///
/// When the API server refuses it.
pub async fn install_function_crd(cluster: &TestCluster) -> Result<()> {
    install_crd(&cluster.client())
        .await
        .map_err(|e| Error::Setup(format!("installing the Function CRD: {}", chain(&e))))
}

/// An error and its sources, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A client for the ServiceAccount `account` of `ns` (a bound token from the TokenRequest API).
///
/// # Errors
///
/// When the account or its token cannot be made.
pub async fn service_account_client(
    cluster: &TestCluster,
    ns: &TestNamespace,
    account: &str,
) -> Result<kube::Client> {
    let accounts = ns.api::<ServiceAccount>();
    let sa = ServiceAccount {
        metadata: kube::api::ObjectMeta {
            name: Some(account.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    match accounts.create(&PostParams::default(), &sa).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await?
        .status
        .map(|status| status.token)
        .ok_or_else(|| Error::Setup("the TokenRequest returned no token".into()))?;
    let mut config = cluster.config().clone();
    config.auth_info = serde_json::from_value(serde_json::json!({ "token": token }))
        .map_err(|e| Error::Setup(format!("building the token's credentials: {e}")))?;
    config.default_namespace = ns.name().to_owned();
    kube::Client::try_from(config).map_err(Error::from)
}

/// Grants ServiceAccount `account` of `ns` the operator's generated ClusterRole (bound in `ns`
/// only) and its leader-election Role; returns a client with exactly those permissions.
///
/// # Errors
///
/// When a role, binding or token cannot be made.
pub async fn operator_client(
    cluster: &TestCluster,
    ns: &TestNamespace,
    account: &str,
) -> Result<kube::Client> {
    let apply = PatchParams::apply("faas-e2e").force();
    let roles: Api<ClusterRole> = Api::all(cluster.client());
    let role = cluster_role();
    let role_name = role.metadata.name.clone().unwrap_or_default();
    roles
        .patch(&role_name, &apply, &Patch::Apply(&role))
        .await?;
    let lease_role: Role = leader_election_role(ns.name());
    ns.api::<Role>()
        .patch(&role_name, &apply, &Patch::Apply(&lease_role))
        .await?;
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: account.to_owned(),
        namespace: Some(ns.name().to_owned()),
        api_group: None,
    };
    for (name, kind) in [
        (format!("{account}-functions"), "ClusterRole"),
        (format!("{account}-leases"), "Role"),
    ] {
        let binding = RoleBinding {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.name().to_owned()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: kind.into(),
                name: role_name.clone(),
            },
            subjects: Some(vec![subject.clone()]),
        };
        ns.api::<RoleBinding>()
            .patch(&name, &apply, &Patch::Apply(&binding))
            .await?;
    }
    service_account_client(cluster, ns, account).await
}

/// An operator running in this process for one namespace.
pub struct TestOperator {
    stats: Arc<OperatorStats>,
    shutdown: faas_core::HostShutdown,
    task: tokio::task::JoinHandle<faas_k8s::Result<()>>,
}

impl TestOperator {
    /// Starts `controller`. With `FAAS_E2E_LOG` set (an `EnvFilter` such as
    /// `faas_k8s=debug`), the test's log goes to stderr.
    pub fn start(controller: FunctionController) -> Self {
        if let Ok(filter) = std::env::var("FAAS_E2E_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
        let stats = controller.stats();
        let shutdown = controller.shutdown_handle();
        let task = tokio::spawn(controller.run());
        TestOperator {
            stats,
            shutdown,
            task,
        }
    }

    /// Starts an operator for `ns` with `client` and a quick progress report.
    pub fn for_namespace(client: kube::Client, ns: &TestNamespace) -> Self {
        Self::start(FunctionController::new(client, test_config(ns)))
    }

    /// What it has done so far.
    pub fn stats(&self) -> &OperatorStats {
        &self.stats
    }

    /// Whether its task ended (it should not until stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops it and waits until it returns.
    ///
    /// # Panics
    ///
    /// When the operator failed or panicked.
    pub async fn stop(self) {
        self.shutdown.shutdown();
        let result = self.task.await.expect("the operator does not panic");
        assert!(result.is_ok(), "the operator ended with {result:?}");
    }

    /// Stops it abruptly, as a crash would (no Lease released).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Waits until no pod of Function `name` is left in `ns`.
///
/// # Errors
///
/// When pods are left after the wait's timeout.
pub async fn wait_function_pods_gone(ns: &TestNamespace, name: &str) -> Result<()> {
    let pods = ns.api::<k8s_openapi::api::core::v1::Pod>();
    let selector = format!("{}={name}", faas_k8s::function::FUNCTION_LABEL);
    wait::until(format!("the pods of Function {name} to be gone"), || {
        let pods = pods.clone();
        let selector = selector.clone();
        async move {
            let left = pods
                .list(&kube::api::ListParams::default().labels(&selector))
                .await?
                .items
                .len();
            Ok(if left == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{left} pods"))
            })
        }
    })
    .await
}

/// The operator configuration of the tests: one namespace, quick retries.
pub fn test_config(ns: &TestNamespace) -> OperatorConfig {
    OperatorConfig::default()
        .with_namespace(ns.name())
        .with_retry(Duration::from_millis(200), Duration::from_secs(5))
        .with_secret_retry(Duration::from_secs(1))
}

/// A virtual node whose pods are served by a [`FunctionBackend`] in [`HOSTING_NETNS`].
pub struct FunctionNode {
    name: String,
    backend: Arc<dyn PodBackend>,
    client: kube::Client,
    shutdown: ShutdownHandle,
    task: tokio::task::JoinHandle<faas_k8s::Result<()>>,
    stopped: bool,
    config: kube::Config,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

impl FunctionNode {
    /// Starts a node serving `registry` and waits until it is Ready.
    ///
    /// # Errors
    ///
    /// When the node does not become Ready.
    pub async fn start(cluster: &TestCluster, registry: Registry) -> Result<Self> {
        let n = NEXT_NODE.fetch_add(1, Ordering::SeqCst);
        let name = format!(
            "vn-host-{}-{n}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let cidr = format!("10.213.{}.0/24", 1 + u32::from(n));
        let backend: Arc<dyn PodBackend> = Arc::new(FunctionBackend::new(
            FunctionBackendConfig::new(registry)
                .with_addresses(AddressPool::new(
                    cidr.parse().map_err(|e| Error::Setup(format!("{e:?}")))?,
                ))
                .with_network(PodNetwork::namespace(HOSTING_NETNS, HOSTING_NETNS_CIDR))
                .with_capacity(Capacity::new("16", "16Gi", 500)),
        ));
        let pki = &cluster.paths().pki;
        let config = NodeConfig::builder(&name)
            .kubelet_port(free_port())
            .kubelet_tls(KubeletTls {
                cert: pki.kubelet_cert.clone(),
                key: pki.kubelet_key.clone(),
                client_ca: pki.ca_cert.clone(),
            })
            .restart_backoff(Duration::from_millis(200), Duration::from_secs(2))
            .config_retry_interval(Duration::from_millis(500))
            .build()
            .map_err(|e| Error::Setup(format!("node configuration: {e}")))?;
        let node = VirtualNode::with_shared_backend(cluster.client(), config, backend.clone());
        let shutdown = node.shutdown_handle();
        let task = tokio::spawn(node.run());
        let nodes: Api<Node> = Api::all(cluster.client());
        wait::until(format!("node {name} to be Ready"), || {
            let nodes = nodes.clone();
            let name = name.clone();
            async move {
                let ready = nodes.get_opt(&name).await?.is_some_and(|node| {
                    node.status
                        .and_then(|s| s.conditions)
                        .into_iter()
                        .flatten()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
                Ok(if ready {
                    Poll::Ready(())
                } else {
                    Poll::Pending("not Ready yet".to_owned())
                })
            }
        })
        .await?;
        Ok(FunctionNode {
            name,
            backend,
            client: cluster.client(),
            shutdown,
            task,
            stopped: false,
            config: cluster.config().clone(),
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until the backend runs exactly `count` pods (0: nothing is left on the node).
    ///
    /// # Errors
    ///
    /// When it does not happen within the wait's timeout.
    pub async fn wait_backend_pods(&self, count: usize) -> Result<()> {
        wait::until(
            format!("{count} pods running on node {}", self.name),
            || {
                let backend = self.backend.clone();
                async move {
                    Ok(match backend.list().await {
                        Ok(list) if list.len() == count => Poll::Ready(()),
                        Ok(list) => Poll::Pending(format!("{} pods", list.len())),
                        Err(e) => Poll::Pending(format!("listing failed: {e}")),
                    })
                }
            },
        )
        .await
    }

    /// Stops the node and deletes its Node object.
    ///
    /// # Panics
    ///
    /// When the node failed or panicked.
    pub async fn stop(mut self) {
        self.stopped = true;
        self.shutdown.shutdown();
        let result = (&mut self.task).await.expect("the node does not panic");
        assert!(result.is_ok(), "the node ended with {result:?}");
        let nodes: Api<Node> = Api::all(self.client.clone());
        let _ = nodes.delete(&self.name, &DeleteParams::default()).await;
    }
}

impl Drop for FunctionNode {
    /// A test that failed half-way still deletes its Node, so its pods are collected.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.shutdown.shutdown();
        let name = self.name.clone();
        let config = self.config.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let client = kube::Client::try_from(config).map_err(std::io::Error::other)?;
                Api::<Node>::all(client)
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map(|_| ())
                    .map_err(std::io::Error::other)
            })
        })
        .join();
    }
}
