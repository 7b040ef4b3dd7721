//! How a worker stops its pod: on deletion as a kubelet does, or for good after a failed probe.

use std::time::{Duration, SystemTime};

use kube::api::{DeleteParams, Preconditions};
use tokio::time::Instant;

use super::super::super::backend::{ContainerState, PodRuntimeStatus, Terminated};
use super::super::super::hooks;
use super::super::super::probe::ProbeTarget;
use super::super::state::{Stage, deletion_grace};

/// What is left of the grace period for the processes after the preStop hooks used it up.
const PRE_STOP_REMAINDER: Duration = Duration::from_secs(2);
use super::{MIN_GRACE, STATUS_RETRY, Worker};

impl Worker {
    /// A container of a `restartPolicy: Never` pod failed its liveness probe: the pod ends.
    pub(super) async fn stop_for_good(&mut self) {
        let grace = self.spec_grace();
        if let Err(e) = self.ctx.backend.delete(&self.key, grace).await {
            tracing::warn!(pod = %self.key, error = %e, "stopping a pod whose probe failed");
        }
        self.runtime = Some(self.final_runtime());
        self.runtime_dirty = false;
        self.stage = Stage::Terminated;
    }

    /// What the containers look like after the backend stopped them for good.
    pub(super) fn final_runtime(&self) -> PodRuntimeStatus {
        let now = SystemTime::now();
        let mut runtime = self
            .runtime
            .clone()
            .unwrap_or_else(|| PodRuntimeStatus::new(self.key.clone(), None, Vec::new()));
        for c in &mut runtime.containers {
            match &c.state {
                ContainerState::Terminated(_) => {}
                ContainerState::Running { started_at } => {
                    c.state = ContainerState::Terminated(Terminated {
                        message: None,
                        exit_code: 137,
                        signal: Some(9),
                        reason: "Error".to_owned(),
                        started_at: *started_at,
                        finished_at: now,
                    });
                }
                ContainerState::Waiting { .. } => {
                    if let Some(last) = c.last_termination.clone() {
                        c.state = ContainerState::Terminated(last);
                    }
                }
            }
        }
        runtime
    }

    /// Runs the `preStop` hook of every running container, all at once, for at most `grace`.
    async fn run_pre_stop_hooks(&self, grace: Duration) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        let hooks = self.pod.spec().into_iter()
            .flat_map(|s| s.containers.iter())
            .filter(|c| {
                runtime
                    .container(&c.name)
                    .is_some_and(|r| matches!(r.state, ContainerState::Running { .. }))
            })
            .map(|c| ProbeTarget {
                backend: self.ctx.backend.clone(),
                key: self.key.clone(),
                container: c.clone(),
                pod_ip: runtime.pod_ip,
            })
            .filter(|target| hooks::pre_stop(target).is_some())
            .map(|target| async move {
                if let Some(hook) = hooks::pre_stop(&target)
                    && let Err(message) = hooks::run_hook(hook, &target).await
                {
                    tracing::warn!(pod = %target.key, container = %target.container.name, %message, "preStop hook failed");
                }
            });
        let all = futures::future::join_all(hooks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::info!(pod = %self.key, "preStop hooks outlasted the grace period");
        }
    }

    /// Deletion as a kubelet does it: preStop hooks, stop (SIGTERM, grace, SIGKILL), report,
    /// delete the object.
    pub(super) async fn terminate(&mut self) {
        for track in self.tracks.values_mut() {
            track.stop_probes();
            track.restart_due = None;
        }
        let mut grace = if self.gone {
            MIN_GRACE
        } else {
            deletion_grace(
                self.pod.metadata().deletion_grace_period_seconds,
                self.pod
                    .spec()
                    .and_then(|s| s.termination_grace_period_seconds),
            )
        };
        let was_running = self.stage != Stage::Terminated;
        if was_running {
            // Capture the last runtime state before the backend forgets the pod.
            if let Ok(Some(status)) = self.ctx.backend.status(&self.key).await {
                self.runtime = Some(status);
            }
        }
        if was_running && self.stage != Stage::Terminating {
            let began = Instant::now();
            self.run_pre_stop_hooks(grace).await;
            // The hooks use up the grace; the processes still get a little after them, as a
            // kubelet gives them.
            grace = grace
                .saturating_sub(began.elapsed())
                .max(PRE_STOP_REMAINDER.min(grace));
        }
        self.stage = Stage::Terminating;
        tracing::info!(pod = %self.key, ?grace, "stopping the pod");
        if let Err(e) = self.ctx.backend.delete(&self.key, grace).await {
            tracing::warn!(pod = %self.key, error = %e, "stopping the pod failed; retrying");
            self.status_retry_at = Some(Instant::now() + STATUS_RETRY);
            return;
        }
        self.status_retry_at = None;
        if self.gone {
            self.finished = true;
            return;
        }
        if was_running {
            self.runtime = Some(self.final_runtime());
        }
        self.stage = Stage::Terminated;
        self.blocked = None;
        self.write_status().await;
        if self.gone {
            self.finished = true;
            return;
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.key.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        let deleted = {
            let _turn = self.ctx.api_turn().await;
            self.api().delete(&self.key.name, &params).await
        };
        match deleted {
            Ok(_) => self.finished = true,
            Err(kube::Error::Api(status)) if status.is_not_found() || status.is_conflict() => {
                self.finished = true;
            }
            Err(e) => {
                tracing::warn!(pod = %self.key, error = %e, "deleting the pod object failed; retrying");
                self.status_retry_at = Some(Instant::now() + STATUS_RETRY);
            }
        }
    }
}
