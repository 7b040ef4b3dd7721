//! [`Server`]: one server process run by xtask, whatever its kind.

use std::fs;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::output;
use crate::process;
use crate::service::Service;
use crate::workspace::Workspace;

/// What differs between the servers: how to find, prepare, start and reach
/// each.
pub(crate) trait ServerKind {
    /// Its short name (`nats`, `redis`, `postgres`).
    fn name(&self) -> &'static str;

    /// Its program, installed when missing.
    fn program(&self) -> Result<PathBuf>;

    /// Prepares a fresh data directory before the first start (e.g. initdb).
    fn prepare(&self, _program: &Path, _data: &Path, _log: &Path) -> Result<()> {
        Ok(())
    }

    /// The command that runs it in the foreground on `127.0.0.1:port`.
    fn command(&self, program: &Path, data: &Path, port: u16) -> Result<Command>;

    /// A line its log prints once it accepts clients.
    fn ready_line(&self) -> &'static str;

    /// The environment tests read to reach it.
    fn env(&self, program: &Path, port: u16) -> Vec<(String, String)>;
}

/// What a running server recorded about itself.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    port: u16,
    program: PathBuf,
}

/// A server of kind `K` with its files under `target/services/<name>/`.
pub(crate) struct Server<K> {
    kind: K,
    dir: PathBuf,
}

impl<K: ServerKind> Server<K> {
    pub(crate) fn new(ws: &Workspace, kind: K) -> Self {
        let dir = ws.target().join("services").join(kind.name());
        Server { kind, dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn log(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.kind.name()))
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn state(&self) -> Option<State> {
        serde_json::from_slice(&fs::read(self.state_file()).ok()?).ok()
    }

    fn start_inner(&self) -> Result<()> {
        let name = self.kind.name();
        let began = Instant::now();
        let program = self.kind.program()?;
        let installed = began.elapsed();
        // Whatever an earlier run left (a crash, a lost pid file) goes first.
        process::stop_recorded(&self.run_dir(), Duration::from_secs(10))?;
        let data = self.data();
        if data.exists() {
            fs::remove_dir_all(&data)
                .with_context(|| format!("cannot remove {}", data.display()))?;
        }
        fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
        let log = self.log();
        let _ = fs::remove_file(&log);
        self.kind.prepare(&program, &data, &log)?;
        let port = free_port()?;
        let command = self.kind.command(&program, &data, port)?;
        let mut started = process::start(name, command, &log, &self.run_dir())?;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = started.exited() {
                bail!("{name} exited at start ({status}); see {}", log.display());
            }
            if log_contains(&log, self.kind.ready_line())
                && TcpStream::connect_timeout(
                    &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    Duration::from_secs(1),
                )
                .is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not become ready within 90 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let state = State { port, program };
        fs::write(self.state_file(), serde_json::to_vec_pretty(&state)?)
            .with_context(|| format!("cannot write {}", self.state_file().display()))?;
        output::step(format!(
            "{name}: ready on 127.0.0.1:{port} in {} (finding or installing it: {})",
            output::elapsed(began.elapsed()),
            output::elapsed(installed)
        ));
        Ok(())
    }
}

impl<K: ServerKind> Service for Server<K> {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn is_running(&self) -> bool {
        let Some(state) = self.state() else {
            return false;
        };
        let alive = process::records(&self.run_dir())
            .map(|records| !records.is_empty() && records.iter().all(|r| r.is_alive()))
            .unwrap_or(false);
        alive
            && TcpStream::connect_timeout(
                &SocketAddr::from((Ipv4Addr::LOCALHOST, state.port)),
                Duration::from_secs(1),
            )
            .is_ok()
    }

    fn start(&self) -> Result<()> {
        self.start_inner().inspect_err(|_| {
            let _ = self.stop();
        })
    }

    fn stop(&self) -> Result<()> {
        process::stop_recorded(&self.run_dir(), Duration::from_secs(15))?;
        let _ = fs::remove_file(self.state_file());
        let data = self.data();
        if data.exists() {
            fs::remove_dir_all(&data)
                .with_context(|| format!("cannot remove {}", data.display()))?;
        }
        Ok(())
    }

    fn env(&self) -> Vec<(String, String)> {
        self.state()
            .map(|state| self.kind.env(&state.program, state.port))
            .unwrap_or_default()
    }

    fn logs(&self) -> Vec<PathBuf> {
        vec![self.log()]
    }
}

/// A port nothing listens on now (the kernel's choice).
fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

fn log_contains(log: &Path, line: &str) -> bool {
    let mut text = String::new();
    fs::File::open(log)
        .and_then(|mut file| file.read_to_string(&mut text))
        .is_ok()
        && text.contains(line)
}
