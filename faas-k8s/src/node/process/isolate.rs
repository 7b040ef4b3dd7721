//! What a container sees of its own when the node runs as root: a mount and a UTS namespace per
//! run, with the pod's hostname, the kubelet-managed `/etc/hosts` bound over the node's, and a
//! termination message file of its own at its `terminationMessagePath`.
//!
//! Without root there are no such namespaces: the container sees the node's hostname and
//! `/etc/hosts` (`HOSTNAME` still names the pod), and only `FallbackToLogsOnError` gives a
//! termination message.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use super::state::{BindMount, ProcessSpec};
use crate::node::backend::VolumeLaunch;
use crate::node::network::Prelude;

/// How much of a termination message is kept, as a kubelet keeps it.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4096;
/// With `FallbackToLogsOnError`: at most this many of the last log lines...
pub(crate) const FALLBACK_LINES: usize = 80;
/// ...and at most this many bytes of them.
pub(crate) const FALLBACK_BYTES: usize = 2048;

/// Whether this node can give containers namespaces of their own.
pub(crate) fn available() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What a container's run must see, from its spec and its files on the node.
#[derive(Clone, Debug)]
struct Plan {
    hostname: Option<String>,
    hosts_file: Option<PathBuf>,
    termination: Option<(PathBuf, PathBuf)>,
    mounts: Vec<BindMount>,
}

/// The work that gives a run its own view, done on the thread that starts it; `None` when the
/// spec asks for no isolation.
pub(crate) fn prelude(spec: &ProcessSpec, termination_file: &Path) -> Option<Prelude> {
    if !spec.isolated {
        return None;
    }
    let plan = Plan {
        hostname: spec.hostname.clone(),
        hosts_file: spec.hosts_file.clone(),
        termination: spec
            .termination_message_path
            .clone()
            .map(|inside| (termination_file.to_owned(), inside)),
        mounts: spec.mounts.clone(),
    };
    Some(Box::new(move || apply(&plan)))
}

fn apply(plan: &Plan) -> io::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS).map_err(io::Error::from)?;
    // Mounts made here stay here; the node's own still reach the container.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(io::Error::from)?;
    if let Some(name) = &plan.hostname {
        nix::unistd::sethostname(name).map_err(io::Error::from)?;
    }
    if let Some(hosts) = &plan.hosts_file {
        bind(hosts, Path::new("/etc/hosts"))?;
    }
    if let Some((file, inside)) = &plan.termination {
        // The mount point must exist; it is an empty file shared by every container (each sees
        // its own file bound over it).
        if !inside.exists() {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(inside)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot create the mount point of terminationMessagePath {}: {e}",
                            inside.display()
                        ),
                    )
                })?;
        }
        bind(file, inside)?;
    }
    for m in &plan.mounts {
        // The mount point must exist; made on the node like a container runtime makes it in
        // the image's file system.
        if m.source.is_dir() {
            std::fs::create_dir_all(&m.target)?;
        } else if !m.target.exists() {
            if let Some(parent) = m.target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create(&m.target)?;
        }
        bind(&m.source, &m.target)?;
        if m.read_only {
            mount(
                None::<&str>,
                &m.target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(io::Error::from)?;
        }
    }
    Ok(())
}

