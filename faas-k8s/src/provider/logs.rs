//! A function's log: the log of its container in each of its pods, read through the API server
//! (which asks the kubelet, or the virtual node, that runs the pod).

use faas_core::{FunctionRef, LogLine, LogQuery, ProviderError};
use futures::io::AsyncBufReadExt as _;
use futures::stream::{self, BoxStream};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};

use super::kube_error;
use crate::function::FUNCTION_LABEL;
use crate::operator::CONTAINER_NAME;

fn params(options: &LogQuery) -> LogParams {
    LogParams {
        container: Some(CONTAINER_NAME.to_owned()),
        follow: options.follow,
        tail_lines: options.tail.and_then(|tail| i64::try_from(tail).ok()),
        since_time: options
            .since
            .and_then(|since| k8s_openapi::jiff::Timestamp::try_from(since).ok()),
        ..LogParams::default()
    }
}

/// The log lines of `function`'s pods; see [`Provider::logs`](faas_core::Provider::logs).
pub(crate) async fn function_logs(
    client: kube::Client,
    function: &FunctionRef,
    options: LogQuery,
) -> Result<BoxStream<'static, Result<LogLine, ProviderError>>, ProviderError> {
    let pods: Api<Pod> = Api::namespaced(client, &function.namespace);
    let selector = format!("{FUNCTION_LABEL}={}", function.name);
    let mut list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| kube_error(e, function, "listing the function's pods"))?
        .items;
    list.retain(|pod| {
        pod.status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .is_some()
    });
    list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let lp = params(&options);
    if options.follow {
        let mut streams = Vec::new();
        for pod in list {
            let name = pod.metadata.name.unwrap_or_default();
            let reader = pods
                .log_stream(&name, &lp)
                .await
                .map_err(|e| kube_error(e, function, "following the function's log"))?;
            let instance = name.clone();
            streams.push(
                reader
                    .lines()
                    .map_ok(move |text| LogLine::new(instance.clone(), text))
                    .map_err(|e| ProviderError::unavailable("reading the function's log", e))
                    .boxed(),
            );
        }
        return Ok(stream::select_all(streams).boxed());
    }
    let mut lines = Vec::new();
    for pod in list {
        let name = pod.metadata.name.unwrap_or_default();
        let text = pods
            .logs(&name, &lp)
            .await
            .map_err(|e| kube_error(e, function, "reading the function's log"))?;
        lines.extend(
            text.lines()
                .map(|line| Ok(LogLine::new(name.clone(), line.to_owned()))),
        );
    }
    if let Some(tail) = options.tail {
        let skip = lines.len().saturating_sub(tail);
        lines.drain(..skip);
    }
    Ok(stream::iter(lines).boxed())
}
