//! One connection of the HTTP trigger, watched: closed when its client sends
//! no request head for the header read timeout, shut down gracefully when
//! the server drains.
//!
//! hyper can enforce a header read timeout itself, but it arms a timer for
//! every request (an allocation, and a timer-wheel insertion and removal),
//! which made up a tenth of the trigger's own work per request. Here a
//! connection has one timer, re-armed only when it fires, and a request only
//! counts that it ended (no clock read): when the timer fires and no request
//! runs or has ended since it was armed, the connection has been idle for the
//! whole timeout and is closed. An idle connection is therefore closed
//! between one and two timeouts after its last request ended.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// What the requests of one connection are doing, shared between them
/// (HTTP/2 streams run on tasks of their own) and the connection's watch,
/// with `T`, what every request of the connection needs (the server): one
/// reference count a request then covers both.
#[derive(Debug)]
pub(crate) struct Activity<T> {
    opened: Instant,
    /// Requests running (low 32 bits) and ended (high 32 bits, wrapping):
    /// one atomic operation as a request starts and one as it ends.
    requests: AtomicU64,
    shared: T,
}

/// One request ended and no longer running, as added to `Activity::requests`.
const ENDED: u64 = (1 << 32) - 1;

impl<T> Activity<T> {
    pub(crate) fn new(shared: T) -> Arc<Self> {
        Arc::new(Activity {
            opened: Instant::now(),
            requests: AtomicU64::new(0),
            shared,
        })
    }

