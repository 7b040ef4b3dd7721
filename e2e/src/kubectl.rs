//! `kubectl`, as a person would use it against the test cluster.

use std::process::{Command, Output};

use crate::TestCluster;

/// A `kubectl` command with the test cluster's admin kubeconfig (`cargo xtask test` installs
/// `kubectl` where it is missing).
pub fn kubectl(cluster: &TestCluster) -> Command {
    let mut command = Command::new("kubectl");
    command.arg("--kubeconfig").arg(&cluster.paths().kubeconfig);
    command
}

/// Runs `kubectl` with `args` and returns what it did; a missing `kubectl` fails the test with
/// how to get it.
pub fn run_kubectl(cluster: &TestCluster, args: &[&str]) -> Output {
    kubectl(cluster).args(args).output().unwrap_or_else(|e| {
        panic!("running kubectl failed ({e}): install it (apt-get install kubectl), or run `cargo xtask test`, which does")
    })
}
