//! faas on Kubernetes.
//!
//! This crate is where faas meets a Kubernetes API server. It holds the **`Function` custom
//! resource** ([`function`]): what a person writes to have a function served on the cluster,
//! validated by the API server itself. It also holds the **virtual node**
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
//! # Running the function operator inside another operator
//!
//! The [`operator`] reconciles each `Function` into a Deployment and a Service. It is a value
//! too: [`FunctionController::run`](operator::FunctionController::run) runs it alone (with
//! leader election if asked), and [`stream`](operator::FunctionController::stream) hands the
//! kube-runtime controller's stream to a program that already runs controllers of its own, with
//! its own client and its own shutdown:
//!
//! ```no_run
//! use futures::StreamExt as _;
//! use faas_k8s::operator::{FunctionController, OperatorConfig, install_crd};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! install_crd(&client).await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let stop = shutdown.clone();
//! let functions = FunctionController::new(client.clone(), OperatorConfig::default())
//!     .stream(async move { stop.cancelled().await });
//! // Drive it beside the program's own controllers, e.g. with `futures::future::join`.
//! functions.for_each(|_| async {}).await;
//! # Ok(())
//! # }
//! ```
//!
//! [`provider::KubernetesProvider`] offers the same functions through faas-core's `Provider`
//! trait (deploy, scale, invoke, logs, ...), and `faasctl` is a command line over it.
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
//! | `cli` | no | the command-line programs (`faas-vnode`, `faas-operator`, `faasctl`, `faas-gateway`, and the `faasctl` and `operator::cli` modules): argument parsing, the spinner and YAML output, and the tracing subscriber they install |
//! | `nats` | no | durable asynchronous calls in the gateway ([`gateway::JetStreamQueue`]): a NATS JetStream stream and durable consumer instead of the in-memory queue |

pub mod autoscaler;
#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
#[cfg(feature = "cli")]
pub mod faasctl;
pub mod function;
pub mod gateway;
pub mod node;
pub mod operator;
pub mod provider;

pub use error::{Error, Result};
