//! Where pods get their addresses: loopback addresses, or a network namespace of their own.
//!
//! The API server refuses loopback addresses in EndpointSlices, so pods on `127.x` run and answer
//! but no Service ever lists them. [`PodNetwork::Namespace`] fixes that without a container
//! runtime: one network namespace holds every pod address (each as a `/32` on one veth end), the
//! other end stays on the host with a route to the pod range, and processes are started inside
//! the namespace. Traffic never leaves the machine. It needs root (or `CAP_NET_ADMIN` and
//! `CAP_SYS_ADMIN`) and the `ip` and `nsenter` programs.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use tokio::process::Command;

/// The network namespace pods share by default.
pub const DEFAULT_NETNS: &str = "faas-pods";
/// The range routed to the namespace by default; pod CIDRs are carved out of it.
pub const DEFAULT_NAMESPACE_CIDR: &str = "10.244.0.0/16";

/// Why the pod network could not be set up or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// A set-up command could not be run at all.
    #[error("running `{command}` failed")]
    Spawn {
        /// The command line.
        command: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A set-up command ran and failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// The namespace cannot be entered.
    #[error("entering network namespace {netns:?} failed")]
    Enter {
        /// The namespace's name.
        netns: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
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
            Self::Namespace { netns, .. } => Some(PathBuf::from("/run/netns").join(netns)),
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
        let anchor = Ipv4Addr::from(u32::from(*host_addr) + 1).to_string();
        let netns_path = PathBuf::from("/run/netns").join(netns);
        if !netns_path.exists() {
            ip(&["netns", "add", netns]).await?;
        }
        let host_exists = PathBuf::from("/sys/class/net").join(host_link).exists();
        if !host_exists {
            ip(&[
                "link", "add", host_link, "type", "veth", "peer", "name", pod_link,
            ])
            .await?;
        }
        if PathBuf::from("/sys/class/net").join(pod_link).exists() {
            ip(&["link", "set", pod_link, "netns", netns]).await?;
        }
        let host = format!("{host_addr}/32");
        ip(&["addr", "replace", &host, "dev", host_link]).await?;
        ip(&["link", "set", host_link, "up"]).await?;
        ip(&["-n", netns, "link", "set", "lo", "up"]).await?;
        ip(&["-n", netns, "link", "set", pod_link, "up"]).await?;
        let anchor_spec = format!("{anchor}/32");
        ip(&[
            "-n",
            netns,
            "addr",
            "replace",
            &anchor_spec,
            "dev",
            pod_link,
        ])
        .await?;
        ip(&["-n", netns, "route", "replace", &host, "dev", pod_link]).await?;
        ip(&[
            "-n",
            netns,
            "route",
            "replace",
            "default",
            "via",
            &host_addr.to_string(),
            "dev",
            pod_link,
        ])
        .await?;
        ip(&["-n", netns, "route", "replace", "unreachable", cidr]).await?;
        run(
            "nsenter",
            &[
                &format!("--net={}", netns_path.display()),
                "--",
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        )
        .await?;
        ip(&[
            "route",
            "replace",
            cidr,
            "via",
            &anchor,
            "dev",
            host_link,
            "onlink",
            "src",
            &host_addr.to_string(),
        ])
        .await?;
        Ok(())
    }

    /// Puts a pod address on the namespace end (nothing to do on loopback). The network must
    /// have been [prepared](Self::prepare).
    pub async fn add_address(&self, addr: IpAddr) -> Result<(), NetworkError> {
        if let Self::Namespace {
            netns, pod_link, ..
        } = self
        {
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            let spec = format!("{addr}/{prefix}");
            ip(&["-n", netns, "addr", "replace", &spec, "dev", pod_link]).await?;
        }
        Ok(())
    }

    /// Takes a pod address away again (an address that is already gone is fine).
    pub async fn remove_address(&self, addr: IpAddr) -> Result<(), NetworkError> {
        if let Self::Namespace {
            netns, pod_link, ..
        } = self
        {
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            let spec = format!("{addr}/{prefix}");
            match ip(&["-n", netns, "addr", "del", &spec, "dev", pod_link]).await {
                Ok(()) => {}
                Err(NetworkError::Command { stderr, .. })
                    if stderr.contains("Cannot assign") || stderr.contains("not found") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A command that runs `program` in the pod network (through `nsenter`, which execs it, so the
    /// child's pid is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        match self.netns_path() {
            None => Command::new(program),
            Some(path) => {
                let mut command = Command::new("nsenter");
                command
                    .arg(format!("--net={}", path.display()))
                    .arg("--")
                    .arg(program);
                command
            }
        }
    }

    /// Binds a TCP listener in the pod network (a helper thread enters the namespace, binds, and
    /// hands the socket back; the rest of the process stays where it is).
    pub async fn bind_tcp(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
        let Some(path) = self.netns_path() else {
            return tokio::net::TcpListener::bind(addr).await;
        };
        let listener = tokio::task::spawn_blocking(move || {
            std::thread::spawn(move || -> std::io::Result<std::net::TcpListener> {
                let file = std::fs::File::open(&path)?;
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                let listener = std::net::TcpListener::bind(addr)?;
                listener.set_nonblocking(true)?;
                Ok(listener)
            })
            .join()
            .map_err(|_| std::io::Error::other("the namespace helper thread panicked"))?
        })
        .await
        .map_err(std::io::Error::other)??;
        tokio::net::TcpListener::from_std(listener)
    }
}

async fn ip(args: &[&str]) -> Result<(), NetworkError> {
    run("ip", args).await
}

async fn run(program: &str, args: &[&str]) -> Result<(), NetworkError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|source| NetworkError::Spawn {
            command: command.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Command {
            command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
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
        let cmd = net.command("/bin/true");
        let std = cmd.as_std();
        assert_eq!(std.get_program(), "nsenter");
        let args: Vec<_> = std.get_args().collect();
        assert_eq!(args, ["--net=/run/netns/faas-pods", "--", "/bin/true"]);
    }

    #[tokio::test]
    async fn loopback_mode_needs_nothing() {
        let net = PodNetwork::loopback();
        net.prepare().await.unwrap();
        net.add_address("127.1.0.3".parse().unwrap()).await.unwrap();
        assert!(net.reserved_addresses().is_empty());
        assert_eq!(net.command("/bin/true").as_std().get_program(), "/bin/true");
        let listener = net.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
    }
}
