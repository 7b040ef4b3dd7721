//! The pods a backend runs, kept one way for every backend.
//!
//! A [`PodTable`] holds each pod's key, address and containers, the flag that says it is being
//! deleted and the lock that lets one lifecycle operation (create, restart, delete) act on it at
//! a time. It does what every backend's [`PodBackend`](super::PodBackend) methods share: the
//! idempotent create (an existing key returns what runs; the address reserved with `reserve_ip`
//! is used and kept if creation fails; a half-started pod is rolled back), the restart of one
//! container, the delete with its grace, the status fold and the lookups. What a container *is*
//! (a process, an in-process server) is the backend's [`PodRuntime`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::address::AddressPool;
use super::backend::{BackendError, ContainerRuntimeStatus, PodKey, PodRuntimeStatus};
use super::container_status::{ContainerStatusCell, Phase};
use super::events::EventHub;
use super::lock;

/// The least a sidecar gets to stop after the containers used the pod's grace.
const SIDECAR_MIN_GRACE: Duration = Duration::from_secs(2);

/// One container as a backend keeps it: a name and a status cell, whatever else it holds.
pub(crate) trait TableContainer: Send + Sync + 'static {
    /// The container's name.
    fn name(&self) -> &str;

    /// Runs `f` on the container's status cell (under the container's own lock).
    fn with_status<T>(&self, f: impl FnOnce(&mut ContainerStatusCell) -> T) -> T;

    /// Whether it is stopped after the others when its pod stops (a sidecar).
    fn stops_last(&self) -> bool {
        false
    }

    /// The container's status as the node sees it.
    fn status(&self) -> ContainerRuntimeStatus {
        self.with_status(|cell| cell.to_status())
    }
}

/// One pod of a [`PodTable`]; `D` is what the backend keeps beside the containers.
#[derive(Debug)]
pub(crate) struct TablePod<C, D> {
    pub(crate) key: PodKey,
    pub(crate) ip: Ipv4Addr,
    pub(crate) containers: Vec<Arc<C>>,
    pub(crate) data: D,
    /// Runs in the node's network on the node's address (`hostNetwork: true`): the address is
    /// not the pool's and is never released or taken off the pod network.
    pub(crate) host_network: bool,
    /// Set when deletion starts: no more restarts.
    deleting: AtomicBool,
    /// Held by lifecycle operations (create, restart, delete): one at a time per pod.
    lifecycle: Arc<tokio::sync::Mutex<()>>,
}

