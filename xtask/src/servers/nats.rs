//! NATS with JetStream (`nats-server -js`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::install;
use super::server::ServerKind;

/// A NATS server with JetStream, its store in the data directory.
pub(crate) struct Nats;

impl ServerKind for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn program(&self) -> Result<PathBuf> {
        install::program(
            "nats-server",
            &["/usr/sbin/nats-server", "/usr/bin/nats-server"],
            &["nats-server"],
        )
    }

    fn command(&self, program: &Path, data: &Path, port: u16) -> Result<Command> {
        let mut cmd = Command::new(program);
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(data);
        Ok(cmd)
    }

    fn ready_line(&self) -> &'static str {
        "Server is ready"
    }

    fn env(&self, program: &Path, port: u16) -> Vec<(String, String)> {
        vec![
            ("FAAS_NATS_URL".into(), format!("nats://127.0.0.1:{port}")),
            ("FAAS_NATS_SERVER".into(), program.display().to_string()),
        ]
    }
}
