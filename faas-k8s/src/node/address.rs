//! Pod addresses: one loopback address per pod, handed out from a CIDR range.
//!
//! Every pod gets an address of its own, so many pods can listen on the same port as they would on
//! a real node. On Linux the whole of `127.0.0.0/8` answers on the loopback interface without any
//! set-up, which is why the default range is `127.1.0.0/16`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;

use super::backend::PodKey;
use super::lock;

/// The range pods get their addresses from by default: 65 024 usable loopback addresses.
pub const DEFAULT_POD_CIDR: &str = "127.1.0.0/16";

/// Hands out pod addresses from an IPv4 network ([`Ipv4Net`]), never one that is still in use.
///
/// Addresses are given round-robin, so an address just released is the last to be given again
/// (a client that still holds a connection to a deleted pod does not reach its successor). The
/// network's own address and every address ending in `.0` or `.255` are skipped.
///
/// Addresses are either anonymous ([`allocate`](Self::allocate)) or assigned to a pod
/// ([`assign`](Self::assign)): asking again for the same pod gives the same address, which lets
/// the node learn a pod's address before the pod is created.
///
/// The pool is cheap to clone and every clone shares the same addresses, so two backends of one
/// node can draw from one range without ever handing out the same address twice.
///
/// ```
/// use faas_k8s::node::AddressPool;
///
/// let pool = AddressPool::new("127.1.0.0/16".parse().unwrap());
/// let a = pool.allocate().unwrap();
/// let b = pool.allocate().unwrap();
/// assert_ne!(a, b);
/// pool.release(a);
///
/// let key = faas_k8s::node::PodKey::new("default", "web", "uid-1");
/// let ip = pool.assign(&key).unwrap();
/// assert_eq!(pool.assign(&key), Some(ip));
/// assert_eq!(pool.release_pod(&key), Some(ip));
/// ```
#[derive(Clone)]
pub struct AddressPool {
    cidr: Ipv4Net,
    state: Arc<Mutex<PoolState>>,
}

struct PoolState {
    /// Offset (from the network address) of the next candidate.
    cursor: u64,
    in_use: HashSet<Ipv4Addr>,
    by_pod: HashMap<PodKey, Ipv4Addr>,
}

impl AddressPool {
    /// A pool over `cidr` with nothing in use (host bits of `cidr` are ignored: `127.1.2.3/16`
    /// is `127.1.0.0/16`).
    pub fn new(cidr: Ipv4Net) -> Self {
        Self {
            cidr: cidr.trunc(),
            state: Arc::new(Mutex::new(PoolState {
                cursor: 0,
                in_use: HashSet::new(),
                by_pod: HashMap::new(),
            })),
        }
    }

    /// The range this pool hands addresses out of.
    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The next free address, `None` when every usable address is in use.
    pub fn allocate(&self) -> Option<Ipv4Addr> {
        self.allocate_locked(&mut lock(&self.state))
    }

    /// The address of the pod `key`: the one already assigned to it, or the next free one.
    /// `None` when it has none and every usable address is in use.
    pub fn assign(&self, key: &PodKey) -> Option<Ipv4Addr> {
        let mut state = lock(&self.state);
        if let Some(addr) = state.by_pod.get(key) {
            return Some(*addr);
        }
        let addr = self.allocate_locked(&mut state)?;
        state.by_pod.insert(key.clone(), addr);
        Some(addr)
    }

    /// The address assigned to the pod `key`, if any.
    pub fn assigned(&self, key: &PodKey) -> Option<Ipv4Addr> {
        lock(&self.state).by_pod.get(key).copied()
    }

    /// Assigns `addr` to the pod `key` (a pod adopted after a restart keeps its address). Returns
    /// `false`, assigning nothing, when the address is outside the range, not usable, or in use by
    /// anything but that pod.
    pub fn assign_existing(&self, key: &PodKey, addr: Ipv4Addr) -> bool {
        if !self.cidr.contains(&addr) || !self.usable(addr) {
            return false;
        }
        let mut state = lock(&self.state);
        match state.by_pod.get(key).copied() {
            Some(existing) => existing == addr,
            None if state.in_use.insert(addr) => {
                state.by_pod.insert(key.clone(), addr);
                true
            }
            None => false,
        }
    }

    /// Gives back the address assigned to the pod `key`, returning it.
    pub fn release_pod(&self, key: &PodKey) -> Option<Ipv4Addr> {
        let mut state = lock(&self.state);
        let addr = state.by_pod.remove(key)?;
        state.in_use.remove(&addr);
        Some(addr)
    }

