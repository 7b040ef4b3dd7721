//! What a worker is told, kept as the latest news of each kind rather than queued.
//!
//! A worker only ever needs the newest version of its pod, whether the pod is gone, and whether
//! the backend reported a change since it last looked: an [`Inbox`] keeps exactly that, so it
//! costs a few words per pod instead of a channel's block of message slots, and a burst of
//! updates never queues up.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;

use super::super::lock;

/// What a worker is told.
#[derive(Debug)]
pub(crate) enum WorkerMsg {
    /// A new version of the pod.
    Pod(Box<Pod>),
    /// The pod object is gone from the API server.
    Gone,
    /// The backend reports a change.
    Runtime,
}

/// A new inbox: the sender for the pod watcher, the inbox for the worker.
pub(crate) fn inbox() -> (InboxSender, Inbox) {
    let shared = Arc::new(Shared::default());
    (InboxSender(Arc::clone(&shared)), Inbox(shared))
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Pending {
    pod: Option<Box<Pod>>,
    gone: bool,
    runtime: bool,
    /// The sender is gone: the node stops, the worker with it.
    sender_dropped: bool,
    /// The worker is done: news for it is refused.
    inbox_dropped: bool,
}

/// Tells one worker; dropping it tells the worker to stop.
#[derive(Debug)]
pub(crate) struct InboxSender(Arc<Shared>);

impl InboxSender {
    /// Leaves `msg` for the worker (a newer pod replaces one not yet read); gives it back when
    /// the worker is done.
    pub(crate) fn send(&self, msg: WorkerMsg) -> Result<(), WorkerMsg> {
        {
            let mut pending = lock(&self.0.pending);
            if pending.inbox_dropped {
                return Err(msg);
            }
            match msg {
                WorkerMsg::Pod(pod) => pending.pod = Some(pod),
                WorkerMsg::Gone => pending.gone = true,
                WorkerMsg::Runtime => pending.runtime = true,
            }
        }
        self.0.notify.notify_one();
        Ok(())
    }

    /// Whether the worker is done.
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.0.pending).inbox_dropped
    }
}

impl Drop for InboxSender {
    fn drop(&mut self) {
        lock(&self.0.pending).sender_dropped = true;
        self.0.notify.notify_one();
    }
}

/// A worker's side: the news left for it, oldest kind first.
#[derive(Debug)]
pub(crate) struct Inbox(Arc<Shared>);

impl Inbox {
    /// The next piece of news, waiting for one; `None` once the sender is dropped and nothing is
    /// left. Cancel-safe: news is taken only when it is returned.
    pub(crate) async fn recv(&mut self) -> Option<WorkerMsg> {
        loop {
            // A send between this check and the wait leaves a permit: no wake-up is lost.
            let notified = self.0.notify.notified();
            if let Some(msg) = self.try_recv() {
                return Some(msg);
            }
            if lock(&self.0.pending).sender_dropped {
                return None;
            }
            notified.await;
        }
    }

    /// The next piece of news if there is one.
    pub(crate) fn try_recv(&self) -> Option<WorkerMsg> {
        let mut pending = lock(&self.0.pending);
        if let Some(pod) = pending.pod.take() {
            Some(WorkerMsg::Pod(pod))
        } else if std::mem::take(&mut pending.gone) {
            Some(WorkerMsg::Gone)
        } else if std::mem::take(&mut pending.runtime) {
            Some(WorkerMsg::Runtime)
        } else {
            None
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut pending = lock(&self.0.pending);
        pending.inbox_dropped = true;
        pending.pod = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(version: &str) -> Box<Pod> {
        let mut pod = Pod::default();
        pod.metadata.resource_version = Some(version.to_owned());
        Box::new(pod)
    }

    fn version(msg: Option<WorkerMsg>) -> Option<String> {
        match msg {
            Some(WorkerMsg::Pod(pod)) => pod.metadata.resource_version,
            other => panic!("not a pod: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_newest_pod_replaces_one_not_read_and_each_kind_is_told_once() {
        let (tx, mut rx) = inbox();
        tx.send(WorkerMsg::Runtime).unwrap();
        tx.send(WorkerMsg::Pod(pod("1"))).unwrap();
        tx.send(WorkerMsg::Pod(pod("2"))).unwrap();
        tx.send(WorkerMsg::Runtime).unwrap();
        assert_eq!(version(rx.recv().await), Some("2".to_owned()));
        assert!(matches!(rx.recv().await, Some(WorkerMsg::Runtime)));
        assert!(rx.try_recv().is_none());

        tx.send(WorkerMsg::Gone).unwrap();
        drop(tx);
        assert!(matches!(rx.recv().await, Some(WorkerMsg::Gone)));
        assert!(rx.recv().await.is_none(), "the sender is gone");
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_for_news_sent_later() {
        let (tx, mut rx) = inbox();
        let worker = tokio::spawn(async move { version(rx.recv().await) });
        tokio::task::yield_now().await;
        tx.send(WorkerMsg::Pod(pod("7"))).unwrap();
        assert_eq!(worker.await.unwrap(), Some("7".to_owned()));
        assert!(tx.is_closed(), "the worker is done");
        assert!(matches!(tx.send(WorkerMsg::Gone), Err(WorkerMsg::Gone)));
    }
}
