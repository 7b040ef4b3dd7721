//! The node's Lease in `kube-node-lease`: the heartbeat the node-lifecycle controller watches.
//!
//! While the node lives it renews the Lease every `lease_renew_interval` (10 s by default, a
//! quarter of the 40 s duration), so a renewal can fail a few times in a row (an API server
//! restart) before the controller considers the node gone. The Lease is owned by the Node, so it
//! goes away with it.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::NodeConfig;

/// The namespace node leases live in.
pub(crate) const LEASE_NAMESPACE: &str = "kube-node-lease";

/// After a failed renewal the next attempt comes this soon.
const RETRY: Duration = Duration::from_secs(1);

fn now() -> MicroTime {
    MicroTime(Timestamp::try_from(SystemTime::now()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The Lease's spec after a renewal.
pub(crate) fn renewed_spec(config: &NodeConfig, previous: Option<&LeaseSpec>) -> LeaseSpec {
    let duration = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    LeaseSpec {
        holder_identity: Some(config.name.clone()),
        lease_duration_seconds: Some(duration),
        renew_time: Some(now()),
        acquire_time: previous
            .and_then(|p| p.acquire_time.clone())
            .or_else(|| Some(now())),
        ..previous.cloned().unwrap_or_default()
    }
}

fn owner(config: &NodeConfig, node_uid: &str) -> Vec<OwnerReference> {
    vec![OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Node".to_owned(),
        name: config.name.clone(),
        uid: node_uid.to_owned(),
        ..Default::default()
    }]
}

async fn renew(api: &Api<Lease>, config: &NodeConfig, node_uid: &str) -> Result<(), kube::Error> {
    match api.get_opt(&config.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(LEASE_NAMESPACE.to_owned()),
                    owner_references: Some(owner(config, node_uid)),
                    ..Default::default()
                },
                spec: Some(renewed_spec(config, None)),
            };
            api.create(&PostParams::default(), &lease).await?;
        }
        Some(mut lease) => {
            lease.spec = Some(renewed_spec(config, lease.spec.as_ref()));
            if !node_uid.is_empty() {
                lease.metadata.owner_references = Some(owner(config, node_uid));
            }
            lease.metadata.managed_fields = None;
            api.replace(&config.name, &PostParams::default(), &lease)
                .await?;
        }
    }
    Ok(())
}

/// Renews the Lease until `shutdown`.
pub(crate) async fn keep_lease(
    client: kube::Client,
    config: std::sync::Arc<NodeConfig>,
    node_uid: watch::Receiver<String>,
    shutdown: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    loop {
        let uid = node_uid.borrow().clone();
        let wait = match renew(&api, &config, &uid).await {
            Ok(()) => config.lease_renew_interval,
            Err(e) => {
                tracing::warn!(node = %config.name, error = %e, "lease renewal failed; retrying");
                RETRY.min(config.lease_renew_interval)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_keeps_the_acquire_time_and_sets_duration_and_holder() {
        let config = NodeConfig::builder("vn").build().unwrap();
        let first = renewed_spec(&config, None);
        assert_eq!(first.holder_identity.as_deref(), Some("vn"));
        assert_eq!(first.lease_duration_seconds, Some(40));
        let acquired = first.acquire_time.clone();
        let second = renewed_spec(&config, Some(&first));
        assert_eq!(second.acquire_time, acquired);
        assert!(second.renew_time.as_ref().unwrap().0 >= first.renew_time.as_ref().unwrap().0);
    }
}
