//! Builds a pod's `status` from what the node knows, keeping what others own.
//!
//! The result starts from the status the API server has (so `qosClass`, the scheduler's
//! `PodScheduled` and conditions set by others survive), sets the fields a kubelet owns, and keeps
//! each condition's `lastTransitionTime` while its value does not change. Times are whole seconds,
//! as the API stores them, so an unchanged pod builds an identical status and is not written again.

use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{
    ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::super::backend::{ContainerState, Terminated};
use super::state::Phase;

/// A point in time as the API stores it: whole seconds.
pub(crate) fn to_time(at: SystemTime) -> Time {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// What the node shows about one container.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ContainerView {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) state: ContainerState,
    pub(crate) last_termination: Option<Terminated>,
    pub(crate) restart_count: u32,
    pub(crate) ready: bool,
    pub(crate) started: bool,
    /// Set once the container was started at least once.
    pub(crate) container_id: Option<String>,
}

/// What the node shows about the pod.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PodView {
    pub(crate) phase: Phase,
    pub(crate) pod_ip: Option<IpAddr>,
    pub(crate) host_ip: IpAddr,
    pub(crate) containers: Vec<ContainerView>,
    /// Its init containers, in the order they run.
    pub(crate) init_containers: Vec<ContainerView>,
    /// The init containers that have not completed yet: the pod is not `Initialized` while any
    /// is left.
    pub(crate) uninitialized: Vec<String>,
    /// Set when the pod is finished (terminated or deleted): Ready turns false with `PodCompleted`.
    pub(crate) completed: bool,
    /// The condition types of `spec.readinessGates`: Ready also waits for each to be True.
    pub(crate) readiness_gates: Vec<String>,
    /// Why the node ended the pod (`status.reason`, `status.message`), as with `DeadlineExceeded`.
    pub(crate) failure: Option<(String, String)>,
}

fn terminated(t: &Terminated, container_id: Option<&String>) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: Some(t.reason.clone()),
        message: t.message.clone(),
        started_at: Some(to_time(t.started_at)),
        finished_at: Some(to_time(t.finished_at)),
        container_id: container_id.cloned(),
    }
}

fn k8s_state(state: &ContainerState, container_id: Option<&String>) -> K8sState {
    match state {
        ContainerState::Waiting { reason, message } => K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        ContainerState::Running { started_at } => K8sState {
            running: Some(ContainerStateRunning {
                started_at: Some(to_time(*started_at)),
            }),
            ..Default::default()
        },
        ContainerState::Terminated(t) => K8sState {
            terminated: Some(terminated(t, container_id)),
            ..Default::default()
        },
    }
}

fn container_status(view: &ContainerView) -> ContainerStatus {
    ContainerStatus {
        name: view.name.clone(),
        image: view.image.clone(),
        image_id: view
            .container_id
            .as_ref()
            .map(|_| view.image.clone())
            .unwrap_or_default(),
        container_id: view.container_id.clone(),
        state: Some(k8s_state(&view.state, view.container_id.as_ref())),
        last_state: Some(
            view.last_termination
                .as_ref()
                .map(|t| K8sState {
                    terminated: Some(terminated(t, view.container_id.as_ref())),
                    ..Default::default()
                })
                .unwrap_or_default(),
        ),
        ready: view.ready,
        started: Some(view.started),
        restart_count: i32::try_from(view.restart_count).unwrap_or(i32::MAX),
        ..Default::default()
    }
}

