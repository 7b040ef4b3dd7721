//! Taking over the pods an earlier backend recorded in the state directory.
//!
//! A recorded process is adopted only if it still runs *and* started at the recorded time (a pid
//! alone may have been reused by an unrelated process). A container whose process is gone is
//! reported as terminated: with its exit status if the process is still a zombie, otherwise as
//! `ContainerStatusUnknown` with exit code 137.

use std::sync::Arc;
use std::time::SystemTime;

use super::group::kill_remaining;
use super::inspect::{self, Liveness};
use super::pod::{Container, Pod, RecordGuard};
use super::run::Runner;
use super::state::PodRecord;
use crate::node::address::AddressPool;
use crate::node::container_status::{Exit, Phase};
use crate::node::lock;

/// Rebuilds the pod of `record`, watching again the processes that still run; its address is
/// taken from `addresses` again.
pub(super) fn adopt(runner: &Runner, addresses: &AddressPool, record: PodRecord) -> Arc<Pod> {
    let host_network = record.containers.iter().any(|c| c.spec.host_network);
    if !host_network && !addresses.assign_existing(&record.key, record.ip) {
        tracing::warn!(pod = %record.key, ip = %record.ip, "adopted pod's address is outside the pool or taken twice");
    }
    let processes: Vec<_> = record.containers.iter().map(|c| c.process).collect();
    let containers = record
        .containers
        .into_iter()
        .map(|c| Container::new(c.spec, c.status))
        .collect();
    let mut pod = Pod::new(record.key, record.ip, containers, RecordGuard::default());
    pod.host_network = host_network;
    let pod = Arc::new(pod);
    for (container, process) in pod.containers.iter().zip(processes) {
        let Some(identity) = process else {
            // Recorded as running without a process: cannot happen unless the record was edited.
            let mut runtime = lock(&container.runtime);
            if let Phase::Running { started_at } = runtime.status.phase {
                runtime
                    .status
                    .exited(Exit::unknown(started_at, SystemTime::now()));
            }
            continue;
        };
        let adopted = match inspect::liveness(identity.pid, identity.start_ticks) {
            Ok(Liveness::Alive) => runner.adopt(&pod, container, identity),
            Ok(Liveness::Exited(status)) => {
                kill_remaining(identity.pgid);
                let now = SystemTime::now();
                let exit = match status.map(inspect::decode_wait_status) {
                    Some((code, signal)) => Exit::new(code, signal, identity.started_at, now),
                    None => Exit::unknown(identity.started_at, now),
                };
                lock(&container.runtime).status.exited(exit);
                Ok(())
            }
            Err(err) => Err(err),
        };
        if let Err(err) = adopted {
            tracing::warn!(pod = %pod.key, container = %container.name, error = %err, "cannot adopt a container process");
            let mut runtime = lock(&container.runtime);
            runtime.process = None;
            let exit = Exit::unknown(identity.started_at, SystemTime::now());
            runtime.status.exited(exit);
        }
    }
    runner.persist(&pod);
    tracing::info!(pod = %pod.key, ip = %pod.ip, "adopted pod");
    pod
}
