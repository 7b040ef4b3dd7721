//! The function backend: pods whose image names a registered function are served in-process.
//!
//! A pod with the image `faas.dev/function/<name>` needs no process and no image: the node's own
//! process serves the function `<name>` of a [`Registry`](faas_core::Registry) on the pod's
//! address, through the HTTP trigger of `faas-triggers`. Serverless functions on a serverless
//! node, in one binary, at a few kilobytes per pod.
//!
//! [`FunctionBackend`] is the [`PodBackend`](crate::node::PodBackend);
//! [`FunctionBackendConfig`] sets it up. It shares pod addresses ([`AddressPool`]), change
//! notifications and the pod table with the [process backend](crate::node::process).
//!
//! [`AddressPool`]: crate::node::AddressPool

mod accept;
mod backend;
mod config;
mod image;
mod logs;
mod pod;

pub use backend::FunctionBackend;
pub use config::{DEFAULT_FUNCTION_PORT, DEFAULT_MAX_FUNCTION_PODS, FunctionBackendConfig};
pub use image::{FUNCTION_IMAGE_PREFIX, function_image, function_of_image};
