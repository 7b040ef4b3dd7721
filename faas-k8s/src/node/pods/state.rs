//! The life of a pod on the node, as an explicit state machine, and the decisions that drive it.
//!
//! ```text
//!   Pending --config resolved--> Creating --backend created--> Running <--+
//!      ^  \--config error: CreateContainerConfigError, retried     |       |
//!      |                                                          exit    restart after back-off
//!      +-- create failed, retried                                  v       |
//!                                                            Restarting ---+  (CrashLoopBackOff)
//!                                                                  | restartPolicy says no
//!                                                                  v
//!   any --deletionTimestamp--> Terminating --stopped--> Terminated (Succeeded / Failed)
//! ```
//!
//! Restarting is per container: the pod stays `Running` while one of its containers waits out its
//! back-off. Everything here is pure; the worker performs the effects.

use std::time::Duration;

use super::super::backend::{ContainerState, Terminated};

/// Where a pod is in its life on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Seen, not started: its configuration is being resolved (or could not be).
    Pending,
    /// The backend is starting its containers.
    Creating,
    /// The backend runs it; containers may be waiting out a restart back-off.
    Running,
    /// Being stopped because the pod is being deleted.
    Terminating,
    /// Nothing of it runs any more; it stays until the API object is gone.
    Terminated,
}

/// The pod's `spec.restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub(crate) fn parse(value: Option<&str>) -> Self {
        match value {
            Some("OnFailure") => Self::OnFailure,
            Some("Never") => Self::Never,
            _ => Self::Always,
        }
    }

    /// Whether a container that ended with `exit_code` is started again.
    pub(crate) fn restarts(self, exit_code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => exit_code != 0,
            Self::Never => false,
        }
    }
}

/// The pod's phase, as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }

    pub(crate) fn parse(value: Option<&str>) -> Option<Self> {
        match value? {
            "Pending" => Some(Self::Pending),
            "Running" => Some(Self::Running),
            "Succeeded" => Some(Self::Succeeded),
            "Failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// What the phase computation needs to know about one container.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ContainerFacts {
    pub(crate) state: ContainerState,
    /// It ran before (a waiting container that ran before is restarting, not new).
    pub(crate) ran_before: bool,
}

/// The pod phase from its containers, as a kubelet computes it. `terminal` is set when the pod is
/// finished for good (deleted): containers are not coming back whatever the restart policy says.
pub(crate) fn compute_phase(
    policy: RestartPolicy,
    containers: &[ContainerFacts],
    terminal: bool,
) -> Phase {
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers {
        match &c.state {
            ContainerState::Running { .. } => running += 1,
            ContainerState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            ContainerState::Waiting { .. } if c.ran_before => stopped += 1,
            ContainerState::Waiting { .. } => waiting += 1,
        }
    }
    if terminal {
        if running > 0 || stopped > succeeded || waiting > 0 {
            return Phase::Failed;
        }
        return Phase::Succeeded;
    }
    if waiting > 0 {
        return Phase::Pending;
    }
    if running > 0 {
        return Phase::Running;
    }
    if stopped == 0 {
        return Phase::Pending;
    }
    // Every container stopped.
    let all_done = containers
        .iter()
        .all(|c| matches!(c.state, ContainerState::Terminated(_)));
    match policy {
        RestartPolicy::Always => Phase::Running,
        _ if !all_done => Phase::Running,
        _ if stopped == succeeded => Phase::Succeeded,
        RestartPolicy::Never => Phase::Failed,
        RestartPolicy::OnFailure => Phase::Running,
    }
}

/// What to do about a container whose run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitDecision {
    /// Start it again after this delay (zero: now); it waits in `CrashLoopBackOff` meanwhile.
    RestartAfter(Duration),
    /// Leave it terminated.
    Stay,
}

/// The restart decision for a container that ended, given the back-off it would wait.
pub(crate) fn decide_exit(
    policy: RestartPolicy,
    terminated: &Terminated,
    backoff: impl FnOnce() -> Duration,
) -> ExitDecision {
    if policy.restarts(terminated.exit_code) {
        ExitDecision::RestartAfter(backoff())
    } else {
        ExitDecision::Stay
    }
}

