//! Runs a program inside the pod network namespace the end-to-end tests set up, for process
//! backends that start pods on the host network.
//!
//! It reads `FAAS_NETNS` (the namespace), `FAAS_NETNS_CIDR` (the range routed to it),
//! `FAAS_NETNS_EXEC` (the program) and `POD_IP`, puts the pod address on the namespace's link, and
//! replaces itself with `nsenter --net=/run/netns/$FAAS_NETNS -- $FAAS_NETNS_EXEC <its args>`, so
//! the pod's process keeps this pid.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use faas_k8s::node::network::PodNetwork;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn main() -> ExitCode {
    let run = || -> Result<std::io::Error, String> {
        let netns = var("FAAS_NETNS")?;
        let cidr = var("FAAS_NETNS_CIDR")?;
        let program = var("FAAS_NETNS_EXEC")?;
        let ip: std::net::IpAddr = var("POD_IP")?.parse().map_err(|e| format!("POD_IP: {e}"))?;
        let network = PodNetwork::namespace(netns, cidr);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(network.add_address(ip))
            .map_err(|e| e.to_string())?;
        let command = network.command(&program);
        let mut command = command.as_std().clone_for_exec();
        command.args(std::env::args_os().skip(1));
        Ok(command.exec())
    };
    match run() {
        Ok(exec_error) => eprintln!("faas-netns-exec: exec failed: {exec_error}"),
        Err(e) => eprintln!("faas-netns-exec: {e}"),
    }
    ExitCode::FAILURE
}

/// A std `Command` with the same program and arguments as `self`.
trait CloneForExec {
    fn clone_for_exec(&self) -> std::process::Command;
}

impl CloneForExec for std::process::Command {
    fn clone_for_exec(&self) -> std::process::Command {
        let mut command = std::process::Command::new(self.get_program());
        command.args(self.get_args());
        command
    }
}
