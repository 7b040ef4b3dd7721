//! Reads each Function's `spec.policy` into the [`RoutingTable`], so the
//! asynchronous calls of a function retry and dead-letter by its own policy:
//! a kube-runtime watcher, never a read per call.

use std::collections::HashSet;
use std::sync::Arc;

use faas_core::RetryPolicy;
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::endpoints::RoutingTable;
use super::key::FunctionKey;
use super::policy::AsyncCallPolicy;
use crate::function::Function;

/// Sets the asynchronous call policy of one Function in `table`.
fn apply(table: &RoutingTable, function: &Function, defaults: &RetryPolicy) -> Option<FunctionKey> {
    let key = FunctionKey::new(function.namespace()?, function.name_any());
    match AsyncCallPolicy::from_function_policy(function.spec.policy.as_ref(), defaults) {
        Ok(policy) => {
            let own = function.spec.policy.is_some();
            table.set_async_policy(&key, own.then_some(policy));
        }
        Err(error) => {
            tracing::warn!(function = %key, %error, "invalid spec.policy; its asynchronous calls use the gateway's policy");
            table.set_async_policy(&key, None);
        }
    }
    Some(key)
}

/// Watches Functions (in `namespace`, or all) until `shutdown`, keeping the policies in `table`
/// current. A first list that fails (no Function resource on the cluster, no permission) marks
/// the policies synced anyway: calls then run by the gateway's policy rather than wait.
pub(crate) async fn run(
    client: Client,
    namespace: Option<String>,
    defaults: RetryPolicy,
    table: Arc<RoutingTable>,
    shutdown: CancellationToken,
) {
    let api: Api<Function> = match &namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    };
    let events = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut events = std::pin::pin!(events);
    let mut listing: HashSet<FunctionKey> = HashSet::new();
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => event,
        };
        match event {
            None => return,
            Some(Err(error)) => {
                tracing::warn!(%error, "watching Functions failed; retrying (asynchronous calls use the gateway's policy meanwhile)");
                table.mark_policies_synced();
            }
            Some(Ok(Event::Apply(function))) => {
                apply(&table, &function, &defaults);
            }
            Some(Ok(Event::Delete(function))) => {
                if let Some(namespace) = function.namespace() {
                    table.set_async_policy(&FunctionKey::new(namespace, function.name_any()), None);
                }
            }
            Some(Ok(Event::Init)) => listing.clear(),
            Some(Ok(Event::InitApply(function))) => {
                if let Some(key) = apply(&table, &function, &defaults) {
                    listing.insert(key);
                }
            }
            Some(Ok(Event::InitDone)) => {
                for key in table.with_async_policy() {
                    if !listing.contains(&key) {
                        table.set_async_policy(&key, None);
                    }
                }
                table.mark_policies_synced();
                tracing::debug!(functions = listing.len(), "Functions listed");
            }
        }
    }
}
