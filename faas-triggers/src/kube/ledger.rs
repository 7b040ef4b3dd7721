//! [`Ledger`]: the changes a kube trigger received and has not handled yet,
//! what it handled (the checkpoint), and the list-and-diff that turns a
//! (re)list into changes.
//!
//! Changes of one object are handled one after the other, in the order they
//! happened; changes of different objects run side by side. The checkpoint's
//! resourceVersion only moves past a change once it and every change
//! received before it were handled, so a restart never skips one.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::api::DynamicObject;

use super::checkpoint::{Checkpoint, Handled};
use super::config::ChangeKind;

/// One change of one object, as it reaches the function.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) kind: ChangeKind,
    pub(crate) uid: String,
    pub(crate) object: Arc<DynamicObject>,
}

impl Change {
    /// The object's resourceVersion at this change.
    pub(crate) fn resource_version(&self) -> &str {
        self.object
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or("")
    }
}

/// A change waiting for, or in, its call.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) seq: u64,
    pub(crate) change: Change,
    pub(crate) attempt: u32,
}

/// The place of a received change (or of a list's end) in the order of
/// arrival: the resourceVersion the checkpoint may move to once it and all
/// before it are done.
#[derive(Debug)]
struct Mark {
    resource_version: Option<String>,
    done: bool,
}

#[derive(Debug, Default)]
struct ObjectQueue {
    waiting: VecDeque<Queued>,
    busy: bool,
}

/// The latest state received of one live object.
#[derive(Debug, Clone)]
struct Latest {
    namespace: Option<String>,
    name: String,
    resource_version: String,
}

/// The bookkeeping of a running kube trigger.
#[derive(Debug)]
pub(crate) struct Ledger {
    api_version: String,
    kind: String,
    checkpoint: Checkpoint,
    latest: HashMap<String, Latest>,
    queues: HashMap<String, ObjectQueue>,
    ready: VecDeque<String>,
    order: BTreeMap<u64, Mark>,
    next_seq: u64,
    listing: Option<Listing>,
    pending: Arc<AtomicU64>,
    dirty: bool,
}

#[derive(Debug, Default)]
struct Listing {
    seen: HashSet<String>,
    highest: Option<u64>,
}

impl Ledger {
    /// Starts from `checkpoint`: the objects it names are the ones known.
    pub(crate) fn new(
        checkpoint: Checkpoint,
        api_version: &str,
        kind: &str,
        pending: Arc<AtomicU64>,
    ) -> Self {
        let latest = checkpoint
            .objects
            .iter()
            .map(|(uid, handled)| {
                (
                    uid.clone(),
                    Latest {
                        namespace: handled.namespace.clone(),
                        name: handled.name.clone(),
                        resource_version: handled.resource_version.clone(),
                    },
                )
            })
            .collect();
        Ledger {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            checkpoint,
            latest,
            queues: HashMap::new(),
            ready: VecDeque::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            listing: None,
            pending,
            dirty: false,
        }
    }

    /// The checkpoint as it stands.
    pub(crate) fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Whether the checkpoint changed since the last [`saved`](Self::saved).
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The checkpoint was stored.
    pub(crate) fn saved(&mut self) {
        self.dirty = false;
    }

    /// Changes received and not handled yet.
    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// A list starts: the objects it names follow, then [`list_done`](Self::list_done).
    pub(crate) fn list_started(&mut self) {
        self.listing = Some(Listing::default());
    }

    /// An object is there (listed, added or modified): a change when it is
    /// new or its resourceVersion is not the latest one known.
    pub(crate) fn applied(&mut self, object: DynamicObject) {
        let Some(uid) = object.metadata.uid.clone() else {
            tracing::warn!(name = ?object.metadata.name, "an object without a uid; skipped");
            return;
        };
        let resource_version = object.metadata.resource_version.clone().unwrap_or_default();
        if let Some(listing) = &mut self.listing {
            listing.seen.insert(uid.clone());
            if let Ok(version) = resource_version.parse::<u64>() {
                listing.highest = Some(listing.highest.map_or(version, |h| h.max(version)));
            }
        }
        let kind = match self.latest.get(&uid) {
            Some(latest) if latest.resource_version == resource_version => return,
            Some(_) => ChangeKind::Modified,
            None => ChangeKind::Added,
        };
        self.latest.insert(
            uid.clone(),
            Latest {
                namespace: object.metadata.namespace.clone(),
                name: object.metadata.name.clone().unwrap_or_default(),
                resource_version: resource_version.clone(),
            },
        );
        // A listed object's version is no place to resume from: the list's end is.
        let mark = self.listing.is_none().then_some(resource_version);
        self.enqueue(kind, uid, object, mark);
    }

