//! The JSON of OpenFaaS's provider API (`/system/*`), so tooling written for
//! OpenFaaS (faas-cli, its REST clients) works against the gateway unchanged.

use std::collections::BTreeMap;

use faas_core::{FunctionDeployment, FunctionStatus};
use serde::{Deserialize, Serialize};

/// CPU and memory of a function, as OpenFaaS writes them (`"128Mi"`, `"100m"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Resources {
    /// Memory, in Kubernetes quantity form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// CPU, in Kubernetes quantity form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
}

/// A function to deploy or update (`POST`/`PUT /system/functions`).
///
/// ```
/// use faas_k8s::gateway::openfaas::DeploymentRequest;
///
/// let request: DeploymentRequest = serde_json::from_str(
///     r#"{"service":"hello","image":"ghcr.io/acme/hello:1","namespace":"team-a",
///         "envVars":{"MODE":"fast"},"labels":{"tier":"web"}}"#,
/// ).unwrap();
/// let deployment = request.into_deployment("default");
/// assert_eq!(deployment.name, "hello");
/// assert_eq!(deployment.namespace.as_deref(), Some("team-a"));
/// assert_eq!(deployment.env["MODE"], "fast");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeploymentRequest {
    /// The function's name.
    pub service: String,
    /// The container image.
    pub image: String,
    /// The namespace; the gateway's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The process the watchdog forks (kept for compatibility, passed as `fprocess`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_process: Option<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<BTreeMap<String, String>>,
    /// Placement constraints (kept, not interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Vec<String>>,
    /// Secrets to mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resources>,
    /// Resource requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Resources>,
    /// Whether the root filesystem is read-only.
    #[serde(default)]
    pub read_only_root_filesystem: bool,
}

impl DeploymentRequest {
    /// The deployment a [`Provider`](faas_core::Provider) takes.
    pub fn into_deployment(self, default_namespace: &str) -> FunctionDeployment {
        let mut deployment = FunctionDeployment::new(self.service)
            .with_image(self.image)
            .with_namespace(
                self.namespace
                    .unwrap_or_else(|| default_namespace.to_owned()),
            );
        for (name, value) in self.env_vars.unwrap_or_default() {
            deployment = deployment.with_env(name, value);
        }
        if let Some(process) = self.env_process {
            deployment = deployment.with_env("fprocess", process);
        }
        for (name, value) in self.labels.unwrap_or_default() {
            deployment = deployment.with_label(name, value);
        }
        for (name, value) in self.annotations.unwrap_or_default() {
            deployment = deployment.with_annotation(name, value);
        }
        for secret in self.secrets.unwrap_or_default() {
            deployment = deployment.with_secret(secret);
        }
        deployment
    }
}

/// A deployed function (`GET /system/functions`, `GET /system/function/{name}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FunctionStatusResponse {
    /// The function's name.
    pub name: String,
    /// The container image.
    #[serde(default)]
    pub image: String,
    /// The namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The watchdog's process, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_process: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Calls answered.
    pub invocation_count: f64,
    /// Replicas wanted.
    pub replicas: u64,
    /// Replicas ready.
    pub available_replicas: u64,
}

impl FunctionStatusResponse {
    /// OpenFaaS's shape of `status`, with `invocations` answered through the gateway
    /// when that is more than the provider counted.
    pub fn from_status(status: FunctionStatus, invocations: u64) -> Self {
        let labels = (!status.labels.is_empty()).then_some(status.labels);
        let annotations = (!status.annotations.is_empty()).then_some(status.annotations);
        FunctionStatusResponse {
            name: status.name,
            image: status.image.unwrap_or_default(),
            namespace: status.namespace,
            env_process: None,
            labels,
            annotations,
            invocation_count: status.invocation_count.max(invocations) as f64,
            replicas: u64::from(status.replicas),
            available_replicas: u64::from(status.available_replicas),
        }
    }
}

/// `POST /system/scale-function/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ScaleRequest {
    /// The function (the path's name wins when they differ).
    #[serde(default)]
    pub service_name: String,
    /// The namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Replicas wanted.
    pub replicas: u64,
}

/// `DELETE /system/functions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeleteRequest {
    /// The function.
    pub function_name: String,
    /// The namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `GET /system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InfoResponse {
    /// The provider behind the gateway.
    pub provider: ProviderInfo,
    /// The gateway's version.
    pub version: VersionInfo,
    /// The machine architecture.
    pub arch: String,
    /// Where asynchronous calls wait: `memory` or `nats-jetstream`.
    #[serde(rename = "asyncQueue")]
    pub async_queue: String,
}

/// The provider part of [`InfoResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderInfo {
    /// The provider's name.
    pub provider: String,
    /// The orchestrator.
    pub orchestration: String,
    /// The provider's version.
    pub version: VersionInfo,
}

/// A version, OpenFaaS's way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VersionInfo {
    /// The release.
    pub release: String,
    /// The commit, when known.
    pub sha: String,
}

impl InfoResponse {
    /// This gateway's answer, with `async_queue` naming where async calls wait.
    pub fn current(async_queue: &str) -> Self {
        let version = VersionInfo {
            release: env!("CARGO_PKG_VERSION").to_owned(),
            sha: option_env!("FAAS_GIT_SHA").unwrap_or("unknown").to_owned(),
        };
        InfoResponse {
            provider: ProviderInfo {
                provider: "faas-k8s".to_owned(),
                orchestration: "kubernetes".to_owned(),
                version: version.clone(),
            },
            version,
            arch: std::env::consts::ARCH.to_owned(),
            async_queue: async_queue.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_in_openfaas_shape() {
        let status = FunctionStatus::new("hello")
            .with_image("img")
            .with_namespace("ns")
            .with_replicas(2, 1)
            .with_invocations(3, 0);
        let json = serde_json::to_value(FunctionStatusResponse::from_status(status, 7)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "hello", "image": "img", "namespace": "ns",
                "invocationCount": 7.0, "replicas": 2, "availableReplicas": 1,
            })
        );
    }

    #[test]
    fn deployment_with_env_process_and_secrets() {
        let request: DeploymentRequest = serde_json::from_value(serde_json::json!({
            "service": "f", "image": "i", "envProcess": "cat", "secrets": ["db"],
            "limits": {"memory": "128Mi"}, "readOnlyRootFilesystem": true,
        }))
        .unwrap();
        assert!(request.read_only_root_filesystem);
        let deployment = request.into_deployment("fns");
        assert_eq!(deployment.namespace.as_deref(), Some("fns"));
        assert_eq!(deployment.env["fprocess"], "cat");
        assert_eq!(deployment.secrets, ["db"]);
    }
}
