//! Kubernetes events: every ConfigMap labelled `faas.rs/audit=yes` that is
//! created, changed or deleted reaches the function, at least once, and a
//! restart resumes where the last run stopped.
//!
//! ```sh
//! cargo xtask cluster up && eval "$(cargo xtask cluster env)"
//! FAAS_KUBE_CHECKPOINT=file:target/kube-audit PORT=8081 \
//!     cargo run -p faas-examples --features events --example kube_audit
//! kubectl create configmap settings --from-literal=colour=blue
//! kubectl label configmap settings faas.rs/audit=yes
//! kubectl delete configmap settings
//! ```
//!
//! The function runtime (`faas_triggers::serve`) runs the `kube` source the
//! function declares: nothing is wired by hand. Run in a pod, it uses the
//! pod's service account, which needs `get`, `list` and `watch` on
//! `configmaps` (see `faas_triggers::kube`).

use std::error::Error;

use faas_core::{CloudEvent, Context, FunctionError, Registry, function, functions};

/// Logs one change; the event id (`UID:RESOURCEVERSION:CHANGE`) is the same
/// at every redelivery, so an audit log keyed by it holds each change once.
#[function(trigger = kube(api_version = "v1", kind = "ConfigMap", labels = "faas.rs/audit=yes"))]
async fn audit(event: CloudEvent, context: Context) -> Result<String, FunctionError> {
    let object: serde_json::Value = serde_json::from_slice(event.data.as_deref().unwrap_or(b"{}"))
        .map_err(|error| FunctionError::bad_input(error.to_string()))?;
    let change = event.ty.rsplit('.').next().unwrap_or_default().to_owned();
    tracing::info!(
        id = %event.id,
        %change,
        subject = event.subject.as_deref().unwrap_or_default(),
        data = %object["data"],
        attempt = context.attempt(),
        "audited"
    );
    Ok(format!("{change} {}", event.subject.unwrap_or_default()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().init();
    let registry = Registry::try_from_iter(functions![audit])?;
    faas_triggers::serve(registry).await?;
    Ok(())
}
