//! The pods bound to the node: watched, handed to one worker each, reconciled with the backend.
//!
//! The controller watches only the Pods whose `spec.nodeName` is this node (kube-runtime's
//! watcher, which re-lists after a disconnect). Each pod gets a [`worker`] that adopts what the
//! backend already runs for it or creates it. After every complete listing, pods the API server
//! no longer has are stopped, and so is every backend pod no Pod owns: after a restart of the node
//! or of the API server nothing is orphaned and nothing runs twice.

mod inbox;
pub(crate) mod launch;
mod record;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backend::PodKey;
use inbox::{InboxSender, WorkerMsg, inbox};
use launch::pod_key;
pub(crate) use record::SharedPodParts;
use worker::{PodContext, Worker};

/// Backend pods no Pod owns get this long to stop.
const ORPHAN_GRACE: Duration = Duration::from_secs(2);
/// On shutdown, workers busy with the API server or the backend get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The pods the node currently handles: the uid of each, by namespace and name (for the kubelet
/// API).
#[derive(Clone, Debug, Default)]
pub(crate) struct PodRegistry(Arc<RwLock<HashMap<(String, String), String>>>);

impl PodRegistry {
    pub(crate) fn lookup(&self, namespace: &str, name: &str) -> Option<PodKey> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|uid| PodKey::new(namespace, name, uid.as_str()))
    }

    /// Every pod the node handles.
    pub(crate) fn all(&self) -> Vec<PodKey> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|((namespace, name), uid)| PodKey::new(namespace, name, uid.as_str()))
            .collect()
    }

    pub(crate) fn insert(&self, key: &PodKey) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((key.namespace.clone(), key.name.clone()), key.uid.clone());
    }

    fn remove(&self, key: &PodKey) {
        let mut map = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = (key.namespace.clone(), key.name.clone());
        if map.get(&slot).is_some_and(|uid| *uid == key.uid) {
            map.remove(&slot);
        }
    }

    /// Forgets every pod.
    fn clear(&self) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Drops from `pod` what the node never reads, before a worker keeps it: who wrote which field
/// (`managedFields`, often the largest part of a pod), the scheduler's inputs (tolerations,
/// affinity, node selector, spread constraints, scheduling gates), and, for a backend that does
/// not mount volumes, the volumes and their mounts.
///
/// Status writes are unaffected: the status subresource takes only the status of what it is sent.
pub(crate) fn trim(pod: &mut Pod, mounts_volumes: bool) {
    pod.metadata.managed_fields = None;
    if let Some(spec) = pod.spec.as_mut() {
        spec.tolerations = None;
        spec.affinity = None;
        spec.node_selector = None;
        spec.topology_spread_constraints = None;
        spec.scheduling_gates = None;
        if !mounts_volumes {
            spec.volumes = None;
            let containers = spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten());
            for container in containers {
                container.volume_mounts = None;
            }
        }
    }
}

/// The watcher's side of a worker, by the pod's uid (the worker keeps the pod's key).
struct WorkerHandle {
    tx: InboxSender,
}

