//! The command line of `faas-vnode` (feature `cli`): [`VnodeArgs`] and [`run`].
//!
//! The binary parses the arguments, installs a tracing subscriber and calls [`run`]; test
//! programs that need a node process of their own do the same.
//!
//! ```no_run
//! use clap::Parser;
//! use faas_k8s::node::cli::{VnodeArgs, run};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! run(VnodeArgs::parse_from(["faas-vnode", "--node-name", "vnode-1"])).await
//! # }
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::node::process::{AddressPool, ImageMap, Ipv4Cidr, ProcessBackend, ProcessBackendConfig};
use crate::node::{Capacity, KubeletTls, NodeConfig, NodeTaint, PROVIDER_TAINT_KEY, VirtualNode};
use clap::{Parser, ValueEnum};
use faas_core::Registry;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::node::function::{FunctionBackend, FunctionBackendConfig};

/// Which backend runs the pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Backend {
    /// Every container is an OS process on the pod's own address.
    Process,
    /// Every container serves, in-process, a function the program registered (programs that
    /// embed the node through `run_with_functions`).
    Function,
}

/// A virtual Kubernetes node whose pods run as local processes.
#[derive(Debug, Parser)]
#[command(
    name = "faas-vnode",
    version,
    about = "A virtual Kubernetes node whose pods run as local processes or in-process functions"
)]
#[non_exhaustive]
pub struct VnodeArgs {
    /// The kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The Node's name.
    #[arg(long, default_value = "faas-vnode")]
    pub node_name: String,
    /// Which backend runs the pods.
    #[arg(long, value_enum, default_value = "process")]
    pub backend: Backend,
    /// Where the process backend keeps its pod records and logs (default
    /// /var/lib/faas-vnode/NODE-NAME).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The range pod addresses come from (also the Node's spec.podCIDR).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// A file of `image = executable` lines (`local/* = /dir` maps every image under a prefix).
    #[arg(long)]
    pub image_map: Option<PathBuf>,
    /// One image mapping, `image=executable` (repeatable; added to --image-map).
    #[arg(long = "image", value_name = "IMAGE=EXECUTABLE")]
    pub images: Vec<String>,
    /// Advertised CPU (a Kubernetes quantity; default: the machine's CPU count).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Advertised memory (a Kubernetes quantity; default: the machine's memory).
    #[arg(long)]
    pub memory: Option<String>,
    /// Advertised pod capacity.
    #[arg(long, default_value_t = crate::node::process::DEFAULT_MAX_PODS)]
    pub max_pods: u32,
    /// The Node's InternalIP (the API server reaches the kubelet API there).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub address: IpAddr,
    /// The kubelet API port advertised in daemonEndpoints.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Where the kubelet API listens (default: the address on the kubelet port).
    #[arg(long)]
    pub kubelet_bind: Option<SocketAddr>,
    /// PEM serving certificate of the kubelet API (without it the API is not served).
    #[arg(long, requires_all = ["kubelet_key", "client_ca"])]
    pub kubelet_cert: Option<PathBuf>,
    /// PEM private key of the serving certificate.
    #[arg(long)]
    pub kubelet_key: Option<PathBuf>,
    /// PEM CA whose client certificates the kubelet API accepts (the cluster CA).
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// The value of the `virtual-kubelet.io/provider` NoSchedule taint; empty for no taint.
    #[arg(long, default_value = "faas")]
    pub provider_taint: String,
    /// The first restart delay of a crashing container (doubles up to --restart-backoff-max).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub restart_backoff: Duration,
    /// The longest restart delay.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub restart_backoff_max: Duration,
    /// How long the node's Lease lasts.
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
    /// How often the Lease is renewed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_renew: Duration,
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, Box<dyn std::error::Error>> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// Runs a node as the command line asks, until SIGINT or SIGTERM.
///
/// # Errors
///
/// The kubeconfig, the image map, the TLS files or the configuration are unusable, or the node
/// could not register.
pub async fn run(args: VnodeArgs) -> Result<(), Box<dyn std::error::Error>> {
    run_with_functions(args, Registry::new()).await
}

/// [`run`] for a program that registers functions: with `--backend function`, pods whose image
/// names one of them (`faas.dev/function/<name>`) serve it in-process.
///
/// # Errors
///
/// As [`run`]; and `--backend function` with no function registered.
pub async fn run_with_functions(
    args: VnodeArgs,
    functions: Registry,
) -> Result<(), Box<dyn std::error::Error>> {
    let client = client(args.kubeconfig.as_ref()).await?;
    let pod_cidr = args
        .pod_cidr
        .clone()
        .unwrap_or_else(|| crate::node::process::DEFAULT_POD_CIDR.to_owned());
    let cidr: Ipv4Cidr = pod_cidr
        .parse()
        .map_err(|e| format!("--pod-cidr {pod_cidr:?}: {e}"))?;

    let mut config = NodeConfig::builder(&args.node_name)
        .pod_cidr(&pod_cidr)
        .address("InternalIP", args.address.to_string())
        .address("Hostname", &args.node_name)
        .kubelet_port(args.kubelet_port)
        .restart_backoff(args.restart_backoff, args.restart_backoff_max)
        .lease_duration(args.lease_duration)
        .lease_renew_interval(args.lease_renew)
        .taints(if args.provider_taint.is_empty() {
            Vec::new()
        } else {
            vec![NodeTaint::new(
                PROVIDER_TAINT_KEY,
                &args.provider_taint,
                "NoSchedule",
            )]
        });
    if let Some(bind) = args.kubelet_bind {
        config = config.kubelet_bind(bind);
    }
    if let (Some(cert), Some(key), Some(client_ca)) =
        (args.kubelet_cert, args.kubelet_key, args.client_ca)
    {
        config = config.kubelet_tls(KubeletTls {
            cert,
            key,
            client_ca,
        });
    }
    let config = config.build()?;

    let machine = crate::node::process::machine_capacity();
    let capacity = Capacity::new(
        args.cpu.unwrap_or(machine.cpu),
        args.memory.unwrap_or(machine.memory),
        args.max_pods,
    );
    match args.backend {
        Backend::Function => {
            if functions.is_empty() {
                return Err(
                    "--backend function: this program registers no function; embed the \
                            node with faas_k8s::node::cli::run_with_functions"
                        .into(),
                );
            }
            let backend = FunctionBackend::new(
                FunctionBackendConfig::new(functions)
                    .with_addresses(AddressPool::new(cidr))
                    .with_capacity(capacity),
            );
            VirtualNode::new(client, config, backend)
                .shutdown_on_signal()
                .run()
                .await?;
        }
        Backend::Process => {
            let images = match &args.image_map {
                Some(path) => ImageMap::load(path)
                    .map_err(|e| format!("reading --image-map {}: {e}", path.display()))?,
                None => ImageMap::new(),
            };
            let mut images = images;
            for mapping in &args.images {
                let (image, executable) = mapping
                    .split_once('=')
                    .ok_or_else(|| format!("--image {mapping:?}: expected IMAGE=EXECUTABLE"))?;
                images.insert_image(image.trim(), executable.trim());
            }
            let state_dir = args
                .state_dir
                .unwrap_or_else(|| PathBuf::from("/var/lib/faas-vnode").join(&args.node_name));
            let backend = ProcessBackend::new(
                ProcessBackendConfig::new(state_dir)
                    .with_images(images)
                    .with_addresses(AddressPool::new(cidr))
                    .with_capacity(capacity),
            )
            .await?;
            VirtualNode::new(client, config, backend)
                .shutdown_on_signal()
                .run()
                .await?;
        }
    }
    Ok(())
}
