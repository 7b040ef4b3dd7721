//! A pod as the process backend holds it in memory: its address, its containers, their status
//! and the processes that run them.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::log::file::LogProgress;
use super::state::{ContainerRecord, PodRecord, ProcessIdentity, ProcessSpec};
use crate::node::backend::{PodKey, PodRuntimeStatus};
use crate::node::container_status::ContainerStatusCell;
use crate::node::lock;

/// One pod.
#[derive(Debug)]
pub(crate) struct Pod {
    pub(crate) key: PodKey,
    pub(crate) ip: Ipv4Addr,
    pub(crate) containers: Vec<Arc<Container>>,
    /// Set when deletion starts: no more restarts.
    pub(crate) deleting: AtomicBool,
    /// Held by lifecycle operations (create, restart, delete): one at a time per pod.
    pub(crate) lifecycle: Arc<tokio::sync::Mutex<()>>,
    /// Held while the record is written; `true` once the record is removed for good.
    pub(crate) record_removed: Mutex<bool>,
}

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
}

impl Pod {
    pub(crate) fn new(key: PodKey, ip: Ipv4Addr, containers: Vec<Container>) -> Self {
        Self {
            key,
            ip,
            containers: containers.into_iter().map(Arc::new).collect(),
            deleting: AtomicBool::new(false),
            lifecycle: Arc::new(tokio::sync::Mutex::new(())),
            record_removed: Mutex::new(false),
        }
    }

    pub(crate) fn container(&self, name: &str) -> Option<&Arc<Container>> {
        self.containers.iter().find(|c| c.name == name)
    }

    pub(crate) fn is_deleting(&self) -> bool {
        self.deleting.load(Ordering::SeqCst)
    }

    pub(crate) fn status(&self) -> PodRuntimeStatus {
        PodRuntimeStatus::new(
            self.key.clone(),
            Some(IpAddr::V4(self.ip)),
            self.containers
                .iter()
                .map(|c| lock(&c.runtime).status.to_status())
                .collect(),
        )
    }

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
            }),
        }
    }
}
