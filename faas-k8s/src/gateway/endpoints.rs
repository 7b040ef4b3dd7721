//! [`RoutingTable`]: the ready endpoints of every function, the gateway's
//! in-flight and held counts, and the least-loaded choice of an endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use tokio::sync::watch;

use super::key::FunctionKey;
use super::policy::AsyncCallPolicy;

/// One ready endpoint of a function: a pod's address and the calls the gateway
/// has in flight to it.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    pod: Option<String>,
    in_flight: AtomicU64,
}

impl Endpoint {
    /// The pod's address and port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pod's name, when the EndpointSlice names it.
    pub fn pod(&self) -> Option<&str> {
        self.pod.as_deref()
    }

    /// Calls the gateway has in flight to this endpoint now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// A ready address of a function, as an EndpointSlice lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointAddress {
    pub(crate) addr: SocketAddr,
    pub(crate) pod: Option<String>,
}

impl EndpointAddress {
    /// The address `addr`, of no named pod.
    pub fn new(addr: SocketAddr) -> Self {
        EndpointAddress { addr, pod: None }
    }

    /// Names the pod behind the address.
    #[must_use]
    pub fn with_pod(mut self, pod: impl Into<String>) -> Self {
        self.pod = Some(pod.into());
        self
    }
}

/// The ready endpoints of a function, as held calls watch them.
pub(crate) type ReadyEndpoints = Arc<[Arc<Endpoint>]>;

/// What the gateway knows and counts of one function.
#[derive(Debug)]
pub(crate) struct FunctionRoutes {
    key: FunctionKey,
    ready: watch::Sender<ReadyEndpoints>,
    known: AtomicBool,
    in_flight: AtomicU64,
    held: AtomicU64,
    calls: AtomicU64,
    /// When the first call was held for the current wake-up, if one is under way.
    waking_since: Mutex<Option<Instant>>,
    /// How its asynchronous calls are retried, when its Function says.
    async_policy: RwLock<Option<Arc<AsyncCallPolicy>>>,
}

impl FunctionRoutes {
    fn new(key: FunctionKey) -> Self {
        FunctionRoutes {
            key,
            ready: watch::Sender::new(Arc::from(Vec::new())),
            known: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            held: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            waking_since: Mutex::new(None),
            async_policy: RwLock::new(None),
        }
    }

    /// How its asynchronous calls are retried, when its Function says.
    pub(crate) fn async_policy(&self) -> Option<Arc<AsyncCallPolicy>> {
        self.async_policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn key(&self) -> &FunctionKey {
        &self.key
    }

    pub(crate) fn is_known(&self) -> bool {
        self.known.load(Ordering::Acquire)
    }

    /// The ready endpoints now.
    pub(crate) fn ready(&self) -> ReadyEndpoints {
        self.ready.borrow().clone()
    }

    /// A receiver that sees every change of the ready endpoints.
    pub(crate) fn watch_ready(&self) -> watch::Receiver<ReadyEndpoints> {
        self.ready.subscribe()
    }

    pub(crate) fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Counts one held call while the guard lives; `None` when `bound` calls are
    /// already held. With `at_zero`, the first held call of a wake-up starts its
    /// cold-start clock.
    pub(crate) fn hold(self: &Arc<Self>, bound: u64, at_zero: bool) -> Option<HeldCall> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < bound).then_some(held + 1)
            })
            .ok()?;
        if at_zero {
            self.waking_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(Instant::now);
        }
        Some(HeldCall {
            routes: self.clone(),
        })
    }

    /// Ends the current wake-up: how long it took since its first held call.
    pub(crate) fn woken(&self) -> Option<std::time::Duration> {
        self.waking_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(|since| since.elapsed())
    }

    /// Counts one call in flight to `endpoint` while the guard lives.
    pub(crate) fn start_call(self: &Arc<Self>, endpoint: Arc<Endpoint>) -> InFlightCall {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightCall {
            routes: self.clone(),
            endpoint,
        }
    }

    /// Counts a call that was answered (for the OpenFaaS invocation count).
    pub(crate) fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// The least loaded of two endpoints drawn at random (power of two choices),
    /// leaving out `tried`; `None` when no other endpoint is ready.
    pub(crate) fn pick(&self, tried: &[SocketAddr]) -> Option<Arc<Endpoint>> {
        let ready = self.ready();
        pick_least_loaded(&ready, tried)
    }
}

/// Power of two choices over the endpoints not in `tried`.
pub(crate) fn pick_least_loaded(
    endpoints: &[Arc<Endpoint>],
    tried: &[SocketAddr],
) -> Option<Arc<Endpoint>> {
    let candidates: Vec<&Arc<Endpoint>> = if tried.is_empty() {
        endpoints.iter().collect()
    } else {
        endpoints
            .iter()
            .filter(|e| !tried.contains(&e.addr))
            .collect()
    };
    match candidates.len() {
        0 => None,
        1 => Some(candidates[0].clone()),
        n => {
            let first = fastrand::usize(..n);
            let mut second = fastrand::usize(..n - 1);
            if second >= first {
                second += 1;
            }
            let (a, b) = (candidates[first], candidates[second]);
            Some(if b.in_flight() < a.in_flight() { b } else { a }.clone())
        }
    }
}