impl<C: TableContainer, D> TablePod<C, D> {
    pub(crate) fn new(key: PodKey, ip: Ipv4Addr, containers: Vec<C>, data: D) -> Self {
        Self {
            key,
            ip,
            // Not `collect()`: it would reuse the buffer of `containers`, sized for the
            // containers themselves, for the pointers, and keep it as long as the pod.
            containers: {
                let mut shared = Vec::with_capacity(containers.len());
                shared.extend(containers.into_iter().map(Arc::new));
                shared
            },
            data,
            host_network: false,
            deleting: AtomicBool::new(false),
            lifecycle: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub(crate) fn container(&self, name: &str) -> Option<&Arc<C>> {
        self.containers.iter().find(|c| c.name() == name)
    }

    pub(crate) fn is_deleting(&self) -> bool {
        self.deleting.load(Ordering::SeqCst)
    }

    /// The pod's status: its address and every container's status, in spec order.
    pub(crate) fn status(&self) -> PodRuntimeStatus {
        PodRuntimeStatus::new(
            self.key.clone(),
            Some(IpAddr::V4(self.ip)),
            self.containers.iter().map(|c| c.status()).collect(),
        )
    }
}

/// The pod type of a runtime's table.
pub(crate) type RuntimePod<R> = TablePod<<R as PodRuntime>::Container, <R as PodRuntime>::Data>;

/// A pod of a runtime's table with one of its containers.
pub(crate) type PodAndContainer<R> = (Arc<RuntimePod<R>>, Arc<<R as PodRuntime>::Container>);

/// What a backend does to run containers; the [`PodTable`] decides when.
#[async_trait]
pub(crate) trait PodRuntime: std::fmt::Debug + Send + Sync + Sized + 'static {
    /// One container as this backend runs it.
    type Container: TableContainer;
    /// What the backend keeps per pod beside its containers.
    type Data: Send + Sync + 'static;

    /// Readies what a new pod needs before its containers start: its address on the pod network
    /// (`None` for a pod in the node's network) and anything of its own (directories).
    async fn prepare(&self, key: &PodKey, ip: Option<Ipv4Addr>) -> Result<(), BackendError>;

    /// Takes a pod's address off the pod network again.
    async fn unprepare(&self, key: &PodKey, ip: Ipv4Addr);

    /// Starts a new run of `container`.
    async fn start(
        &self,
        pod: &Arc<RuntimePod<Self>>,
        container: &Arc<Self::Container>,
    ) -> io::Result<()>;

    /// Stops the current run of `container` (one of `pod`'s) within `grace`; returns once its
    /// end is recorded.
    async fn stop(
        &self,
        pod: &RuntimePod<Self>,
        container: &Self::Container,
        grace: Duration,
    ) -> io::Result<()>;

    /// How long a running container gets to stop when it is restarted.
    fn restart_grace(&self) -> Duration;

    /// Records what changed in `pod` where it must outlive the node process (nothing by default).
    fn persist(&self, pod: &RuntimePod<Self>) {
        let _ = pod;
    }

    /// Removes for good what `pod` left behind once it is stopped (nothing by default).
    fn forget(&self, pod: &RuntimePod<Self>) {
        let _ = pod;
    }

    /// Where changes are announced.
    fn events(&self) -> &EventHub;
}

/// Every pod of one backend, with the address pool they draw from.
pub(crate) struct PodTable<R: PodRuntime> {
    runtime: R,
    addresses: AddressPool,
    max_pods: usize,
    pods: Mutex<HashMap<PodKey, Arc<RuntimePod<R>>>>,
}

impl<R: PodRuntime> std::fmt::Debug for PodTable<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodTable")
            .field("runtime", &self.runtime)
            .field("addresses", &self.addresses)
            .field("max_pods", &self.max_pods)
            .field("pods", &lock(&self.pods).len())
            .finish()
    }
}

impl<R: PodRuntime> PodTable<R> {
    pub(crate) fn new(runtime: R, addresses: AddressPool, max_pods: u32) -> Self {
        Self {
            runtime,
            addresses,
            max_pods: max_pods as usize,
            pods: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn runtime(&self) -> &R {
        &self.runtime
    }

    /// Takes in a pod found running (adopted after a restart of the node).
    pub(crate) fn insert(&self, pod: Arc<RuntimePod<R>>) {
        lock(&self.pods).insert(pod.key.clone(), pod);
    }

    pub(crate) fn pod(&self, key: &PodKey) -> Result<Arc<RuntimePod<R>>, BackendError> {
        lock(&self.pods)
            .get(key)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(key.clone()))
    }

    pub(crate) fn container(
        &self,
        key: &PodKey,
        name: &str,
    ) -> Result<PodAndContainer<R>, BackendError> {
        let pod = self.pod(key)?;
        let container = pod
            .container(name)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(key.clone()))?;
        Ok((pod, container))
    }

    /// Every pod, in no particular order.
    pub(crate) fn pods(&self) -> Vec<Arc<RuntimePod<R>>> {
        lock(&self.pods).values().cloned().collect()
    }

    /// Forgets every pod at once, handing them to the caller (the backend is going away).
    pub(crate) fn drain(&self) -> Vec<Arc<RuntimePod<R>>> {
        lock(&self.pods).drain().map(|(_, pod)| pod).collect()
    }

