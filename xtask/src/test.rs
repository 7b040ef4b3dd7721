//! `cargo xtask test`: every test tier, the way CI runs it.
//!
//! 1. checks: `cargo fmt --check`, clippy with `-D warnings`, faas-core
//!    built without default features (the function model alone);
//! 2. tests: unit, integration and doc tests of the workspace (all but the
//!    end-to-end crate); the tests that need root run as root (through
//!    `sudo -n` when `cargo xtask test` is not root itself);
//!    end-to-end crate), with NATS, Redis and PostgreSQL running for the
//!    event triggers (see [`crate::servers`]);
//! 3. docs: `cargo doc` with `-D warnings`;
//! 4. end-to-end: builds (or finds) the control plane, starts the services
//!    the tier needs, runs `faas-e2e` against them, and stops them again,
//!    also when tests fail or on Ctrl-C.

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::cluster::{self, ControlPlane};
use crate::servers;
use crate::service::Services;
use crate::workspace::Workspace;
use crate::{interrupt, output};

/// `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Skip the end-to-end tier (no control plane needed).
    #[arg(long, conflicts_with = "e2e_only")]
    no_e2e: bool,
    /// Run only the end-to-end tier.
    #[arg(long)]
    e2e_only: bool,
    /// Skip fmt, clippy and doc (run the test tiers only).
    #[arg(long, conflicts_with = "e2e_only")]
    no_checks: bool,
    /// Stop at the first failing step instead of running the rest.
    #[arg(long)]
    fail_fast: bool,
    /// Test threads of the end-to-end tier (each test uses its own namespace).
    #[arg(long, env = "FAAS_E2E_THREADS", default_value_t = 4)]
    e2e_threads: usize,
    /// Leave the services this run started running afterwards.
    #[arg(long)]
    keep_services: bool,
    /// Passed to the end-to-end test binary, e.g. a test name filter.
    #[arg(last = true)]
    e2e_args: Vec<String>,
    #[command(flatten)]
    cluster: cluster::Options,
}

/// One command of the run and whether it passed.
struct Outcome {
    name: String,
    passed: bool,
    seconds: f64,
}

struct Run<'a> {
    ws: &'a Workspace,
    fail_fast: bool,
    outcomes: Vec<Outcome>,
}

impl Run<'_> {
    /// Runs one step; `Err` only when the run must stop (interrupt, or a
    /// failure with `--fail-fast`).
    fn step(&mut self, name: &str, mut cmd: Command) -> Result<bool> {
        output::step(name);
        let started = Instant::now();
        let status = interrupt::run(&mut cmd)?;
        let passed = status.success();
        let seconds = started.elapsed().as_secs_f64();
        output::step(format!(
            "{name}: {} in {}",
            if passed { "passed" } else { "FAILED" },
            output::elapsed(started.elapsed())
        ));
        self.outcomes.push(Outcome {
            name: name.to_owned(),
            passed,
            seconds,
        });
        if !passed && self.fail_fast {
            bail!("{name} failed (--fail-fast)");
        }
        Ok(passed)
    }

    fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = self.ws.cargo();
        cmd.args(args);
        cmd
    }

    /// Lists every step's outcome; `complete` is false when the run
    /// stopped early, and then no verdict is drawn here.
    fn summary(&self, complete: bool) -> Result<()> {
        output::step("summary");
        for outcome in &self.outcomes {
            output::info(format!(
                "{:<6} {:>7.1}s  {}",
                if outcome.passed { "ok" } else { "FAILED" },
                outcome.seconds,
                outcome.name
            ));
        }
        let failed: Vec<&str> = self
            .outcomes
            .iter()
            .filter(|o| !o.passed)
            .map(|o| o.name.as_str())
            .collect();
        if !complete {
            Ok(())
        } else if failed.is_empty() {
            output::step(format!("all {} steps passed", self.outcomes.len()));
            Ok(())
        } else {
            bail!(
                "{} of {} steps failed: {}",
                failed.len(),
                self.outcomes.len(),
                failed.join("; ")
            )
        }
    }
}

/// Runs `cargo xtask test`.
pub(crate) fn run(ws: &Workspace, args: Args) -> Result<()> {
    let mut run = Run {
        ws,
        fail_fast: args.fail_fast,
        outcomes: Vec::new(),
    };
    let result = steps(&mut run, &args);
    if run.outcomes.is_empty() {
        return result;
    }
    let summary = run.summary(result.is_ok());
    result.and(summary)
}

