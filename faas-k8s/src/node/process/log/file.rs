//! A container's log file: stored lines appended, capped in size with one rotated predecessor.
//!
//! `<name>.log` is written; when the next line would take it past the cap, it becomes
//! `<name>.log.1` (replacing the older one) and a fresh `<name>.log` starts. Readers are told about
//! every write through a [`watch`] channel so that `follow` needs no polling.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tokio::sync::watch;

/// What has happened to a log file so far, as its followers see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogProgress {
    /// Bytes written since the writer opened the file.
    pub(crate) written: u64,
    /// Nothing more will be written: the container's output is closed.
    pub(crate) closed: bool,
}

/// The two paths of one log: the file being written and its rotated predecessor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogPaths {
    pub(crate) current: PathBuf,
    pub(crate) previous: PathBuf,
}

impl LogPaths {
    /// `<dir>/<stem>.log` and `<dir>/<stem>.log.1`.
    pub(crate) fn new(dir: &Path, stem: &str) -> Self {
        Self {
            current: dir.join(format!("{stem}.log")),
            previous: dir.join(format!("{stem}.log.1")),
        }
    }

    /// Removes both files; missing ones are fine.
    pub(crate) fn remove(&self) -> io::Result<()> {
        for path in [&self.current, &self.previous] {
            match std::fs::remove_file(path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Appends stored lines to a log file, rotating it at its size cap.
#[derive(Debug)]
pub(crate) struct LogFile {
    paths: LogPaths,
    cap: u64,
    file: File,
    size: u64,
    progress: watch::Sender<LogProgress>,
}

impl LogFile {
    /// Opens (or creates) the current file for appending.
    pub(crate) fn open(paths: LogPaths, cap: u64) -> io::Result<Self> {
        let file = open_append(&paths.current)?;
        let size = file.metadata()?.len();
        Ok(Self {
            paths,
            cap: cap.max(1),
            file,
            size,
            progress: watch::Sender::new(LogProgress::default()),
        })
    }

    /// A receiver that sees every write and the final close.
    pub(crate) fn subscribe(&self) -> watch::Receiver<LogProgress> {
        self.progress.subscribe()
    }

    /// Appends already encoded lines (each ending in a newline), rotating before them when they
    /// would take the file past its cap.
    pub(crate) fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        if self.size > 0 && self.size + lines.len() as u64 > self.cap {
            self.rotate()?;
        }
        self.file.write_all(lines)?;
        self.size += lines.len() as u64;
        self.progress
            .send_modify(|p| p.written += lines.len() as u64);
        Ok(())
    }

    /// Marks the log closed: followers stop once they have read everything.
    pub(crate) fn close(&self) {
        self.progress.send_modify(|p| p.closed = true);
    }

    fn rotate(&mut self) -> io::Result<()> {
        std::fs::rename(&self.paths.current, &self.paths.previous)?;
        self.file = open_append(&self.paths.current)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::process::test_dir;

    #[test]
    fn rotates_at_the_cap_keeping_one_predecessor() {
        let dir = test_dir("log-file-rotate");
        let paths = LogPaths::new(&dir, "c");
        let mut log = LogFile::open(paths.clone(), 10).unwrap();
        let progress = log.subscribe();
        log.append(b"aaaa\n").unwrap();
        log.append(b"bbbb\n").unwrap();
        log.append(b"cccc\n").unwrap();
        log.append(b"dddddddddddddd\n").unwrap();
        assert_eq!(std::fs::read(&paths.current).unwrap(), b"dddddddddddddd\n");
        assert_eq!(std::fs::read(&paths.previous).unwrap(), b"cccc\n");
        assert_eq!(progress.borrow().written, 30);
        log.close();
        assert!(progress.borrow().closed);
        paths.remove().unwrap();
        paths.remove().unwrap();
        assert!(!paths.current.exists());
    }

    #[test]
    fn reopening_appends() {
        let dir = test_dir("log-file-reopen");
        let paths = LogPaths::new(&dir, "c");
        LogFile::open(paths.clone(), 100)
            .unwrap()
            .append(b"1\n")
            .unwrap();
        LogFile::open(paths.clone(), 100)
            .unwrap()
            .append(b"2\n")
            .unwrap();
        assert_eq!(std::fs::read(&paths.current).unwrap(), b"1\n2\n");
    }
}
