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

use crate::node::process::{ImageMap, ProcessBackend, ProcessBackendConfig, hold_terminal};
use crate::node::{AddressPool, DEFAULT_MAX_PODS, DEFAULT_POD_CIDR, machine_capacity};
use crate::node::{Capacity, KubeletTls, NodeConfig, NodeTaint, PROVIDER_TAINT_KEY, VirtualNode};
use clap::{Parser, Subcommand, ValueEnum};
use faas_core::Registry;
use ipnet::Ipv4Net;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::node::function::{FunctionBackend, FunctionBackendConfig};
use crate::node::network::PodNetwork;

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

/// Where pods get their addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum PodNetworkMode {
    /// Loopback addresses of the host (no privileges; Services list no endpoints, as the API
    /// server refuses loopback addresses in EndpointSlices).
    #[default]
    Loopback,
    /// A network namespace shared by the pods, routed from the host (needs root); pod addresses
    /// are ordinary ones that EndpointSlices accept.
    Netns,
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
    /// The range pod addresses come from (also the Node's spec.podCIDR; default 127.1.0.0/16,
    /// or --netns-cidr with --pod-network netns, where it must lie inside --netns-cidr).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// Where pods get their addresses.
    #[arg(long, value_enum, default_value = "loopback")]
    pub pod_network: PodNetworkMode,
    /// The network namespace pods share with --pod-network netns (created if missing).
    #[arg(long, default_value = crate::node::network::DEFAULT_NETNS)]
    pub netns_name: String,
    /// The range routed from the host into the namespace with --pod-network netns; its first
    /// two addresses are the namespace's own, never a pod's.
    #[arg(long, default_value = crate::node::network::DEFAULT_NAMESPACE_CIDR)]
    pub netns_cidr: String,
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
    #[arg(long, default_value_t = DEFAULT_MAX_PODS)]
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
    /// How many requests to the API server the pod workers have in flight at once (status
    /// writes, deletions, Events); the others wait their turn. Each one in flight holds an HTTP
    /// connection and its buffers: fewer save memory after a burst of pods, more may start a
    /// burst faster on an API server that keeps up.
    #[arg(
        long,
        env = "FAAS_VNODE_MAX_API_REQUESTS",
        default_value_t = crate::node::DEFAULT_MAX_API_REQUESTS as u32,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_api_requests: u32,
    /// What to run instead of a node (only the node itself starts one of these).
    #[command(subcommand)]
    pub command: Option<VnodeCommand>,
}

/// What a node's program runs for the node itself instead of a node.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum VnodeCommand {
    /// Holds the terminal of a container started with `tty: true`: the node starts one for each
    /// such container, with the container's input, its output pipe and the terminal as standard
    /// streams, and it ends with the terminal.
    #[command(hide = true)]
    TerminalHolder {
        /// Whose terminal it holds (`<namespace>/<pod>/<container>`; for process listings).
        #[arg(long)]
        container: String,
        /// The end of the input is passed on as the terminal's end-of-file character
        /// (`stdinOnce`).
        #[arg(long)]
        close_input_at_eof: bool,
    },
}

/// The pod network the arguments ask for, with the pod range (as given and parsed).
fn pod_network(
    args: &VnodeArgs,
) -> Result<(PodNetwork, String, Ipv4Net), Box<dyn std::error::Error>> {
    let parse = |flag: &str, text: &str| -> Result<Ipv4Net, String> {
        text.parse().map_err(|e| {
            format!(
                "{flag} {text:?} is not an IPv4 network in CIDR notation (e.g. 127.1.0.0/16): {e}"
            )
        })
    };
    match args.pod_network {
        PodNetworkMode::Loopback => {
            let pod_cidr = args
                .pod_cidr
                .clone()
                .unwrap_or_else(|| DEFAULT_POD_CIDR.to_owned());
            let cidr = parse("--pod-cidr", &pod_cidr)?;
            Ok((PodNetwork::loopback(), pod_cidr, cidr))
        }
        PodNetworkMode::Netns => {
            let routed = parse("--netns-cidr", &args.netns_cidr)?;
            let pod_cidr = args.pod_cidr.clone().unwrap_or_else(|| routed.to_string());
            let cidr = parse("--pod-cidr", &pod_cidr)?;
            if !routed.trunc().contains(&cidr.trunc()) {
                return Err(format!(
                    "--pod-cidr {cidr} does not lie inside --netns-cidr {routed}: pods would \
                     get addresses the host does not route to them"
                )
                .into());
            }
            let network = PodNetwork::namespace(&args.netns_name, routed.to_string());
            Ok((network, pod_cidr, cidr))
        }
    }
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

/// The whole `faas-vnode` program: parses the command line; runs a terminal holder when asked (see
/// [`run_node_helper`]); else sets up logging (`RUST_LOG`, default `info`) and runs the node on a
/// multi-thread runtime until SIGINT or SIGTERM.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     faas_k8s::node::cli::main()
/// }
/// ```
pub fn main() -> std::process::ExitCode {
    let args = VnodeArgs::parse();
    if let Some(held) = run_node_helper(&args) {
        return if held.is_ok() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        };
    }
    crate::cli::init_logging("info");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return crate::cli::exit_code(Err(error)),
    };
    crate::cli::exit_code(runtime.block_on(run(args)))
}

