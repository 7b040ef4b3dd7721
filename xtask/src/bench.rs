//! `cargo xtask bench`: every benchmark against its baseline from the same
//! run, written into `BENCHMARKS.md`.
//!
//! Each benchmark of the `faas-benches` package prints its figures as
//! `BENCH {json}` lines (B1's come from criterion's estimates instead; B2's
//! second variant from `wrk`, see [`outside_load`]); this
//! command runs them, starts the services the cluster benchmarks need, and
//! rewrites the results table of `BENCHMARKS.md` between its markers.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::cluster::{self, ControlPlane};
use crate::output;
use crate::outside_load;
use crate::service::Services;
use crate::workspace::Workspace;

/// `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Run only these benchmarks (e.g. `--only B1,B2` or `--only B1 --only B2`).
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    only: Vec<String>,
    /// Shorter runs (for a quick look; the published figures use the default).
    #[arg(long)]
    quick: bool,
    /// Print the results without touching BENCHMARKS.md.
    #[arg(long)]
    no_write: bool,
    #[command(flatten)]
    cluster: cluster::Options,
}

/// One figure, as the benchmarks print it.
#[derive(Debug, Deserialize)]
pub(crate) struct Measurement {
    pub(crate) id: String,
    pub(crate) metric: String,
    pub(crate) value: f64,
    pub(crate) baseline: f64,
    pub(crate) ratio: f64,
    pub(crate) detail: String,
}

impl Measurement {
    /// A figure against its baseline; the ratio is `value / baseline`.
    pub(crate) fn new(id: &str, metric: &str, value: f64, baseline: f64, detail: &str) -> Self {
        Measurement {
            id: id.into(),
            metric: metric.into(),
            value,
            baseline,
            ratio: value / baseline,
            detail: detail.into(),
        }
    }
}

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

pub(crate) fn run(ws: &Workspace, args: Args) -> Result<()> {
    let wanted =
        |id: &str| args.only.is_empty() || args.only.iter().any(|o| o.eq_ignore_ascii_case(id));
    let mut results: Vec<Row> = Vec::new();
    if wanted("B1") {
        let when = Conditions::start();
        let found = b1(ws, args.quick)?;
        when.stamp(&mut results, found);
    }
    if wanted("B2") {
        let mut cmd = bench_command(ws, "b2_http");
        if args.quick {
            cmd.env("B2_ROUNDS", "1").env("B2_SECONDS", "2");
        }
        let when = Conditions::start();
        let mut found = collect("B2", cmd)?;
        // The same comparison driven by a standard outside load generator.
        let settings = if args.quick {
            outside_load::Settings {
                rounds: 1,
                seconds: 2,
                warmup_seconds: 0,
                connections: 16,
            }
        } else {
            outside_load::Settings {
                rounds: 9,
                seconds: 8,
                warmup_seconds: 2,
                connections: 16,
            }
        };
        found.extend(outside_load::run(ws, &settings)?);
        when.stamp(&mut results, found);
    }
    if wanted("B3") {
        let mut cmd = bench_command(ws, "b3_gateway");
        if args.quick {
            cmd.env("B3_ROUNDS", "1").env("B3_SECONDS", "2");
        }
        let when = Conditions::start();
        let found = collect("B3", cmd)?;
        when.stamp(&mut results, found);
    }
    let traffic: Vec<&str> = ["B4", "B5", "B7"]
        .into_iter()
        .filter(|id| wanted(id))
        .collect();
    if !traffic.is_empty() {
        let mut services = Services::default();
        services.start(Box::new(ControlPlane::new(ws, args.cluster.clone())))?;
        let mut cmd = bench_command(ws, "traffic_scale");
        cmd.envs(services.env())
            .env("TRAFFIC_BENCHES", traffic.join(","));
        if args.quick {
            cmd.env("B4_RUNS", "5").env("B5_SIZES", "1,5,25");
        }
        let when = Conditions::start();
        let outcome = collect("B4/B5/B7", cmd);
        services.stop()?;
        when.stamp(&mut results, outcome?);
    }
    if wanted("B6") {
        let mut services = Services::default();
        services.start(Box::new(ControlPlane::new(ws, args.cluster.clone())))?;
        let mut cmd = bench_command(ws, "b6_vnode");
        // The peer node B6 measures faas-vnode against.
        let virtual_kubelet =
            cluster::virtual_kubelet(ws, cluster::DEFAULT_VIRTUAL_KUBELET_VERSION)?;
        cmd.envs(services.env())
            .env("B6_VIRTUAL_KUBELET", virtual_kubelet);
        if args.quick {
            cmd.env("B6_PODS", "200");
        }
        let when = Conditions::start();
        let outcome = collect("B6", cmd);
        services.stop()?;
        when.stamp(&mut results, outcome?);
    }
    if wanted("B9") {
        let mut services = Services::default();
        services.start(Box::new(ControlPlane::new(ws, args.cluster.clone())))?;
        let mut cmd = bench_command(ws, "b9_functions");
        cmd.envs(services.env());
        if args.quick {
            cmd.env("B9_FUNCTIONS", "50");
        }
        let when = Conditions::start();
        let outcome = collect("B9", cmd);
        services.stop()?;
        when.stamp(&mut results, outcome?);
    }
    if wanted("B8") {
        let mut services = Services::default();
        for server in crate::servers::all(ws) {
            services.start(server)?;
        }
        let mut cmd = bench_command(ws, "b8_queue");
        cmd.envs(services.env());
        if args.quick {
            cmd.env("B8_ROUNDS", "1")
                .env("B8_MESSAGES", "4000")
                .env("B8_PACED", "500");
        }
        let when = Conditions::start();
        let outcome = collect("B8", cmd);
        services.stop()?;
        when.stamp(&mut results, outcome?);
    }
    if results.is_empty() {
        bail!(
            "no benchmark matched {:?} (known: B1, B2, B3, B4, B5, B6, B7, B8, B9)",
            args.only
        );
    }
    let table = table(&results);
    println!("{table}");
    if !args.no_write && !args.quick {
        let path = ws.root().join("BENCHMARKS.md");
        let former = std::fs::read_to_string(&path).unwrap_or_default();
        let kept = kept_rows(&former, &results);
        write_results(&path, &merge(&table, &kept))?;
        output::step("BENCHMARKS.md updated");
    }
    Ok(())
}

