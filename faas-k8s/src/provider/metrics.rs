//! A function's invocation count, read from the `/metrics` of its running pods.
//!
//! Every function pod runs the function runtime, which counts the calls it answered in
//! `faas_invocations_total{function, outcome}`. The count a provider reports is the sum over
//! the function's running pods, whatever route the calls took (the gateway, a trigger, the API
//! server's proxy): what `faasctl invoke` followed by `faasctl describe` or `faasctl list`
//! should show. Calls answered by pods that are gone (scaled in, replaced by a rollout) are no
//! longer counted, as with any per-process counter.
//!
//! Reads are bounded: the pods are read concurrently and all within [`READ_BUDGET`]. A pod that
//! cannot be read in time (starting, stopping, busy, or a caller without `get` on
//! `pods/proxy`) counts what it showed the last time it was read ([`PodCounts`]), so a slow pod
//! neither fails nor holds up a status or a list, nor makes the count drop.
//!
//! The exposition format is read by hand for this one counter family: a line is
//! `name{label="value",...} number`, and a parser crate would bring a regex engine and a
//! date library into faas-k8s for it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use faas_core::FunctionRef;
use futures::StreamExt as _;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use super::invoke::InvokeRoute;
use crate::function::{FUNCTION_LABEL, FUNCTION_PORT};

/// The counter of calls answered by the function runtime.
const INVOCATIONS: &str = "faas_invocations_total";

/// How many pods are read at once.
const READS_IN_FLIGHT: usize = 16;

/// How long the reads of one status or list may take together: it never waits on a pod that
/// does not answer (nor on a client that retries its answers).
const READ_BUDGET: Duration = Duration::from_secs(2);

/// The value of label `name` in a label set `a="x",b="y"`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

/// The calls `function` answered according to one pod's metrics `text`: the series labelled
/// with its name, or every series when none is (a pod whose one function is registered under
/// another name, as on the virtual node's function backend).
pub(crate) fn invocations_in(text: &str, function: &str) -> u64 {
    let series: Vec<(Option<&str>, f64)> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(INVOCATIONS)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.split_once('}')?,
                None => ("", rest),
            };
            let value: f64 = value.split_whitespace().next()?.parse().ok()?;
            Some((label(labels, "function"), value))
        })
        .collect();
    let named = series.iter().any(|(name, _)| *name == Some(function));
    let total: f64 = series
        .iter()
        .filter(|(name, _)| !named || *name == Some(function))
        .map(|(_, value)| value)
        .sum();
    // Counters are whole numbers of calls.
    total.max(0.0) as u64
}

/// Reads one pod's metrics, through the API server's pod proxy or straight from its address.
async fn pod_metrics(
    client: &kube::Client,
    http: &HttpClient<HttpConnector, Full<Bytes>>,
    route: &InvokeRoute,
    pod: &Pod,
) -> Option<String> {
    let namespace = pod.metadata.namespace.as_deref()?;
    let name = pod.metadata.name.as_deref()?;
    match route {
        InvokeRoute::ApiServerProxy => {
            let request = Request::get(format!(
                "/api/v1/namespaces/{namespace}/pods/{name}:{FUNCTION_PORT}/proxy/metrics"
            ))
            .body(Vec::new())
            .ok()?;
            client.request_text(request).await.ok()
        }
        InvokeRoute::InCluster { .. } => {
            let ip = pod.status.as_ref()?.pod_ip.as_deref()?;
            let request = Request::get(format!("http://{ip}:{FUNCTION_PORT}/metrics"))
                .body(Full::new(Bytes::new()))
                .ok()?;
            let response = http.request(request).await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let body = response.into_body().collect().await.ok()?.to_bytes();
            String::from_utf8(body.to_vec()).ok()
        }
    }
}

/// Whether `pod` runs and may answer: not being deleted, with an address.
fn running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|status| {
            status.phase.as_deref() == Some("Running") && status.pod_ip.is_some()
        })
}

/// Which function a pod serves: its namespace and its `faas.rs/function` label.
type FunctionOf = (String, String);

/// What one pod showed the last time it was read.
#[derive(Clone, Debug)]
struct PodCount {
    function: FunctionOf,
    count: u64,
}

/// The last invocation count read from each function pod (by uid), shared by the clones of a
/// provider: a pod that cannot be read keeps its previous count.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodCounts(Arc<Mutex<HashMap<String, PodCount>>>);

impl PodCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodCount>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what was read this time; forgets the pods in `namespace` (every namespace for
    /// `None`) matching `serves` that were not listed (`listed` holds the uids of the pods
    /// listed).
    fn record(
        &self,
        namespace: Option<&str>,
        serves: impl Fn(&FunctionOf) -> bool,
        listed: &[String],
        read: Vec<(String, PodCount)>,
    ) {
        let mut counts = self.lock();
        counts.retain(|uid, pod| {
            let in_scope = namespace.is_none_or(|ns| pod.function.0 == ns) && serves(&pod.function);
            !in_scope || listed.contains(uid)
        });
        counts.extend(read);
    }

    /// The sum per function of the last counts of the pods in `namespace` matching `serves`.
    fn totals(
        &self,
        namespace: Option<&str>,
        serves: impl Fn(&FunctionOf) -> bool,
    ) -> BTreeMap<FunctionOf, u64> {
        let mut totals = BTreeMap::new();
        for pod in self.lock().values() {
            if namespace.is_none_or(|ns| pod.function.0 == ns) && serves(&pod.function) {
                *totals.entry(pod.function.clone()).or_default() += pod.count;
            }
        }
        totals
    }
}

