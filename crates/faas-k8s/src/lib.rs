//! faas on Kubernetes.
