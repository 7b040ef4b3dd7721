//! What a benchmark phase cost the control plane: the CPU time of its processes and the API
//! server's requests by verb and resource, each as a snapshot taken before and after the phase.
//!
//! The processes are found through the pid files `cargo xtask cluster up` writes under
//! `<cluster dir>/run`; the requests come from the API server's own `/metrics`
//! (`apiserver_request_total` and `apiserver_request_duration_seconds`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use kube::Client;

/// The control plane's processes, by the name of their pid file.
const PROCESSES: [&str; 4] = [
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The CPU time (user + system) each control-plane process and this process had used.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    used: BTreeMap<String, Duration>,
}

fn cpu_of(process: &procfs::process::Process) -> Option<Duration> {
    let stat = process.stat().ok()?;
    let ticks = stat.utime + stat.stime;
    let per_second = procfs::ticks_per_second();
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// The pid in a pid file of `cargo xtask cluster up`: a JSON record with a `pid` field.
fn pid_of(record: &str) -> Option<i32> {
    let record: serde_json::Value = serde_json::from_str(record).ok()?;
    i32::try_from(record.get("pid")?.as_i64()?).ok()
}

impl CpuSnapshot {
    /// The CPU time used so far by the processes of the cluster in `cluster_dir` and by this
    /// process (the benchmark, with what it hosts), under the name `bench`.
    pub fn take(cluster_dir: &Path) -> Self {
        let mut used = BTreeMap::new();
        for name in PROCESSES {
            let process =
                std::fs::read_to_string(cluster_dir.join("run").join(format!("{name}.pid")))
                    .ok()
                    .and_then(|record| pid_of(&record))
                    .and_then(|pid| procfs::process::Process::new(pid).ok());
            if let Some(time) = process.as_ref().and_then(cpu_of) {
                used.insert(name.to_owned(), time);
            }
        }
        if let Some(time) = procfs::process::Process::myself()
            .ok()
            .as_ref()
            .and_then(cpu_of)
        {
            used.insert("bench".to_owned(), time);
        }
        CpuSnapshot { used }
    }

    /// The CPU time each process used since `before`.
    pub fn since(&self, before: &CpuSnapshot) -> BTreeMap<String, Duration> {
        self.used
            .iter()
            .map(|(name, after)| {
                let before = before.used.get(name).copied().unwrap_or_default();
                (name.clone(), after.saturating_sub(before))
            })
            .collect()
    }
}

/// One line of a report: CPU seconds per process, `name 1.23 s` each.
pub fn cpu_line(used: &BTreeMap<String, Duration>) -> String {
    let mut line = String::new();
    for (name, time) in used {
        let _ = write!(line, "{name} {:.2} s, ", time.as_secs_f64());
    }
    line.trim_end_matches(", ").to_owned()
}

/// A request kind: verb, resource and subresource as the API server labels them.
pub type RequestKind = (String, String, String);

/// Requests served per kind and the seconds they took in all.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RequestCost {
    /// Requests answered.
    pub count: f64,
    /// The seconds they took, summed (`apiserver_request_duration_seconds_sum`).
    pub seconds: f64,
}

/// The API server's request counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct ApiRequests {
    kinds: HashMap<RequestKind, RequestCost>,
}

/// The value of label `name` in a Prometheus label set `a="x",b="y"`.
fn label<'a>(labels: &'a str, name: &str) -> &'a str {
    labels
        .split(',')
        .find_map(|pair| {
            pair.strip_prefix(name)?
                .strip_prefix("=\"")?
                .strip_suffix('"')
        })
        .unwrap_or("")
}

impl ApiRequests {
    /// Reads the counters from the API server's `/metrics`.
    ///
    /// # Panics
    ///
    /// When the API server does not answer: the benchmark cannot report without it.
    pub async fn take(client: &Client) -> Self {
        let request = http::Request::get("/metrics")
            .body(Vec::new())
            .expect("a request");
        let text = client
            .request_text(request)
            .await
            .expect("the API server's metrics");
        Self::parse(&text)
    }

