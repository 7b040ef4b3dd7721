//! The brokers and the database the event triggers' integration tests run
//! against: NATS with JetStream, Redis 7 and PostgreSQL 15, each from
//! Debian's packages (installed when missing), run by xtask on 127.0.0.1
//! with its data under `target/services/<name>/`.
//!
//! `cargo xtask test` starts them around the integration tier and stops
//! them afterwards; `cargo xtask services up|down|status|env` does the same
//! by hand, for `cargo test -p faas-triggers --test nats` and friends.
//!
//! Each server gets a free port when it starts; the port is recorded beside
//! its pid file, so `env` and a later `test` run find it. Tests read
//! `FAAS_NATS_URL`, `FAAS_REDIS_URL` and `FAAS_POSTGRES_URL`, and the
//! programs in `FAAS_NATS_SERVER`, `FAAS_REDIS_SERVER` and
//! `FAAS_POSTGRES_BIN` (the fault tests run private servers they restart).

mod install;
mod nats;
mod postgres;
mod redis;
mod server;

use anyhow::Result;

use crate::output;
use crate::service::Service;
use crate::workspace::Workspace;

pub(crate) use server::Server;

/// `cargo xtask services`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Install (when missing) and start NATS, Redis and PostgreSQL on 127.0.0.1.
    Up,
    /// Stop them and remove their data.
    Down,
    /// Each server's state; exit code 1 unless all run.
    Status,
    /// The environment the tests read, as shell `export` lines.
    Env,
}

/// Every server the integration tier needs.
pub(crate) fn all(ws: &Workspace) -> Vec<Box<dyn Service>> {
    vec![
        Box::new(Server::new(ws, nats::Nats)),
        Box::new(Server::new(ws, redis::Redis)),
        Box::new(Server::new(ws, postgres::Postgres)),
    ]
}

/// NATS alone: the end-to-end tier's durable asynchronous calls need it.
pub(crate) fn nats(ws: &Workspace) -> Box<dyn Service> {
    Box::new(Server::new(ws, nats::Nats))
}

/// Runs `cargo xtask services`.
pub(crate) fn run(ws: &Workspace, args: Args) -> Result<()> {
    match args.command {
        Command::Up => {
            for server in all(ws) {
                if server.is_running() {
                    output::step(format!("{}: already running", server.name()));
                } else {
                    server.start()?;
                }
            }
            output::step("all servers run; `eval \"$(cargo xtask services env)\"` for a shell");
            Ok(())
        }
        Command::Down => {
            for server in all(ws) {
                server.stop()?;
                output::step(format!("{}: stopped", server.name()));
            }
            Ok(())
        }
        Command::Status => {
            let mut down = Vec::new();
            for server in all(ws) {
                if server.is_running() {
                    output::info(format!("{:<9} running", server.name()));
                } else {
                    output::info(format!("{:<9} stopped", server.name()));
                    down.push(server.name().to_owned());
                }
            }
            if down.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("not running: {}", down.join(", "))
            }
        }
        Command::Env => {
            for server in all(ws) {
                if server.is_running() {
                    for (key, value) in server.env() {
                        println!("export {key}='{value}'");
                    }
                }
            }
            Ok(())
        }
    }
}
