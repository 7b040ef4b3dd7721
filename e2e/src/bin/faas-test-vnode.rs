//! The `faas-vnode` command line, built inside the end-to-end crate so tests can run a virtual node
//! as a child process (and kill it) through `env!("CARGO_BIN_EXE_faas-test-vnode")`.

use std::process::ExitCode;

fn main() -> ExitCode {
    faas_k8s::node::cli::main()
}
