//! The gate of the integration tests that need root (a network namespace).
//!
//! Run by anyone else such a test says why it skips and passes, unless `FAAS_ROOT_TESTS=1` asks
//! for it, as `cargo xtask test` does (it runs these tests as root, through `sudo -n` when it is
//! not root itself); then a test that cannot run fails.

/// Whether this process may set up a network namespace; says why not when it may not.
pub(crate) fn may_run(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let required = std::env::var("FAAS_ROOT_TESTS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test} needs root (FAAS_ROOT_TESTS=1 asks for it): run it as root, or through \
         `cargo xtask test`, which uses `sudo -n`"
    );
    eprintln!(
        "skipped {test}: creating a network namespace needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); \
         `cargo xtask test` runs it as root"
    );
    false
}
