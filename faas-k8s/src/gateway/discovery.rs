//! Fills the [`RoutingTable`] from EndpointSlices: a kube-runtime reflector, so
//! routing never lists anything per call.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::endpoints::{EndpointAddress, RoutingTable};
use super::key::FunctionKey;

/// The label an EndpointSlice carries with the name of its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The function an EndpointSlice belongs to: its namespace and Service name.
fn key_of(slice: &EndpointSlice) -> Option<FunctionKey> {
    let service = slice.labels().get(SERVICE_NAME_LABEL)?;
    Some(FunctionKey::new(slice.namespace()?, service.clone()))
}

/// The ready, not terminating endpoints of one slice, on its `http` port (else its first).
pub(crate) fn ready_addresses(slice: &EndpointSlice, default_port: u16) -> Vec<EndpointAddress> {
    if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
        return Vec::new();
    }
    let ports = slice.ports.as_deref().unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .or_else(|| ports.first())
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(default_port);
    slice
        .endpoints
        .iter()
        .flatten()
        .filter(|endpoint| {
            let conditions = endpoint.conditions.as_ref();
            // An unset `ready` means ready; a terminating endpoint gets no new calls.
            conditions.and_then(|c| c.ready) != Some(false)
                && conditions.and_then(|c| c.terminating) != Some(true)
        })
        .filter_map(|endpoint| {
            let ip: IpAddr = endpoint.addresses.first()?.parse().ok()?;
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            Some(EndpointAddress {
                addr: SocketAddr::new(ip, port),
                pod,
            })
        })
        .collect()
}

/// Recomputes the endpoints of `key` from every slice of its Service in `store`.
fn refresh(table: &RoutingTable, store: &Store<EndpointSlice>, key: &FunctionKey, port: u16) {
    let slices: Vec<_> = store
        .state()
        .into_iter()
        .filter(|slice| key_of(slice).as_ref() == Some(key))
        .collect();
    if slices.is_empty() {
        table.remove(key);
        return;
    }
    let mut addresses: Vec<EndpointAddress> = slices
        .iter()
        .flat_map(|slice| ready_addresses(slice, port))
        .collect();
    addresses.sort_by_key(|a| a.addr);
    addresses.dedup_by_key(|a| a.addr);
    table.set_endpoints(key, addresses);
}

/// Which EndpointSlices the gateway routes to.
#[derive(Debug, Clone, Default)]
pub(crate) struct DiscoveryScope {
    /// One namespace, or all.
    pub(crate) namespace: Option<String>,
    /// A label selector on the slices (they carry their Service's labels).
    pub(crate) selector: Option<String>,
    /// The port when a slice names none.
    pub(crate) default_port: u16,
}

/// Watches EndpointSlices until `shutdown`, keeping `table` current.
pub(crate) async fn run(
    client: Client,
    scope: DiscoveryScope,
    table: Arc<RoutingTable>,
    shutdown: CancellationToken,
) {
    let api: Api<EndpointSlice> = match &scope.namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    };
    let mut config = watcher::Config::default();
    if let Some(selector) = &scope.selector {
        config = config.labels(selector);
    }
    let (store, writer) = reflector::store();
    let events = watcher::watcher(api, config)
        .default_backoff()
        .reflect(writer);
    let mut events = std::pin::pin!(events);
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => event,
        };
        match event {
            None => return,
            Some(Err(error)) => {
                tracing::warn!(%error, "watching EndpointSlices failed; retrying");
            }
            Some(Ok(Event::Apply(slice) | Event::Delete(slice))) => {
                if let Some(key) = key_of(&slice) {
                    refresh(&table, &store, &key, scope.default_port);
                }
            }
            Some(Ok(Event::InitDone)) => {
                let listed: HashSet<FunctionKey> =
                    store.state().iter().filter_map(|s| key_of(s)).collect();
                for key in &listed {
                    refresh(&table, &store, key, scope.default_port);
                }
                for key in table.known() {
                    if !listed.contains(&key) {
                        table.remove(&key);
                    }
                }
                table.mark_synced();
                tracing::debug!(functions = listed.len(), "EndpointSlices listed");
            }
            Some(Ok(Event::Init | Event::InitApply(_))) => {}
        }
    }
}

/// The labels of a slice, for tests.
#[cfg(test)]
fn slice(service: &str, endpoints: serde_json::Value) -> EndpointSlice {
    let labels: std::collections::BTreeMap<String, String> =
        [(SERVICE_NAME_LABEL.to_owned(), service.to_owned())].into();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{service}-abcde"), "namespace": "ns", "labels": labels},
        "addressType": "IPv4",
        "ports": [{"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}],
        "endpoints": endpoints,
    }))
    .expect("a valid EndpointSlice")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ready_not_terminating_endpoints_on_the_http_port() {
        let s = slice(
            "hello",
            serde_json::json!([
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "a"}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": true, "terminating": true}},
                {"addresses": ["10.0.0.4"]},
            ]),
        );
        assert_eq!(key_of(&s), Some(FunctionKey::new("ns", "hello")));
        let addresses = ready_addresses(&s, 80);
        let addrs: Vec<String> = addresses.iter().map(|a| a.addr.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.1:8080", "10.0.0.4:8080"]);
        assert_eq!(addresses[0].pod.as_deref(), Some("a"));
    }
}