    /// Counts a request as running until the guard drops.
    pub(crate) fn request(self: &Arc<Self>) -> RequestGuard<T> {
        self.requests.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            activity: Arc::clone(self),
        }
    }

    /// How many requests have ended, or `None` while a request runs.
    fn ended_while_idle(&self) -> Option<u64> {
        let requests = self.requests.load(Ordering::Acquire);
        (requests & u64::from(u32::MAX) == 0).then_some(requests >> 32)
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub(crate) struct RequestGuard<T> {
    activity: Arc<Activity<T>>,
}

impl<T> RequestGuard<T> {
    /// What the connection's requests share.
    pub(crate) fn shared(&self) -> &T {
        &self.activity.shared
    }
}

impl<T> Drop for RequestGuard<T> {
    fn drop(&mut self) {
        // Adds one to the ended count and takes one from the running count
        // (at least one, this request's, so nothing borrows across).
        self.activity.requests.fetch_add(ENDED, Ordering::AcqRel);
    }
}

/// Tells every watched connection of a server to shut down when the server
/// drains.
///
/// Besides the token that wakes them, a flag: a connection polled again by
/// the same task reads the flag, where the token's state sits behind a lock.
#[derive(Debug, Default)]
pub(crate) struct ConnectionStop {
    token: CancellationToken,
    stopped: AtomicBool,
}

impl ConnectionStop {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Tells the connections to shut down.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.token.cancel();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Cancelled when the connections are told to shut down.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// Where a watched connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Told to shut down because the server drains: it finishes its requests.
    Draining,
    /// Told to shut down because it sat idle: dropped if it has not closed
    /// by the timer.
    Closing,
}

pin_project! {
    /// A connection under watch (see the module's documentation).
    pub(crate) struct WatchedConnection<C, T> {
        #[pin]
        connection: C,
        #[pin]
        stopped: WaitForCancellationFutureOwned,
        #[pin]
        timer: Sleep,
        stop: Arc<ConnectionStop>,
        activity: Arc<Activity<T>>,
        // Requests ended when the timer was last armed.
        ended_when_armed: u64,
        timeout: Duration,
        // Asks the connection to finish its requests and close.
        shut_down: fn(Pin<&mut C>),
        phase: Phase,
        // The waker the stop and the timer were last polled with: while the
        // connection is polled with the same one, checking their state is
        // enough, and polling them again (a lock, a timer entry) is saved.
        registered: Option<Waker>,
    }
}

impl<C: Future, T> WatchedConnection<C, T> {
    /// Watches `connection`, whose requests report to `activity`: it is
    /// closed when no request head completes for `timeout` while nothing
    /// runs, and shut down gracefully once `stop` is given.
    /// `shut_down` asks it to finish its requests and close (hyper's
    /// `graceful_shutdown`).
    pub(crate) fn new(
        connection: C,
        activity: Arc<Activity<T>>,
        timeout: Duration,
        stop: Arc<ConnectionStop>,
        shut_down: fn(Pin<&mut C>),
    ) -> Self {
        WatchedConnection {
            connection,
            stopped: stop.token.clone().cancelled_owned(),
            timer: tokio::time::sleep_until(activity.opened + timeout),
            stop,
            activity,
            ended_when_armed: 0,
            timeout,
            shut_down,
            phase: Phase::Serving,
            registered: None,
        }
    }
}

impl<C: Future, T> Future for WatchedConnection<C, T> {
    type Output = Option<C::Output>;

    /// The connection's own end, or `None` when it was dropped for idling
    /// past its shutdown.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Poll::Ready(output) = this.connection.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            let same_waker = this
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()));
            let (stopped, elapsed) = if same_waker {
                (this.stop.is_stopped(), this.timer.is_elapsed())
            } else {
                *this.registered = Some(cx.waker().clone());
                (
                    this.stopped.as_mut().poll(cx).is_ready(),
                    this.timer.as_mut().poll(cx).is_ready(),
                )
            };
            if stopped && *this.phase == Phase::Serving {
                *this.phase = Phase::Draining;
                (this.shut_down)(this.connection.as_mut());
                continue;
            }
            if !elapsed {
                return Poll::Pending;
            }
            match *this.phase {
                // The server's drain timeout bounds a draining connection.
                Phase::Draining => return Poll::Pending,
                Phase::Closing => return Poll::Ready(None),
                Phase::Serving => {}
            }
            match this.activity.ended_while_idle() {
                Some(ended) if ended == *this.ended_when_armed => {
                    tracing::debug!("closing a connection that sent no request in time");
                    *this.phase = Phase::Closing;
                    (this.shut_down)(this.connection.as_mut());
                }
                // A request runs, or one ended within the timeout: the
                // connection gets another timeout from now.
                Some(ended) => *this.ended_when_armed = ended,
                None => {}
            }
            this.timer.as_mut().reset(Instant::now() + *this.timeout);
            // The timer must be polled again to be armed.
            *this.registered = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// A connection that runs until shut down, then ends at once (or never,
    /// when `stubborn`).
    struct Idle {
        shut_down: Arc<AtomicBool>,
        stubborn: bool,
    }

    impl Future for Idle {
        type Output = &'static str;

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<&'static str> {
            if self.shut_down.load(Ordering::SeqCst) && !self.stubborn {
                Poll::Ready("closed")
            } else {
                Poll::Pending
            }
        }
    }

    fn shut_down_idle(connection: Pin<&mut Idle>) {
        connection.shut_down.store(true, Ordering::SeqCst);
    }

    fn idle(stubborn: bool) -> (Idle, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        let connection = Idle {
            shut_down: Arc::clone(&flag),
            stubborn,
        };
        (connection, flag)
    }

    #[test]
    fn requests_running_and_ended_are_counted_apart() {
        let activity = Activity::new("shared");
        assert_eq!(activity.ended_while_idle(), Some(0));
        let first = activity.request();
        let second = activity.request();
        assert_eq!(*first.shared(), "shared");
        assert_eq!(activity.ended_while_idle(), None);
        drop(first);
        assert_eq!(activity.ended_while_idle(), None, "one still runs");
        drop(second);
        assert_eq!(activity.ended_while_idle(), Some(2));
        drop(activity.request());
        assert_eq!(activity.ended_while_idle(), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_after_the_timeout() {
        let (connection, shut_down) = idle(false);
        let activity = Activity::new(());
        let start = Instant::now();
        let watched = WatchedConnection::new(
            connection,
            Arc::clone(&activity),
            Duration::from_secs(30),
            ConnectionStop::new(),
            shut_down_idle,
        );
        assert_eq!(watched.await, Some("closed"));
        assert!(shut_down.load(Ordering::SeqCst));
        assert!(start.elapsed() >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_or_just_ended_keeps_it_open() {
        let (connection, shut_down) = idle(false);
        let activity = Activity::new(());
        let start = Instant::now();
        let watched = tokio::spawn(WatchedConnection::new(
            connection,
            Arc::clone(&activity),
            Duration::from_secs(30),
            ConnectionStop::new(),
            shut_down_idle,
        ));
        // A request from t=20s to t=50s, past the first timer.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let request = activity.request();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!shut_down.load(Ordering::SeqCst), "a request runs");
        drop(request);
        // Idle from t=50s: not closed before t=80s (it is at t=90s, the
        // first timer that finds no request since the one before).
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert!(!shut_down.load(Ordering::SeqCst), "idle for only 29s");
        assert_eq!(watched.await.unwrap(), Some("closed"));
        assert!(start.elapsed() >= Duration::from_secs(80));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_ignores_the_shutdown_is_dropped() {
        let (connection, shut_down) = idle(true);
        let start = Instant::now();
        let watched = WatchedConnection::new(
            connection,
            Activity::new(()),
            Duration::from_secs(10),
            ConnectionStop::new(),
            shut_down_idle,
        );
        assert_eq!(watched.await, None);
        assert!(shut_down.load(Ordering::SeqCst));
        assert!(start.elapsed() >= Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn the_server_draining_shuts_it_down_at_once() {
        let (connection, shut_down) = idle(false);
        let stop = ConnectionStop::new();
        let watched = tokio::spawn(WatchedConnection::new(
            connection,
            Activity::new(()),
            Duration::from_secs(3600),
            Arc::clone(&stop),
            shut_down_idle,
        ));
        tokio::task::yield_now().await;
        stop.stop();
        assert_eq!(watched.await.unwrap(), Some("closed"));
        assert!(shut_down.load(Ordering::SeqCst));
    }
}
