//! faas on Kubernetes.

pub mod node;
