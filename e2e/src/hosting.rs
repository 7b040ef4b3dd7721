//! What the tests of the hosting adapter share: the `Function` resource installed, an operator
//! running under exactly the permissions its code generates, and a virtual node that serves
//! registered functions in a network namespace (so Services get endpoints and the API server's
//! service proxy reaches the pods).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use faas_core::Registry;
use faas_k8s::error::ErrorChain;
use faas_k8s::node::AddressPool;
use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig};
use faas_k8s::node::network::PodNetwork;
use faas_k8s::node::{Capacity, PodBackend};
use faas_k8s::operator::{
    FunctionController, OperatorConfig, OperatorStats, cluster_role, install_crd,
    leader_election_role,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::vnode::{TestNode, unique_name};
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
        .map_err(|e| Error::Setup(format!("installing the Function CRD: {}", ErrorChain(&e))))
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

/// A virtual node whose pods are served by a [`FunctionBackend`] in [`HOSTING_NETNS`]: a
/// [`TestNode`] (which it dereferences to) on the functions of a registry.
pub struct FunctionNode(TestNode);

impl FunctionNode {
    /// Starts a node serving `registry` and waits until it is Ready.
    ///
    /// # Errors
    ///
    /// When the node does not become Ready.
    pub async fn start(cluster: &TestCluster, registry: Registry) -> Result<Self> {
        let n = NEXT_NODE.fetch_add(1, Ordering::SeqCst);
        let cidr = format!("10.213.{}.0/24", 1 + u32::from(n));
        let backend: Arc<dyn PodBackend> = Arc::new(FunctionBackend::new(
            FunctionBackendConfig::new(registry)
                .with_addresses(AddressPool::new(
                    cidr.parse().map_err(|e| Error::Setup(format!("{e:?}")))?,
                ))
                .with_network(PodNetwork::namespace(HOSTING_NETNS, HOSTING_NETNS_CIDR))
                .with_capacity(Capacity::new("16", "16Gi", 500)),
        ));
        let name = unique_name(&format!("vn-host-{n}"));
        TestNode::start(cluster, name, backend).await.map(Self)
    }

    /// Stops the node and deletes its Node object.
    ///
    /// # Panics
    ///
    /// When the node failed or panicked.
    pub async fn stop(self) {
        let result = self.0.stop().await;
        assert!(result.is_ok(), "{result:?}");
    }
}

impl std::ops::Deref for FunctionNode {
    type Target = TestNode;

    fn deref(&self) -> &TestNode {
        &self.0
    }
}
