//! Who a container's processes run as: `runAsUser`, `runAsGroup`, and the supplementary groups
//! (`fsGroup`, `supplementalGroups`).
//!
//! The identity is set by `setpriv` (util-linux, in Debian's base and on the node) between the
//! node and the container's program: `setpriv --reuid=U --regid=G --groups=A,B -- program args`.
//! The standard library can change a child's user and group, but not its supplementary groups
//! (that needs code run between fork and exec, which this workspace's `forbid(unsafe_code)`
//! rules out); splitting the identity between the library (user, group) and `setpriv` (groups)
//! would give two places where it is decided, so all of it goes through `setpriv`, for a
//! container's own runs and for everything run inside it (`exec`, exec probes and hooks).
//! A container that sets none of it runs as the node's user without a wrapper.
//!
//! Changing identity needs root: a node that is not root refuses a container whose user or
//! group differs from its own, and does not apply supplementary groups (the node says so in an
//! Event, see [`PodBackend::unapplied_groups`](crate::node::PodBackend::unapplied_groups)).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::state::ProcessSpec;

/// Where `setpriv` is looked for.
const SETPRIV_PATHS: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];

/// The node's `setpriv`, if it has one.
pub(crate) fn setpriv() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            SETPRIV_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .as_deref()
}

/// Why this node cannot give containers an identity of their own, or `None` when it can.
pub(crate) fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some(
            "the node does not run as root, so it cannot change a process's groups".to_owned(),
        );
    }
    if setpriv().is_none() {
        return Some(format!(
            "setpriv (util-linux) is not installed at {}",
            SETPRIV_PATHS.join(" or ")
        ));
    }
    None
}

/// Whether `spec` asks for an identity other than the node's.
pub(crate) fn wanted(spec: &ProcessSpec) -> bool {
    spec.run_as_user.is_some()
        || spec.run_as_group.is_some()
        || !spec.supplemental_groups.is_empty()
}

/// The program and arguments that run `program` with `args` as `spec`'s identity (unchanged
/// when it sets none).
pub(crate) fn wrap(spec: &ProcessSpec, program: &Path, args: &[String]) -> (PathBuf, Vec<String>) {
    let Some(setpriv) = setpriv().filter(|_| wanted(spec)) else {
        return (program.to_owned(), args.to_vec());
    };
    let mut wrapped = Vec::with_capacity(args.len() + 5);
    // A group without a user keeps the node's user, as a runtime does.
    if let Some(user) = spec.run_as_user {
        wrapped.push(format!("--reuid={user}"));
    }
    if let Some(group) = spec.run_as_group {
        wrapped.push(format!("--regid={group}"));
    }
    if spec.supplemental_groups.is_empty() {
        // The node's own supplementary groups are never passed on.
        wrapped.push("--clear-groups".to_owned());
    } else {
        let groups: Vec<String> = spec
            .supplemental_groups
            .iter()
            .map(u32::to_string)
            .collect();
        wrapped.push(format!("--groups={}", groups.join(",")));
    }
    wrapped.push("--".to_owned());
    wrapped.push(program.to_string_lossy().into_owned());
    wrapped.extend(args.iter().cloned());
    (setpriv.to_owned(), wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user: Option<u32>, group: Option<u32>, groups: Vec<u32>) -> ProcessSpec {
        let launch = crate::node::ContainerLaunch::new("c", "img")
            .with_identity(user, group)
            .with_supplemental_groups(groups);
        super::super::spawn::resolve_spec(
            &launch,
            "/bin/true".into(),
            &crate::node::PodKey::new("ns", "p", "u"),
            std::net::Ipv4Addr::LOCALHOST,
            &[],
            Path::new("/"),
        )
    }

    #[test]
    fn setpriv_sets_what_the_spec_asks_and_nothing_else() {
        let Some(setpriv) = setpriv() else {
            eprintln!("skipped: this machine has no setpriv");
            return;
        };
        let args = vec!["-c".to_owned(), "id".to_owned()];
        let (program, wrapped) = wrap(&spec(None, None, vec![]), Path::new("/bin/sh"), &args);
        assert_eq!(
            (program.as_path(), wrapped),
            (Path::new("/bin/sh"), args.clone())
        );
        let (program, wrapped) = wrap(
            &spec(Some(1000), Some(3000), vec![2000, 4000]),
            Path::new("/bin/sh"),
            &args,
        );
        assert_eq!(program, setpriv);
        assert_eq!(
            wrapped,
            [
                "--reuid=1000",
                "--regid=3000",
                "--groups=2000,4000",
                "--",
                "/bin/sh",
                "-c",
                "id"
            ]
        );
        let (_, wrapped) = wrap(&spec(None, Some(3000), vec![]), Path::new("/bin/sh"), &args);
        assert_eq!(wrapped[..2], ["--regid=3000", "--clear-groups"]);
    }
}