/// How long the node waits for a deleted pod's processes to stop before killing them: the
/// deletion's grace period, else the spec's, else 30 s.
pub(crate) fn deletion_grace(
    deletion_grace_seconds: Option<i64>,
    spec_grace_seconds: Option<i64>,
) -> Duration {
    let secs = deletion_grace_seconds.or(spec_grace_seconds).unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// The stage a worker starts in for a pod it has just been given.
pub(crate) fn initial_stage(recorded_phase: Option<Phase>, being_deleted: bool) -> Stage {
    match recorded_phase {
        _ if being_deleted => Stage::Terminating,
        Some(p) if p.is_terminal() => Stage::Terminated,
        _ => Stage::Pending,
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn terminated(code: i32) -> ContainerState {
        ContainerState::Terminated(Terminated {
            message: None,
            exit_code: code,
            signal: None,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            started_at: SystemTime::UNIX_EPOCH,
            finished_at: SystemTime::UNIX_EPOCH,
        })
    }

    fn running() -> ContainerState {
        ContainerState::Running {
            started_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn waiting() -> ContainerState {
        ContainerState::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        }
    }

    fn facts(state: ContainerState, ran_before: bool) -> ContainerFacts {
        ContainerFacts { state, ran_before }
    }

    #[test]
    fn new_containers_keep_the_pod_pending() {
        let c = [facts(running(), false), facts(waiting(), false)];
        assert_eq!(
            compute_phase(RestartPolicy::Always, &c, false),
            Phase::Pending
        );
    }

    #[test]
    fn a_crash_looping_container_keeps_the_pod_running() {
        let c = [facts(waiting(), true)];
        assert_eq!(
            compute_phase(RestartPolicy::Always, &c, false),
            Phase::Running
        );
        let c = [facts(terminated(1), true)];
        assert_eq!(
            compute_phase(RestartPolicy::Always, &c, false),
            Phase::Running
        );
        assert_eq!(
            compute_phase(RestartPolicy::OnFailure, &c, false),
            Phase::Running
        );
    }

    #[test]
    fn finished_containers_end_the_pod_per_policy() {
        let ok = [facts(terminated(0), false)];
        let bad = [facts(terminated(3), false)];
        assert_eq!(
            compute_phase(RestartPolicy::Never, &ok, false),
            Phase::Succeeded
        );
        assert_eq!(
            compute_phase(RestartPolicy::Never, &bad, false),
            Phase::Failed
        );
        assert_eq!(
            compute_phase(RestartPolicy::OnFailure, &ok, false),
            Phase::Succeeded
        );
        assert_eq!(
            compute_phase(RestartPolicy::Always, &ok, false),
            Phase::Running
        );
        let mixed = [facts(terminated(0), false), facts(running(), false)];
        assert_eq!(
            compute_phase(RestartPolicy::Never, &mixed, false),
            Phase::Running
        );
    }

    #[test]
    fn a_deleted_pod_ends_succeeded_only_if_everything_exited_zero() {
        let ok = [facts(terminated(0), false), facts(terminated(0), true)];
        assert_eq!(
            compute_phase(RestartPolicy::Always, &ok, true),
            Phase::Succeeded
        );
        let killed = [facts(terminated(143), false)];
        assert_eq!(
            compute_phase(RestartPolicy::Always, &killed, true),
            Phase::Failed
        );
    }

    #[test]
    fn exits_restart_per_policy() {
        let t = |code| Terminated {
            message: None,
            exit_code: code,
            signal: None,
            reason: "Error".into(),
            started_at: SystemTime::UNIX_EPOCH,
            finished_at: SystemTime::UNIX_EPOCH,
        };
        let b = || Duration::from_secs(10);
        assert_eq!(
            decide_exit(RestartPolicy::Always, &t(0), b),
            ExitDecision::RestartAfter(Duration::from_secs(10))
        );
        assert_eq!(
            decide_exit(RestartPolicy::OnFailure, &t(1), b),
            ExitDecision::RestartAfter(Duration::from_secs(10))
        );
        assert_eq!(
            decide_exit(RestartPolicy::OnFailure, &t(0), b),
            ExitDecision::Stay
        );
        assert_eq!(
            decide_exit(RestartPolicy::Never, &t(1), b),
            ExitDecision::Stay
        );
        assert_eq!(RestartPolicy::parse(None), RestartPolicy::Always);
        assert_eq!(RestartPolicy::parse(Some("Never")), RestartPolicy::Never);
    }

    #[test]
    fn grace_and_initial_stage() {
        assert_eq!(deletion_grace(Some(5), Some(30)), Duration::from_secs(5));
        assert_eq!(deletion_grace(None, Some(7)), Duration::from_secs(7));
        assert_eq!(deletion_grace(None, None), Duration::from_secs(30));
        assert_eq!(initial_stage(None, false), Stage::Pending);
        assert_eq!(initial_stage(Some(Phase::Running), false), Stage::Pending);
        assert_eq!(initial_stage(Some(Phase::Failed), false), Stage::Terminated);
        assert_eq!(
            initial_stage(Some(Phase::Running), true),
            Stage::Terminating
        );
    }
}