fn bench_command(ws: &Workspace, bench: &str) -> Command {
    let mut cmd = ws.cargo();
    cmd.args(["bench", "-p", "faas-benches", "--bench", bench]);
    // B1 and B2 need none of the cluster side (kube, faas-k8s): skip its build.
    if matches!(bench, "b1_executor" | "b2_http") {
        cmd.arg("--no-default-features");
    }
    // B8 needs the queue clients only.
    if bench == "b8_queue" {
        cmd.args(["--no-default-features", "--features", "queues"]);
    }
    cmd
}

/// Runs a benchmark and keeps its `BENCH` lines, echoing everything else.
fn collect(id: &str, mut cmd: Command) -> Result<Vec<Measurement>> {
    output::step(format!("{id}: {cmd:?}"));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {id}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut found = Vec::new();
    for line in stdout.lines() {
        match line.strip_prefix("BENCH ") {
            Some(json) => found
                .push(serde_json::from_str(json).with_context(|| format!("{id} printed {json}"))?),
            None => output::info(line),
        }
    }
    if !out.status.success() {
        bail!("{id} failed ({})", out.status);
    }
    if found.is_empty() {
        bail!("{id} printed no result");
    }
    Ok(found)
}

/// B1 runs under criterion; its per-iteration medians are read back from
/// `target/criterion/B1/*/new/estimates.json`.
fn b1(ws: &Workspace, quick: bool) -> Result<Vec<Measurement>> {
    let mut cmd = bench_command(ws, "b1_executor");
    let (warm, measure) = if quick { ("1", "2") } else { ("3", "10") };
    cmd.args(["--", "--warm-up-time", warm, "--measurement-time", measure]);
    output::step(format!("B1: {cmd:?}"));
    let status = cmd.status().context("cannot run B1")?;
    if !status.success() {
        bail!("B1 failed ({status})");
    }
    let median = |name: &str| -> Result<f64> {
        let path = ws
            .target()
            .join("criterion/B1")
            .join(name)
            .join("new/estimates.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)?;
        json["median"]["point_estimate"]
            .as_f64()
            .with_context(|| format!("no median in {}", path.display()))
    };
    let direct = median("direct_await")?;
    let spawn = median("spawn_oneshot")?;
    let call = median("function_call")?;
    let invoke = median("executor_invoke")?;
    let detail = "echo of a 16-byte body on a current-thread runtime; criterion medians in ns";
    let m = |metric: &str, value: f64, baseline: f64| Measurement {
        id: "B1".into(),
        metric: metric.into(),
        value,
        baseline,
        ratio: value / baseline,
        detail: detail.into(),
    };
    Ok(vec![
        m("executor invoke vs direct await (ns)", invoke, direct),
        m("executor invoke vs spawn + oneshot (ns)", invoke, spawn),
        m("Function::call vs direct await (ns)", call, direct),
        Measurement {
            id: "B1".into(),
            metric: "time added by the executor at p50 (ns)".into(),
            value: invoke - direct,
            baseline: 1000.0,
            ratio: (invoke - direct) / 1000.0,
            detail: "target: at most 1000 ns; ratio is against the target".into(),
        },
    ])
}

fn table(results: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| id | metric | faas | baseline | ratio | conditions | measured |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|---|");
    for Row {
        figure: r,
        measured,
    } in results
    {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.3} | {} | {measured} |",
            r.id, r.metric, r.value, r.baseline, r.ratio, r.detail
        );
    }
    let _ = writeln!(
        out,
        "\nOn {} ({} cores). *measured*: the day, and the load average over one minute when the \
         benchmark started and when it ended (a quiet machine reads below 1).",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    out
}

