//! What a worker shows: the pod's status, built from what it knows and written when it changed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::PostParams;
use tokio::time::Instant;

use super::super::super::backend::ContainerState;
use super::super::state::{ContainerFacts, Phase, Stage, compute_phase};
use super::super::status::{ContainerView, PodView, build_status};
use super::{STATUS_RETRY, Worker};

impl Worker {
    pub(super) fn view(&self) -> PodView {
        let spec = self.pod.spec();
        let deleted = self.pod.metadata().deletion_timestamp.is_some() || self.gone;
        let finished = self.stage == Stage::Terminated;
        let init_specs: Vec<_> = spec
            .iter()
            .flat_map(|s| s.init_containers.iter().flatten())
            .collect();
        let init_containers: Vec<ContainerView> = init_specs
            .iter()
            .map(|c| self.container_view(c, finished, true))
            .collect();
        // A sidecar is through once it started; the others once they completed.
        let incomplete: Vec<String> = init_containers
            .iter()
            .zip(&init_specs)
            .filter(|(c, spec)| {
                let sidecar = spec.restart_policy.as_deref() == Some("Always");
                // Once all were through, a sidecar that restarts does not undo it.
                let through = if sidecar {
                    c.started || self.init_done
                } else {
                    matches!(&c.state, ContainerState::Terminated(t) if t.exit_code == 0)
                };
                !through
            })
            .map(|(c, _)| c.name.clone())
            .collect();
        let initializing = !incomplete.is_empty();
        let mut containers = Vec::new();
        let mut facts = Vec::new();
        for spec in spec.iter().flat_map(|s| s.containers.iter()) {
            let mut view = self.container_view(spec, finished, false);
            if initializing
                && matches!(view.state, ContainerState::Waiting { .. })
                && view.restart_count == 0
            {
                view.state = ContainerState::Waiting {
                    reason: "PodInitializing".to_owned(),
                    message: None,
                };
            }
            facts.push(ContainerFacts {
                state: view.state.clone(),
                ran_before: view.last_termination.is_some() || view.restart_count > 0,
            });
            containers.push(view);
        }
        let phase = if self.failure.is_some() || self.init_failed {
            Phase::Failed
        } else {
            compute_phase(self.policy, &facts, finished && deleted)
        };
        PodView {
            phase,
            pod_ip: self.runtime.as_ref().and_then(|r| r.pod_ip),
            host_ip: self.ctx.config.host_ip(),
            containers,
            init_containers,
            uninitialized: incomplete,
            completed: finished,
            readiness_gates: spec
                .iter()
                .flat_map(|s| s.readiness_gates.iter().flatten())
                .map(|g| g.condition_type.clone())
                .collect(),
            failure: self.failure.clone(),
        }
    }

    /// What the node shows about one container (`init`: an init container, which has no probes
    /// and is never ready).
    fn container_view(&self, spec: &Container, finished: bool, init: bool) -> ContainerView {
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
                    reason: if init {
                        "PodInitializing"
                    } else {
                        "ContainerCreating"
                    }
                    .to_owned(),
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
        if init
            && matches!(&state, ContainerState::Waiting { reason, .. } if reason == "ContainerCreating")
            && restarts == 0
        {
            // Not started yet: its turn has not come.
            state = ContainerState::Waiting {
                reason: "PodInitializing".to_owned(),
                message: None,
            };
        }
        let running = matches!(state, ContainerState::Running { .. });
        // With a startup probe or a postStart hook, a run has started once they are through.
        let post_start = spec
            .lifecycle
            .as_ref()
            .is_some_and(|l| l.post_start.is_some());
        let started = running
            && ((spec.startup_probe.is_none() && !post_start) || track.is_some_and(|t| t.started));
        // A sidecar (an init container that keeps running) can be ready; the others never are.
        let sidecar = init && spec.restart_policy.as_deref() == Some("Always");
        let ready = (!init || sidecar)
            && started
            && !finished
            && (spec.readiness_probe.is_none() || track.is_some_and(|t| t.ready));
        let ran = runtime.is_some_and(|c| {
            !matches!(c.state, ContainerState::Waiting { .. }) || c.restart_count > 0
        });
        ContainerView {
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
        let ctx = Arc::clone(&self.ctx);
        let _turn = ctx.api_turn().await;
        for _ in 0..5 {
            let existing = self.pod.status();
            let desired = build_status(existing.as_ref(), &view, SystemTime::now());
            if existing.as_ref() == Some(&desired) {
                return;
            }
            // The status subresource takes the status and the metadata's resourceVersion; the
            // API server keeps the spec it has, so none is sent.
            let mut metadata = self.pod.full_metadata();
            metadata.managed_fields = None;
            let pod = Pod {
                metadata,
                spec: None,
                status: Some(desired),
            };
            match api
                .replace_status(&self.key.name, &PostParams::default(), &pod)
                .await
            {
                Ok(mut updated) => {
                    super::super::trim(&mut updated, self.ctx.backend.mounts_volumes());
                    self.pod.update(updated, &self.ctx.shared);
                    return;
                }
                Err(kube::Error::Api(status)) if status.is_conflict() => {
                    match api.get_opt(&self.key.name).await {
                        Ok(Some(mut fresh))
                            if fresh.metadata.uid.as_deref() == Some(self.key.uid.as_str()) =>
                        {
                            super::super::trim(&mut fresh, self.ctx.backend.mounts_volumes());
                            self.pod.update(fresh, &self.ctx.shared);
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
