//! `cargo xtask cluster build|up|down|status|env`: the real Kubernetes
//! control plane of the end-to-end tier, built from source and run on
//! loopback.

mod build;
mod build_lock;
mod cleanup;
mod components;
mod control_plane;
mod go;
mod gomod;
mod identity;
mod layout;
mod pki;
mod probe;
mod report;
mod restart;
mod virtual_kubelet;

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use serde::{Deserialize, Serialize};

pub(crate) use control_plane::ControlPlane;
pub(crate) use virtual_kubelet::DEFAULT_VIRTUAL_KUBELET_VERSION;

use crate::workspace::Workspace;

/// The Kubernetes release the project tests against.
pub(crate) const DEFAULT_KUBERNETES_VERSION: &str = "v1.37.2";

/// `cargo xtask cluster`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: ClusterCommand,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Build (or find in the cache) etcd, kube-apiserver,
    /// kube-controller-manager and kube-scheduler; start nothing.
    Build {
        /// Rebuild even when the cache has the binaries.
        #[arg(long)]
        force: bool,
    },
    /// Build (or find in the cache) virtual-kubelet with its mock provider,
    /// the peer node of benchmark B6; prints the binary's path.
    BuildVirtualKubelet {
        /// The release to build from the Go module proxy.
        #[arg(long, env = "FAAS_VIRTUAL_KUBELET_VERSION", default_value = DEFAULT_VIRTUAL_KUBELET_VERSION)]
        version: String,
        /// Rebuild even when the cache has the binary.
        #[arg(long)]
        force: bool,
    },
    /// Start the control plane (building it first if needed) and wait until
    /// it is usable; writes target/cluster/kubeconfig.
    Up,
    /// Stop kube-apiserver and etcd and start them again with the same data,
    /// ports and credentials (the other components and clients reconnect).
    Restart {
        /// How many seconds they stay down.
        #[arg(long, default_value_t = 0)]
        down_for_secs: u64,
    },
    /// Stop the processes `up` started and remove the cluster's state.
    Down,
    /// Show each component's process and health.
    Status,
    /// Print `export` lines for the running cluster (`eval "$(cargo xtask cluster env)"`).
    Env,
}

/// How the control plane is built and run. Every option has an environment
/// variable, so `cargo xtask test` and CI can set them too.
#[derive(Clone, Debug, clap::Args, Serialize, Deserialize)]
pub(crate) struct Options {
    /// Where the cluster keeps its state, logs and kubeconfigs.
    #[arg(
        long,
        global = true,
        env = "FAAS_CLUSTER_DIR",
        default_value = "target/cluster"
    )]
    pub(crate) cluster_dir: PathBuf,
    /// Kubernetes release to build and run.
    #[arg(long, global = true, env = "FAAS_K8S_VERSION", default_value = DEFAULT_KUBERNETES_VERSION)]
    pub(crate) kubernetes_version: String,
    /// etcd release to build (default: the one the Kubernetes release pins).
    #[arg(long, global = true, env = "FAAS_ETCD_VERSION")]
    pub(crate) etcd_version: Option<String>,
    /// etcd client port.
    #[arg(long, global = true, env = "FAAS_ETCD_PORT", default_value_t = 2379)]
    pub(crate) etcd_port: u16,
    /// etcd peer port.
    #[arg(
        long,
        global = true,
        env = "FAAS_ETCD_PEER_PORT",
        default_value_t = 2380
    )]
    pub(crate) etcd_peer_port: u16,
    /// kube-apiserver's secure port.
    #[arg(
        long,
        global = true,
        env = "FAAS_APISERVER_PORT",
        default_value_t = 6443
    )]
    pub(crate) apiserver_port: u16,
    /// kube-controller-manager's secure port.
    #[arg(
        long,
        global = true,
        env = "FAAS_CONTROLLER_MANAGER_PORT",
        default_value_t = 10257
    )]
    pub(crate) controller_manager_port: u16,
    /// kube-scheduler's secure port.
    #[arg(
        long,
        global = true,
        env = "FAAS_SCHEDULER_PORT",
        default_value_t = 10259
    )]
    pub(crate) scheduler_port: u16,
    /// How long a node may go without renewing its Lease before the node
    /// lifecycle controller marks it not ready.
    #[arg(
        long,
        global = true,
        env = "FAAS_NODE_MONITOR_GRACE_PERIOD",
        default_value = "20s"
    )]
    pub(crate) node_monitor_grace_period: String,
    /// Seconds pods tolerate a not-ready or unreachable node before eviction.
    #[arg(
        long,
        global = true,
        env = "FAAS_NOT_READY_TOLERATION_SECONDS",
        default_value_t = 30
    )]
    pub(crate) not_ready_toleration_seconds: u32,
    /// Seconds the whole start may take before `up` gives up.
    #[arg(
        long = "start-timeout",
        global = true,
        env = "FAAS_CLUSTER_START_TIMEOUT",
        default_value_t = 300
    )]
    pub(crate) start_timeout_secs: u64,
}

impl Options {
    /// Every port with what it is for and the flag that changes it.
    pub(crate) fn ports(&self) -> [(u16, &'static str, &'static str); 5] {
        [
            (self.etcd_port, "etcd clients", "etcd-port"),
            (self.etcd_peer_port, "etcd peers", "etcd-peer-port"),
            (self.apiserver_port, "kube-apiserver", "apiserver-port"),
            (
                self.controller_manager_port,
                "kube-controller-manager",
                "controller-manager-port",
            ),
            (self.scheduler_port, "kube-scheduler", "scheduler-port"),
        ]
    }
}

/// The cached virtual-kubelet of `version`, built first if needed.
pub(crate) fn virtual_kubelet(ws: &Workspace, version: &str) -> Result<PathBuf> {
    virtual_kubelet::ensure(ws, version, false)
}

/// Runs `cargo xtask cluster ...`.
pub(crate) fn run(ws: &Workspace, args: Args) -> Result<()> {
    let control_plane = ControlPlane::new(ws, args.options);
    match args.command {
        ClusterCommand::Build { force } => {
            build::ensure(ws, &control_plane.build_spec(), force).map(|_| ())
        }
        ClusterCommand::BuildVirtualKubelet { version, force } => {
            let binary = virtual_kubelet::ensure(ws, &version, force)?;
            println!("{}", binary.display());
            Ok(())
        }
        ClusterCommand::Up => control_plane.up(),
        ClusterCommand::Restart { down_for_secs } => {
            control_plane.restart(std::time::Duration::from_secs(down_for_secs))
        }
        ClusterCommand::Down => control_plane.down(),
        ClusterCommand::Status => control_plane.status(),
        ClusterCommand::Env => control_plane.print_env(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn options_go_before_or_after_the_subcommand() {
        let before = Cli::parse_from(["x", "--apiserver-port", "7443", "up"]);
        assert_eq!(before.args.options.apiserver_port, 7443);
        let after = Cli::parse_from(["x", "up", "--apiserver-port", "7443"]);
        assert_eq!(after.args.options.apiserver_port, 7443);
        assert_eq!(
            after.args.options.kubernetes_version,
            DEFAULT_KUBERNETES_VERSION
        );
    }
}
