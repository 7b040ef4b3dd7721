//! [`StorageTriggerConfig`]: which directory a storage trigger watches, and how.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Result;
use crate::event::invalid;

/// How long a file's size and modification time must stay unchanged by
/// default before it counts as complete.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(500);

/// The settings of a [`StorageTrigger`](super::StorageTrigger).
///
/// | setting | default | what |
/// |---|---|---|
/// | `dir` | (required) | the directory watched; it must exist |
/// | [`journal`](Self::with_journal) | `<dir>/.faas/handled.jsonl` | the record of handled files, kept across restarts |
/// | [`settle`](Self::with_settle) | 500 ms | a file is complete once its size and modification time stayed unchanged this long |
/// | [`recursive`](Self::with_recursive) | no | also watch subdirectories |
/// | [`max_in_flight`](Self::with_max_in_flight) | the function's policy | calls running at once |
///
/// Names starting with `.` or ending in `.tmp`, `.part`, `.partial`,
/// `.crdownload`, `.swp` or `~` are never delivered: uploaders write under
/// such names and rename when done.
///
/// ```
/// use std::time::Duration;
/// use faas_triggers::storage::StorageTriggerConfig;
///
/// let dir = std::env::temp_dir();
/// let config = StorageTriggerConfig::new(&dir).with_settle(Duration::from_secs(1));
/// config.validate().unwrap();
/// assert!(StorageTriggerConfig::new("/no/such/dir").validate().unwrap_err().to_string().contains("storage.dir"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct StorageTriggerConfig {
    pub(crate) dir: PathBuf,
    pub(crate) journal: Option<PathBuf>,
    pub(crate) settle: Duration,
    pub(crate) recursive: bool,
    pub(crate) max_in_flight: Option<usize>,
}

impl StorageTriggerConfig {
    /// Watches `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StorageTriggerConfig {
            dir: dir.into(),
            journal: None,
            settle: DEFAULT_SETTLE,
            recursive: false,
            max_in_flight: None,
        }
    }

    /// Records handled files in `journal`.
    pub fn with_journal(mut self, journal: impl Into<PathBuf>) -> Self {
        self.journal = Some(journal.into());
        self
    }

    /// Sets how long a file must stay unchanged to count as complete.
    pub fn with_settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }

    /// Also watches subdirectories.
    pub fn with_recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    /// Runs at most `max` calls at once.
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max);
        self
    }

    /// The directory watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal of handled files.
    pub fn journal(&self) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(|| self.dir.join(".faas").join("handled.jsonl"))
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the
    /// setting (`storage.dir`, `storage.settle`, `storage.max_in_flight`).
    pub fn validate(&self) -> Result<()> {
        if !self.dir.is_dir() {
            return Err(invalid(
                "storage.dir",
                &self.dir.display().to_string(),
                "no such directory",
            ));
        }
        if self.settle < Duration::from_millis(10) {
            return Err(invalid(
                "storage.settle",
                &format!("{:?}", self.settle),
                "at least 10 ms",
            ));
        }
        if self.max_in_flight == Some(0) {
            return Err(invalid("storage.max_in_flight", "0", "at least 1"));
        }
        Ok(())
    }
}

/// Whether a name is one uploaders use while writing (or a hidden file).
pub(crate) fn is_temporary(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return true;
    };
    name.starts_with('.')
        || name.ends_with('~')
        || [".tmp", ".part", ".partial", ".crdownload", ".swp"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_being_written_are_skipped() {
        for name in [
            ".hidden",
            "a.tmp",
            "b.part",
            "c.partial",
            "d.crdownload",
            "e.swp",
            "f~",
        ] {
            assert!(is_temporary(Path::new(name)), "{name}");
        }
        assert!(!is_temporary(Path::new("upload.csv")));
    }
}