/// A call held at zero; dropping it releases its place.
#[derive(Debug)]
pub(crate) struct HeldCall {
    routes: Arc<FunctionRoutes>,
}

impl Drop for HeldCall {
    fn drop(&mut self) {
        self.routes.held.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A call in flight to one endpoint; dropping it ends the count.
#[derive(Debug)]
pub(crate) struct InFlightCall {
    routes: Arc<FunctionRoutes>,
    endpoint: Arc<Endpoint>,
}

impl Drop for InFlightCall {
    fn drop(&mut self) {
        self.routes.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The load of one function at one moment, as the autoscaler reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionLoad {
    /// The function.
    pub function: FunctionKey,
    /// Calls in flight to its replicas through the gateway.
    pub in_flight: u64,
    /// Calls held while no replica is ready.
    pub held: u64,
    /// Ready endpoints.
    pub ready: u32,
    /// In-flight calls per pod (pods the EndpointSlice names).
    pub pods: Vec<(String, u64)>,
}

/// The functions the gateway routes to: their ready endpoints (from
/// EndpointSlices), and the calls in flight and held for each.
///
/// The gateway fills it from an EndpointSlice reflector; the autoscaler reads
/// [`load`](Self::load) from it. Clones are cheap handles (wrap it in an `Arc`).
#[derive(Debug, Default)]
pub struct RoutingTable {
    functions: RwLock<HashMap<FunctionKey, Arc<FunctionRoutes>>>,
    synced: watch::Sender<bool>,
    policies_synced: watch::Sender<bool>,
    wakes: watch::Sender<u64>,
}

impl RoutingTable {
    /// An empty table.
    pub fn new() -> Self {
        RoutingTable::default()
    }

    /// The routes of `key`, made on first use (unknown until a slice names it).
    pub(crate) fn routes(&self, key: &FunctionKey) -> Arc<FunctionRoutes> {
        if let Some(routes) = self
            .functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return routes.clone();
        }
        self.functions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(FunctionRoutes::new(key.clone())))
            .clone()
    }

    /// Sets the ready endpoints of `key` and marks it known; endpoints that stay
    /// keep their in-flight counts. EndpointSlice discovery calls it; a gateway
    /// without discovery (static endpoints, tests) can too. Calls held for `key`
    /// are released as soon as it has an endpoint.
    pub fn set_endpoints(&self, key: &FunctionKey, addresses: Vec<EndpointAddress>) {
        let routes = self.routes(key);
        routes.known.store(true, Ordering::Release);
        routes.ready.send_if_modified(|ready| {
            let same = ready.len() == addresses.len()
                && ready
                    .iter()
                    .zip(&addresses)
                    .all(|(e, a)| e.addr == a.addr && e.pod == a.pod);
            if same {
                return false;
            }
            let next: Vec<Arc<Endpoint>> = addresses
                .into_iter()
                .map(|address| {
                    ready
                        .iter()
                        .find(|e| e.addr == address.addr && e.pod == address.pod)
                        .cloned()
                        .unwrap_or_else(|| {
                            Arc::new(Endpoint {
                                addr: address.addr,
                                pod: address.pod,
                                in_flight: AtomicU64::new(0),
                            })
                        })
                })
                .collect();
            *ready = Arc::from(next);
            true
        });
    }

    /// Sets how the asynchronous calls of `key` are retried and dead-lettered (`None`: the
    /// gateway's default policy). The gateway's Function discovery calls it from each Function's
    /// `spec.policy`; a gateway without discovery can too.
    pub fn set_async_policy(&self, key: &FunctionKey, policy: Option<AsyncCallPolicy>) {
        let routes = self.routes(key);
        *routes
            .async_policy
            .write()
            .unwrap_or_else(PoisonError::into_inner) = policy.map(Arc::new);
    }

    /// The functions that have an asynchronous call policy of their own.
    pub(crate) fn with_async_policy(&self) -> Vec<FunctionKey> {
        self.functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|r| r.async_policy().is_some())
            .map(|r| r.key.clone())
            .collect()
    }

    /// Forgets `key`: it has no Service any more, and calls to it get 404.
    pub fn remove(&self, key: &FunctionKey) {
        let routes = self.routes(key);
        routes.known.store(false, Ordering::Release);
        routes.ready.send_if_modified(|ready| {
            let changed = !ready.is_empty();
            *ready = Arc::from(Vec::new());
            changed
        });
    }

    /// Whether a Service (an EndpointSlice) names `key`: calls to it are routed or held, not 404.
    pub fn is_known(&self, key: &FunctionKey) -> bool {
        self.known_routes(key).is_some()
    }

    /// Every function currently known.
    pub(crate) fn known(&self) -> Vec<FunctionKey> {
        self.functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|r| r.is_known())
            .map(|r| r.key.clone())
            .collect()
    }