    /// The counters in a `/metrics` text.
    pub fn parse(text: &str) -> Self {
        let mut kinds: HashMap<RequestKind, RequestCost> = HashMap::new();
        for line in text.lines() {
            let (rest, is_count) = if let Some(rest) = line.strip_prefix("apiserver_request_total{")
            {
                (rest, true)
            } else if let Some(rest) = line.strip_prefix("apiserver_request_duration_seconds_sum{")
            {
                (rest, false)
            } else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let value: f64 = value.trim().parse().unwrap_or(0.0);
            let kind = (
                label(labels, "verb").to_owned(),
                label(labels, "resource").to_owned(),
                label(labels, "subresource").to_owned(),
            );
            let cost = kinds.entry(kind).or_default();
            if is_count {
                cost.count += value;
            } else {
                cost.seconds += value;
            }
        }
        ApiRequests { kinds }
    }

    /// The requests of each kind served since `before`, leaving out kinds with none.
    pub fn since(&self, before: &ApiRequests) -> BTreeMap<RequestKind, RequestCost> {
        self.kinds
            .iter()
            .filter_map(|(kind, after)| {
                let before = before.kinds.get(kind).copied().unwrap_or_default();
                let cost = RequestCost {
                    count: after.count - before.count,
                    seconds: after.seconds - before.seconds,
                };
                (cost.count > 0.0).then(|| (kind.clone(), cost))
            })
            .collect()
    }
}

/// Whether `verb` changes what the API server stores.
pub fn is_write(verb: &str) -> bool {
    [
        "POST",
        "PUT",
        "PATCH",
        "APPLY",
        "DELETE",
        "DELETECOLLECTION",
    ]
    .contains(&verb)
}

/// The writes of `resource`/`subresource` in `delta`.
pub fn writes(
    delta: &BTreeMap<RequestKind, RequestCost>,
    resource: &str,
    subresource: &str,
) -> f64 {
    delta
        .iter()
        .filter(|((verb, r, s), _)| is_write(verb) && r == resource && s == subresource)
        .map(|(_, cost)| cost.count)
        .sum()
}

/// A table of `delta` (watches left out: they last as long as they are open), the most
/// requested kinds first: verb, resource, count, count per `per` and mean latency.
pub fn request_table(delta: &BTreeMap<RequestKind, RequestCost>, per: f64) -> String {
    let mut rows: Vec<_> = delta
        .iter()
        .filter(|((verb, _, _), _)| verb != "WATCH")
        .collect();
    rows.sort_by(|a, b| b.1.count.total_cmp(&a.1.count));
    let mut table = String::new();
    for ((verb, resource, subresource), cost) in rows {
        let resource = if subresource.is_empty() {
            resource.clone()
        } else {
            format!("{resource}/{subresource}")
        };
        let _ = writeln!(
            table,
            "  {verb:<7} {resource:<28} {:>7.0} {:>6.2}/fn {:>8.1} ms mean",
            cost.count,
            cost.count / per,
            cost.seconds * 1000.0 / cost.count
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_comes_from_the_cluster_s_process_record() {
        assert_eq!(
            pid_of(r#"{"name": "etcd", "pid": 22005, "start_ticks": 1}"#),
            Some(22005)
        );
        assert_eq!(pid_of("not json"), None);
    }

    #[test]
    fn counts_and_durations_add_up_per_kind_across_codes_and_versions() {
        let text = r#"
# HELP apiserver_request_total x
apiserver_request_total{code="201",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="409",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="POST",version="v1"} 1
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="POST",version="v1"} 0.4
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="POST",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="faas.rs",resource="functions",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2
"#;
        let before = ApiRequests::default();
        let delta = ApiRequests::parse(text).since(&before);
        let post = delta[&("POST".into(), "deployments".into(), String::new())];
        assert_eq!(post.count, 4.0);
        assert!((post.seconds - 0.4).abs() < 1e-9);
        assert_eq!(writes(&delta, "functions", "status"), 2.0);
        assert_eq!(writes(&delta, "functions", ""), 0.0);
        let table = request_table(&delta, 2.0);
        assert!(
            table.contains("deployments") && table.contains("2.00/fn"),
            "{table}"
        );
    }
}
