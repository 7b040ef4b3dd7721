//! Container status bookkeeping shared by the backends: the states a container goes through, the
//! restart count and how the previous run ended, kept in a form that can be written to disk.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::node::backend::{ContainerRuntimeStatus, ContainerState, Terminated};

/// The waiting reason of a container being started.
pub(crate) const CONTAINER_CREATING: &str = "ContainerCreating";

/// The reason given when a container's process vanished while nobody watched it closely enough
/// to learn its exit status; the kubelet says the same (with exit code 137) for a container it
/// can no longer find.
pub(crate) const STATUS_UNKNOWN: &str = "ContainerStatusUnknown";

/// The exit code reported with [`STATUS_UNKNOWN`], as the kubelet reports it.
pub(crate) const UNKNOWN_EXIT_CODE: i32 = 137;

/// How one run of a container ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Exit {
    pub(crate) exit_code: i32,
    pub(crate) signal: Option<i32>,
    pub(crate) reason: String,
    pub(crate) started_at: SystemTime,
    pub(crate) finished_at: SystemTime,
    /// The termination message, if the run left one.
    #[serde(default)]
    pub(crate) message: Option<String>,
}

impl Exit {
    /// An exit with a known code: `Completed` for 0, `Error` otherwise. A process killed by a
    /// signal has exit code 128 + signal.
    pub(crate) fn new(
        exit_code: i32,
        signal: Option<i32>,
        started_at: SystemTime,
        finished_at: SystemTime,
    ) -> Self {
        let reason = if exit_code == 0 && signal.is_none() {
            "Completed"
        } else {
            "Error"
        };
        Self {
            exit_code,
            signal,
            reason: reason.to_owned(),
            started_at,
            finished_at,
            message: None,
        }
    }

    /// An exit whose status nobody saw (see [`STATUS_UNKNOWN`]).
    pub(crate) fn unknown(started_at: SystemTime, finished_at: SystemTime) -> Self {
        Self {
            exit_code: UNKNOWN_EXIT_CODE,
            signal: None,
            reason: STATUS_UNKNOWN.to_owned(),
            started_at,
            finished_at,
            message: None,
        }
    }

    pub(crate) fn to_terminated(&self) -> Terminated {
        Terminated {
            exit_code: self.exit_code,
            signal: self.signal,
            reason: self.reason.clone(),
            started_at: self.started_at,
            finished_at: self.finished_at,
            message: self.message.clone(),
        }
    }
}

/// Where a container is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Phase {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: SystemTime,
    },
    Exited(Exit),
}

/// The status of one container as a backend tracks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerStatusCell {
    pub(crate) name: String,
    pub(crate) phase: Phase,
    pub(crate) restart_count: u32,
    pub(crate) last_exit: Option<Exit>,
}

impl ContainerStatusCell {
    /// A container about to be started for the first time.
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            phase: Phase::Waiting {
                reason: CONTAINER_CREATING.to_owned(),
                message: None,
            },
            restart_count: 0,
            last_exit: None,
        }
    }

    /// The container started running.
    pub(crate) fn started(&mut self, at: SystemTime) {
        self.phase = Phase::Running { started_at: at };
    }

    /// The container's run ended.
    pub(crate) fn exited(&mut self, exit: Exit) {
        self.phase = Phase::Exited(exit);
    }

    pub(crate) fn is_running(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }

    /// The container is about to run again: its last run becomes the previous one and the restart
    /// count goes up. Does nothing to a container that has never run.
    pub(crate) fn restarting(&mut self) {
        let phase = std::mem::replace(
            &mut self.phase,
            Phase::Waiting {
                reason: CONTAINER_CREATING.to_owned(),
                message: None,
            },
        );
        match phase {
            Phase::Exited(exit) => {
                self.last_exit = Some(exit);
                self.restart_count += 1;
            }
            Phase::Running { started_at } => {
                let now = SystemTime::now();
                self.last_exit = Some(Exit::unknown(started_at, now));
                self.restart_count += 1;
            }
            waiting @ Phase::Waiting { .. } => self.phase = waiting,
        }
    }

    /// The status as the node sees it.
    pub(crate) fn to_status(&self) -> ContainerRuntimeStatus {
        let state = match &self.phase {
            Phase::Waiting { reason, message } => ContainerState::Waiting {
                reason: reason.clone(),
                message: message.clone(),
            },
            Phase::Running { started_at } => ContainerState::Running {
                started_at: *started_at,
            },
            Phase::Exited(exit) => ContainerState::Terminated(exit.to_terminated()),
        };
        ContainerRuntimeStatus::new(
            self.name.clone(),
            state,
            self.restart_count,
            self.last_exit.as_ref().map(Exit::to_terminated),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn exit_reasons_follow_the_kubelet() {
        let t = SystemTime::UNIX_EPOCH;
        assert_eq!(Exit::new(0, None, t, t).reason, "Completed");
        assert_eq!(Exit::new(3, None, t, t).reason, "Error");
        let killed = Exit::new(137, Some(9), t, t);
        assert_eq!((killed.reason.as_str(), killed.signal), ("Error", Some(9)));
        let unknown = Exit::unknown(t, t);
        assert_eq!(
            (unknown.exit_code, unknown.reason.as_str()),
            (137, STATUS_UNKNOWN)
        );
    }

    #[test]
    fn a_restart_keeps_the_last_exit_and_counts() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(10);
        let mut cell = ContainerStatusCell::new("app");
        cell.restarting();
        assert_eq!(
            cell.restart_count, 0,
            "a container that never ran is not restarted"
        );
        cell.started(start);
        assert!(cell.is_running());
        cell.exited(Exit::new(1, None, start, start));
        cell.restarting();
        let status = cell.to_status();
        assert_eq!(status.restart_count, 1);
        assert_eq!(status.last_termination.unwrap().exit_code, 1);
        assert!(
            matches!(status.state, ContainerState::Waiting { reason, .. } if reason == CONTAINER_CREATING)
        );
    }

    #[test]
    fn survives_a_round_trip_through_json() {
        let mut cell = ContainerStatusCell::new("app");
        cell.started(SystemTime::now());
        let json = serde_json::to_string(&cell).unwrap();
        assert_eq!(
            serde_json::from_str::<ContainerStatusCell>(&json).unwrap(),
            cell
        );
    }
}