/// Sets a condition, keeping its transition time when its status is unchanged.
fn set_condition(
    conditions: &mut Vec<PodCondition>,
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) {
    let status = if ok { "True" } else { "False" };
    let existing = conditions.iter().position(|c| c.type_ == kind);
    let transition = existing
        .map(|i| &conditions[i])
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    let condition = PodCondition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: reason.map(str::to_owned),
        message,
        last_transition_time: Some(transition),
        last_probe_time: None,
        observed_generation: existing.and_then(|i| conditions[i].observed_generation),
    };
    match existing {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// The pod's new status.
pub(crate) fn build_status(
    existing: Option<&PodStatus>,
    view: &PodView,
    now: SystemTime,
) -> PodStatus {
    let now = to_time(now);
    let mut status = existing.cloned().unwrap_or_default();
    status.phase = Some(view.phase.as_str().to_owned());
    status.host_ip = Some(view.host_ip.to_string());
    status.host_ips = Some(vec![HostIP {
        ip: view.host_ip.to_string(),
    }]);
    status.pod_ip = view.pod_ip.map(|ip| ip.to_string());
    status.pod_ips = view.pod_ip.map(|ip| vec![PodIP { ip: ip.to_string() }]);
    if status.start_time.is_none() {
        status.start_time = Some(now.clone());
    }
    status.container_statuses = Some(view.containers.iter().map(container_status).collect());
    status.init_container_statuses = (!view.init_containers.is_empty())
        .then(|| view.init_containers.iter().map(container_status).collect());

    let mut conditions = status.conditions.take().unwrap_or_default();
    if !conditions.iter().any(|c| c.type_ == "PodScheduled") {
        set_condition(&mut conditions, "PodScheduled", true, None, None, &now);
    }
    if view.uninitialized.is_empty() {
        set_condition(&mut conditions, "Initialized", true, None, None, &now);
    } else {
        set_condition(
            &mut conditions,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                view.uninitialized.join(" ")
            )),
            &now,
        );
    }
    set_condition(
        &mut conditions,
        "PodReadyToStartContainers",
        !view.completed,
        None,
        None,
        &now,
    );
    let unready: Vec<&str> = view
        .containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let (ready, reason, message) = if view.completed {
        (false, Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    set_condition(
        &mut conditions,
        "ContainersReady",
        ready,
        reason,
        message.clone(),
        &now,
    );
    // The pod is Ready once its containers are and every readiness gate's condition (set by
    // someone else) is True.
    let gate = view.readiness_gates.iter().find_map(|gate| {
        match conditions.iter().find(|c| &c.type_ == gate) {
            None => Some(format!(
                "corresponding condition of pod readiness gate \"{gate}\" does not exist."
            )),
            Some(c) if c.status != "True" => Some(format!(
                "the status of pod readiness gate \"{gate}\" is not \"True\", but {}",
                c.status
            )),
            Some(_) => None,
        }
    });
    let (ready, reason, message) = match gate {
        Some(gate) if ready => (false, Some("ReadinessGatesNotReady"), Some(gate)),
        _ => (ready, reason, message),
    };
    set_condition(&mut conditions, "Ready", ready, reason, message, &now);
    status.conditions = Some(conditions);
    if let Some((reason, message)) = &view.failure {
        status.reason = Some(reason.clone());
        status.message = Some(message.clone());
    }
    status
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn view(ready: bool) -> PodView {
        PodView {
            phase: Phase::Running,
            pod_ip: Some("127.1.0.4".parse().unwrap()),
            host_ip: "127.0.0.1".parse().unwrap(),
            containers: vec![ContainerView {
                name: "web".into(),
                image: "local/web".into(),
                state: ContainerState::Running {
                    started_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
                },
                last_termination: Some(Terminated {
                    message: None,
                    exit_code: 2,
                    signal: None,
                    reason: "Error".into(),
                    started_at: SystemTime::UNIX_EPOCH,
                    finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs(5),
                }),
                restart_count: 1,
                ready,
                started: true,
                container_id: Some("process://u/web".into()),
            }],
            completed: false,
            init_containers: Vec::new(),
            uninitialized: Vec::new(),
            readiness_gates: Vec::new(),
            failure: None,
        }
    }

    fn condition<'a>(s: &'a PodStatus, kind: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == kind)
            .unwrap()
    }

    #[test]
    fn status_carries_what_a_kubelet_reports() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let s = build_status(None, &view(true), t0);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("127.1.0.4"));
        assert_eq!(s.pod_ips.as_ref().unwrap()[0].ip, "127.1.0.4");
        assert_eq!(s.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.start_time, Some(to_time(t0)));
        for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert_eq!(condition(&s, kind).status, "True", "{kind}");
        }
        let c = &s.container_statuses.as_ref().unwrap()[0];
        assert!(c.ready);
        assert_eq!(c.restart_count, 1);
        assert_eq!(c.started, Some(true));
        assert_eq!(
            c.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            2
        );
        assert!(c.state.as_ref().unwrap().running.is_some());
    }

    #[test]
    fn an_unchanged_pod_builds_an_identical_status() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let first = build_status(None, &view(true), t0);
        let again = build_status(Some(&first), &view(true), t0 + Duration::from_secs(60));
        assert_eq!(first, again);
    }

    #[test]
    fn readiness_flips_move_the_transition_time_and_name_the_containers() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let t1 = t0 + Duration::from_secs(30);
        let ready = build_status(None, &view(true), t0);
        let unready = build_status(Some(&ready), &view(false), t1);
        let c = condition(&unready, "Ready");
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            c.message.as_deref(),
            Some("containers with unready status: [web]")
        );
        assert_eq!(c.last_transition_time, Some(to_time(t1)));
        assert_eq!(
            condition(&unready, "Initialized").last_transition_time,
            Some(to_time(t0))
        );
    }

    #[test]
    fn fields_owned_by_others_survive() {
        let existing = PodStatus {
            qos_class: Some("BestEffort".into()),
            conditions: Some(vec![PodCondition {
                type_: "PodScheduled".into(),
                status: "True".into(),
                last_transition_time: Some(to_time(SystemTime::UNIX_EPOCH)),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let s = build_status(Some(&existing), &view(true), SystemTime::now());
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(
            condition(&s, "PodScheduled").last_transition_time,
            Some(to_time(SystemTime::UNIX_EPOCH))
        );
    }

    #[test]
    fn readiness_gates_hold_ready_until_their_conditions_are_true() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let mut gated = view(true);
        gated.readiness_gates = vec!["example.com/lb".into()];
        let s = build_status(None, &gated, t0);
        assert_eq!(condition(&s, "ContainersReady").status, "True");
        let ready = condition(&s, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some(
                "corresponding condition of pod readiness gate \"example.com/lb\" does not exist."
            )
        );

        let mut set_by_others = s.clone();
        set_by_others
            .conditions
            .as_mut()
            .unwrap()
            .push(PodCondition {
                type_: "example.com/lb".into(),
                status: "False".into(),
                ..Default::default()
            });
        let s = build_status(Some(&set_by_others), &gated, t0);
        assert!(
            condition(&s, "Ready")
                .message
                .as_deref()
                .unwrap()
                .contains("but False")
        );
        let mut set_by_others = s.clone();
        for c in set_by_others.conditions.as_mut().unwrap() {
            if c.type_ == "example.com/lb" {
                c.status = "True".into();
            }
        }
        let s = build_status(Some(&set_by_others), &gated, t0);
        assert_eq!(condition(&s, "Ready").status, "True");
        assert_eq!(
            condition(&s, "example.com/lb").status,
            "True",
            "kept as set"
        );
    }
}
