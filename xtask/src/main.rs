//! The automation of the faas workspace: `cargo xtask <command>`.
//!
//! - `cargo xtask test` runs every test tier the way CI does (`.ci/run` calls it).
//! - `cargo xtask cluster build|up|down|status|env` builds and runs the real
//!   Kubernetes control plane the end-to-end tier talks to.
//! - `cargo xtask services up|down|status|env` runs the brokers and the
//!   database the event triggers' integration tests use.
//! - `cargo xtask bench` runs the benchmarks against their baselines and
//!   writes the results into `BENCHMARKS.md`.
//!
//! Each command is one module with an `Args` type (its command line) and a
//! `run` function; adding a command is adding a module and one variant of
//! [`Command`].

mod bench;
mod cluster;
mod interrupt;
mod output;
mod outside_load;
mod ports;
mod process;
mod servers;
mod service;
mod test;
mod workspace;

use clap::{Parser, Subcommand};

/// `cargo xtask`: the project's own automation.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The commands `cargo xtask` knows.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run every test tier the way CI does: checks, unit, integration, doc
    /// and end-to-end tests (starting and stopping the real parts they need).
    Test(test::Args),
    /// Build and run the Kubernetes control plane used by the end-to-end tier.
    Cluster(cluster::Args),
    /// Run the benchmarks against their baselines and update BENCHMARKS.md.
    Bench(bench::Args),
    /// Run the brokers and the database of the integration tier (NATS,
    /// Redis, PostgreSQL) on 127.0.0.1.
    Services(servers::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let ws = match workspace::Workspace::locate() {
        Ok(ws) => ws,
        Err(err) => return output::fail(&err),
    };
    if let Err(err) = interrupt::install() {
        return output::fail(&err);
    }
    let result = match cli.command {
        Command::Test(args) => test::run(&ws, args),
        Command::Cluster(args) => cluster::run(&ws, args),
        Command::Bench(args) => bench::run(&ws, args),
        Command::Services(args) => servers::run(&ws, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => output::fail(&err),
    }
}
