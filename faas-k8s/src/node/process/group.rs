//! Signals to a container's process group, and waiting for the group to be gone.

use std::io;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::inspect;

/// How often a process group is checked while waiting for its last members to go; the kernel
/// offers no notification for processes that are not our children.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// Sends `signal` to every process of group `pgid`; a group that is already gone is fine.
pub(crate) fn signal_group(pgid: i32, signal: Signal) -> io::Result<()> {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(io::Error::from(errno)),
    }
}

/// Kills whatever is left of group `pgid` once its leader is gone (a container's processes never
/// outlive it). Checks the group has live members first, so a group id that is no longer used is
/// left alone.
pub(crate) fn kill_remaining(pgid: i32) {
    match inspect::group_members(pgid) {
        Ok(members) if members.is_empty() => {}
        Ok(_) => {
            if let Err(err) = signal_group(pgid, Signal::SIGKILL) {
                tracing::warn!(pgid, error = %err, "cannot kill what is left of a container");
            }
        }
        Err(err) => tracing::warn!(pgid, error = %err, "cannot list a container's processes"),
    }
}

/// Waits until group `pgid` has no live process, sending `SIGKILL` again on each check (a member
/// may have been forking while the first one was sent). Fails after `limit`.
pub(crate) async fn wait_group_gone(pgid: i32, limit: Duration) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let members = inspect::group_members(pgid)?;
        if members.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "processes {members:?} of process group {pgid} survived SIGKILL"
            )));
        }
        signal_group(pgid, Signal::SIGKILL)?;
        tokio::time::sleep(GROUP_POLL).await;
    }
}