    pub(crate) fn status(&self, key: &PodKey) -> Option<PodRuntimeStatus> {
        self.pod(key).ok().map(|pod| pod.status())
    }

    /// Every pod's status, by key.
    pub(crate) fn list(&self) -> Vec<PodRuntimeStatus> {
        let mut statuses: Vec<_> = self.pods().iter().map(|pod| pod.status()).collect();
        statuses.sort_by(|a, b| a.key.cmp(&b.key));
        statuses
    }

    /// The address `key` will get (see [`PodBackend::reserve_ip`](super::PodBackend::reserve_ip)).
    pub(crate) fn reserve_ip(&self, key: &PodKey) -> Result<Option<IpAddr>, BackendError> {
        if let Ok(pod) = self.pod(key) {
            return Ok(Some(IpAddr::V4(pod.ip)));
        }
        let ip = self
            .addresses
            .assign(key)
            .ok_or(BackendError::CapacityExhausted)?;
        Ok(Some(IpAddr::V4(ip)))
    }

    /// Creates the pod `key` with the containers `build` makes for its address, and starts them;
    /// an existing pod of that key is left as it is and its status returned.
    ///
    /// An address reserved with `reserve_ip` stays reserved if creation fails (the node tries
    /// again with the environment it resolved from it); one assigned here is released. A
    /// container that cannot start stops the others and undoes the pod.
    ///
    /// With `host_network` (the node's address) the pod runs in the node's own network: no
    /// address is assigned and the pod network is left alone.
    ///
    /// With `first_only` (the pod has init containers) only the first container is started.
    pub(crate) async fn create(
        &self,
        key: &PodKey,
        host_network: Option<IpAddr>,
        first_only: bool,
        build: impl FnOnce(Ipv4Addr) -> (Vec<R::Container>, R::Data) + Send,
    ) -> Result<PodRuntimeStatus, BackendError> {
        if let Ok(pod) = self.pod(key) {
            return Ok(pod.status());
        }
        if lock(&self.pods).len() >= self.max_pods {
            return Err(BackendError::CapacityExhausted);
        }
        let (ip, reserved) = match host_network {
            Some(IpAddr::V4(ip)) => {
                self.runtime.prepare(key, None).await?;
                (ip, true)
            }
            Some(IpAddr::V6(ip)) => {
                return Err(BackendError::Other(
                    format!("hostNetwork pods need an IPv4 node address, not {ip}").into(),
                ));
            }
            None => {
                let reserved = self.addresses.assigned(key).is_some();
                let ip = self
                    .addresses
                    .assign(key)
                    .ok_or(BackendError::CapacityExhausted)?;
                if let Err(err) = self.runtime.prepare(key, Some(ip)).await {
                    if !reserved {
                        self.addresses.release_pod(key);
                    }
                    return Err(err);
                }
                (ip, reserved)
            }
        };
        let (containers, data) = build(ip);
        let mut pod = TablePod::new(key.clone(), ip, containers, data);
        pod.host_network = host_network.is_some();
        let pod = Arc::new(pod);
        let _lifecycle = Arc::clone(&pod.lifecycle)
            .try_lock_owned()
            .map_err(|_| BackendError::Other("a new pod's lifecycle lock is taken".into()))?;
        {
            let mut pods = lock(&self.pods);
            if let Some(existing) = pods.get(key) {
                // Created concurrently under the same key, hence with the same address.
                return Ok(existing.status());
            }
            pods.insert(key.clone(), Arc::clone(&pod));
        }
        let starting = if first_only { 1 } else { pod.containers.len() };
        for container in &pod.containers[..starting.min(pod.containers.len())] {
            if let Err(source) = self.runtime.start(&pod, container).await {
                tracing::warn!(pod = %pod.key, container = %container.name(), error = %source, "cannot start");
                self.abandon(&pod, !reserved).await;
                return Err(BackendError::Start {
                    container: container.name().to_owned(),
                    source,
                });
            }
        }
        self.runtime.persist(&pod);
        self.runtime.events().notify(&pod.key);
        tracing::info!(pod = %pod.key, ip = %pod.ip, "pod started");
        Ok(pod.status())
    }

