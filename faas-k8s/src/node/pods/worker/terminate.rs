//! How a worker stops its pod: on deletion as a kubelet does, or for good after a failed probe.

use std::time::SystemTime;

use kube::api::{DeleteParams, Preconditions};
use tokio::time::Instant;

use super::super::super::backend::{ContainerState, PodRuntimeStatus, Terminated};
use super::super::state::{Stage, deletion_grace};
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

    /// Deletion as a kubelet does it: stop (SIGTERM, grace, SIGKILL), report, delete the object.
    pub(super) async fn terminate(&mut self) {
        for track in self.tracks.values_mut() {
            track.stop_probes();
            track.restart_due = None;
        }
        let grace = if self.gone {
            MIN_GRACE
        } else {
            deletion_grace(
                self.pod.metadata.deletion_grace_period_seconds,
                self.pod
                    .spec
                    .as_ref()
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
        match self.api().delete(&self.key.name, &params).await {
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
