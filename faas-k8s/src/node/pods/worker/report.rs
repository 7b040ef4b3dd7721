//! What a worker shows: the pod's status, built from what it knows and written when it changed.

use std::time::{Duration, SystemTime};

use kube::api::PostParams;
use tokio::time::Instant;

use super::super::super::backend::ContainerState;
use super::super::state::{ContainerFacts, Phase, Stage, compute_phase};
use super::super::status::{ContainerView, PodView, build_status};
use super::{STATUS_RETRY, Worker};

impl Worker {
    pub(super) fn view(&self) -> PodView {
        let spec_containers: Vec<_> = self
            .pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .collect();
        let deleted = self.pod.metadata.deletion_timestamp.is_some() || self.gone;
        let finished = self.stage == Stage::Terminated;
        let mut containers = Vec::with_capacity(spec_containers.len());
        let mut facts = Vec::with_capacity(spec_containers.len());
        for spec in spec_containers {
            let runtime = self.runtime.as_ref().and_then(|r| r.container(&spec.name));
            let track = self.tracks.get(&spec.name);
            let (mut state, last, restarts) = match (runtime, &self.blocked) {
                (None, Some((reason, message))) => (
                    ContainerState::Waiting {
                        reason: reason.clone(),
                        message: Some(message.clone()),
                    },
                    None,
                    0,
                ),
                (None, None) => (
                    ContainerState::Waiting {
                        reason: "ContainerCreating".to_owned(),
                        message: None,
                    },
                    None,
                    0,
                ),
                (Some(c), _) => (c.state.clone(), c.last_termination.clone(), c.restart_count),
            };
            let mut last = last;
            if let (ContainerState::Terminated(t), Some((_, delay))) =
                (&state, track.and_then(|t| t.restart_due))
            {
                last = Some(t.clone());
                state = ContainerState::Waiting {
                    reason: "CrashLoopBackOff".to_owned(),
                    message: Some(format!(
                        "back-off {} restarting failed container={} pod={}_{}({})",
                        humantime::format_duration(Duration::from_secs(delay.as_secs().max(1))),
                        spec.name,
                        self.key.name,
                        self.key.namespace,
                        self.key.uid
                    )),
                };
            }
            let running = matches!(state, ContainerState::Running { .. });
            let started =
                running && (spec.startup_probe.is_none() || track.is_some_and(|t| t.started));
            let ready = started
                && !finished
                && (spec.readiness_probe.is_none() || track.is_some_and(|t| t.ready));
            let ran = runtime.is_some_and(|c| {
                !matches!(c.state, ContainerState::Waiting { .. }) || c.restart_count > 0
            });
            facts.push(ContainerFacts {
                state: state.clone(),
                ran_before: last.is_some() || restarts > 0,
            });
            containers.push(ContainerView {
                name: spec.name.clone(),
                image: spec.image.clone().unwrap_or_default(),
                state,
                last_termination: last,
                restart_count: restarts,
                ready,
                started,
                container_id: ran.then(|| {
                    format!(
                        "{}://{}/{}",
                        self.ctx.backend.name(),
                        self.key.uid,
                        spec.name
                    )
                }),
            });
        }
        let phase = if self.failure.is_some() {
            Phase::Failed
        } else {
            compute_phase(self.policy, &facts, finished && deleted)
        };
        PodView {
            phase,
            pod_ip: self.runtime.as_ref().and_then(|r| r.pod_ip),
            host_ip: self.ctx.config.host_ip(),
            containers,
            completed: finished,
            readiness_gates: self
                .pod
                .spec
                .iter()
                .flat_map(|s| s.readiness_gates.iter().flatten())
                .map(|g| g.condition_type.clone())
                .collect(),
            failure: self.failure.clone(),
        }
    }

    /// Writes the status when it differs from the API server's, re-reading the pod on conflicts.
    pub(super) async fn write_status(&mut self) {
        if self.status_retry_at.is_some_and(|at| at > Instant::now()) {
            return;
        }
        self.status_retry_at = None;
        if self.stage == Stage::Terminated && self.runtime.is_none() {
            // A finished pod this worker never ran: its recorded status is final.
            return;
        }
        let view = self.view();
        let api = self.api();
        for _ in 0..5 {
            let desired = build_status(self.pod.status.as_ref(), &view, SystemTime::now());
            if self.pod.status.as_ref() == Some(&desired) {
                return;
            }
            let mut pod = self.pod.clone();
            pod.status = Some(desired);
            pod.metadata.managed_fields = None;
            match api
                .replace_status(&self.key.name, &PostParams::default(), &pod)
                .await
            {
                Ok(updated) => {
                    self.pod = updated;
                    return;
                }
                Err(kube::Error::Api(status)) if status.is_conflict() => {
                    match api.get_opt(&self.key.name).await {
                        Ok(Some(fresh))
                            if fresh.metadata.uid.as_deref() == Some(self.key.uid.as_str()) =>
                        {
                            self.pod = fresh;
                        }
                        Ok(_) => {
                            self.gone = true;
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(pod = %self.key, error = %e, "re-reading the pod failed");
                            self.status_retry_at = Some(Instant::now() + STATUS_RETRY);
                            return;
                        }
                    }
                }
                Err(kube::Error::Api(status)) if status.is_not_found() => {
                    self.gone = true;
                    return;
                }
                Err(e) => {
                    tracing::warn!(pod = %self.key, error = %e, "writing the pod status failed; retrying");
                    self.status_retry_at = Some(Instant::now() + STATUS_RETRY);
                    return;
                }
            }
        }
        self.status_retry_at = Some(Instant::now() + STATUS_RETRY);
    }
}