    /// Undoes a create that failed half-way.
    async fn abandon(&self, pod: &Arc<RuntimePod<R>>, release_address: bool) {
        for container in &pod.containers {
            if let Err(err) = self.runtime.stop(pod, container, Duration::ZERO).await {
                tracing::warn!(pod = %pod.key, error = %err, "cannot stop a container of a failed pod");
            }
        }
        self.remove(pod, release_address).await;
    }

    /// Forgets a pod whose containers are stopped, and its address unless told to keep it.
    async fn remove(&self, pod: &Arc<RuntimePod<R>>, release_address: bool) {
        self.runtime.forget(pod);
        {
            let mut pods = lock(&self.pods);
            if pods.get(&pod.key).is_some_and(|p| Arc::ptr_eq(p, pod)) {
                pods.remove(&pod.key);
            }
        }
        if release_address && !pod.host_network {
            self.addresses.release_pod(&pod.key);
            self.runtime.unprepare(&pod.key, pod.ip).await;
        }
    }

    /// Stops the current run of one container (if any) and starts it again.
    pub(crate) async fn restart(&self, key: &PodKey, name: &str) -> Result<(), BackendError> {
        let (pod, container) = self.container(key, name)?;
        let _lifecycle = pod.lifecycle.lock().await;
        if pod.is_deleting() {
            return Err(BackendError::NotFound(key.clone()));
        }
        self.runtime
            .stop(&pod, &container, self.runtime.restart_grace())
            .await?;
        container.with_status(ContainerStatusCell::restarting);
        let started = self.runtime.start(&pod, &container).await;
        if let Err(err) = &started {
            container.with_status(|cell| {
                cell.phase = Phase::Waiting {
                    reason: "RunContainerError".into(),
                    message: Some(err.to_string()),
                };
            });
        }
        self.runtime.persist(&pod);
        self.runtime.events().notify(key);
        started.map_err(|source| BackendError::Start {
            container: name.to_owned(),
            source,
        })
    }

    /// Stops every container of the pod within `grace` and forgets it; an unknown key only
    /// releases the address reserved for it, if any.
    pub(crate) async fn delete(&self, key: &PodKey, grace: Duration) -> Result<(), BackendError> {
        let Ok(pod) = self.pod(key) else {
            self.addresses.release_pod(key);
            return Ok(());
        };
        pod.deleting.store(true, Ordering::SeqCst);
        let _lifecycle = pod.lifecycle.lock().await;
        // The containers first, then the sidecars, in the time the grace leaves them.
        let began = tokio::time::Instant::now();
        for last in [false, true] {
            // Sidecars get at least a little, as a kubelet gives them.
            let grace = grace
                .saturating_sub(began.elapsed())
                .max(grace.min(SIDECAR_MIN_GRACE));
            let stops = pod
                .containers
                .iter()
                .filter(|c| c.stops_last() == last)
                .map(|c| self.runtime.stop(&pod, c, grace));
            for outcome in futures::future::join_all(stops).await {
                outcome?;
            }
        }
        self.remove(&pod, true).await;
        self.runtime.events().notify(key);
        tracing::info!(pod = %key, "pod deleted");
        Ok(())
    }

