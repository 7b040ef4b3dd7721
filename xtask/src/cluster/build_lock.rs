//! One build at a time per cached version.
//!
//! Two runs that find the same build missing (a test run and a second
//! checkout's `cluster up`, say) would otherwise both write the version's
//! staging directory, and the one that finishes second would find it moved
//! into place under it. The second waits on an advisory lock (`flock`) held by
//! the first for the whole build, then finds the first's result in the cache;
//! the lock goes with the process, so a build killed half-way leaves none
//! behind.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use anyhow::{Context as _, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::output;

/// Held while a build of one version runs; released on drop.
#[derive(Debug)]
pub(super) struct BuildLock {
    _file: Flock<File>,
}

impl BuildLock {
    /// Takes the build lock of the version directory `dir`, waiting for a
    /// build of `what` another run holds it for.
    pub(super) fn acquire(dir: &Path, what: &str) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(".build.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((file, Errno::EWOULDBLOCK)) => {
                output::info(format!(
                    "another run is building {what} in {}; waiting for it",
                    dir.display()
                ));
                Flock::lock(file, FlockArg::LockExclusive)
                    .map_err(|(_, errno)| errno)
                    .with_context(|| format!("cannot lock {}", path.display()))?
            }
            Err((_, errno)) => {
                return Err(errno).with_context(|| format!("cannot lock {}", path.display()));
            }
        };
        Ok(BuildLock { _file: locked })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_second_build_waits_for_the_first() {
        let dir = std::env::temp_dir().join(format!("faas-build-lock-{}", std::process::id()));
        let first = BuildLock::acquire(&dir, "test").unwrap();
        let (taken, waiting) = mpsc::channel();
        let second = {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let lock = BuildLock::acquire(&dir, "test").unwrap();
                taken.send(()).unwrap();
                lock
            })
        };
        // Not a timing assertion: the second cannot take the lock while the
        // first holds it, however long this waits.
        assert!(waiting.recv_timeout(Duration::from_millis(200)).is_err());
        drop(first);
        waiting.recv().unwrap();
        drop(second.join().unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
