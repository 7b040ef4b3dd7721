//! Where pods get their addresses: loopback addresses, or a network namespace of their own.
//!
//! The API server refuses loopback addresses in EndpointSlices, so pods on `127.x` run and answer
//! but no Service ever lists them. [`PodNetwork::Namespace`] fixes that without a container
//! runtime: one network namespace holds every pod address (each as a `/32` on one veth end), the
//! other end stays on the host with a route to the pod range, and processes are started inside
//! the namespace. Traffic never leaves the machine. It needs root (or `CAP_NET_ADMIN` and
//! `CAP_SYS_ADMIN`); links, addresses and routes are set over rtnetlink, namespaces are made and
//! entered with the system calls themselves (no `ip` or `nsenter` program is run).

mod namespace;
mod netlink;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use tokio::process::{Child, Command};

use netlink::Netlink;

/// The network namespace pods share by default.
pub const DEFAULT_NETNS: &str = "faas-pods";
/// The range routed to the namespace by default; pod CIDRs are carved out of it.
pub const DEFAULT_NAMESPACE_CIDR: &str = "10.244.0.0/16";

/// Why the pod network could not be set up or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The range routed to the namespace is not an IPv4 network in CIDR notation.
    #[error("{cidr:?} is not an IPv4 network in CIDR notation (e.g. 10.244.0.0/16)")]
    InvalidRange {
        /// The range as configured.
        cidr: String,
    },
    /// A network namespace could not be created or entered (this needs root, or
    /// `CAP_SYS_ADMIN` and `CAP_NET_ADMIN`).
    #[error("{action} network namespace {netns:?} failed")]
    Namespace {
        /// The namespace's name.
        netns: String,
        /// What was being done.
        action: &'static str,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused a change of links, addresses or routes (rtnetlink).
    #[error("{action} in network namespace {netns:?} failed")]
    Netlink {
        /// The namespace's name (`host` for the node's own).
        netns: String,
        /// What was being done.
        action: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A link the pod network needs is missing.
    #[error("network namespace {netns:?} has no link {link:?}")]
    MissingLink {
        /// The namespace's name (`host` for the node's own).
        netns: String,
        /// The link's name.
        link: String,
    },
}

/// How pods are addressed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PodNetwork {
    /// Pods listen on loopback addresses of the host (no set-up, no privileges; EndpointSlices
    /// stay empty).
    #[default]
    Loopback,
    /// Pods live in a shared network namespace reachable from the host.
    Namespace {
        /// The namespace's name (under `/run/netns`).
        netns: String,
        /// The range routed from the host into the namespace.
        cidr: String,
        /// The host end's address (the pods' route back), inside `cidr`, never a pod's.
        host_addr: Ipv4Addr,
        /// The host end of the veth pair.
        host_link: String,
        /// The namespace end of the veth pair, which carries the pod addresses.
        pod_link: String,
    },
}

impl PodNetwork {
    /// Pods on loopback addresses.
    pub fn loopback() -> Self {
        Self::Loopback
    }

    /// Pods in the network namespace `netns`, with `cidr` routed to it and its first address
    /// (`10.244.0.1` for `10.244.0.0/16`) on the host end.
    pub fn namespace(netns: impl Into<String>, cidr: impl Into<String>) -> Self {
        let cidr = cidr.into();
        let network: Ipv4Addr = cidr
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or(Ipv4Addr::new(10, 244, 0, 0));
        let netns = netns.into();
        // Interface names are at most 15 bytes.
        let stem: String = netns
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(10)
            .collect();
        Self::Namespace {
            host_link: format!("{stem}-h"),
            pod_link: format!("{stem}-p"),
            netns,
            cidr,
            host_addr: Ipv4Addr::from(u32::from(network) + 1),
        }
    }

    /// The address that must never be handed to a pod (the host end), if any.
    pub fn reserved_address(&self) -> Option<IpAddr> {
        match self {
            Self::Loopback => None,
            Self::Namespace { host_addr, .. } => Some(IpAddr::V4(*host_addr)),
        }
    }