/// A measurement with the conditions it was taken in.
struct Row {
    figure: Measurement,
    /// When, and how loaded the machine was: `2026-12-03, load 0.4 -> 1.2`.
    measured: String,
}

/// The day and the machine's load when a benchmark started.
struct Conditions {
    day: String,
    load: String,
}

impl Conditions {
    fn start() -> Self {
        Conditions {
            day: today(),
            load: load_average(),
        }
    }

    /// Adds `found` to `rows`, stamped with the day and the load at the start
    /// and now.
    fn stamp(self, rows: &mut Vec<Row>, found: Vec<Measurement>) {
        let measured = format!("{}, load {} -> {}", self.day, self.load, load_average());
        rows.extend(found.into_iter().map(|figure| Row {
            figure,
            measured: measured.clone(),
        }));
    }
}

/// The one-minute load average, as `/proc/loadavg` gives it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The rows of the current table whose benchmark did not run this time, so
/// `--only` updates its own rows and keeps the others.
fn kept_rows(text: &str, results: &[Row]) -> Vec<String> {
    let Some(block) = text
        .find(BEGIN)
        .and_then(|s| text[s..].find(END).map(|e| &text[s..s + e]))
    else {
        return Vec::new();
    };
    block
        .lines()
        // Table rows only: the note under the table may begin with an id too.
        .filter(|line| line.starts_with('|'))
        .filter(|line| {
            let id = line
                .trim_start_matches('|')
                .split('|')
                .next()
                .unwrap_or("")
                .trim();
            id.starts_with('B') && !results.iter().any(|r| r.figure.id == id)
        })
        .map(str::to_owned)
        .collect()
}

/// `table` with `kept` rows put back in id order.
fn merge(table: &str, kept: &[String]) -> String {
    if kept.is_empty() {
        return table.to_owned();
    }
    let mut lines: Vec<&str> = table.lines().collect();
    let rows_end = lines
        .iter()
        .position(|l| l.is_empty())
        .unwrap_or(lines.len());
    let mut rows: Vec<&str> = lines.drain(2..rows_end).collect();
    rows.extend(kept.iter().map(String::as_str));
    rows.sort_by_key(|row| {
        row.split('|')
            .nth(1)
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    });
    let mut out = String::new();
    for line in lines[..2]
        .iter()
        .chain(rows.iter())
        .chain(lines[2..].iter())
    {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn write_results(path: &Path, table: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{table}{END}");
    let updated = match (text.find(BEGIN), text.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{}{}", &text[..start], block, &text[end + END.len()..])
        }
        _ => format!("{text}\n## Latest results\n\n{block}\n"),
    };
    std::fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))
}

fn today() -> String {
    Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, metric: &str) -> Row {
        Row {
            figure: Measurement::new(id, metric, 2.0, 1.0, "same run"),
            measured: "2026-12-03, load 0.40 -> 1.10".into(),
        }
    }

    #[test]
    fn a_partial_run_keeps_the_other_rows_with_their_own_conditions() {
        let former = format!(
            "intro\n{BEGIN}\n{}{END}\nnotes\n",
            table(&[row("B1", "old"), row("B3", "p95"), row("B2", "old")])
        );
        let ran = [row("B2", "new"), row("B1", "new")];
        let kept = kept_rows(&former, &ran);
        assert_eq!(kept.len(), 1);
        assert!(kept[0].starts_with("| B3 | p95 |"));
        assert!(kept[0].ends_with("| 2026-12-03, load 0.40 -> 1.10 |"));

        let merged = merge(&table(&ran), &kept);
        let ids: Vec<&str> = merged
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.split('|').nth(1).unwrap().trim())
            .collect();
        assert_eq!(ids, ["B1", "B2", "B3"]);
        // The note under the table is the generated one, never read back as a row.
        assert!(merged.contains("*measured*"));
        assert_eq!(merged.matches("*measured*").count(), 1);
    }
}
