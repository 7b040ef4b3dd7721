//! B2 with an outside load generator: `wrk` (from Debian, installed when
//! missing) drives the echo function on the local executor and a bare hyper
//! echo, each its own process on tokio's default multi-thread runtime, in
//! alternating rounds of one run.
//!
//! On a machine of two or more cores the server is pinned to one core and
//! wrk to another (`taskset`), as the figures in the issue were taken.
//!
//! Both servers are treated alike: each round starts a fresh process, warms
//! it with a short wrk run whose figures are discarded (first connections,
//! page faults, the allocator's first growth), then measures; the order of
//! the two servers alternates from round to round, so neither always runs
//! first on a machine whose state drifts; the figures are the medians of the
//! rounds.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::bench::Measurement;
use crate::output;
use crate::workspace::Workspace;

/// How the rounds run.
pub(crate) struct Settings {
    pub(crate) rounds: u32,
    pub(crate) seconds: u32,
    /// The discarded warm-up run on each fresh server process, in seconds
    /// (0: none).
    pub(crate) warmup_seconds: u32,
    pub(crate) connections: u32,
}

/// One wrk run's figures.
#[derive(Debug, Clone, Copy)]
struct Round {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Runs the variant and returns its measurements.
pub(crate) fn run(ws: &Workspace, settings: &Settings) -> Result<Vec<Measurement>> {
    let wrk = ensure_wrk()?;
    output::step("B2 (wrk): building the echo servers");
    let status = ws
        .cargo()
        .args([
            "build",
            "--release",
            "-p",
            "faas-benches",
            "--no-default-features",
            "--bin",
            "b2-echo",
        ])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("building b2-echo failed ({status})");
    }
    let server = ws.target().join("release/b2-echo");
    let script = write_post_script(ws.target())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = cores >= 2 && which("taskset").is_some();

    let mut faas_rounds = Vec::new();
    let mut bare_rounds = Vec::new();
    for round in 0..settings.rounds {
        for name in order(round) {
            let into = if name == "bare" {
                &mut bare_rounds
            } else {
                &mut faas_rounds
            };
            let measured = one_round(&server, name, &wrk, &script, settings, pin)?;
            output::info(format!(
                "round {round} {name:>4}: {:>9.0} req/s  p50 {:>7.1} us  p99 {:>7.1} us",
                measured.rps, measured.p50_us, measured.p99_us
            ));
            into.push(measured);
        }
    }

    let paired = Paired::of(&faas_rounds, &bare_rounds);
    let detail = format!(
        "wrk -t1 -c{} -d{}s --latency, POST of a 16-byte JSON body to `/`; {} alternating rounds (order swapped each round, a {} s warm-up discarded per server), medians; servers on tokio's default multi-thread runtime{}; {paired}",
        settings.connections,
        settings.seconds,
        settings.rounds,
        settings.warmup_seconds,
        if pin {
            ", server pinned to core 1 and wrk to core 0"
        } else {
            ""
        }
    );
    let pick = |rounds: &[Round], f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let rps = (pick(&faas_rounds, |r| r.rps), pick(&bare_rounds, |r| r.rps));
    let p50 = (
        pick(&faas_rounds, |r| r.p50_us),
        pick(&bare_rounds, |r| r.p50_us),
    );
    let p99 = (
        pick(&faas_rounds, |r| r.p99_us),
        pick(&bare_rounds, |r| r.p99_us),
    );
    Ok(vec![
        Measurement::new("B2", "req/s, wrk", rps.0, rps.1, &detail),
        Measurement::new("B2", "p50 latency (us), wrk", p50.0, p50.1, &detail),
        Measurement::new("B2", "p99 latency (us), wrk", p99.0, p99.1, &detail),
        Measurement {
            id: "B2".into(),
            metric: "p99 added over bare hyper (us), wrk".into(),
            value: p99.0 - p99.1,
            baseline: 50.0,
            ratio: (p99.0 - p99.1) / 50.0,
            detail: "target: at most 50 us; ratio is against the target".into(),
        },
    ])
}

/// The two servers' rounds taken pair by pair (the rounds of one index ran
/// one after the other): the spread of the req/s ratio across pairs says how
/// far the machine drifted during the run, which the medians alone hide.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Paired {
    median: f64,
    min: f64,
    max: f64,
}

impl Paired {
    fn of(faas: &[Round], bare: &[Round]) -> Self {
        let ratios: Vec<f64> = faas
            .iter()
            .zip(bare)
            .map(|(faas, bare)| faas.rps / bare.rps)
            .collect();
        Paired {
            median: median(ratios.clone()),
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

impl std::fmt::Display for Paired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "req/s ratio of the rounds paired: median {:.3}, {:.3} to {:.3}",
            self.median, self.min, self.max
        )
    }
}

/// Which server runs first in `round`: the order alternates, so a drift of
/// the machine during a run falls on both alike.
fn order(round: u32) -> [&'static str; 2] {
    if round.is_multiple_of(2) {
        ["bare", "faas"]
    } else {
        ["faas", "bare"]
    }
}

