//! The shared harness of the faas end-to-end tests.
//!
//! End-to-end tests run against a real Kubernetes control plane (etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler) that
//! `cargo xtask cluster up` builds and starts on loopback; `cargo xtask test`
//! starts it for the run and stops it afterwards. This crate gives the tests:
//!
//! - [`TestCluster`]: clients built from `KUBECONFIG` (or
//!   `target/cluster/kubeconfig`), for the admin and for a restricted,
//!   non-admin identity, and the paths of the cluster's PKI. When no control
//!   plane answers, [`TestCluster::require`] fails the test with
//!   [`NO_CONTROL_PLANE`]: the tier never passes silently.
//! - [`TestNamespace`]: a namespace with a unique name per test, deleted when
//!   the test ends, pass or fail.
//! - [`wait`]: helpers that watch or poll until a condition holds, with a
//!   generous timeout (`FAAS_E2E_TIMEOUT_SECS`, 180 s by default) and an
//!   error that says what was awaited and what was last seen.
//! - [`vnode`]: a virtual node run in the test's process on any pod backend,
//!   whose Node is deleted even when the test fails half-way.
//!
//! ```no_run
//! use faas_e2e::{TestCluster, wait};
//! use k8s_openapi::api::core::v1::ServiceAccount;
//!
//! # async fn demo() -> faas_e2e::Result<()> {
//! let cluster = TestCluster::require().await;
//! let ns = cluster.namespace("demo").await?;
//! let accounts = ns.api::<ServiceAccount>();
//! let default = wait::for_object(&accounts, "default", "the default ServiceAccount", |_| true).await?;
//! assert_eq!(default.metadata.namespace.as_deref(), Some(ns.name()));
//! # Ok(())
//! # }
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `KUBECONFIG` | admin kubeconfig | `target/cluster/kubeconfig` |
//! | `FAAS_CLUSTER_DIR` | what `cargo xtask cluster up` wrote | `target/cluster` |
//! | `FAAS_RESTRICTED_KUBECONFIG` | kubeconfig of the restricted identity | `<cluster dir>/restricted.kubeconfig` |
//! | `FAAS_E2E_TIMEOUT_SECS` | overall timeout of each wait | `180` |
//! | `FAAS_E2E_KEEP_NAMESPACES` | `1` keeps test namespaces for debugging | unset |

mod cluster;
mod error;
pub mod hosting;
mod kubectl;
mod namespace;
pub mod vnode;
pub mod wait;

pub use cluster::{ClusterPaths, ClusterPki, NO_CONTROL_PLANE, TestCluster};
pub use error::{Error, Result};
pub use kubectl::{kubectl, run_kubectl};
pub use namespace::{E2E_LABEL, TestNamespace};