    /// How many addresses the network spans (including the ones the pool skips).
    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.cidr.prefix_len()))
    }

    fn allocate_locked(&self, state: &mut PoolState) -> Option<Ipv4Addr> {
        let size = self.size();
        for step in 0..size {
            let offset = (state.cursor + step) % size;
            let candidate = self.address_at(offset);
            if self.usable(candidate) && !state.in_use.contains(&candidate) {
                state.cursor = (offset + 1) % size;
                state.in_use.insert(candidate);
                return Some(candidate);
            }
        }
        None
    }

    /// Marks `addr` as in use (a pod adopted after a restart keeps its address). Returns `false`
    /// when the address is outside the range, not usable, or already in use.
    pub fn reserve(&self, addr: Ipv4Addr) -> bool {
        if !self.cidr.contains(&addr) || !self.usable(addr) {
            return false;
        }
        lock(&self.state).in_use.insert(addr)
    }

    /// Gives `addr` back to the pool (and takes it from the pod it was assigned to, if any);
    /// releasing an address that is not in use does nothing.
    pub fn release(&self, addr: Ipv4Addr) {
        let mut state = lock(&self.state);
        state.in_use.remove(&addr);
        state.by_pod.retain(|_, a| *a != addr);
    }

    /// Whether `addr` is currently handed out.
    pub fn is_in_use(&self, addr: Ipv4Addr) -> bool {
        lock(&self.state).in_use.contains(&addr)
    }

    /// How many addresses are handed out.
    pub fn in_use(&self) -> usize {
        lock(&self.state).in_use.len()
    }

    /// How many addresses the pool can hand out at most.
    pub fn capacity(&self) -> u64 {
        (0..self.size())
            .filter(|offset| self.usable(self.address_at(*offset)))
            .count() as u64
    }

    fn address_at(&self, offset: u64) -> Ipv4Addr {
        // `offset` is below the network size, which fits the 32-bit address space.
        Ipv4Addr::from(u32::from(self.cidr.network()).wrapping_add(offset as u32))
    }

    fn usable(&self, addr: Ipv4Addr) -> bool {
        let last = addr.octets()[3];
        let is_network = addr == self.cidr.network() && self.cidr.prefix_len() < 32;
        !is_network && last != 0 && last != 255
    }
}

impl fmt::Debug for AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddressPool")
            .field("cidr", &self.cidr)
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Default for AddressPool {
    fn default() -> Self {
        Self::new(
            DEFAULT_POD_CIDR
                .parse()
                .expect("the default pod CIDR parses"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_bits_of_the_range_are_ignored() {
        let pool = AddressPool::new("127.1.2.3/16".parse().unwrap());
        assert_eq!(pool.cidr().to_string(), "127.1.0.0/16");
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 1, 0, 1)));
        assert!(
            !pool.reserve(Ipv4Addr::new(127, 2, 0, 1)),
            "outside the range"
        );
        assert_eq!(AddressPool::default().cidr().to_string(), DEFAULT_POD_CIDR);
    }

    #[test]
    fn skips_network_and_broadcast_octets() {
        let pool = AddressPool::new("127.1.0.0/23".parse().unwrap());
        let all: Vec<_> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(all.len() as u64, pool.capacity());
        assert_eq!(all.len(), 2 * 254);
        assert!(
            all.iter()
                .all(|a| a.octets()[3] != 0 && a.octets()[3] != 255)
        );
        assert_eq!(all[0], Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(pool.allocate(), None);
    }

    #[test]
    fn never_hands_out_an_address_in_use_and_reuses_released_ones_last() {
        let pool = AddressPool::new("127.9.0.0/29".parse().unwrap());
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_ne!(a, b);
        pool.release(a);
        let c = pool.allocate().unwrap();
        assert_ne!(
            c, a,
            "a released address is given again only after the others"
        );
        assert_ne!(c, b);
        assert!(pool.is_in_use(b));
    }

    #[test]
    fn pods_keep_their_address_until_released() {
        let pool = AddressPool::new("127.9.0.0/29".parse().unwrap());
        let (a, b) = (PodKey::new("n", "a", "1"), PodKey::new("n", "b", "2"));
        let ip_a = pool.assign(&a).unwrap();
        assert_eq!(pool.assign(&a), Some(ip_a));
        assert_eq!(pool.assigned(&a), Some(ip_a));
        let ip_b = pool.assign(&b).unwrap();
        assert_ne!(ip_a, ip_b);
        assert!(
            !pool.assign_existing(&PodKey::new("n", "c", "3"), ip_a),
            "taken by a"
        );
        assert!(pool.assign_existing(&a, ip_a), "already a's");
        assert_eq!(pool.release_pod(&a), Some(ip_a));
        assert_eq!(pool.release_pod(&a), None);
        assert!(!pool.is_in_use(ip_a));
        pool.release(ip_b);
        assert_eq!(pool.assigned(&b), None);
        let c = PodKey::new("n", "c", "3");
        assert!(pool.assign_existing(&c, ip_b));
        assert_eq!(pool.assigned(&c), Some(ip_b));
    }

    #[test]
    fn reserve_marks_an_adopted_address() {
        let pool = AddressPool::new("127.9.0.0/30".parse().unwrap());
        assert!(pool.reserve(Ipv4Addr::new(127, 9, 0, 1)));
        assert!(!pool.reserve(Ipv4Addr::new(127, 9, 0, 1)));
        assert!(!pool.reserve(Ipv4Addr::new(127, 10, 0, 1)));
        let next = pool.allocate().unwrap();
        assert_eq!(next, Ipv4Addr::new(127, 9, 0, 2));
        let shared = pool.clone();
        assert!(shared.is_in_use(next));
    }
}
