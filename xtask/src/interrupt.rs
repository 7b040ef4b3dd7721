//! Ctrl-C and SIGTERM: stop what is running in the foreground, then let the
//! command clean up (stop the services it started) and exit.
//!
//! Foreground steps (cargo, go) run in their own process group so that a
//! signal that reaches only xtask (a CI runner's SIGTERM) still reaches them:
//! the signal thread forwards it to the whole group.

use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::os::unix::process::CommandExt as _;

use crate::output;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The process group of the foreground step, if one runs.
static FOREGROUND: Mutex<Option<i32>> = Mutex::new(None);

/// Starts the thread that turns SIGINT, SIGTERM and SIGHUP into an orderly
/// stop. Call once, before starting anything.
pub(crate) fn install() -> Result<()> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install the signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for number in signals.forever() {
                let first = !INTERRUPTED.swap(true, Ordering::SeqCst);
                if first {
                    output::warn("interrupted: stopping the current step and cleaning up");
                } else {
                    output::warn("still cleaning up; it stops by itself");
                }
                let signal = Signal::try_from(number).unwrap_or(Signal::SIGTERM);
                forward(signal);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

fn forward(signal: Signal) {
    let group = *FOREGROUND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(group) = group {
        // The group is the foreground step we started; it may have just ended.
        let _ = killpg(Pid::from_raw(group), signal);
    }
}

/// Whether a stop was asked for.
pub(crate) fn is_interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails when a stop was asked for; long waits call it between polls.
pub(crate) fn check() -> Result<()> {
    if is_interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Runs a foreground step to its end, in its own process group, forwarding
/// Ctrl-C and SIGTERM to it. Stdin is closed: steps never prompt.
pub(crate) fn run(cmd: &mut Command) -> Result<ExitStatus> {
    let mut child = spawn(cmd.stdin(Stdio::null()))?;
    let status = wait(&mut child);
    clear();
    check()?;
    status.with_context(|| format!("waiting for {cmd:?}"))
}

/// Spawns a foreground step in its own process group and registers it, so
/// that signals reach it. The caller waits for it and then calls [`clear`].
pub(crate) fn spawn(cmd: &mut Command) -> Result<Child> {
    check()?;
    let child = cmd
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let group = i32::try_from(child.id()).context("pid out of range")?;
    *FOREGROUND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(group);
    if is_interrupted() {
        // The signal came between spawn and registration.
        let _ = killpg(Pid::from_raw(group), Signal::SIGTERM);
    }
    Ok(child)
}

/// Forgets the foreground step after it ended.
pub(crate) fn clear() {
    *FOREGROUND
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
}

fn wait(child: &mut Child) -> io::Result<ExitStatus> {
    child.wait()
}
