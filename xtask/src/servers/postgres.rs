//! PostgreSQL 15 from Debian's `postgresql-15`: a fresh cluster made with
//! initdb (trust authentication on loopback, superuser `faas`), TCP only.
//!
//! PostgreSQL refuses to run as root; run by root, xtask runs it as the
//! `postgres` user the package creates, and hands it the data directory.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use super::install;
use super::server::ServerKind;

/// The PostgreSQL major version the tests run against.
const VERSION: &str = "15";

/// A PostgreSQL cluster in the data directory.
pub(crate) struct Postgres;

impl Postgres {
    /// The user and group to run as: `postgres` when xtask runs as root.
    fn run_as() -> Result<Option<(u32, u32)>> {
        if !nix::unistd::Uid::effective().is_root() {
            return Ok(None);
        }
        let id = |flag: &str| -> Result<u32> {
            let out = Command::new("id")
                .args([flag, "postgres"])
                .output()
                .context("cannot run `id`")?;
            if !out.status.success() {
                bail!("there is no `postgres` user to run PostgreSQL as (root may not)");
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
        };
        Ok(Some((id("-u")?, id("-g")?)))
    }

    fn as_owner(cmd: &mut Command) -> Result<()> {
        if let Some((uid, gid)) = Self::run_as()? {
            cmd.uid(uid).gid(gid);
        }
        Ok(())
    }
}

impl ServerKind for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn program(&self) -> Result<PathBuf> {
        install::program(
            "postgres",
            &[&format!("/usr/lib/postgresql/{VERSION}/bin/postgres")],
            &[&format!("postgresql-{VERSION}")],
        )
    }

    fn prepare(&self, program: &Path, data: &Path, log: &Path) -> Result<()> {
        if let Some((uid, gid)) = Self::run_as()? {
            std::os::unix::fs::chown(data, Some(uid), Some(gid))
                .with_context(|| format!("cannot hand {} to postgres", data.display()))?;
        }
        let initdb = program.with_file_name("initdb");
        let out = fs::File::create(log)?;
        let mut cmd = Command::new(&initdb);
        cmd.arg("-D")
            .arg(data)
            .args(["-U", "faas", "--auth=trust", "--encoding=UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        Self::as_owner(&mut cmd)?;
        let status = cmd
            .status()
            .with_context(|| format!("cannot run {}", initdb.display()))?;
        if !status.success() {
            bail!("initdb failed ({status}); see {}", log.display());
        }
        Ok(())
    }

    fn command(&self, program: &Path, data: &Path, port: u16) -> Result<Command> {
        let mut cmd = Command::new(program);
        cmd.arg("-D")
            .arg(data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-c", "unix_socket_directories=", "-c", "fsync=off"])
            .args(["-c", "max_connections=200"]);
        Self::as_owner(&mut cmd)?;
        Ok(cmd)
    }

    fn ready_line(&self) -> &'static str {
        "database system is ready to accept connections"
    }

    fn env(&self, program: &Path, port: u16) -> Vec<(String, String)> {
        vec![
            (
                "FAAS_POSTGRES_URL".into(),
                format!("postgres://faas@127.0.0.1:{port}/postgres"),
            ),
            (
                "FAAS_POSTGRES_BIN".into(),
                program
                    .parent()
                    .map(|dir| dir.display().to_string())
                    .unwrap_or_default(),
            ),
        ]
    }
}
