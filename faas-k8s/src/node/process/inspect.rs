//! What `/proc` says about processes: identity, liveness, process groups (read with `procfs`).
//!
//! A pid alone does not identify a process across a restart of the node: the kernel reuses pids.
//! A pid together with the process start time (field 22 of `/proc/<pid>/stat`, in clock ticks
//! since boot) does.

use std::io;

use procfs::ProcError;
use procfs::process::{Process, Stat};

/// The fields of `/proc/<pid>/stat` the backend needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Single-letter state (`R`, `S`, `D`, `Z`, ...).
    pub(crate) state: char,
    /// Process group id.
    pub(crate) pgid: i32,
    /// Start time in clock ticks since boot.
    pub(crate) start_ticks: u64,
    /// For a zombie: its exit status in `waitpid` form.
    pub(crate) wait_status: Option<i32>,
}

impl ProcStat {
    /// Whether the process has exited (a zombie waiting to be reaped counts as exited).
    pub(crate) fn is_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

impl From<&Stat> for ProcStat {
    fn from(stat: &Stat) -> Self {
        let exited = matches!(stat.state, 'Z' | 'X');
        Self {
            state: stat.state,
            pgid: stat.pgrp,
            start_ticks: stat.starttime,
            wait_status: if exited { stat.exit_code } else { None },
        }
    }
}

/// Reads `/proc/<pid>/stat`; `None` when there is no such process.
pub(crate) fn read_stat(pid: i32) -> io::Result<Option<ProcStat>> {
    match Process::new(pid).and_then(|p| p.stat()) {
        Ok(stat) => Ok(Some(ProcStat::from(&stat))),
        // Gone before or while being read.
        Err(ProcError::NotFound(_)) => Ok(None),
        Err(ProcError::Io(err, _)) if err.raw_os_error() == Some(nix::libc::ESRCH) => Ok(None),
        Err(err) => Err(io::Error::other(err)),
    }
}

/// What became of a process known by pid and start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Still running.
    Alive,
    /// Exited; the wait status when the kernel still held it (a zombie).
    Exited(Option<i32>),
}

/// Whether the process `pid` that started at `start_ticks` still runs. A different process with
/// the same pid (the pid was reused) counts as the original having exited.
pub(crate) fn liveness(pid: i32, start_ticks: u64) -> io::Result<Liveness> {
    Ok(match read_stat(pid)? {
        Some(stat) if stat.start_ticks == start_ticks => {
            if stat.is_exited() {
                Liveness::Exited(stat.wait_status)
            } else {
                Liveness::Alive
            }
        }
        _ => Liveness::Exited(None),
    })
}

/// The pids of the live (not zombie) processes of process group `pgid`.
pub(crate) fn group_members(pgid: i32) -> io::Result<Vec<i32>> {
    let processes = procfs::process::all_processes().map_err(io::Error::other)?;
    Ok(processes
        .flatten()
        .filter_map(|process| process.stat().ok())
        .map(|stat| (stat.pid, ProcStat::from(&stat)))
        .filter(|(_, stat)| stat.pgid == pgid && !stat.is_exited())
        .map(|(pid, _)| pid)
        .collect())
}

/// CPU time (nanoseconds) and resident memory (bytes) of the live processes of group `pgid`.
pub(crate) fn group_usage(pgid: i32) -> io::Result<(u64, u64)> {
    let ticks = procfs::ticks_per_second().max(1);
    let page = procfs::page_size();
    let processes = procfs::process::all_processes().map_err(io::Error::other)?;
    let (mut cpu, mut memory) = (0u64, 0u64);
    for process in processes.flatten() {
        let Ok(stat) = process.stat() else { continue };
        if stat.pgrp != pgid || ProcStat::from(&stat).is_exited() {
            continue;
        }
        cpu += (stat.utime + stat.stime) * 1_000_000_000 / ticks;
        memory += stat.rss * page;
    }
    Ok((cpu, memory))
}

/// Decodes a `waitpid` status into (exit code, signal), the exit code being 128 + signal for a
/// process killed by a signal.
pub(crate) fn decode_wait_status(status: i32) -> (i32, Option<i32>) {
    let signal = status & 0x7f;
    if signal == 0 {
        ((status >> 8) & 0xff, None)
    } else {
        (128 + signal, Some(signal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_in_its_group() {
        let me = std::process::id() as i32;
        let stat = read_stat(me).unwrap().unwrap();
        assert_eq!(liveness(me, stat.start_ticks).unwrap(), Liveness::Alive);
        assert_eq!(
            liveness(me, stat.start_ticks + 1).unwrap(),
            Liveness::Exited(None),
            "a different start time means a different process"
        );
        assert!(group_members(stat.pgid).unwrap().contains(&me));
        assert_eq!(read_stat(i32::MAX).unwrap(), None);
    }

    #[test]
    fn a_zombie_keeps_its_exit_status() {
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Not waited for: it stays a zombie until dropped with the test.
        let stat = loop {
            let stat = read_stat(pid).unwrap().unwrap();
            if stat.is_exited() {
                break stat;
            }
            std::thread::yield_now();
        };
        assert_eq!(stat.wait_status.map(decode_wait_status), Some((3, None)));
        drop(child);
    }

    #[test]
    fn decodes_wait_statuses() {
        assert_eq!(decode_wait_status(0), (0, None));
        assert_eq!(decode_wait_status(3 << 8), (3, None));
        assert_eq!(decode_wait_status(9), (137, Some(9)));
        assert_eq!(decode_wait_status(15 | 0x80), (143, Some(15)));
    }
}