/// Writes the pod's volumes under `dir` (an `emptyDir` of `medium: Memory` gets a tmpfs) and
/// returns each volume's directory by name. With `fs_group` the volumes belong to that group as
/// a kubelet sets them: an `emptyDir` becomes group-writable with the set-group-ID bit (what a
/// container creates in it gets the group too), the files of the others group-readable.
pub(crate) fn write_volumes(
    dir: &Path,
    volumes: &[VolumeLaunch],
    fs_group: Option<u32>,
) -> io::Result<Vec<(String, PathBuf)>> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for volume in volumes {
        let root = dir.join(&volume.name);
        std::fs::create_dir_all(&root)?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777))?;
        if volume.memory && !is_mount_point(&root) {
            mount(
                Some("tmpfs"),
                &root,
                Some("tmpfs"),
                MsFlags::empty(),
                Some("mode=0777"),
            )
            .map_err(io::Error::from)?;
        }
        let Some(files) = &volume.files else {
            if let Some(group) = fs_group {
                give_group(&root, group, WRITABLE_DIR_MODE)?;
            }
            out.push((volume.name.clone(), root));
            continue;
        };
        if let Some(group) = fs_group {
            give_group(&root, group, READABLE_DIR_MODE)?;
        }
        let mut written = std::collections::HashSet::new();
        for file in files {
            let path = inside(&root, &file.path)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
                if let Some(group) = fs_group {
                    for dir in parent.ancestors().take_while(|d| d.starts_with(&root)) {
                        give_group(dir, group, READABLE_DIR_MODE)?;
                    }
                }
            }
            // Replaced whole, so a reader sees the old content or the new, never half.
            let tmp = path.with_file_name(format!(
                ".{}.tmp",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
            ));
            std::fs::write(&tmp, &file.content)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(file.mode))?;
            if let Some(group) = fs_group {
                give_group(&tmp, group, READABLE_FILE_MODE)?;
            }
            std::fs::rename(&tmp, &path)?;
            written.insert(path);
        }
        remove_others(&root, &written)?;
        out.push((volume.name.clone(), root));
    }
    Ok(out)
}

/// What a kubelet adds to a writable volume's directory for its `fsGroup`: group read, write
/// and search, and the set-group-ID bit.
const WRITABLE_DIR_MODE: u32 = 0o2770;
/// ...to a read-only volume's directories: group read and search, set-group-ID.
const READABLE_DIR_MODE: u32 = 0o2550;
/// ...to a read-only volume's files: group read.
const READABLE_FILE_MODE: u32 = 0o440;

/// Makes `group` the group of `path` and adds `mode` to its permissions.
fn give_group(path: &Path, group: u32, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(group)))
        .map_err(io::Error::from)?;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(current | mode))
}

/// Removes the files under `dir` that are not in `keep` (keys gone from a ConfigMap, say).
fn remove_others(dir: &Path, keep: &std::collections::HashSet<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            remove_others(&path, keep)?;
        } else if !keep.contains(&path) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// `relative` under `root`, refusing anything that would climb out of it.
pub(crate) fn inside(root: &Path, relative: &str) -> io::Result<PathBuf> {
    let path = Path::new(relative);
    let plain = path
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{relative:?} is not a plain relative path"),
        ));
    }
    Ok(root.join(path))
}

fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(own), Some(Ok(parent))) = (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) else {
        return false;
    };
    own.dev() != parent.dev()
}

fn bind(source: &Path, target: &Path) -> io::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "cannot bind {} at {}: {e}",
                source.display(),
                target.display()
            ),
        )
    })
}

/// The message a run leaves: its termination message file, else (when asked and the run failed)
/// the end of its log.
pub(crate) fn termination_message(
    spec: &ProcessSpec,
    termination_file: &Path,
    log: impl FnOnce() -> Option<String>,
    exit_code: i32,
) -> Option<String> {
    if spec.isolated
        && let Ok(bytes) = std::fs::read(termination_file)
        && !bytes.is_empty()
    {
        let cut = &bytes[..bytes.len().min(MAX_MESSAGE_BYTES)];
        return Some(String::from_utf8_lossy(cut).into_owned());
    }
    if spec.termination_message_from_logs && exit_code != 0 {
        return log().filter(|text| !text.is_empty());
    }
    None
}

/// The last [`FALLBACK_LINES`] lines of `text`, at most [`FALLBACK_BYTES`] of them.
pub(crate) fn log_tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail: String = lines[lines.len().saturating_sub(FALLBACK_LINES)..]
        .iter()
        .map(|line| format!("{line}\n"))
        .collect();
    let mut start = tail.len().saturating_sub(FALLBACK_BYTES);
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    tail[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_tail_keeps_the_last_lines_and_bytes() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = log_tail(&text);
        assert!(tail.starts_with("line 20\n"));
        assert!(tail.ends_with("line 99\n"));
        let long = "x".repeat(5000);
        assert_eq!(log_tail(&long).len(), FALLBACK_BYTES);
    }
}