    /// An object is gone.
    pub(crate) fn deleted(&mut self, object: DynamicObject) {
        let Some(uid) = object.metadata.uid.clone() else {
            return;
        };
        self.latest.remove(&uid);
        let mark = object.metadata.resource_version.clone();
        self.enqueue(ChangeKind::Deleted, uid, object, mark);
    }

    /// The list ended: every known object it did not name was deleted
    /// meanwhile (its event carries the identity known: kind, namespace,
    /// name, uid, the last resourceVersion handled). Once everything before
    /// it is handled, the checkpoint moves to the newest version listed.
    pub(crate) fn list_done(&mut self) {
        let Some(listing) = self.listing.take() else {
            return;
        };
        let mut gone: Vec<(String, Latest)> = self
            .latest
            .iter()
            .filter(|(uid, _)| !listing.seen.contains(*uid))
            .map(|(uid, latest)| (uid.clone(), latest.clone()))
            .collect();
        gone.sort_by(|a, b| a.0.cmp(&b.0));
        for (uid, latest) in gone {
            self.latest.remove(&uid);
            let object = self.last_known(&uid, latest);
            self.enqueue(ChangeKind::Deleted, uid, object, None);
        }
        if let Some(highest) = listing.highest {
            self.mark(Some(highest.to_string()), true);
        }
    }

    /// A bookmark: nothing changed up to `resource_version`.
    pub(crate) fn bookmark(&mut self, resource_version: String) {
        self.mark(Some(resource_version), true);
    }

    /// The next change whose object has none in its call, if any.
    pub(crate) fn start(&mut self) -> Option<Queued> {
        while let Some(uid) = self.ready.pop_front() {
            let Some(queue) = self.queues.get_mut(&uid) else {
                continue;
            };
            if queue.busy {
                continue;
            }
            if let Some(queued) = queue.waiting.pop_front() {
                queue.busy = true;
                return Some(queued);
            }
        }
        None
    }

    /// `queued` was handled (its call succeeded, or it is in the dead
    /// letter, or its kind is not delivered): the checkpoint records it and
    /// the object's next change may start.
    pub(crate) fn handled(&mut self, queued: &Queued) {
        let change = &queued.change;
        match change.kind {
            ChangeKind::Deleted => {
                self.checkpoint.objects.remove(&change.uid);
            }
            ChangeKind::Added | ChangeKind::Modified => {
                self.checkpoint.objects.insert(
                    change.uid.clone(),
                    Handled {
                        namespace: change.object.metadata.namespace.clone(),
                        name: change.object.metadata.name.clone().unwrap_or_default(),
                        resource_version: change.resource_version().to_owned(),
                    },
                );
            }
        }
        if let Some(mark) = self.order.get_mut(&queued.seq) {
            mark.done = true;
        }
        self.advance();
        self.pending.fetch_sub(1, Ordering::Relaxed);
        self.dirty = true;
        if let Some(queue) = self.queues.get_mut(&change.uid) {
            queue.busy = false;
            if queue.waiting.is_empty() {
                self.queues.remove(&change.uid);
            } else {
                self.ready.push_back(change.uid.clone());
            }
        }
    }

    fn enqueue(
        &mut self,
        kind: ChangeKind,
        uid: String,
        object: DynamicObject,
        mark: Option<String>,
    ) {
        let seq = self.mark(mark, false);
        let queue = self.queues.entry(uid.clone()).or_default();
        if !queue.busy && queue.waiting.is_empty() {
            self.ready.push_back(uid.clone());
        }
        queue.waiting.push_back(Queued {
            seq,
            change: Change {
                kind,
                uid,
                object: Arc::new(object),
            },
            attempt: 1,
        });
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    fn mark(&mut self, resource_version: Option<String>, done: bool) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(
            seq,
            Mark {
                resource_version,
                done,
            },
        );
        if done {
            self.advance();
        }
        seq
    }

