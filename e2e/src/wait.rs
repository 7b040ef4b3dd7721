//! Waiting for the cluster to get somewhere: watch an object until a
//! condition holds, or poll anything until it yields a value. Every wait has
//! an overall timeout that is generous on purpose (a shared 2-core machine
//! is slow at times); tests never assert on how long something took.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use kube::Api;
use kube::Resource;
use kube::runtime::wait::await_condition;
use serde::de::DeserializeOwned;

use faas_k8s::error::ErrorChain;

use crate::{Error, Result};

const DEFAULT_TIMEOUT_SECS: u64 = 180;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// The overall timeout of each wait: `FAAS_E2E_TIMEOUT_SECS`, 180 s by default.
pub fn timeout() -> Duration {
    std::env::var("FAAS_E2E_TIMEOUT_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map_or(
            Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            Duration::from_secs,
        )
}

/// What one poll saw.
#[derive(Debug)]
pub enum Poll<T> {
    /// The wait is over.
    Ready(T),
    /// Not yet; the text says what was seen (it ends up in the timeout error).
    Pending(String),
}

/// Polls `check` (100 ms, backing off to 2 s) until it returns
/// [`Poll::Ready`], for at most [`timeout()`]. An `Err` from `check` counts
/// as "not yet" (an API that is still coming up answers errors) and is
/// reported if the wait times out.
///
/// ```no_run
/// # async fn demo(client: kube::Client) -> faas_e2e::Result<()> {
/// use faas_e2e::wait::{self, Poll};
/// use k8s_openapi::api::core::v1::Pod;
/// use kube::Api;
///
/// let pods: Api<Pod> = Api::namespaced(client, "default");
/// let names = wait::until("two pods", || async {
///     let list = pods.list(&Default::default()).await?;
///     Ok(if list.items.len() == 2 {
///         Poll::Ready(list.items)
///     } else {
///         Poll::Pending(format!("{} pods", list.items.len()))
///     })
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn until<T, F, Fut>(what: impl Display, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>>>,
{
    until_within(timeout(), what, check).await
}

/// [`until`] with an explicit overall timeout.
pub async fn until_within<T, F, Fut>(limit: Duration, what: impl Display, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>>>,
{
    let deadline = Instant::now() + limit;
    // backon's delays drive the loop by hand: "not yet" is no error to retry on, and what each
    // poll saw is kept for the timeout's message.
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(FIRST_DELAY)
        .with_max_delay(MAX_DELAY)
        .without_max_times()
        .build();
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(Poll::Ready(value))) => return Ok(value),
            Ok(Ok(Poll::Pending(seen))) => last = Some(seen),
            Ok(Err(err)) => last = Some(ErrorChain(&err).to_string()),
            Err(_) => {}
        }
        let delay = delays.next().unwrap_or(MAX_DELAY);
        if Instant::now() + delay >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                after: limit,
                last,
            });
        }
        tokio::time::sleep(delay).await;
    }
}

/// Watches object `name` until `condition` holds for it, for at most
/// [`timeout()`], and returns it.
pub async fn for_object<K>(
    api: &Api<K>,
    name: &str,
    what: impl Display,
    condition: impl Fn(&K) -> bool + Send + 'static,
) -> Result<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let limit = timeout();
    let watched = await_condition(api.clone(), name, move |object: Option<&K>| {
        object.is_some_and(&condition)
    });
    match tokio::time::timeout(limit, watched).await {
        Ok(Ok(Some(object))) => Ok(object),
        Ok(Ok(None)) => Err(Error::Timeout {
            what: what.to_string(),
            after: limit,
            last: Some(format!("{name} was deleted")),
        }),
        Ok(Err(err)) => Err(err.into()),
        Err(_) => {
            let last = match api.get_opt(name).await {
                Ok(Some(object)) => format!("{object:?}"),
                Ok(None) => format!("{name} does not exist"),
                Err(err) => ErrorChain(&err).to_string(),
            };
            Err(Error::Timeout {
                what: what.to_string(),
                after: limit,
                last: Some(last),
            })
        }
    }
}

/// Watches object `name` until it no longer exists, for at most [`timeout()`].
pub async fn for_deletion<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let limit = timeout();
    let gone = await_condition(api.clone(), name, |object: Option<&K>| object.is_none());
    match tokio::time::timeout(limit, gone).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(err.into()),
        Err(_) => Err(Error::Timeout {
            what: format!("{name} to be deleted"),
            after: limit,
            last: Some(format!("{name} still exists")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn until_returns_the_first_ready_value() {
        let mut polls = 0;
        let value = until_within(Duration::from_secs(30), "the third poll", || {
            polls += 1;
            let now = polls;
            async move {
                Ok(if now == 3 {
                    Poll::Ready(now)
                } else {
                    Poll::Pending(format!("poll {now}"))
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_reports_what_was_last_seen() {
        let err = until_within(Duration::from_secs(5), "never", || async {
            Ok::<_, Error>(Poll::<()>::Pending("still nothing".into()))
        })
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("waiting for never"), "{text}");
        assert!(text.contains("last seen: still nothing"), "{text}");
    }
}