    /// The routes of a known function.
    pub(crate) fn known_routes(&self, key: &FunctionKey) -> Option<Arc<FunctionRoutes>> {
        self.functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|r| r.is_known())
            .cloned()
    }

    /// Marks the table as filled from a complete list of EndpointSlices.
    pub(crate) fn mark_synced(&self) {
        self.synced.send_replace(true);
    }

    /// Whether the table was filled from a complete list at least once.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the table was filled from a complete list.
    pub async fn synced(&self) {
        let mut synced = self.synced.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = synced.wait_for(|synced| *synced).await;
    }

    /// Marks the functions' policies as read from a complete list (or given up on).
    pub(crate) fn mark_policies_synced(&self) {
        self.policies_synced.send_replace(true);
    }

    /// Waits until the functions' policies were read from a complete list.
    pub(crate) async fn policies_synced(&self) {
        let mut synced = self.policies_synced.subscribe();
        let _ = synced.wait_for(|synced| *synced).await;
    }

    /// Tells whoever watches [`wakes`](Self::wakes) that a call is held.
    pub(crate) fn notify_held(&self) {
        self.wakes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes each time a call is held while its function has no
    /// ready endpoint: the autoscaler decides at once instead of at its next tick.
    pub fn wakes(&self) -> watch::Receiver<u64> {
        self.wakes.subscribe()
    }

    /// The load of every function that is known or has calls held or in flight.
    pub fn load(&self) -> Vec<FunctionLoad> {
        let functions = self
            .functions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut load: Vec<FunctionLoad> = functions
            .values()
            .filter(|r| r.is_known() || r.held() > 0 || r.in_flight() > 0)
            .map(|routes| {
                let ready = routes.ready();
                FunctionLoad {
                    function: routes.key.clone(),
                    in_flight: routes.in_flight(),
                    held: routes.held(),
                    ready: u32::try_from(ready.len()).unwrap_or(u32::MAX),
                    pods: ready
                        .iter()
                        .filter_map(|e| Some((e.pod.clone()?, e.in_flight())))
                        .collect(),
                }
            })
            .collect();
        load.sort_by(|a, b| a.function.cmp(&b.function));
        load
    }

    /// The load of one function (zeros when the gateway has not seen it).
    pub fn load_of(&self, key: &FunctionKey) -> FunctionLoad {
        let routes = self.routes(key);
        let ready = routes.ready();
        FunctionLoad {
            function: key.clone(),
            in_flight: routes.in_flight(),
            held: routes.held(),
            ready: u32::try_from(ready.len()).unwrap_or(u32::MAX),
            pods: ready
                .iter()
                .filter_map(|e| Some((e.pod.clone()?, e.in_flight())))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> EndpointAddress {
        EndpointAddress {
            addr: SocketAddr::from(([10, 0, 0, last], 8080)),
            pod: Some(format!("pod-{last}")),
        }
    }

    #[test]
    fn endpoints_that_stay_keep_their_counts() {
        let table = RoutingTable::new();
        let key = FunctionKey::new("ns", "f");
        table.set_endpoints(&key, vec![address(1), address(2)]);
        let routes = table.known_routes(&key).expect("known");
        let first = routes.ready()[0].clone();
        let call = routes.start_call(first.clone());
        table.set_endpoints(&key, vec![address(1), address(3)]);
        let kept = routes.ready()[0].clone();
        assert!(Arc::ptr_eq(&first, &kept));
        assert_eq!(kept.in_flight(), 1);
        assert_eq!(routes.in_flight(), 1);
        drop(call);
        assert_eq!(kept.in_flight(), 0);
        let load = table.load_of(&key);
        assert_eq!(load.ready, 2);
        assert_eq!(
            load.pods,
            vec![("pod-1".to_owned(), 0), ("pod-3".to_owned(), 0)]
        );
        table.remove(&key);
        assert!(table.known_routes(&key).is_none());
        assert!(table.known().is_empty());
    }

    #[test]
    fn two_choices_prefer_the_less_loaded_and_skip_tried() {
        let table = RoutingTable::new();
        let key = FunctionKey::new("ns", "f");
        table.set_endpoints(&key, vec![address(1), address(2)]);
        let routes = table.routes(&key);
        let busy = routes.ready()[0].clone();
        let _calls: Vec<_> = (0..5).map(|_| routes.start_call(busy.clone())).collect();
        for _ in 0..50 {
            assert_eq!(routes.pick(&[]).unwrap().addr(), address(2).addr);
        }
        assert_eq!(
            routes.pick(&[address(2).addr]).unwrap().addr(),
            address(1).addr
        );
        assert!(routes.pick(&[address(1).addr, address(2).addr]).is_none());
    }

    #[test]
    fn held_calls_are_bounded_and_time_their_wake_up() {
        let table = RoutingTable::new();
        let routes = table.routes(&FunctionKey::new("ns", "f"));
        let first = routes.hold(2, true).expect("room");
        let second = routes.hold(2, true).expect("room");
        assert!(routes.hold(2, true).is_none());
        assert_eq!(table.load_of(routes.key()).held, 2);
        drop(first);
        assert!(routes.hold(2, true).is_some());
        drop(second);
        assert!(routes.woken().is_some());
        assert!(routes.woken().is_none());
    }
}