    /// Deletes every pod, each with `grace`; the first failure is returned once all were tried.
    pub(crate) async fn delete_all(&self, grace: Duration) -> Result<(), BackendError> {
        let keys: Vec<PodKey> = lock(&self.pods).keys().cloned().collect();
        let deletions = keys.iter().map(|key| self.delete(key, grace));
        let mut result = Ok(());
        for outcome in futures::future::join_all(deletions).await {
            if outcome.is_err() && result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::SystemTime;

    use super::*;
    use crate::node::backend::ContainerState;
    use crate::node::container_status::Exit;

    /// A container that "runs" when started and fails to start when its name says so.
    #[derive(Debug)]
    struct Fake {
        name: String,
        status: Mutex<ContainerStatusCell>,
    }

    impl TableContainer for Fake {
        fn name(&self) -> &str {
            &self.name
        }
        fn with_status<T>(&self, f: impl FnOnce(&mut ContainerStatusCell) -> T) -> T {
            f(&mut lock(&self.status))
        }
    }

    #[derive(Debug, Default)]
    struct FakeRuntime {
        events: EventHub,
        prepared: Mutex<Vec<Ipv4Addr>>,
        stops: AtomicUsize,
        forgotten: AtomicUsize,
        fail_prepare: AtomicBool,
    }

    #[async_trait]
    impl PodRuntime for FakeRuntime {
        type Container = Fake;
        type Data = ();

        async fn prepare(&self, _key: &PodKey, ip: Option<Ipv4Addr>) -> Result<(), BackendError> {
            if self.fail_prepare.load(Ordering::SeqCst) {
                return Err(BackendError::Other("no network".into()));
            }
            lock(&self.prepared).extend(ip);
            Ok(())
        }
        async fn unprepare(&self, _key: &PodKey, ip: Ipv4Addr) {
            lock(&self.prepared).retain(|p| *p != ip);
        }
        async fn start(&self, _pod: &Arc<RuntimePod<Self>>, c: &Arc<Fake>) -> io::Result<()> {
            if c.name.starts_with("broken") {
                return Err(io::Error::other("cannot start"));
            }
            c.with_status(|cell| cell.started(SystemTime::now()));
            Ok(())
        }
        async fn stop(
            &self,
            _pod: &RuntimePod<Self>,
            c: &Fake,
            _grace: Duration,
        ) -> io::Result<()> {
            self.stops.fetch_add(1, Ordering::SeqCst);
            c.with_status(|cell| {
                if let Phase::Running { started_at } = cell.phase {
                    cell.exited(Exit::new(0, None, started_at, SystemTime::now()));
                }
            });
            Ok(())
        }
        fn restart_grace(&self) -> Duration {
            Duration::ZERO
        }
        fn forget(&self, _pod: &RuntimePod<Self>) {
            self.forgotten.fetch_add(1, Ordering::SeqCst);
        }
        fn events(&self) -> &EventHub {
            &self.events
        }
    }

    fn table(max_pods: u32) -> PodTable<FakeRuntime> {
        PodTable::new(
            FakeRuntime::default(),
            AddressPool::new("127.66.0.0/24".parse().unwrap()),
            max_pods,
        )
    }

    fn containers(names: &[&str]) -> impl FnOnce(Ipv4Addr) -> (Vec<Fake>, ()) + Send + use<> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        move |_| {
            let containers = names
                .into_iter()
                .map(|name| Fake {
                    status: Mutex::new(ContainerStatusCell::new(name.clone())),
                    name,
                })
                .collect();
            (containers, ())
        }
    }

    fn key(name: &str) -> PodKey {
        PodKey::new("ns", name, format!("uid-{name}"))
    }

    impl PodTable<FakeRuntime> {
        async fn create_test(
            &self,
            key: &PodKey,
            build: impl FnOnce(Ipv4Addr) -> (Vec<Fake>, ()) + Send,
        ) -> Result<PodRuntimeStatus, BackendError> {
            self.create(key, None, false, build).await
        }
    }

    #[tokio::test]
    async fn host_network_pods_take_the_node_address_and_no_pool_address() {
        let table = table(10);
        let host: IpAddr = "127.0.0.1".parse().unwrap();
        let status = table
            .create(&key("host"), Some(host), false, containers(&["app"]))
            .await
            .unwrap();
        assert_eq!(status.pod_ip, Some(host));
        assert_eq!(table.addresses.in_use(), 0);
        assert!(lock(&table.runtime().prepared).is_empty());
        table.delete(&key("host"), Duration::ZERO).await.unwrap();
        assert_eq!(table.addresses.in_use(), 0);
    }

    #[tokio::test]
    async fn create_is_idempotent_and_uses_the_reserved_address() {
        let table = table(10);
        let reserved = table.reserve_ip(&key("a")).unwrap();
        let first = table
            .create_test(&key("a"), containers(&["app"]))
            .await
            .unwrap();
        assert_eq!(first.pod_ip, reserved);
        assert!(matches!(
            first.containers[0].state,
            ContainerState::Running { .. }
        ));
        let again = table
            .create_test(&key("a"), containers(&["other"]))
            .await
            .unwrap();
        assert_eq!(again.containers[0].name, "app", "what runs is kept");
        assert_eq!(table.reserve_ip(&key("a")).unwrap(), reserved);
        assert_eq!(table.list().len(), 1);
    }

    #[tokio::test]
    async fn a_container_that_cannot_start_undoes_the_pod_but_keeps_a_reservation() {
        let table = table(10);
        let err = table
            .create_test(&key("fresh"), containers(&["app", "broken"]))
            .await
            .unwrap_err();
        assert!(matches!(err, BackendError::Start { ref container, .. } if container == "broken"));
        assert!(table.status(&key("fresh")).is_none());
        assert_eq!(table.runtime().stops.load(Ordering::SeqCst), 2);
        assert_eq!(table.runtime().forgotten.load(Ordering::SeqCst), 1);
        assert_eq!(
            table.addresses.in_use(),
            0,
            "an address assigned by create is released"
        );
        assert!(lock(&table.runtime().prepared).is_empty());

        let reserved = table.reserve_ip(&key("kept")).unwrap();
        table
            .create_test(&key("kept"), containers(&["broken"]))
            .await
            .unwrap_err();
        assert_eq!(
            table.reserve_ip(&key("kept")).unwrap(),
            reserved,
            "still reserved"
        );
        assert_eq!(table.addresses.in_use(), 1);
    }

    #[tokio::test]
    async fn a_network_that_cannot_be_prepared_releases_the_address() {
        let table = table(10);
        table.runtime().fail_prepare.store(true, Ordering::SeqCst);
        table
            .create_test(&key("a"), containers(&["app"]))
            .await
            .unwrap_err();
        assert_eq!(table.addresses.in_use(), 0);
    }

    #[tokio::test]
    async fn capacity_counts_pods() {
        let table = table(1);
        table
            .create_test(&key("a"), containers(&["app"]))
            .await
            .unwrap();
        let err = table
            .create_test(&key("b"), containers(&["app"]))
            .await
            .unwrap_err();
        assert!(matches!(err, BackendError::CapacityExhausted));
    }

    #[tokio::test]
    async fn restart_counts_and_delete_forgets_everything() {
        let table = table(10);
        table
            .create_test(&key("a"), containers(&["app"]))
            .await
            .unwrap();
        table.restart(&key("a"), "app").await.unwrap();
        let status = table.status(&key("a")).unwrap();
        assert_eq!(status.containers[0].restart_count, 1);
        assert!(status.containers[0].last_termination.is_some());
        assert!(matches!(
            table.restart(&key("a"), "nope").await,
            Err(BackendError::NotFound(_))
        ));

        table.delete(&key("a"), Duration::ZERO).await.unwrap();
        assert!(table.status(&key("a")).is_none());
        assert_eq!(table.addresses.in_use(), 0);
        assert!(lock(&table.runtime().prepared).is_empty());
        assert!(matches!(
            table.restart(&key("a"), "app").await,
            Err(BackendError::NotFound(_))
        ));
        // Deleting what was only reserved releases the reservation.
        table.reserve_ip(&key("b")).unwrap();
        table.delete(&key("b"), Duration::ZERO).await.unwrap();
        assert_eq!(table.addresses.in_use(), 0);
    }
}
