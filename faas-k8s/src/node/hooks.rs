//! Container lifecycle hooks: `postStart` right after a run starts, `preStop` before it is
//! stopped, each an `exec`, `httpGet`, `tcpSocket` or `sleep` action run the way probes run.

use std::time::Duration;

use k8s_openapi::api::core::v1::{LifecycleHandler, Probe};

use super::probe::{Outcome, ProbeTarget, run_action};

/// Runs one hook to its end.
pub(crate) async fn run_hook(handler: &LifecycleHandler, target: &ProbeTarget) -> Outcome {
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(
            u64::try_from(sleep.seconds).unwrap_or(0),
        ))
        .await;
        return Ok(());
    }
    // The actions a hook can take are the probes' own.
    let action = Probe {
        exec: handler.exec.clone(),
        http_get: handler.http_get.clone(),
        tcp_socket: handler.tcp_socket.clone(),
        ..Default::default()
    };
    run_action(&action, target).await
}

/// The `postStart` hook of the target's container, if it has one.
pub(crate) fn post_start(target: &ProbeTarget) -> Option<&LifecycleHandler> {
    target.container.lifecycle.as_ref()?.post_start.as_ref()
}

/// The `preStop` hook of the target's container, if it has one.
pub(crate) fn pre_stop(target: &ProbeTarget) -> Option<&LifecycleHandler> {
    target.container.lifecycle.as_ref()?.pre_stop.as_ref()
}
