//! Leader election through a `coordination.k8s.io` Lease: of several operator replicas, the one
//! holding the Lease reconciles; the others wait and take over when it stops renewing.
//!
//! kube-rs has no leader election of its own, so this is the usual Lease protocol: a candidate
//! takes the Lease when it has no holder or its holder has not renewed it within its duration,
//! with the Lease's `resourceVersion` guarding every write, so two candidates never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;

use crate::error::{Error, Result};

/// Which Lease decides the leader, who this candidate is, and how often it renews.
///
/// ```
/// use std::time::Duration;
/// use faas_k8s::operator::LeaderElection;
///
/// let election = LeaderElection::new("faas-system", "faas-operator", "pod-a")
///     .with_lease_duration(Duration::from_secs(30));
/// assert_eq!(election.renew_interval, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaderElection {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub lease_name: String,
    /// This candidate's identity, written as the Lease's holder.
    pub identity: String,
    /// How long a holder keeps the Lease without renewing it.
    pub lease_duration: Duration,
    /// How often the holder renews (and a candidate looks again).
    pub renew_interval: Duration,
}

impl LeaderElection {
    /// An election on Lease `namespace/lease_name` for candidate `identity`: 15 s Leases,
    /// renewed every 5 s.
    pub fn new(
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        LeaderElection {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
        }
    }

    /// Sets the Lease duration; the renew interval becomes a third of it.
    #[must_use]
    pub fn with_lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self.renew_interval = duration / 3;
        self
    }
}

/// Holds or waits for the Lease of a [`LeaderElection`].
#[derive(Clone)]
pub(crate) struct LeaseLock {
    api: Api<Lease>,
    election: LeaderElection,
}

/// What a look at the Lease found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// This candidate holds the Lease (now renewed).
    Leading,
    /// Another candidate holds it.
    Following(String),
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// Whether `lease` has a live holder other than `identity` at `now`.
fn held_by_other(lease: &Lease, identity: &str, now: Timestamp) -> Option<String> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
    if holder == identity {
        return None;
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|time| time.0)?;
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    (renewed.checked_add(duration).ok()? > now).then(|| holder.to_owned())
}

impl LeaseLock {
    pub(crate) fn new(client: kube::Client, election: LeaderElection) -> Self {
        LeaseLock {
            api: Api::namespaced(client, &election.namespace),
            election,
        }
    }

    /// Takes or renews the Lease when free, expired or already ours.
    pub(crate) async fn try_acquire(&self) -> Result<Attempt> {
        let identity = &self.election.identity;
        let now = now();
        let existing = self
            .api
            .get_opt(&self.election.lease_name)
            .await
            .map_err(|e| Error::kube("reading the leader Lease", e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.election.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(identity.clone()),
                    lease_duration_seconds: Some(seconds(self.election.lease_duration)),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Attempt::Following("another candidate".to_owned()))
                }
                Err(e) => Err(Error::kube("creating the leader Lease", e)),
            };
        };
        if let Some(holder) = held_by_other(&lease, identity, now) {
            return Ok(Attempt::Following(holder));
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(identity.as_str()) {
            spec.holder_identity = Some(identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(seconds(self.election.lease_duration));
        match self
            .api
            .replace(&self.election.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Leading),
            // Someone else wrote the Lease since it was read: they won this round.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Attempt::Following("another candidate".to_owned()))
            }
            Err(e) => Err(Error::kube("taking the leader Lease", e)),
        }
    }

    /// Waits until this candidate leads.
    pub(crate) async fn acquire(&self) -> Result<()> {
        let mut last_holder = None;
        loop {
            match self.try_acquire().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(identity = %self.election.identity, "leading");
                    return Ok(());
                }
                Ok(Attempt::Following(holder)) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(%holder, "standing by while another operator leads");
                        last_holder = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader election failed; trying again"),
            }
            tokio::time::sleep(self.election.renew_interval).await;
        }
    }

    /// Renews the Lease until a renewal fails for longer than the Lease lasts (or another
    /// candidate holds it); returns then: leadership is lost.
    pub(crate) async fn hold(&self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.election.renew_interval).await;
            match self.try_acquire().await {
                Ok(Attempt::Leading) => last_renewal = tokio::time::Instant::now(),
                Ok(Attempt::Following(holder)) => {
                    tracing::warn!(%holder, "lost the leader Lease");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the leader Lease failed");
                    if last_renewal.elapsed() >= self.election.lease_duration {
                        return;
                    }
                }
            }
        }
    }

    /// Gives the Lease up so a standby takes over at once.
    pub(crate) async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.election.lease_name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.election.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(e) = self
            .api
            .replace(&self.election.lease_name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "releasing the leader Lease failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: Timestamp, secs: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(secs),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn a_lease_is_held_until_its_duration_passes_without_renewal() {
        let now = Timestamp::from_second(1_000).unwrap();
        let fresh = lease("a", Timestamp::from_second(995).unwrap(), 10);
        assert_eq!(held_by_other(&fresh, "b", now), Some("a".into()));
        assert_eq!(held_by_other(&fresh, "a", now), None, "our own Lease");
        let stale = lease("a", Timestamp::from_second(980).unwrap(), 10);
        assert_eq!(held_by_other(&stale, "b", now), None);
        let released = lease("", Timestamp::from_second(999).unwrap(), 10);
        assert_eq!(held_by_other(&released, "b", now), None);
    }
}
