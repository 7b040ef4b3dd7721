//! What `/proc` says about processes: identity, liveness, process groups, machine memory.
//!
//! A pid alone does not identify a process across a restart of the node: the kernel reuses pids.
//! A pid together with the process start time (field 22 of `/proc/<pid>/stat`, in clock ticks
//! since boot) does.

use std::io;

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

/// Reads `/proc/<pid>/stat`; `None` when there is no such process.
pub(crate) fn read_stat(pid: i32) -> io::Result<Option<ProcStat>> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => parse_stat(&text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected /proc/{pid}/stat: {text:?}"),
            )
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        // The process vanished while being read.
        Err(err) if err.raw_os_error() == Some(nix::libc::ESRCH) => Ok(None),
        Err(err) => Err(err),
    }
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // `comm` (field 2) is in parentheses and may itself hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 of proc(5).
    let field = |n: usize| fields.get(n - 3).copied();
    let state = field(3)?.chars().next()?;
    let pgid = field(5)?.parse().ok()?;
    let start_ticks = field(22)?.parse().ok()?;
    let wait_status = if matches!(state, 'Z' | 'X') {
        field(52).and_then(|s| s.parse().ok())
    } else {
        None
    };
    Some(ProcStat {
        state,
        pgid,
        start_ticks,
        wait_status,
    })
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
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Ok(Some(stat)) = read_stat(pid)
            && stat.pgid == pgid
            && !stat.is_exited()
        {
            members.push(pid);
        }
    }
    Ok(members)
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

/// Total memory of the machine in bytes (`MemTotal` of `/proc/meminfo`).
pub(crate) fn memory_total_bytes() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    parse_meminfo_total(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no MemTotal in /proc/meminfo"))
}

fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    let factor = match parts.next() {
        Some("kB") | Some("KB") | Some("kb") => 1024,
        None => 1,
        Some(_) => return None,
    };
    Some(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        // Fields 1 and 2, then 3..=52 with state, pgrp (5) and starttime (22) set.
        let mut fields: Vec<String> = (3..=52).map(|_| "0".to_owned()).collect();
        fields[0] = "S".into();
        fields[5 - 3] = "1234".into();
        fields[22 - 3] = "987654".into();
        let line = format!("1234 (we ird) (x)) {}", fields.join(" "));
        let line = line.as_str();
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgid, 1234);
        assert_eq!(stat.start_ticks, 987654);
        assert_eq!(stat.wait_status, None);
        fields[0] = "Z".into();
        fields[52 - 3] = "256".into();
        let zombie = format!("1234 (we ird) (x)) {}", fields.join(" "));
        assert_eq!(parse_stat(&zombie).unwrap().wait_status, Some(256));
    }

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
    fn decodes_wait_statuses() {
        assert_eq!(decode_wait_status(0), (0, None));
        assert_eq!(decode_wait_status(3 << 8), (3, None));
        assert_eq!(decode_wait_status(9), (137, Some(9)));
        assert_eq!(decode_wait_status(15 | 0x80), (143, Some(15)));
    }

    #[test]
    fn reads_total_memory() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       16314200 kB\nMemFree: 1 kB\n"),
            Some(16314200 * 1024)
        );
        assert!(memory_total_bytes().unwrap() > 0);
    }
}
