//! A function's invocation count, read from the `/metrics` of its running pods.
//!
//! Every function pod runs the function runtime, which counts the calls it answered in
//! `faas_invocations_total{function, outcome}`. The count a provider reports is the sum over
//! the function's running pods, whatever route the calls took (the gateway, a trigger, the API
//! server's proxy): what `faasctl invoke` followed by `faasctl describe` should show. Calls
//! answered by pods that are gone (scaled in, replaced by a rollout) are no longer counted, as
//! with any per-process counter; a pod that cannot be read within two seconds (starting,
//! stopping, or a caller without `get` on `pods/proxy`) adds nothing rather than failing or
//! holding up the status.
//!
//! The exposition format is read by hand for this one counter family: a line is
//! `name{label="value",...} number`, and a parser crate would bring a regex engine and a
//! date library into faas-k8s for it.

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
const READS_IN_FLIGHT: usize = 8;

/// How long one pod's metrics may take: a status never waits on a pod that does not answer
/// (nor on a client that retries its answers).
const READ_TIMEOUT: Duration = Duration::from_secs(2);

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

/// The calls `function`'s running pods have answered; see the [module](self) documentation.
pub(crate) async fn invocation_count(
    client: &kube::Client,
    http: &HttpClient<HttpConnector, Full<Bytes>>,
    route: &InvokeRoute,
    function: &FunctionRef,
) -> u64 {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &function.namespace);
    let selector = format!("{FUNCTION_LABEL}={}", function.name);
    let pods = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(pods) => pods.items,
        Err(e) => {
            tracing::debug!(%function, error = %e, "listing the pods to count invocations");
            return 0;
        }
    };
    let reads = pods.into_iter().filter(running).map(|pod| async move {
        tokio::time::timeout(READ_TIMEOUT, pod_metrics(client, http, route, &pod))
            .await
            .ok()
            .flatten()
            .map_or(0, |text| invocations_in(&text, &function.name))
    });
    futures::stream::iter(reads)
        .buffer_unordered(READS_IN_FLIGHT)
        .collect::<Vec<u64>>()
        .await
        .into_iter()
        .sum()
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
}
