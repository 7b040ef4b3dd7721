//! Listing the files of the watched directory.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::config::is_temporary;
use super::journal::FileVersion;

/// A file seen on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) size: u64,
    pub(crate) modified: SystemTime,
}

/// The size and modification time of `path`, if it is a regular file.
pub(crate) fn stat(path: &Path) -> Option<Seen> {
    let metadata = std::fs::metadata(path).ok()?;
    metadata.is_file().then(|| Seen {
        size: metadata.len(),
        modified: metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    })
}

/// Whether `path` (under `dir`) may be delivered: not a temporary name,
/// not inside a hidden directory (the journal's `.faas` included).
pub(crate) fn deliverable(dir: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(dir) else {
        return false;
    };
    !is_temporary(path)
        && relative
            .components()
            .all(|part| !part.as_os_str().to_string_lossy().starts_with('.'))
}

/// The version of `path` as the journal records it.
pub(crate) fn version_of(dir: &Path, path: &Path, seen: &Seen) -> FileVersion {
    FileVersion {
        path: path
            .strip_prefix(dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned(),
        size: seen.size,
        modified_ns: seen
            .modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            }),
    }
}

/// Every deliverable file under `dir` (one level, or all with `recursive`).
pub(crate) fn files(dir: &Path, recursive: bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(current) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if recursive && deliverable(dir, &path) {
                    todo.push(path);
                }
            } else if kind.is_file() && deliverable(dir, &path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