/// Runs what the node's program runs for the node itself instead of a node (a terminal holder,
/// see [`VnodeCommand`]), or `None` when `args` ask for a node.
///
/// A holder copies bytes on two threads: a program's `main` calls this before it builds an async
/// runtime or sets up logging, so each holder costs a small process, and nothing is written to
/// its standard error, which is the terminal it holds.
///
/// [`main`] is the program that does so.
#[must_use]
pub fn run_node_helper(args: &VnodeArgs) -> Option<std::io::Result<()>> {
    let Some(VnodeCommand::TerminalHolder {
        close_input_at_eof, ..
    }) = &args.command
    else {
        return None;
    };
    Some(hold_terminal(*close_input_at_eof))
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
    if let Some(VnodeCommand::TerminalHolder {
        close_input_at_eof, ..
    }) = args.command
    {
        tokio::task::spawn_blocking(move || hold_terminal(close_input_at_eof)).await??;
        return Ok(());
    }
    let client = client(args.kubeconfig.as_ref()).await?;
    let (network, pod_cidr, cidr) = pod_network(&args)?;

    let mut config = NodeConfig::builder(&args.node_name)
        .pod_cidr(&pod_cidr)
        .address("InternalIP", args.address.to_string())
        .address("Hostname", &args.node_name)
        .kubelet_port(args.kubelet_port)
        .restart_backoff(args.restart_backoff, args.restart_backoff_max)
        .lease_duration(args.lease_duration)
        .lease_renew_interval(args.lease_renew)
        .max_api_requests(args.max_api_requests as usize)
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

    let machine = machine_capacity();
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
                    .with_network(network)
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
            let mut backend_config = ProcessBackendConfig::new(state_dir);
            // This program holds containers' terminals itself (`terminal-holder`).
            if let Ok(program) = std::env::current_exe() {
                backend_config = backend_config.with_terminal_holder(program);
            }
            let backend = ProcessBackend::new(
                backend_config
                    .with_images(images)
                    .with_addresses(AddressPool::new(cidr))
                    .with_network(network)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> VnodeArgs {
        VnodeArgs::parse_from(["faas-vnode"].iter().chain(extra))
    }

    #[test]
    fn the_api_request_cap_comes_from_its_flag_or_its_variable_and_is_at_least_one() {
        assert_eq!(
            args(&[]).max_api_requests as usize,
            crate::node::DEFAULT_MAX_API_REQUESTS
        );
        assert_eq!(args(&["--max-api-requests", "8"]).max_api_requests, 8);
        let zero = VnodeArgs::try_parse_from(["faas-vnode", "--max-api-requests", "0"])
            .expect_err("zero requests in flight would stop every pod");
        assert!(zero.to_string().contains("--max-api-requests"), "{zero}");
        let text = VnodeArgs::try_parse_from(["faas-vnode", "--max-api-requests", "many"])
            .expect_err("not a number");
        assert!(text.to_string().contains("many"), "{text}");
    }

    #[test]
    fn the_node_starts_its_terminal_holders_with_arguments_it_parses() {
        assert!(args(&[]).command.is_none(), "a node by default");
        let holder = args(&[
            crate::node::process::TERMINAL_HOLDER_COMMAND,
            "--container",
            "ns/pod/shell",
            "--close-input-at-eof",
        ]);
        match holder.command {
            Some(VnodeCommand::TerminalHolder {
                container,
                close_input_at_eof,
            }) => {
                assert_eq!(container, "ns/pod/shell");
                assert!(close_input_at_eof);
            }
            other => panic!("not a terminal holder: {other:?}"),
        }
    }

    #[test]
    fn loopback_is_the_default_pod_network() {
        let (network, pod_cidr, cidr) = pod_network(&args(&[])).unwrap();
        assert_eq!(network, PodNetwork::loopback());
        assert_eq!(pod_cidr, "127.1.0.0/16");
        assert_eq!(cidr.to_string(), "127.1.0.0/16");
    }

    #[test]
    fn netns_mode_routes_its_range_into_the_named_namespace() {
        let (network, pod_cidr, _) =
            pod_network(&args(&["--pod-network", "netns", "--netns-name", "pods"])).unwrap();
        assert_eq!(network, PodNetwork::namespace("pods", "10.244.0.0/16"));
        assert_eq!(pod_cidr, "10.244.0.0/16");

        let (network, pod_cidr, _) = pod_network(&args(&[
            "--pod-network",
            "netns",
            "--netns-cidr",
            "10.50.0.0/16",
            "--pod-cidr",
            "10.50.3.0/24",
        ]))
        .unwrap();
        assert_eq!(network, PodNetwork::namespace("faas-pods", "10.50.0.0/16"));
        assert_eq!(pod_cidr, "10.50.3.0/24");
    }

    #[test]
    fn netns_mode_refuses_a_pod_range_outside_the_routed_one() {
        let outside = pod_network(&args(&[
            "--pod-network",
            "netns",
            "--pod-cidr",
            "10.9.0.0/24",
        ]));
        let message = outside.unwrap_err().to_string();
        assert!(message.contains("does not lie inside"), "{message}");
        let wider = pod_network(&args(&[
            "--pod-network",
            "netns",
            "--pod-cidr",
            "10.0.0.0/8",
        ]));
        assert!(wider.is_err());
        let garbage = pod_network(&args(&["--pod-network", "netns", "--netns-cidr", "nope"]));
        assert!(garbage.unwrap_err().to_string().contains("--netns-cidr"));
    }
}
