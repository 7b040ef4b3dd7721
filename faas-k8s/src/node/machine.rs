//! The machine the node runs on: what it advertises when no capacity is configured.

use super::backend::Capacity;

/// The pod capacity a kubelet advertises by default.
pub const DEFAULT_MAX_PODS: u32 = 110;

/// The machine's CPU count, its memory in `Ki` (as a kubelet reports it) and
/// [`DEFAULT_MAX_PODS`] pods.
///
/// ```
/// let machine = faas_k8s::node::machine_capacity();
/// assert!(machine.memory.ends_with("Ki"));
/// ```
pub fn machine_capacity() -> Capacity {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = memory_total_bytes().map_or_else(
        |err| {
            tracing::warn!(error = %err, "cannot read the machine's memory; advertising 0");
            "0Ki".to_owned()
        },
        |bytes| format!("{}Ki", bytes / 1024),
    );
    Capacity::new(cpus.to_string(), memory, DEFAULT_MAX_PODS)
}

/// Total memory of the machine in bytes (`MemTotal` of `/proc/meminfo`).
fn memory_total_bytes() -> procfs::ProcResult<u64> {
    use procfs::Current as _;
    Ok(procfs::Meminfo::current()?.mem_total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_cpus_and_memory() {
        let machine = machine_capacity();
        assert!(machine.cpu.parse::<u32>().unwrap() >= 1);
        let ki: u64 = machine.memory.trim_end_matches("Ki").parse().unwrap();
        assert!(ki > 0);
        assert_eq!(machine.pods, DEFAULT_MAX_PODS);
    }
}
