//! Status change notifications, fanned out to every subscriber.
//!
//! A notification only says "this pod changed; look again", so a subscriber that falls behind
//! needs each key once, not once per change: every subscriber keeps a queue of distinct pending
//! keys. Memory is bounded by the number of pods, nothing is ever dropped, and a slow subscriber
//! never slows down the backend.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use tokio::sync::Notify;

use super::backend::{PodEvents, PodKey};
use super::lock;

/// Fans pod change notifications out to every [`PodEvents`] stream it handed out.
///
/// ```
/// # futures::executor::block_on(async {
/// use futures::StreamExt;
/// use faas_k8s::node::PodKey;
/// use faas_k8s::node::EventHub;
///
/// let hub = EventHub::new();
/// let mut events = hub.subscribe();
/// let key = PodKey::new("default", "web", "1");
/// hub.notify(&key);
/// hub.notify(&key); // coalesced with the first: the subscriber has not looked yet
/// assert_eq!(events.next().await, Some(key));
/// # });
/// ```
#[derive(Clone, Default)]
pub struct EventHub {
    subscribers: Arc<Mutex<Vec<Weak<Subscriber>>>>,
}

#[derive(Default)]
struct Subscriber {
    pending: Mutex<Pending>,
    notify: Notify,
}

#[derive(Default)]
struct Pending {
    order: VecDeque<PodKey>,
    set: HashSet<PodKey>,
}

impl EventHub {
    /// A hub with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells every subscriber that `key` changed.
    pub fn notify(&self, key: &PodKey) {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|weak| match weak.upgrade() {
            Some(subscriber) => {
                let mut pending = lock(&subscriber.pending);
                if pending.set.insert(key.clone()) {
                    pending.order.push_back(key.clone());
                }
                drop(pending);
                subscriber.notify.notify_one();
                true
            }
            None => false,
        });
    }

    /// A new stream of the keys of pods that change from now on; dropping it unsubscribes.
    pub fn subscribe(&self) -> PodEvents {
        let subscriber = Arc::new(Subscriber::default());
        lock(&self.subscribers).push(Arc::downgrade(&subscriber));
        futures::stream::unfold(subscriber, |subscriber| async move {
            loop {
                let next = {
                    let mut pending = lock(&subscriber.pending);
                    let next = pending.order.pop_front();
                    if let Some(key) = &next {
                        pending.set.remove(key);
                    }
                    next
                };
                match next {
                    Some(key) => return Some((key, subscriber)),
                    None => subscriber.notify.notified().await,
                }
            }
        })
        .boxed()
    }

    /// How many streams are still subscribed.
    pub fn subscribers(&self) -> usize {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|weak| weak.strong_count() > 0);
        subscribers.len()
    }
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("subscribers", &self.subscribers())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> PodKey {
        PodKey::new("ns", name, "uid")
    }

    #[tokio::test]
    async fn every_subscriber_sees_every_key_once_in_order() {
        let hub = EventHub::new();
        let mut a = hub.subscribe();
        let mut b = hub.subscribe();
        hub.notify(&key("x"));
        hub.notify(&key("y"));
        hub.notify(&key("x"));
        for stream in [&mut a, &mut b] {
            assert_eq!(stream.next().await, Some(key("x")));
            assert_eq!(stream.next().await, Some(key("y")));
        }
        hub.notify(&key("x"));
        assert_eq!(a.next().await, Some(key("x")));
    }

    #[tokio::test]
    async fn a_waiting_subscriber_is_woken() {
        let hub = EventHub::new();
        let mut events = hub.subscribe();
        let waiter = tokio::spawn(async move { events.next().await });
        tokio::task::yield_now().await;
        hub.notify(&key("late"));
        assert_eq!(waiter.await.unwrap(), Some(key("late")));
    }

    #[test]
    fn dropped_streams_unsubscribe() {
        let hub = EventHub::new();
        let events = hub.subscribe();
        assert_eq!(hub.subscribers(), 1);
        drop(events);
        hub.notify(&key("nobody"));
        assert_eq!(hub.subscribers(), 0);
    }
}
