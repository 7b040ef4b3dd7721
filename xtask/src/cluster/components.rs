//! The command lines of the four control plane components.
//!
//! Everything binds to 127.0.0.1 on the configured ports. etcd speaks plain
//! HTTP on loopback; every Kubernetes component serves TLS with a
//! certificate from the cluster CA.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use super::Options;
use super::build::Binaries;
use super::identity::Identities;
use super::layout::Layout;
use super::pki::FRONT_PROXY_CLIENT;

/// The controllers kube-controller-manager runs: the workload controllers,
/// service accounts and their tokens, namespaces, garbage collection, node
/// lifecycle (NotReady on a missed Lease) with taint-based eviction,
/// endpoints, certificates. Storage and cloud controllers are off: there is
/// no storage and no cloud.
pub(crate) const CONTROLLERS: &[&str] = &[
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "job-controller",
    "cronjob-controller",
    "disruption-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "resourcequota-controller",
    "node-lifecycle-controller",
    "taint-eviction-controller",
    "pod-garbage-collector-controller",
    "ttl-after-finished-controller",
    "clusterrole-aggregation-controller",
    "certificatesigningrequest-signing-controller",
    "certificatesigningrequest-approving-controller",
    "certificatesigningrequest-cleaner-controller",
];

/// The service range; its first address is the `kubernetes` Service's.
pub(crate) const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";

fn flag(name: &str, value: impl AsRef<std::ffi::OsStr>) -> OsString {
    let mut arg = OsString::from(format!("--{name}="));
    arg.push(value.as_ref());
    arg
}

fn path(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}

/// `etcd`: one member, plain HTTP on loopback, no fsync (test data only).
pub(crate) fn etcd(bin: &Binaries, layout: &Layout, options: &Options) -> Command {
    let client = format!("http://127.0.0.1:{}", options.etcd_port);
    let peer = format!("http://127.0.0.1:{}", options.etcd_peer_port);
    let mut cmd = Command::new(bin.path("etcd"));
    cmd.args([
        flag("name", "faas"),
        flag("data-dir", path(&layout.etcd_data())),
        flag("listen-client-urls", &client),
        flag("advertise-client-urls", &client),
        flag("listen-peer-urls", &peer),
        flag("initial-advertise-peer-urls", &peer),
        flag("initial-cluster", format!("faas={peer}")),
        flag("initial-cluster-state", "new"),
        flag("unsafe-no-fsync", "true"),
        flag("log-level", "warn"),
    ]);
    cmd
}

