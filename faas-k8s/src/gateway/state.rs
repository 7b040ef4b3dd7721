//! What every handler of the gateway shares.

use std::sync::Arc;

use faas_core::Provider;

use super::asynchronous::AsyncQueue;
use super::config::GatewayConfig;
use super::endpoints::RoutingTable;
use super::proxy::Upstream;
use crate::autoscaler::TrafficMetrics;

/// The gateway's shared state, reached by handlers through axum's `State`.
pub(crate) struct GatewayState {
    pub(crate) config: GatewayConfig,
    pub(crate) table: Arc<RoutingTable>,
    pub(crate) metrics: TrafficMetrics,
    pub(crate) upstream: Upstream,
    pub(crate) provider: Option<Arc<dyn Provider>>,
    pub(crate) async_queue: AsyncQueue,
}