    /// Every address the network keeps for itself and a pod must never get: the host end and
    /// the namespace's anchor (see [`anchor_address`](Self::anchor_address)).
    pub fn reserved_addresses(&self) -> Vec<IpAddr> {
        self.reserved_address()
            .into_iter()
            .chain(self.anchor_address().map(IpAddr::V4))
            .collect()
    }

    /// The address the namespace end keeps for as long as the namespace exists (the address
    /// after the host end, `10.244.0.2` for `10.244.0.0/16`).
    ///
    /// The kernel drops every route through an interface when its last address goes; with this
    /// one always there, the routes survive the last pod, and the host routes the whole pod range
    /// through it, so no address needs a neighbour entry of its own.
    pub fn anchor_address(&self) -> Option<Ipv4Addr> {
        match self {
            Self::Loopback => None,
            Self::Namespace { host_addr, .. } => Some(Ipv4Addr::from(u32::from(*host_addr) + 1)),
        }
    }

    /// The namespace's path, when pods live in one.
    pub fn netns_path(&self) -> Option<PathBuf> {
        match self {
            Self::Loopback => None,
            Self::Namespace { netns, .. } => Some(namespace_path(netns)),
        }
    }

    /// Creates the namespace, the veth pair, the anchor address and the routes, keeping what
    /// already exists.
    ///
    /// Inside the namespace the pod range is unreachable except for the addresses of live pods
    /// (local addresses win over routes) and the namespace forwards, so a connection to a
    /// deleted pod's address is answered at once with "no route to host" instead of waiting
    /// for TCP to give up.
    pub async fn prepare(&self) -> Result<(), NetworkError> {
        let Self::Namespace {
            netns,
            cidr,
            host_addr,
            host_link,
            pod_link,
        } = self
        else {
            return Ok(());
        };
        let range: Ipv4Net = cidr
            .parse()
            .map_err(|_| NetworkError::InvalidRange { cidr: cidr.clone() })?;
        let range = range.trunc();
        let anchor = Ipv4Addr::from(u32::from(*host_addr) + 1);
        let path = namespace_path(netns);
        namespace::create(&path)
            .await
            .map_err(|source| NetworkError::Namespace {
                netns: netns.clone(),
                action: "creating",
                source,
            })?;

        let host = Netlink::connect(None, netns).await?;
        if host.index(host_link).await?.is_none() {
            host.add_veth(host_link, pod_link).await?;
        }
        // The pod end is still in the host's namespace right after it was made.
        if host.index(pod_link).await?.is_some() {
            host.move_to_namespace(pod_link, &path, netns).await?;
        }
        let host_index = host.require(host_link).await?;
        host.replace_address(host_index, *host_addr).await?;
        host.set_up(host_index).await?;

        let pods = Netlink::connect(Some(&path), netns).await?;
        let lo = pods.require("lo").await?;
        pods.set_up(lo).await?;
        let pod_index = pods.require(pod_link).await?;
        pods.set_up(pod_index).await?;
        pods.replace_address(pod_index, anchor).await?;
        pods.replace_device_route(pod_index, *host_addr).await?;
        pods.replace_default_route(pod_index, *host_addr).await?;
        pods.replace_unreachable_route(range).await?;
        namespace::enable_forwarding(&path)
            .await
            .map_err(|source| NetworkError::Namespace {
                netns: netns.clone(),
                action: "enabling forwarding in",
                source,
            })?;
        host.replace_range_route(range, anchor, host_index, *host_addr)
            .await?;
        Ok(())
    }

    /// Puts a pod address on the namespace end (nothing to do on loopback). The network must
    /// have been [prepared](Self::prepare).
    pub async fn add_address(&self, addr: IpAddr) -> Result<(), NetworkError> {
        let (
            Self::Namespace {
                netns, pod_link, ..
            },
            IpAddr::V4(addr),
        ) = (self, addr)
        else {
            return Ok(());
        };
        let pods = Netlink::connect(Some(&namespace_path(netns)), netns).await?;
        let index = pods.require(pod_link).await?;
        pods.replace_address(index, addr).await
    }

    /// Takes a pod address away again (an address that is already gone is fine).
    pub async fn remove_address(&self, addr: IpAddr) -> Result<(), NetworkError> {
        let (
            Self::Namespace {
                netns, pod_link, ..
            },
            IpAddr::V4(addr),
        ) = (self, addr)
        else {
            return Ok(());
        };
        let pods = Netlink::connect(Some(&namespace_path(netns)), netns).await?;
        let Some(index) = pods.index(pod_link).await? else {
            return Ok(());
        };
        pods.remove_address(index, addr).await
    }