/// `kube-apiserver`: TLS, token and client-certificate authentication, RBAC,
/// service-account tokens, a client certificate for kubelets (the virtual
/// node's kubelet API on its InternalIP), and the front proxy of the
/// aggregation layer.
pub(crate) fn apiserver(bin: &Binaries, layout: &Layout, options: &Options) -> Command {
    let pki = layout.pki();
    let mut cmd = Command::new(bin.path("kube-apiserver"));
    cmd.args([
        flag(
            "etcd-servers",
            format!("http://127.0.0.1:{}", options.etcd_port),
        ),
        flag("bind-address", "127.0.0.1"),
        flag("advertise-address", "127.0.0.1"),
        flag("secure-port", options.apiserver_port.to_string()),
        flag("tls-cert-file", path(&pki.apiserver.cert)),
        flag("tls-private-key-file", path(&pki.apiserver.key)),
        flag("client-ca-file", path(&pki.ca.cert)),
        flag("token-auth-file", path(&layout.token_file())),
        flag("authorization-mode", "RBAC"),
        flag(
            "service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
        ),
        flag("service-account-key-file", path(&pki.service_account_pub)),
        flag(
            "service-account-signing-key-file",
            path(&pki.service_account_key),
        ),
        flag("service-cluster-ip-range", SERVICE_CLUSTER_IP_RANGE),
        flag("endpoint-reconciler-type", "none"),
        flag(
            "kubelet-client-certificate",
            path(&pki.apiserver_kubelet_client.cert),
        ),
        flag(
            "kubelet-client-key",
            path(&pki.apiserver_kubelet_client.key),
        ),
        flag("kubelet-certificate-authority", path(&pki.ca.cert)),
        flag("kubelet-preferred-address-types", "InternalIP"),
        flag(
            "requestheader-client-ca-file",
            path(&pki.front_proxy_ca.cert),
        ),
        flag("requestheader-allowed-names", FRONT_PROXY_CLIENT),
        flag("requestheader-username-headers", "X-Remote-User"),
        flag("requestheader-group-headers", "X-Remote-Group"),
        flag("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        flag("proxy-client-cert-file", path(&pki.front_proxy_client.cert)),
        flag("proxy-client-key-file", path(&pki.front_proxy_client.key)),
        // No kube-proxy: aggregated APIs are reached at their endpoints.
        flag("enable-aggregator-routing", "true"),
        flag("allow-privileged", "true"),
        flag(
            "default-not-ready-toleration-seconds",
            options.not_ready_toleration_seconds.to_string(),
        ),
        flag(
            "default-unreachable-toleration-seconds",
            options.not_ready_toleration_seconds.to_string(),
        ),
        flag("profiling", "false"),
    ]);
    cmd
}

/// The controller-manager's client limits, per controller (each has its own
/// client with `--use-service-account-credentials`): those of a production
/// control plane rather than the default 20 QPS (burst 30). Waking 100
/// functions at once costs the deployment and ReplicaSet controllers about
/// three writes per function each (scale, pod, statuses); at 100 QPS (burst
/// 200) the last pods were created seconds after the first.
const CONTROLLER_MANAGER_API_QPS: u32 = 500;
/// The controller-manager's client burst (see [`CONTROLLER_MANAGER_API_QPS`]).
const CONTROLLER_MANAGER_API_BURST: u32 = 1000;
/// Workers of the controllers on the path from a scale write to a ready
/// endpoint (deployments, ReplicaSets, EndpointSlices, Endpoints), instead of
/// the default 5: each sync waits on an API round trip, so with 5 workers
/// many functions woken together queue behind one another. Production
/// control planes sized for many services raise these the same way.
const CONTROLLER_SYNCS: u32 = 25;

/// `kube-controller-manager` with [`CONTROLLERS`], one service account per
/// controller, the cluster CA for signing, and production client limits and
/// worker counts.
pub(crate) fn controller_manager(
    bin: &Binaries,
    layout: &Layout,
    options: &Options,
    identities: &Identities,
) -> Command {
    let pki = layout.pki();
    let kubeconfig = path(&identities.controller_manager.kubeconfig);
    let mut cmd = Command::new(bin.path("kube-controller-manager"));
    cmd.args([
        flag("kubeconfig", kubeconfig),
        flag("authentication-kubeconfig", kubeconfig),
        flag("authorization-kubeconfig", kubeconfig),
        flag("bind-address", "127.0.0.1"),
        flag("secure-port", options.controller_manager_port.to_string()),
        flag("tls-cert-file", path(&pki.controller_manager.cert)),
        flag("tls-private-key-file", path(&pki.controller_manager.key)),
        flag("leader-elect", "false"),
        flag("use-service-account-credentials", "true"),
        flag(
            "service-account-private-key-file",
            path(&pki.service_account_key),
        ),
        flag("root-ca-file", path(&pki.ca.cert)),
        flag("cluster-signing-cert-file", path(&pki.ca.cert)),
        flag("cluster-signing-key-file", path(&pki.ca.key)),
        flag("cluster-name", "faas"),
        flag("controllers", CONTROLLERS.join(",")),
        flag("node-monitor-period", "2s"),
        flag(
            "node-monitor-grace-period",
            &options.node_monitor_grace_period,
        ),
        flag("kube-api-qps", CONTROLLER_MANAGER_API_QPS.to_string()),
        flag("kube-api-burst", CONTROLLER_MANAGER_API_BURST.to_string()),
        flag("concurrent-deployment-syncs", CONTROLLER_SYNCS.to_string()),
        flag("concurrent-replicaset-syncs", CONTROLLER_SYNCS.to_string()),
        flag(
            "concurrent-service-endpoint-syncs",
            CONTROLLER_SYNCS.to_string(),
        ),
        flag("concurrent-endpoint-syncs", CONTROLLER_SYNCS.to_string()),
    ]);
    cmd
}

/// The scheduler's client limits: those of a production control plane sized
/// for thousands of pods, not the default 50 QPS (burst 100), so that pods
/// through the scheduler measure the node rather than the scheduler's client.
const SCHEDULER_API_QPS: u32 = 500;
/// The scheduler's client burst (see [`SCHEDULER_API_QPS`]).
const SCHEDULER_API_BURST: u32 = 1000;

/// `kube-scheduler` with the default profile and production client limits.
pub(crate) fn scheduler(
    bin: &Binaries,
    layout: &Layout,
    options: &Options,
    identities: &Identities,
) -> Command {
    let pki = layout.pki();
    let kubeconfig = path(&identities.scheduler.kubeconfig);
    let mut cmd = Command::new(bin.path("kube-scheduler"));
    cmd.args([
        flag("kubeconfig", kubeconfig),
        flag("authentication-kubeconfig", kubeconfig),
        flag("authorization-kubeconfig", kubeconfig),
        flag("bind-address", "127.0.0.1"),
        flag("secure-port", options.scheduler_port.to_string()),
        flag("tls-cert-file", path(&pki.scheduler.cert)),
        flag("tls-private-key-file", path(&pki.scheduler.key)),
        flag("leader-elect", "false"),
        // Still honoured without `--config` (deprecated only in favour of
        // the config file's clientConnection).
        flag("kube-api-qps", SCHEDULER_API_QPS.to_string()),
        flag("kube-api-burst", SCHEDULER_API_BURST.to_string()),
    ]);
    cmd
}
