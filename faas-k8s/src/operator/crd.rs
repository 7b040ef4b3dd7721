//! Installing the `Function` CustomResourceDefinition.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, CustomResourceExt as _};

use super::config::FIELD_MANAGER;
use crate::error::{Error, Result};
use crate::function::Function;

/// How long [`install_crd`] waits for the API server to serve the resource.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Applies the `Function` CustomResourceDefinition (server-side, so it also upgrades an older
/// one) and waits until the API server serves it.
///
/// # Errors
///
/// [`Error::Kube`] when the API server refuses it, [`Error::InvalidConfig`] when it is not
/// established within a minute.
pub async fn install_crd(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Function::crd();
    let name = crd.metadata.name.clone().unwrap_or_default();
    crds.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .map_err(|e| Error::kube(format!("applying CustomResourceDefinition {name}"), e))?;
    let established = await_condition(crds, &name, conditions::is_crd_established());
    match tokio::time::timeout(ESTABLISH_TIMEOUT, established).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::InvalidConfig(format!(
            "waiting for CustomResourceDefinition {name}: {e}"
        ))),
        Err(_) => Err(Error::InvalidConfig(format!(
            "CustomResourceDefinition {name} was not established within {}s",
            ESTABLISH_TIMEOUT.as_secs()
        ))),
    }
}
