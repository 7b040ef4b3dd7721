//! A pod as the process backend holds it in the [pod table](crate::node::pod_table): its
//! containers, their status and the processes that run them.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{broadcast, watch};

use super::log::file::LogProgress;
use super::state::{ContainerRecord, PodRecord, ProcessIdentity, ProcessSpec};
use super::stdin::ContainerStdin;
use crate::node::container_status::ContainerStatusCell;
use crate::node::lock;
use crate::node::pod_table::{TableContainer, TablePod};

/// One pod: its containers, and the guard of its record.
pub(crate) type Pod = TablePod<Container, RecordGuard>;

/// Held while the pod's record is written; `true` once the record is removed for good.
#[derive(Debug, Default)]
pub(crate) struct RecordGuard(pub(crate) Mutex<bool>);

/// One container of a pod.
#[derive(Debug)]
pub(crate) struct Container {
    pub(crate) name: String,
    pub(crate) spec: ProcessSpec,
    pub(crate) runtime: Mutex<ContainerRuntime>,
}

/// What changes while a container lives.
#[derive(Debug)]
pub(crate) struct ContainerRuntime {
    pub(crate) status: ContainerStatusCell,
    /// The process of the current run while it runs.
    pub(crate) process: Option<ProcessIdentity>,
    /// Turns `true` when the process of the latest run has exited and its status is recorded.
    pub(crate) exited: Option<watch::Receiver<bool>>,
    /// Progress of the latest run's log, for followers.
    pub(crate) log: Option<watch::Receiver<LogProgress>>,
    /// The input pipe of the current run (`stdin: true`).
    pub(crate) stdin: Option<Arc<ContainerStdin>>,
    /// What the terminal of the current run shows, as it comes (`tty: true`); closed when the
    /// run's output ends.
    pub(crate) terminal_output: Option<broadcast::WeakSender<Bytes>>,
}

impl Pod {
    pub(crate) fn record(&self) -> PodRecord {
        PodRecord::new(
            self.key.clone(),
            self.ip,
            self.containers
                .iter()
                .map(|c| {
                    let runtime = lock(&c.runtime);
                    ContainerRecord {
                        spec: c.spec.clone(),
                        status: runtime.status.clone(),
                        process: runtime.process,
                    }
                })
                .collect(),
        )
    }
}

impl TableContainer for Container {
    fn name(&self) -> &str {
        &self.name
    }

    fn with_status<T>(&self, f: impl FnOnce(&mut ContainerStatusCell) -> T) -> T {
        f(&mut lock(&self.runtime).status)
    }

    fn stops_last(&self) -> bool {
        self.spec.sidecar
    }
}

impl Container {
    pub(crate) fn new(spec: ProcessSpec, status: ContainerStatusCell) -> Self {
        Self {
            name: status.name.clone(),
            spec,
            runtime: Mutex::new(ContainerRuntime {
                status,
                process: None,
                exited: None,
                log: None,
                stdin: None,
                terminal_output: None,
            }),
        }
    }
}
