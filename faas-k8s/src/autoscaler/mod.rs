//! The autoscaler: one decider per function over HTTP concurrency and
//! event-source lag, and the loop that writes its decisions to the cluster.
//!
//! - [`ScalingPolicy`]: bounds, targets and windows of one function.
//! - [`Decider`]: the pure decision, with the clock passed in (Knative's KPA
//!   stable and panic windows for concurrency, KEDA-like lag inputs, scale to
//!   zero after the grace period, from zero on the first held call or pending
//!   message).
//! - [`Autoscaler`]: the loop that feeds the deciders with the gateway's
//!   counts and the lag sources, writes the scale subresource of each
//!   Function (or Deployment, see [`ScaleTarget`]) and sets
//!   `controller.kubernetes.io/pod-deletion-cost` before scaling in.
//! - [`TrafficMetrics`]: the Prometheus metrics of traffic and scale.

mod decider;
mod metrics;
mod policy;
mod runner;
mod target;

pub use decider::{Decider, Decision, DecisionReason, Observation};
pub use metrics::TrafficMetrics;
pub use policy::{ScalingPolicy, ScalingPolicyBuilder};
pub use runner::{Autoscaler, AutoscalerConfig, AutoscalerConfigBuilder};
pub use target::{POD_DELETION_COST, ScaleTarget, policy_from_spec};