fn steps(run: &mut Run<'_>, args: &Args) -> Result<()> {
    let checks = !args.no_checks && !args.e2e_only;
    if checks {
        run.step("cargo fmt --check", run.cargo(&["fmt", "--all", "--check"]))?;
        run.step(
            "clippy (all targets, all features, -D warnings)",
            run.cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
        // The function model alone: no hosting machinery (`local`), no macros.
        run.step(
            "faas-core without default features (the model alone)",
            run.cargo(&["check", "-p", "faas-core", "--no-default-features"]),
        )?;
    }
    if !args.e2e_only {
        integration(run, args)?;
    }
    if checks {
        let mut doc = run.cargo(&["doc", "--workspace", "--no-deps", "--all-features"]);
        doc.env("RUSTDOCFLAGS", "-D warnings");
        run.step("cargo doc (-D warnings)", doc)?;
    }
    if !args.no_e2e {
        end_to_end(run, args)?;
    }
    Ok(())
}

/// Tests that skip (saying why) unless run as root, and fail when this is set and they cannot.
const ROOT_TESTS_ENV: &str = "FAAS_ROOT_TESTS";

/// The integration tests that need root (a network namespace): package, test target, name
/// filter. They run through `sudo -n` as cargo's test runner when `cargo xtask test` itself is
/// not root.
const ROOT_TESTS: &[(&str, &str, &str)] = &[
    ("faas-k8s", "pod_network", "network_namespace"),
    ("faas-k8s", "process_backend", "network_namespace"),
    ("faas-k8s", "function_backend", "network_namespace"),
];

fn root_tests(run: &mut Run<'_>) -> Result<()> {
    let host = host_triple()?;
    for (package, test, filter) in ROOT_TESTS {
        let mut cmd = run.cargo(&[
            "test",
            "-p",
            package,
            "--all-features",
            "--test",
            test,
            "--",
            filter,
        ]);
        cmd.env(
            format!(
                "CARGO_TARGET_{}_RUNNER",
                host.to_uppercase().replace(['-', '.'], "_")
            ),
            format!("sudo -n --preserve-env={ROOT_TESTS_ENV}"),
        )
        .env(ROOT_TESTS_ENV, "1");
        run.step(&format!("root-only tests: {package} {test} (sudo -n)"), cmd)?;
    }
    Ok(())
}

/// Whether `kubectl` runs here.
fn kubectl_present() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The host's target triple, as `rustc -vV` reports it.
fn host_triple() -> Result<String> {
    let output = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
        .arg("-vV")
        .output()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("rustc -vV names no host triple"))
}

/// Unit, integration and doc tests, with the brokers and the database the
/// event triggers' integration tests need (started here unless already
/// running, stopped afterwards).
fn integration(run: &mut Run<'_>, args: &Args) -> Result<()> {
    let mut services = Services::default();
    services.keep_running(args.keep_services);
    for server in servers::all(run.ws) {
        services.start(server)?;
    }
    let mut tests = run.cargo(&[
        "test",
        "--workspace",
        "--all-features",
        "--exclude",
        "faas-e2e",
    ]);
    tests.envs(services.env());
    let root = nix::unistd::geteuid().is_root();
    if root {
        tests.env(ROOT_TESTS_ENV, "1");
    }
    let passed = run.step("unit, integration and doc tests", tests);
    if matches!(passed, Ok(false) | Err(_)) {
        services.print_logs(30);
    }
    let stopped = services.stop();
    passed?;
    stopped?;
    if !root {
        root_tests(run)?;
    }
    Ok(())
}

/// The end-to-end tier: compile it first (no cluster idles meanwhile), then
/// bring up what it needs, run it, and stop what was started.
fn end_to_end(run: &mut Run<'_>, args: &Args) -> Result<()> {
    let e2e = ["test", "-p", "faas-e2e", "--all-features"];
    let mut build = run.cargo(&e2e);
    build.arg("--no-run");
    if !run.step("end-to-end: build the tests", build)? {
        return Ok(());
    }
    if !kubectl_present() {
        // The end-to-end tests use kubectl where a person would; Debian packages it.
        let mut install = Command::new("sh");
        install
            .args([
                "-c",
                "apt-get update -q && apt-get install -y -q --no-install-recommends kubectl",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive");
        if !run.step("end-to-end: install kubectl (apt-get)", install)? {
            return Ok(());
        }
    }
    let mut services = Services::default();
    services.keep_running(args.keep_services);
    services.start(Box::new(ControlPlane::new(run.ws, args.cluster.clone())))?;
    // The gateway's durable asynchronous calls (e2e/tests/gateway.rs) keep them in JetStream.
    services.start(servers::nats(run.ws))?;
    let mut tests = run.cargo(&e2e);
    tests
        .arg("--")
        .arg(format!("--test-threads={}", args.e2e_threads))
        .args(&args.e2e_args)
        .envs(services.env());
    let passed = run.step("end-to-end tests (real control plane)", tests);
    if matches!(passed, Ok(false) | Err(_)) {
        services.print_logs(30);
    }
    // Stop before the summary, so its last lines are the verdict; dropping
    // `services` on an early return stops them too.
    let stopped = services.stop();
    passed?;
    stopped
}
