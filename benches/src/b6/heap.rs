//! The live heap of a B6 process, counted by its allocator.
//!
//! Resident memory (VmRSS) says what a node costs the machine, but it also
//! holds what the allocator keeps after a burst of requests (freed pages it
//! has not given back), so it moves with the load. The B6 binaries install
//! [`INSTRUMENTED_SYSTEM`] as their global allocator; [`live_bytes`] is the
//! heap in use at this moment: what the pods' state really holds.
//!
//! `b6-node` writes its live heap to the file named by [`HEAP_FILE_ENV`]
//! twice a second ([`report_to_file`]), and the bench reads it back
//! ([`read_report`]) beside the process's VmRSS.
//!
//! [`INSTRUMENTED_SYSTEM`]: stats_alloc::INSTRUMENTED_SYSTEM

use std::alloc::System;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stats_alloc::{Stats, StatsAlloc};

/// The environment variable naming the file `b6-node` reports its live heap to.
pub const HEAP_FILE_ENV: &str = "B6_HEAP_FILE";

/// How often `b6-node` writes its report.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(500);

/// The bytes allocated and not yet freed through `allocator`.
pub fn live_bytes(allocator: &StatsAlloc<System>) -> u64 {
    live_bytes_of(&allocator.stats())
}

/// The bytes allocated and not yet freed, from an allocator's counters.
///
/// `stats_alloc` already adds what a `realloc` grows by to `bytes_allocated`
/// (and what it shrinks by to `bytes_deallocated`); `bytes_reallocated` is
/// the same growth again, so it is not added.
pub fn live_bytes_of(stats: &Stats) -> u64 {
    let allocated = u128::try_from(stats.bytes_allocated).unwrap_or(u128::MAX);
    let freed = u128::try_from(stats.bytes_deallocated).unwrap_or(0);
    u64::try_from(allocated.saturating_sub(freed)).unwrap_or(u64::MAX)
}

/// Writes the live heap of `allocator` to `path` every [`REPORT_INTERVAL`],
/// forever (spawn it). Each report replaces the last one at once (written
/// beside it, then renamed), so a reader never sees half a number.
pub async fn report_to_file(allocator: &'static StatsAlloc<System>, path: PathBuf) {
    if let Some(dir) = path.parent() {
        let _ = tokio::fs::create_dir_all(dir).await;
    }
    let staging = path.with_extension("tmp");
    let mut ticker = tokio::time::interval(REPORT_INTERVAL);
    loop {
        ticker.tick().await;
        let bytes = live_bytes(allocator).to_string();
        if tokio::fs::write(&staging, bytes).await.is_ok() {
            let _ = tokio::fs::rename(&staging, &path).await;
        }
    }
}

/// The live heap a process last reported to `path`, `None` before its first
/// report.
pub fn read_report(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Waits until the process reporting to `path` has written a report made
/// after this call, and returns it (`None` when none comes within 10 s).
pub async fn fresh_report(path: &Path) -> Option<u64> {
    let before = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(REPORT_INTERVAL).await;
        let now = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if now.is_some() && now != before {
            return read_report(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_by_realloc_is_counted_once() {
        // 100 bytes allocated, grown to 150 by a realloc, 30 freed: `stats_alloc` counts the
        // growth in both `bytes_allocated` and `bytes_reallocated`.
        let stats = Stats {
            allocations: 2,
            deallocations: 1,
            reallocations: 1,
            bytes_allocated: 180,
            bytes_deallocated: 30,
            bytes_reallocated: 50,
        };
        assert_eq!(live_bytes_of(&stats), 150);
    }

    #[tokio::test]
    async fn a_report_is_read_back_once_written() {
        let dir = std::env::temp_dir().join(format!("b6-heap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let path = dir.join("heap");
        assert_eq!(read_report(&path), None);
        std::fs::write(&path, "12345\n").expect("a report");
        assert_eq!(read_report(&path), Some(12345));
        let counter: &'static StatsAlloc<System> = Box::leak(Box::new(StatsAlloc::new(System)));
        let writer = tokio::spawn(report_to_file(counter, path.clone()));
        // Nothing goes through this allocator instance: its live heap is zero.
        assert_eq!(fresh_report(&path).await, Some(0));
        writer.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