/// Watches the node's pods and runs one worker per pod until `shutdown`.
pub(crate) async fn run_pods(
    ctx: Arc<PodContext>,
    registry: PodRegistry,
    shutdown: CancellationToken,
) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    let selector = format!("spec.nodeName={}", ctx.config.name);
    let mounts_volumes = ctx.backend.mounts_volumes();
    let mut pods = watcher::watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .modify(move |pod: &mut Pod| trim(pod, mounts_volumes))
        .boxed();
    let mut changes = ctx.backend.events();
    let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
    let mut tasks = JoinSet::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<PodKey>();
    let (listed_tx, mut listed_rx) = mpsc::unbounded_channel::<Vec<PodKey>>();
    let mut listing: Option<HashSet<String>> = None;

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            event = pods.next() => match event {
                Some(Ok(Event::Init)) => listing = Some(HashSet::new()),
                Some(Ok(Event::InitApply(pod))) => {
                    if let Some(seen) = listing.as_mut() {
                        seen.insert(pod.metadata.uid.clone().unwrap_or_default());
                    }
                    dispatch(&ctx, &registry, &mut workers, &mut tasks, &done_tx, pod);
                }
                Some(Ok(Event::Apply(pod))) => {
                    dispatch(&ctx, &registry, &mut workers, &mut tasks, &done_tx, pod);
                }
                Some(Ok(Event::Delete(pod))) => {
                    if let Some(handle) = pod.metadata.uid.as_ref().and_then(|uid| workers.get(uid)) {
                        let _ = handle.tx.send(WorkerMsg::Gone);
                    }
                }
                Some(Ok(Event::InitDone)) => {
                    let seen = listing.take().unwrap_or_default();
                    for (uid, handle) in &workers {
                        if !seen.contains(uid) {
                            let _ = handle.tx.send(WorkerMsg::Gone);
                        }
                    }
                    let backend = ctx.backend.clone();
                    let listed_tx = listed_tx.clone();
                    tokio::spawn(async move {
                        match backend.list().await {
                            Ok(list) => {
                                let _ = listed_tx.send(list.into_iter().map(|s| s.key).collect());
                            }
                            Err(e) => tracing::warn!(error = %e, "listing the backend's pods failed"),
                        }
                    });
                }
                Some(Err(e)) => tracing::warn!(error = %e, "watching the node's pods failed; retrying"),
                None => break,
            },
            Some(key) = changes.next() => {
                if let Some(handle) = workers.get(&key.uid) {
                    let _ = handle.tx.send(WorkerMsg::Runtime);
                }
            },
            Some(key) = done_rx.recv() => {
                if workers.get(&key.uid).is_some_and(|h| h.tx.is_closed()) {
                    workers.remove(&key.uid);
                    registry.remove(&key);
                }
            },
            Some(listed) = listed_rx.recv() => {
                for key in listed {
                    if !workers.contains_key(&key.uid) {
                        tracing::info!(pod = %key, "stopping a backend pod that no Pod owns");
                        let backend = ctx.backend.clone();
                        tokio::spawn(async move {
                            if let Err(e) = backend.delete(&key, ORPHAN_GRACE).await {
                                tracing::warn!(pod = %key, error = %e, "stopping an orphan failed");
                            }
                        });
                    }
                }
            },
            Some(ended) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = ended
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a pod worker panicked; its pod is no longer tended");
                }
            }
        }
    }

    // Closing the inboxes tells every worker to stop; running pods are left running. The
    // registry holds exactly the workers' pods.
    registry.clear();
    drop(workers);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
}

fn dispatch(
    ctx: &Arc<PodContext>,
    registry: &PodRegistry,
    workers: &mut HashMap<String, WorkerHandle>,
    tasks: &mut JoinSet<()>,
    done_tx: &mpsc::UnboundedSender<PodKey>,
    pod: Pod,
) {
    let key = pod_key(&pod);
    if key.uid.is_empty() {
        return;
    }
    // A worker that has just finished gets a successor for the new version of its pod.
    if let Some(handle) = workers.get(&key.uid)
        && handle
            .tx
            .send(WorkerMsg::Pod(Box::new(pod.clone())))
            .is_ok()
    {
        return;
    }
    let (tx, rx) = inbox();
    registry.insert(&key);
    let worker = Box::new(Worker::new(ctx.clone(), pod));
    let done_tx = done_tx.clone();
    tasks.spawn(async move {
        let key = worker.run(rx).await;
        let _ = done_tx.send(key);
    });
    workers.insert(key.uid, WorkerHandle { tx });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web"},
                "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:spec": {"f:containers": {}}}}],
            },
            "spec": {
                "nodeName": "vn",
                "containers": [{"name": "app", "image": "local/app",
                                "volumeMounts": [{"name": "token", "mountPath": "/var/run/secrets"}]}],
                "volumes": [{"name": "token", "projected": {"sources": []}}],
                "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                "nodeSelector": {"type": "virtual-kubelet"},
            },
            "status": {"phase": "Pending"},
        }))
        .unwrap()
    }

    #[test]
    fn trimming_keeps_what_the_node_reads() {
        let mut kept = pod();
        trim(&mut kept, true);
        assert!(kept.metadata.managed_fields.is_none());
        assert_eq!(kept.metadata.labels, pod().metadata.labels);
        let spec = kept.spec.as_ref().unwrap();
        assert!(spec.tolerations.is_none() && spec.node_selector.is_none());
        assert_eq!(spec.volumes, pod().spec.unwrap().volumes);
        assert!(spec.containers[0].volume_mounts.is_some());
        assert_eq!(kept.status, pod().status);

        let mut no_volumes = pod();
        trim(&mut no_volumes, false);
        let spec = no_volumes.spec.as_ref().unwrap();
        assert!(spec.volumes.is_none() && spec.containers[0].volume_mounts.is_none());
        assert_eq!(spec.containers[0].image.as_deref(), Some("local/app"));
    }
}
