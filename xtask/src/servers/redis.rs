//! Redis 7 (`redis-server`), with an append-only file so a restart keeps
//! the streams.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::install;
use super::server::ServerKind;

/// A Redis server with its files in the data directory.
pub(crate) struct Redis;

impl ServerKind for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn program(&self) -> Result<PathBuf> {
        install::program(
            "redis-server",
            &["/usr/bin/redis-server", "/usr/local/bin/redis-server"],
            &["redis-server"],
        )
    }

    fn command(&self, program: &Path, data: &Path, port: u16) -> Result<Command> {
        let mut cmd = Command::new(program);
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(data)
            .args(["--appendonly", "yes", "--save", "", "--daemonize", "no"]);
        Ok(cmd)
    }

    fn ready_line(&self) -> &'static str {
        "Ready to accept connections"
    }

    fn env(&self, program: &Path, port: u16) -> Vec<(String, String)> {
        vec![
            (
                "FAAS_REDIS_URL".into(),
                format!("redis://127.0.0.1:{port}/"),
            ),
            ("FAAS_REDIS_SERVER".into(), program.display().to_string()),
        ]
    }
}
