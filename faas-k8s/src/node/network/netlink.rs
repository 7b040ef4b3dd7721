//! The rtnetlink requests the pod network makes, on a socket opened in the namespace they act on.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::route::{RouteScope, RouteType};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::NetworkError;
use super::namespace;

/// A netlink connection to one network namespace (the node's own with `None`).
pub(super) struct Netlink {
    handle: Handle,
    netns: String,
}

impl Netlink {
    /// Opens a connection in the namespace at `path` (the node's own with `None`); `netns` names
    /// it in errors.
    pub(super) async fn connect(path: Option<&Path>, netns: &str) -> Result<Self, NetworkError> {
        let open = || -> std::io::Result<_> {
            let (connection, handle, _) = rtnetlink::new_connection()?;
            Ok((connection, handle))
        };
        let opened = match path {
            None => open(),
            Some(path) => {
                let runtime = tokio::runtime::Handle::current();
                namespace::run_in(path, move || {
                    // The socket belongs to the namespace it was opened in, wherever it is used.
                    let _runtime = runtime.enter();
                    open()
                })
                .await
            }
        };
        let netns = match path {
            None => "host".to_owned(),
            Some(_) => netns.to_owned(),
        };
        let (connection, handle) = opened.map_err(|source| NetworkError::Namespace {
            netns: netns.clone(),
            action: "opening a netlink socket in",
            source,
        })?;
        // Ends when the last handle is dropped.
        tokio::spawn(connection);
        Ok(Self { handle, netns })
    }

    fn failed(&self, action: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
        let (netns, action) = (self.netns.clone(), action.into());
        move |source| NetworkError::Netlink {
            netns,
            action,
            source,
        }
    }

    /// The index of link `name`, `None` when there is none.
    pub(super) async fn index(&self, name: &str) -> Result<Option<u32>, NetworkError> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            // ENODEV: no such link.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -nix::libc::ENODEV => {
                Ok(None)
            }
            Err(e) => Err(self.failed(format!("looking up link {name}"))(e)),
        }
    }

    /// The index of link `name`, which must exist.
    pub(super) async fn require(&self, name: &str) -> Result<u32, NetworkError> {
        self.index(name)
            .await?
            .ok_or_else(|| NetworkError::MissingLink {
                netns: self.netns.clone(),
                link: name.to_owned(),
            })
    }

    pub(super) async fn add_veth(&self, name: &str, peer: &str) -> Result<(), NetworkError> {
        self.handle
            .link()
            .add(LinkVeth::new(name, peer).build())
            .execute()
            .await
            .map_err(self.failed(format!("adding the veth pair {name}/{peer}")))
    }

    /// Moves link `name` into the namespace at `path`.
    pub(super) async fn move_to_namespace(
        &self,
        name: &str,
        path: &Path,
        netns: &str,
    ) -> Result<(), NetworkError> {
        let target = std::fs::File::open(path).map_err(|source| NetworkError::Namespace {
            netns: netns.to_owned(),
            action: "opening",
            source,
        })?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_name(name)
                    .setns_by_fd(target.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(self.failed(format!("moving link {name} into {netns}")))
    }

    pub(super) async fn set_up(&self, index: u32) -> Result<(), NetworkError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(self.failed(format!("setting link {index} up")))
    }

    /// Puts `addr/32` on the link (replacing the same address).
    pub(super) async fn replace_address(
        &self,
        index: u32,
        addr: Ipv4Addr,
    ) -> Result<(), NetworkError> {
        self.handle
            .address()
            .add(index, addr.into(), 32)
            .replace()
            .execute()
            .await
            .map_err(self.failed(format!("adding address {addr}/32")))
    }

    /// Takes `addr` off the link; an address it does not have is fine.
    pub(super) async fn remove_address(
        &self,
        index: u32,
        addr: Ipv4Addr,
    ) -> Result<(), NetworkError> {
        let found: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(addr.into())
            .execute()
            .try_collect()
            .await
            .map_err(self.failed(format!("looking up address {addr}")))?;
        for message in found {
            match self.handle.address().del(message).execute().await {
                Ok(()) => {}
                // EADDRNOTAVAIL: gone meanwhile.
                Err(rtnetlink::Error::NetlinkError(e))
                    if e.raw_code() == -nix::libc::EADDRNOTAVAIL => {}
                Err(e) => return Err(self.failed(format!("removing address {addr}"))(e)),
            }
        }
        Ok(())
    }

    /// `to/32 dev <index>`, scope link: the way to the host end.
    pub(super) async fn replace_device_route(
        &self,
        index: u32,
        to: Ipv4Addr,
    ) -> Result<(), NetworkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(to, 32)
            .output_interface(index)
            .scope(RouteScope::Link)
            .build();
        self.replace_route(route, format!("routing {to}/32")).await
    }

    /// `default via <gateway> dev <index>`.
    pub(super) async fn replace_default_route(
        &self,
        index: u32,
        gateway: Ipv4Addr,
    ) -> Result<(), NetworkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
            .gateway(gateway)
            .output_interface(index)
            .build();
        self.replace_route(route, format!("routing default via {gateway}"))
            .await
    }

    /// `unreachable <range>`: addresses of the range no pod has are refused at once.
    pub(super) async fn replace_unreachable_route(
        &self,
        range: Ipv4Net,
    ) -> Result<(), NetworkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(range.network(), range.prefix_len())
            .kind(RouteType::Unreachable)
            .build();
        self.replace_route(route, format!("marking {range} unreachable"))
            .await
    }

    /// `<range> via <gateway> dev <index> onlink src <source>`: the host's way into the pods.
    pub(super) async fn replace_range_route(
        &self,
        range: Ipv4Net,
        gateway: Ipv4Addr,
        index: u32,
        source: Ipv4Addr,
    ) -> Result<(), NetworkError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(range.network(), range.prefix_len())
            .gateway(gateway)
            .output_interface(index)
            .onlink()
            .pref_source(source)
            .build();
        self.replace_route(route, format!("routing {range} via {gateway}"))
            .await
    }

    async fn replace_route(
        &self,
        route: rtnetlink::packet_route::route::RouteMessage,
        action: String,
    ) -> Result<(), NetworkError> {
        self.handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(self.failed(action))
    }
}