    /// Starts `command` in the pod network: on loopback as it is; in a namespace from a thread
    /// that entered it, so the child (and only the child) lives there. Must be called within a
    /// Tokio runtime.
    pub async fn spawn(&self, command: Command) -> std::io::Result<Child> {
        self.spawn_with(command, None).await
    }

    /// [`spawn`](Self::spawn), running `prelude` first on the thread that starts the child (after
    /// it entered the pod network), so the child inherits what it sets up (namespaces, mounts).
    pub(crate) async fn spawn_with(
        &self,
        command: Command,
        prelude: Option<Prelude>,
    ) -> std::io::Result<Child> {
        if self.netns_path().is_none() && prelude.is_none() {
            let mut command = command;
            return command.spawn();
        }
        self.start_with(prelude, move || {
            let mut command = command;
            command.spawn()
        })
        .await
    }

    /// Runs `start` (which starts a process) in the pod network, after `prelude`, on a thread
    /// that ends afterwards, inside the current tokio runtime: what `start` spawns inherits the
    /// namespaces.
    pub(crate) async fn start_with<T: Send + 'static>(
        &self,
        prelude: Option<Prelude>,
        start: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let path = self.netns_path();
        let runtime = tokio::runtime::Handle::current();
        namespace::on_own_thread(move || {
            if let Some(path) = path {
                namespace::enter(&path)?;
            }
            if let Some(prelude) = prelude {
                prelude()?;
            }
            let _runtime = runtime.enter();
            start()
        })
        .await
    }

    /// Runs `command` in the pod network to its end and collects its output (see
    /// [`spawn`](Self::spawn)).
    pub async fn output(&self, command: Command) -> std::io::Result<std::process::Output> {
        let mut command = command;
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        self.spawn(command).await?.wait_with_output().await
    }

    /// Binds a TCP listener in the pod network (a helper thread enters the namespace, binds, and
    /// hands the socket back; the rest of the process stays where it is).
    pub async fn bind_tcp(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
        let Some(path) = self.netns_path() else {
            return tokio::net::TcpListener::bind(addr).await;
        };
        let listener = namespace::run_in(&path, move || {
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
        .await?;
        tokio::net::TcpListener::from_std(listener)
    }
}

/// Work done on the thread that starts a child, before it starts it.
pub(crate) type Prelude = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

fn namespace_path(netns: &str) -> PathBuf {
    Path::new(namespace::NETNS_DIR).join(netns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_mode_names_its_links_and_host_address() {
        let net = PodNetwork::namespace("faas-pods", "10.244.0.0/16");
        let PodNetwork::Namespace {
            host_addr,
            host_link,
            pod_link,
            ..
        } = &net
        else {
            panic!("namespace mode expected");
        };
        assert_eq!(*host_addr, Ipv4Addr::new(10, 244, 0, 1));
        assert_eq!(host_link, "faaspods-h");
        assert_eq!(pod_link, "faaspods-p");
        assert!(host_link.len() <= 15);
        assert_eq!(net.reserved_address(), Some("10.244.0.1".parse().unwrap()));
        assert_eq!(net.anchor_address(), Some(Ipv4Addr::new(10, 244, 0, 2)));
        assert_eq!(
            net.reserved_addresses(),
            [
                "10.244.0.1".parse::<IpAddr>().unwrap(),
                "10.244.0.2".parse().unwrap()
            ]
        );
        assert_eq!(
            net.netns_path(),
            Some(PathBuf::from("/run/netns/faas-pods"))
        );
    }

    #[tokio::test]
    async fn loopback_mode_needs_nothing() {
        let net = PodNetwork::loopback();
        net.prepare().await.unwrap();
        net.add_address("127.1.0.3".parse().unwrap()).await.unwrap();
        assert!(net.reserved_addresses().is_empty());
        let output = net.output(Command::new("/bin/true")).await.unwrap();
        assert!(output.status.success());
        let listener = net.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
    }
}