    /// Moves the checkpoint's resourceVersion over the changes handled in a
    /// row from the oldest.
    fn advance(&mut self) {
        while let Some(entry) = self.order.first_entry() {
            if !entry.get().done {
                break;
            }
            if let Some(version) = entry.remove().resource_version
                && self.checkpoint.resource_version.as_ref() != Some(&version)
            {
                self.checkpoint.resource_version = Some(version);
                self.dirty = true;
            }
        }
    }

    /// What is known of an object deleted while nobody watched.
    fn last_known(&self, uid: &str, latest: Latest) -> DynamicObject {
        let value = serde_json::json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {
                "name": latest.name,
                "namespace": latest.namespace,
                "uid": uid,
                "resourceVersion": latest.resource_version,
            },
        });
        serde_json::from_value(value).expect("a well-formed object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(uid: &str, name: &str, version: u64) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": version.to_string()},
        }))
        .unwrap()
    }

    fn ledger(checkpoint: Checkpoint) -> Ledger {
        Ledger::new(checkpoint, "v1", "ConfigMap", Arc::default())
    }

    fn drain(ledger: &mut Ledger) -> Vec<(ChangeKind, String, String)> {
        let mut out = Vec::new();
        while let Some(queued) = ledger.start() {
            out.push((
                queued.change.kind,
                queued.change.uid.clone(),
                queued.change.resource_version().to_owned(),
            ));
            ledger.handled(&queued);
        }
        out
    }

    #[test]
    fn a_relist_after_a_restart_yields_what_changed_meanwhile() {
        let mut first = ledger(Checkpoint::default());
        first.list_started();
        first.applied(object("a", "a", 10));
        first.applied(object("b", "b", 11));
        first.applied(object("c", "c", 12));
        first.list_done();
        assert_eq!(drain(&mut first).len(), 3);
        assert_eq!(first.checkpoint().resource_version.as_deref(), Some("12"));
        assert_eq!(first.pending(), 0);

        // Stopped; meanwhile b changed, c was deleted, d was created.
        let mut second = ledger(first.checkpoint().clone());
        second.list_started();
        second.applied(object("a", "a", 10));
        second.applied(object("b", "b", 20));
        second.applied(object("d", "d", 21));
        second.list_done();
        assert_eq!(
            drain(&mut second),
            [
                (ChangeKind::Modified, "b".into(), "20".into()),
                (ChangeKind::Added, "d".into(), "21".into()),
                (ChangeKind::Deleted, "c".into(), "12".into()),
            ]
        );
        let names: Vec<&str> = second
            .checkpoint()
            .objects
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["a", "b", "d"]);
        assert_eq!(second.checkpoint().resource_version.as_deref(), Some("21"));
    }

    #[test]
    fn the_checkpoint_waits_for_the_oldest_change_and_one_object_goes_in_order() {
        let mut ledger = ledger(Checkpoint::default());
        ledger.applied(object("a", "a", 5));
        ledger.applied(object("a", "a", 6));
        ledger.applied(object("b", "b", 7));
        let first = ledger.start().unwrap();
        let other = ledger.start().unwrap();
        assert_eq!(
            (first.change.uid.as_str(), other.change.uid.as_str()),
            ("a", "b")
        );
        // a's second change waits for its first.
        assert!(ledger.start().is_none());
        ledger.handled(&other);
        assert_eq!(ledger.checkpoint().resource_version, None);
        ledger.handled(&first);
        assert_eq!(ledger.checkpoint().resource_version.as_deref(), Some("5"));
        let second = ledger.start().unwrap();
        assert_eq!(second.change.kind, ChangeKind::Modified);
        ledger.handled(&second);
        assert_eq!(ledger.checkpoint().resource_version.as_deref(), Some("7"));
        assert_eq!(ledger.pending(), 0);
    }

    #[test]
    fn an_unchanged_object_is_no_change_and_a_deletion_is_forgotten_once_handled() {
        let mut ledger = ledger(Checkpoint::default());
        ledger.applied(object("a", "a", 5));
        ledger.applied(object("a", "a", 5));
        assert_eq!(drain(&mut ledger).len(), 1);
        ledger.deleted(object("a", "a", 9));
        assert_eq!(ledger.pending(), 1);
        assert_eq!(
            drain(&mut ledger),
            [(ChangeKind::Deleted, "a".into(), "9".into())]
        );
        assert!(ledger.checkpoint().objects.is_empty());
        ledger.bookmark("15".into());
        assert_eq!(ledger.checkpoint().resource_version.as_deref(), Some("15"));
    }
}