/// Where function pods are counted from.
pub(crate) struct CountReader<'a> {
    pub(crate) client: &'a kube::Client,
    pub(crate) http: &'a HttpClient<HttpConnector, Full<Bytes>>,
    pub(crate) route: &'a InvokeRoute,
    pub(crate) counts: &'a PodCounts,
}

impl CountReader<'_> {
    /// The calls `function`'s running pods have answered; see the [module](self) documentation.
    pub(crate) async fn function(&self, function: &FunctionRef) -> u64 {
        let selector = format!("{FUNCTION_LABEL}={}", function.name);
        let name = function.name.as_str();
        let totals = self
            .read(Some(&function.namespace), &selector, |(_, f)| f == name)
            .await;
        totals.values().sum()
    }

    /// The calls each function in `namespace` (every namespace for `None`) has answered on its
    /// running pods, by namespace and name; a function with no running pod is absent.
    pub(crate) async fn all(&self, namespace: Option<&str>) -> BTreeMap<FunctionOf, u64> {
        self.read(namespace, FUNCTION_LABEL, |_| true).await
    }

    async fn read(
        &self,
        namespace: Option<&str>,
        selector: &str,
        serves: impl Fn(&FunctionOf) -> bool + Copy,
    ) -> BTreeMap<FunctionOf, u64> {
        let pods: Api<Pod> = match namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        };
        let pods = match pods.list(&ListParams::default().labels(selector)).await {
            Ok(pods) => pods.items,
            Err(e) => {
                tracing::debug!(?namespace, selector, error = %e, "listing the pods to count invocations");
                return self.counts.totals(namespace, serves);
            }
        };
        let running: Vec<(String, FunctionOf, Pod)> = pods
            .into_iter()
            .filter(running)
            .filter_map(|pod| {
                let uid = pod.metadata.uid.clone()?;
                let function = (
                    pod.metadata.namespace.clone()?,
                    pod.metadata.labels.as_ref()?.get(FUNCTION_LABEL)?.clone(),
                );
                Some((uid, function, pod))
            })
            .collect();
        let listed: Vec<String> = running.iter().map(|(uid, ..)| uid.clone()).collect();
        let reads = running.into_iter().map(|(uid, function, pod)| async move {
            let text = pod_metrics(self.client, self.http, self.route, &pod).await?;
            let count = invocations_in(&text, &function.1);
            Some((uid, PodCount { function, count }))
        });
        // Every read within one budget: what has not answered by then keeps its last count.
        let mut read = Vec::new();
        let reading = futures::stream::iter(reads)
            .buffer_unordered(READS_IN_FLIGHT)
            .filter_map(futures::future::ready);
        let _ = tokio::time::timeout(
            READ_BUDGET,
            reading.for_each(|pod| {
                read.push(pod);
                futures::future::ready(())
            }),
        )
        .await;
        self.counts.record(namespace, serves, &listed, read);
        self.counts.totals(namespace, serves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "\
# HELP faas_invocations Calls answered.
# TYPE faas_invocations counter
faas_invocations_total{function=\"shout\",outcome=\"success\"} 3
faas_invocations_total{function=\"shout\",outcome=\"error\"} 1
faas_invocations_total{function=\"other\",outcome=\"success\"} 5
faas_invocations_created{function=\"shout\",outcome=\"success\"} 1700000000.0
faas_errors_total{function=\"shout\",kind=\"timeout\"} 1
";

    #[test]
    fn the_series_of_the_function_are_summed() {
        assert_eq!(invocations_in(METRICS, "shout"), 4);
        assert_eq!(invocations_in(METRICS, "other"), 5);
    }

    #[test]
    fn a_pod_whose_function_has_another_name_counts_all_its_calls() {
        assert_eq!(invocations_in(METRICS, "greeter"), 9);
        assert_eq!(invocations_in("", "greeter"), 0);
        assert_eq!(
            invocations_in(
                "faas_invocations_total 2\nfaas_invocations_total{x=\"1\"} oops\n",
                "f"
            ),
            2
        );
    }

    fn count(namespace: &str, function: &str, count: u64) -> PodCount {
        PodCount {
            function: (namespace.to_owned(), function.to_owned()),
            count,
        }
    }

    #[test]
    fn a_pod_not_read_keeps_its_last_count_and_a_pod_gone_drops_out() {
        let counts = PodCounts::default();
        let all = |_: &FunctionOf| true;
        let listed = ["a1".to_owned(), "a2".to_owned(), "b1".to_owned()];
        counts.record(
            None,
            all,
            &listed,
            vec![
                ("a1".into(), count("apps", "a", 3)),
                ("a2".into(), count("apps", "a", 4)),
                ("b1".into(), count("other", "b", 5)),
            ],
        );
        let key = |ns: &str, f: &str| (ns.to_owned(), f.to_owned());
        assert_eq!(counts.totals(None, all)[&key("apps", "a")], 7);
        // a2 did not answer this time: it still counts its 4; a1 answered 6.
        counts.record(
            Some("apps"),
            all,
            &listed[..2],
            vec![("a1".into(), count("apps", "a", 6))],
        );
        assert_eq!(counts.totals(Some("apps"), all)[&key("apps", "a")], 10);
        // A list of one namespace leaves the other's pods alone.
        assert_eq!(counts.totals(None, all)[&key("other", "b")], 5);
        // a2 is gone (not listed): its calls are no longer counted.
        let only_a = |f: &FunctionOf| f.1 == "a";
        counts.record(Some("apps"), only_a, &listed[..1], Vec::new());
        assert_eq!(counts.totals(Some("apps"), all)[&key("apps", "a")], 6);
        assert_eq!(counts.totals(None, all)[&key("other", "b")], 5);
    }
}
