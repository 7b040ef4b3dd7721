//! The function operator: a kube-runtime controller that turns each `Function` into a
//! Deployment and a Service and reports its status.
//!
//! For Function `ns/name` the operator writes, under one field manager ([`FIELD_MANAGER`]), a
//! Deployment and a Service named `name` in `ns`, both owned by the Function (deleting it
//! deletes them): a plain create when the object does not exist, a server-side apply when it
//! differs from what the Function says. Before its first apply over an object it created, the
//! operator makes the fields its create recorded its applied fields, so the object is owned
//! as if it had been applied from the start: a field the Function stops setting is removed,
//! and no field is owned twice. The pods run the function runtime: container port 8080
//! named `http`, readiness on `/_/ready`, liveness on `/_/health`, `POD_IP` from the downward
//! API, a termination grace period a little longer than the function's drain timeout, and the
//! virtual node's toleration (plus its node selector when the Function asks to be placed there).
//!
//! - **Drift is healed**: a Deployment or Service deleted or edited by hand comes back as the
//!   Function says.
//! - **A steady Function causes no writes**: a reconcile compares the cached objects with what
//!   it would write and writes only what differs (against the object its last write returned
//!   while the cache has not caught up), and the status only when it changed. A rollout that
//!   keeps moving is not reported as `Progressing`: its one status write says `Ready`; one that
//!   stands still for [`OperatorConfig::progress_report_delay`] says where it is stuck.
//! - **Failures become conditions**: a missing Secret, an image that cannot run, a quota, a
//!   refused write (RBAC) each set the `Ready` condition's reason and message, with a Warning
//!   Event on the Function; errors are retried with a back-off per Function.
//! - **Leader election** through a `coordination.k8s.io` Lease ([`LeaderElection`]).
//! - **Least privilege**: [`cluster_role`] and [`leader_election_role`] are generated from the
//!   calls the code makes.
//!
//! # Embedding
//!
//! Another kube-rs operator runs the same controller inside its own runtime, with its own
//! client and shutdown, by polling [`FunctionController::stream`]:
//!
//! ```no_run
//! use futures::StreamExt as _;
//! use faas_k8s::operator::{FunctionController, OperatorConfig};
//!
//! # async fn example(client: kube::Client) {
//! let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
//! let functions = FunctionController::new(client, OperatorConfig::default().with_namespace("apps"));
//! let reconciles = functions.stream(async move {
//!     let _ = stop_rx.await;
//! });
//! tokio::spawn(reconciles.for_each(|_| async {}));
//! // ... the embedding operator's own controllers ...
//! let _ = stop_tx.send(());
//! # }
//! ```

mod applied;
mod backoff;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod controller;
mod crd;
mod detached;
mod drift;
mod leader;
mod ownership;
mod progress;
mod rbac;
mod readiness;
mod reconcile;
mod resources;
mod stats;

pub use config::{FIELD_MANAGER, OperatorConfig};
pub use controller::{FunctionController, ReconcileResult};
pub use crd::install_crd;
pub use leader::LeaderElection;
pub use rbac::{
    OPERATOR_ROLE, cluster_role, leader_election_role, leader_election_rules, operator_rules,
};
pub use resources::{
    CONTAINER_NAME, FUNCTION_GENERATION_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL,
    VIRTUAL_NODE_SELECTOR, deployment, function_url, selector_labels, service,
};
pub use stats::OperatorStats;
