//! The journal of handled files: one JSON line per file version handled.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One version of a file: its path (relative to the watched directory),
/// size and modification time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct FileVersion {
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) modified_ns: u64,
}

/// A journal line.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    #[serde(flatten)]
    version: FileVersion,
    sha256: String,
    outcome: String,
    at: String,
}

/// The record of what was handled, appended to as files are settled.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    handled: HashSet<FileVersion>,
}

impl Journal {
    /// Reads the journal at `path` (missing: empty).
    pub(crate) fn open(path: &Path) -> std::io::Result<Journal> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let handled = read(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            handled,
        })
    }

    pub(crate) fn contains(&self, version: &FileVersion) -> bool {
        self.handled.contains(version)
    }

    /// Records `version` as handled (`done` or `dead-lettered`), durably.
    pub(crate) fn record(
        &mut self,
        version: &FileVersion,
        sha256: &str,
        outcome: &str,
    ) -> std::io::Result<()> {
        let line = Line {
            version: version.clone(),
            sha256: sha256.to_owned(),
            outcome: outcome.to_owned(),
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        };
        let mut text = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        text.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(&text)?;
        file.sync_data()?;
        self.handled.insert(version.clone());
        Ok(())
    }
}

/// The versions a journal file records (a torn last line is skipped).
pub(crate) fn read(path: &Path) -> std::io::Result<HashSet<FileVersion>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<Line>(line).ok())
        .map(|line| line.version)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_version_is_read_back() {
        let dir = std::env::temp_dir().join(format!("faas-journal-{}", uuid_like()));
        let path = dir.join("handled.jsonl");
        let version = FileVersion {
            path: "a/b.csv".into(),
            size: 12,
            modified_ns: 1_796_241_752_901_824_461,
        };
        let mut journal = Journal::open(&path).unwrap();
        assert!(!journal.contains(&version));
        journal.record(&version, "abc", "done").unwrap();
        // A torn last line (a crash mid-write) is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"path\":\"x\"")
            .unwrap();
        let again = Journal::open(&path).unwrap();
        assert!(again.contains(&version));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn uuid_like() -> String {
        format!("{}-{:?}", std::process::id(), std::thread::current().id())
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    }
}