/// Starts one server, warms it up, loads it with wrk, stops it.
fn one_round(
    server: &Path,
    kind: &str,
    wrk: &Path,
    script: &Path,
    settings: &Settings,
    pin: bool,
) -> Result<Round> {
    let mut cmd = if pin {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "1"]).arg(server);
        cmd
    } else {
        Command::new(server)
    };
    cmd.arg(kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = Server(
        cmd.spawn()
            .with_context(|| format!("cannot start {}", server.display()))?,
    );
    let addr = child.listening_addr()?;

    if settings.warmup_seconds > 0 {
        run_wrk(
            &addr,
            wrk,
            script,
            settings.connections,
            settings.warmup_seconds,
            pin,
        )
        .context("the warm-up run failed")?;
    }
    let round = run_wrk(
        &addr,
        wrk,
        script,
        settings.connections,
        settings.seconds,
        pin,
    )?;
    drop(child);
    Ok(round)
}

/// One wrk run of `seconds` against `addr`, read from its report.
fn run_wrk(
    addr: &str,
    wrk: &Path,
    script: &Path,
    connections: u32,
    seconds: u32,
    pin: bool,
) -> Result<Round> {
    let mut load = if pin {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]).arg(wrk);
        cmd
    } else {
        Command::new(wrk)
    };
    load.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
        "-s",
    ])
    .arg(script)
    .arg(format!("http://{addr}/"));
    let out = load.output().context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("cannot read wrk's report:\n{text}"))
}

/// A server process, stopped when dropped: closing its standard input ends
/// it, and a kill follows if it lingers.
struct Server(Child);

impl Server {
    /// Reads the `LISTENING <addr>` line.
    fn listening_addr(&mut self) -> Result<String> {
        let stdout = self.0.stdout.take().context("no stdout from the server")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("cannot read the server's address")?;
        match line.trim().strip_prefix("LISTENING ") {
            Some(addr) => Ok(addr.to_owned()),
            None => bail!("the server printed {line:?} instead of its address"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// wrk's Lua script for a POST of the same body the project's own harness sends.
fn write_post_script(target: &Path) -> Result<PathBuf> {
    let path = target.join("b2-post.lua");
    std::fs::write(
        &path,
        "wrk.method = \"POST\"\n\
         wrk.body = '{\"hello\":\"world\"}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The path of `wrk`, installing Debian's package when it is missing.
fn ensure_wrk() -> Result<PathBuf> {
    if let Some(path) = which("wrk") {
        return Ok(path);
    }
    output::step("B2 (wrk): wrk is missing; installing Debian's package");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-qq", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    if !matches!(installed, Ok(status) if status.success()) {
        let updated = Command::new("apt-get").args(["update", "-qq"]).status();
        let retried = Command::new("apt-get")
            .args(["install", "-y", "-qq", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        if !matches!((updated, retried), (Ok(_), Ok(status)) if status.success()) {
            bail!(
                "wrk is not installed and `apt-get install wrk` failed; install wrk and run again"
            );
        }
    }
    which("wrk").context("wrk was installed but is not on PATH")
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Reads requests per second and the 50th and 99th percentile latencies
/// from wrk's report (`--latency`).
fn parse_wrk(text: &str) -> Result<Round> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => rps = value.parse::<f64>().ok(),
            (Some("50%"), Some(value)) => p50 = micros(value),
            (Some("99%"), Some(value)) => p99 = micros(value),
            _ => {}
        }
        if line.contains("Non-2xx or 3xx responses") || line.contains("Socket errors") {
            bail!("wrk saw errors: {line}");
        }
    }
    match (rps, p50, p99) {
        (Some(rps), Some(p50_us), Some(p99_us)) => Ok(Round {
            rps,
            p50_us,
            p99_us,
        }),
        _ => bail!("no Requests/sec or latency distribution"),
    }
}

/// A wrk duration (`238.00us`, `1.23ms`, `2.00s`) in microseconds.
fn micros(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number),
        "ms" => Some(number * 1e3),
        "s" => Some(number * 1e6),
        "m" => Some(number * 60e6),
        _ => None,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 8s test @ http://127.0.0.1:40000/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   128.51us   52.11us   3.21ms   91.00%
    Req/Sec   124.01k     2.10k  128.00k    80.00%
  Latency Distribution
     50%  120.00us
     75%  135.00us
     90%  160.00us
     99%    1.23ms
  992080 requests in 8.00s, 98.39MB read
Requests/sec: 124010.00
Transfer/sec:     12.30MB
";
        let round = parse_wrk(report).unwrap();
        assert_eq!(round.rps, 124_010.0);
        assert_eq!(round.p50_us, 120.0);
        assert!((round.p99_us - 1230.0).abs() < 1e-6);
        assert!(parse_wrk("Requests/sec: 1\n").is_err());
        assert!(parse_wrk(&format!("{report}  Non-2xx or 3xx responses: 5\n")).is_err());
        assert_eq!(micros("2.00s"), Some(2e6));
        assert_eq!(micros("fast"), None);
    }

    #[test]
    fn paired_rounds_give_the_spread_of_the_ratio() {
        let round = |rps| Round {
            rps,
            p50_us: 0.0,
            p99_us: 0.0,
        };
        let faas = [round(90.0), round(80.0), round(100.0)];
        let bare = [round(100.0), round(100.0), round(100.0)];
        let paired = Paired::of(&faas, &bare);
        assert_eq!(
            paired,
            Paired {
                median: 0.9,
                min: 0.8,
                max: 1.0
            }
        );
        assert_eq!(
            paired.to_string(),
            "req/s ratio of the rounds paired: median 0.900, 0.800 to 1.000"
        );
    }

    #[test]
    fn the_order_of_the_servers_alternates() {
        assert_eq!(order(0), ["bare", "faas"]);
        assert_eq!(order(1), ["faas", "bare"]);
        assert_eq!(order(2), order(0));
    }
}
