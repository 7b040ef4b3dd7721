//! [`ProgressClock`]: when a progressing Function last moved, so that its `Progressing` status is
//! written only once it has stalled.
//!
//! A Function on its way to Ready would otherwise get two status writes, a `Progressing` one that
//! the `Ready` one overwrites moments later. A rollout that moves (the Deployment's counts, its
//! pods' phases, nodes and container states change) ends by itself, so nothing is written while
//! it moves; once nothing has changed for the configured delay, the Function's status says where
//! it is stuck. Failures a person must fix (a missing Secret or image, a quota, a refused write)
//! are written at once and do not go through this clock.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use tokio::time::Instant;

use super::readiness::Observed;
use crate::function::Function;

/// The last state seen of one progressing Function.
struct Moved {
    generation: i64,
    fingerprint: u64,
    at: Instant,
}

/// Per progressing Function, the time of its last observed change.
#[derive(Default)]
pub(crate) struct ProgressClock {
    last: Mutex<HashMap<ObjectRef<Function>, Moved>>,
}

/// What changes while a rollout moves: the Deployment's counts and each pod's place and state.
pub(crate) fn fingerprint(observed: &Observed<'_>) -> u64 {
    let mut hasher = DefaultHasher::new();
    if let Some(deployment) = observed.deployment {
        deployment.metadata.generation.hash(&mut hasher);
        if let Some(status) = &deployment.status {
            (
                status.observed_generation,
                status.replicas,
                status.updated_replicas,
                status.ready_replicas,
                status.available_replicas,
            )
                .hash(&mut hasher);
        }
    }
    let mut pods: Vec<_> = observed
        .pods
        .iter()
        .map(|pod| {
            let spec = pod.spec.as_ref();
            let status = pod.status.as_ref();
            let containers: Vec<_> = status
                .and_then(|status| status.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .map(|container| {
                    let state = container.state.as_ref();
                    (
                        container.ready,
                        container.restart_count,
                        state
                            .and_then(|s| s.waiting.as_ref())
                            .map(|w| w.reason.clone()),
                        state.is_some_and(|s| s.running.is_some()),
                        state.is_some_and(|s| s.terminated.is_some()),
                    )
                })
                .collect();
            (
                pod.metadata.name.clone(),
                pod.metadata.deletion_timestamp.is_some(),
                spec.and_then(|spec| spec.node_name.clone()),
                status.and_then(|status| status.phase.clone()),
                containers,
            )
        })
        .collect();
    pods.sort();
    pods.hash(&mut hasher);
    hasher.finish()
}

impl ProgressClock {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<Function>, Moved>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How much longer `function`, progressing with what `observed` shows, must stand still
    /// before its `Progressing` status is written; `None` once it has stalled for `delay`.
    pub(crate) fn wait(
        &self,
        function: &Function,
        observed: &Observed<'_>,
        delay: Duration,
    ) -> Option<Duration> {
        let generation = function.metadata.generation.unwrap_or(0);
        let fingerprint = fingerprint(observed);
        let mut last = self.lock();
        let moved = last
            .entry(ObjectRef::from_obj(function))
            .or_insert_with(|| Moved {
                generation,
                fingerprint,
                at: Instant::now(),
            });
        if moved.generation != generation || moved.fingerprint != fingerprint {
            *moved = Moved {
                generation,
                fingerprint,
                at: Instant::now(),
            };
        }
        delay
            .checked_sub(moved.at.elapsed())
            .filter(|left| !left.is_zero())
    }

    /// Forgets `function`: it is no longer progressing (ready, failed or deleted).
    pub(crate) fn forget(&self, function: &Function) {
        self.lock().remove(&ObjectRef::from_obj(function));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};

    use super::*;
    use crate::function::FunctionSpec;

    fn function() -> Function {
        let mut function = Function::new("f", FunctionSpec::new("img"));
        function.metadata.namespace = Some("ns".into());
        function.metadata.generation = Some(1);
        function
    }

    fn deployment(ready: i32) -> Deployment {
        Deployment {
            status: Some(DeploymentStatus {
                ready_replicas: Some(ready),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_moving_rollout_waits_and_a_stalled_one_is_reported() {
        let clock = ProgressClock::default();
        let f = function();
        let delay = Duration::from_secs(10);
        let first = deployment(0);
        let observed = Observed {
            deployment: Some(&first),
            ..Observed::default()
        };
        assert_eq!(clock.wait(&f, &observed, delay), Some(delay));
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(
            clock.wait(&f, &observed, delay),
            Some(Duration::from_secs(2))
        );

        // It moved: the delay starts again.
        let moved = deployment(1);
        let observed = Observed {
            deployment: Some(&moved),
            ..Observed::default()
        };
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(clock.wait(&f, &observed, delay), Some(delay));

        // It stands still for the whole delay: report it.
        tokio::time::advance(delay).await;
        assert_eq!(clock.wait(&f, &observed, delay), None);

        // A new generation is a new rollout.
        let mut next = f.clone();
        next.metadata.generation = Some(2);
        assert_eq!(clock.wait(&next, &observed, delay), Some(delay));
        clock.forget(&next);
        assert!(clock.lock().is_empty());
    }
}
