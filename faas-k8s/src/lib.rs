//! faas on Kubernetes.
//!
//! This crate is where faas meets a Kubernetes API server. Today it holds the **virtual node**
//! ([`node`]): a virtual kubelet that registers a Node, runs the Pods the scheduler binds to it on
//! a [`PodBackend`](node::PodBackend) (OS processes on loopback addresses, or functions
//! in-process), writes their status, runs their probes and serves their logs to `kubectl logs`.
//!
//! # Running a virtual node
//!
//! A [`VirtualNode`](node::VirtualNode) is a value the program drives: nothing runs until
//! [`run`](node::VirtualNode::run) is awaited, and it returns when the node is shut down. The
//! library installs no tracing subscriber and handles no signal unless asked to.
//!
//! ```no_run
//! use faas_k8s::node::process::{ProcessBackend, ProcessBackendConfig};
//! use faas_k8s::node::{NodeConfig, VirtualNode};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let backend = ProcessBackend::new(ProcessBackendConfig::new("/var/lib/faas-vnode/vnode-1")).await?;
//! let config = NodeConfig::builder("vnode-1").pod_cidr("127.1.0.0/16").build()?;
//! VirtualNode::new(client, config, backend)
//!     .shutdown_on_signal()
//!     .run()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! The `faas-vnode` binary does the same from the command line (`--kubeconfig`, `--node-name`,
//! `--backend`, ...).
//!
//! # Traffic and scale
//!
//! The [`gateway`] is the one entry point of every function: OpenFaaS-compatible routes, routing
//! to ready endpoints from EndpointSlices, and an activator that holds calls for a function at
//! zero while it wakes. The [`autoscaler`] decides replicas from the gateway's in-flight and held
//! calls and from event sources' lag (Knative's stable and panic windows, KEDA-like lag inputs,
//! scale to zero after a grace period) and writes the scale subresource. The `faas-gateway`
//! binary runs both in one process.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `cli` | yes | the command-line programs (`faas-vnode`, `faas-gateway`): argument parsing and the tracing subscriber they install |

pub mod autoscaler;
pub mod error;
pub mod gateway;
pub mod node;

pub use error::{Error, Result};
