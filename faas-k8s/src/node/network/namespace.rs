//! Named network namespaces, made and entered with the system calls themselves.
//!
//! `setns` moves only the calling thread, so everything that must happen inside a namespace
//! (opening a netlink socket, binding a listener, starting a process, writing a sysctl) runs on a
//! short-lived thread of its own that enters it and ends afterwards; the rest of the node stays
//! where it is. Written by hand rather than with rtnetlink's `NetworkNamespace::add`, which forks
//! the whole process (unsafe in a process running a multi-threaded runtime).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Where named network namespaces live, as `ip netns` keeps them.
pub(super) const NETNS_DIR: &str = "/run/netns";

/// Runs `work` on a new thread that has entered the network namespace at `path`.
pub(super) async fn run_in<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let path = path.to_owned();
    on_own_thread(move || {
        enter(&path)?;
        work()
    })
    .await
}

/// Moves the calling thread into the network namespace at `path`.
pub(super) fn enter(path: &Path) -> io::Result<()> {
    let file = std::fs::File::open(path)?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Creates the named network namespace at `path` (a bind mount of a new namespace's handle), or
/// keeps it when it exists.
pub(super) async fn create(path: &Path) -> io::Result<()> {
    if is_namespace(path) {
        return Ok(());
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(NETNS_DIR)))?;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let target = path.to_owned();
    let made = on_own_thread(move || {
        unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        let own: PathBuf = "/proc/thread-self/ns/net".into();
        mount(
            Some(&own),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(io::Error::from)
    })
    .await;
    if made.is_err() {
        let _ = umount2(path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Turns IPv4 forwarding on inside the namespace at `path` (its own `/proc/sys/net`).
pub(super) async fn enable_forwarding(path: &Path) -> io::Result<()> {
    run_in(path, || {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
    })
    .await
}

/// Whether `path` holds a namespace handle (a bind mount), not a plain file left behind.
fn is_namespace(path: &Path) -> bool {
    let (Ok(file), Ok(own)) = (
        std::fs::metadata(path),
        std::fs::metadata("/proc/self/ns/net"),
    ) else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    // Namespace handles live on the nsfs file system, whose device differs from /run's.
    file.dev() == own.dev()
}

/// Runs `work` on a thread of its own, which ends afterwards (whatever namespaces it entered).
pub(super) async fn on_own_thread<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("faas-netns".to_owned())
        .spawn(move || {
            let _ = tx.send(work());
        })?;
    rx.await
        .map_err(|_| io::Error::other("the namespace helper thread panicked"))?
}
