//! The activator: a call for a function with no ready endpoint is held, the
//! autoscaler is told at once, and the call is released to the first ready pod.

use std::net::SocketAddr;
use std::sync::Arc;

use faas_core::FunctionError;
use tokio::time::Instant;

use super::endpoints::{FunctionRoutes, RoutingTable};
use crate::autoscaler::TrafficMetrics;

/// Why a held call was not released.
pub(crate) fn held_past_deadline(routes: &FunctionRoutes) -> FunctionError {
    FunctionError::timeout(format!(
        "function `{}` had no ready replica before the call's deadline",
        routes.key()
    ))
}

/// Holds the caller until `routes` has a ready endpoint (when every ready one
/// in `tried` refused the call, until the ready set changes), or the deadline.
///
/// # Errors
///
/// 429 when `bound` calls are already held for the function, 504 at the deadline.
pub(crate) async fn wait_for_endpoint(
    table: &RoutingTable,
    metrics: &TrafficMetrics,
    routes: &Arc<FunctionRoutes>,
    tried: &[SocketAddr],
    bound: u64,
    deadline: Instant,
) -> Result<(), FunctionError> {
    let mut ready = routes.watch_ready();
    let at_zero = ready.borrow_and_update().is_empty();
    let Some(held) = routes.hold(bound, at_zero) else {
        return Err(FunctionError::overloaded(format!(
            "{bound} calls are already held for function `{}` while it wakes",
            routes.key()
        )));
    };
    if at_zero {
        table.notify_held();
    }
    let waited = tokio::time::timeout_at(deadline, async {
        if at_zero {
            ready
                .wait_for(|endpoints| !endpoints.is_empty())
                .await
                .map(|_| ())
        } else {
            // Every ready endpoint refused the call: wait for the set to change
            // (a failed pod leaves it, a restarted one comes back).
            if ready.borrow().iter().any(|e| !tried.contains(&e.addr())) {
                return Ok(());
            }
            ready.changed().await
        }
    })
    .await;
    drop(held);
    match waited {
        Ok(Ok(())) => {
            if at_zero && let Some(took) = routes.woken() {
                metrics.cold_start(&routes.key().to_string(), took);
                tracing::info!(function = %routes.key(), took_ms = took.as_millis(), "woken from zero");
            }
            Ok(())
        }
        // The table lives as long as the gateway: a closed channel means it is going away.
        Ok(Err(_)) => Err(FunctionError::unavailable("the gateway is stopping")),
        Err(_) => Err(held_past_deadline(routes)),
    }
}
