//! A pod's volumes, resolved as a kubelet resolves them: `emptyDir` (also `medium: Memory`),
//! `configMap`, `secret`, `downwardAPI` and `projected` (with the service account token), with
//! `items`, `defaultMode` and per-item `mode`. The backend puts the files where its containers
//! see them; anything else is a [`ConfigError`] naming the volume.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccountTokenProjection, Volume,
};

use super::backend::{VolumeFile, VolumeLaunch};
use super::env::{ConfigError, ConfigSource, EnvContext, field_value};

/// The mode of a projected file when neither the item nor the volume sets one (0644).
const DEFAULT_MODE: i32 = 0o644;
/// A service account token lives an hour unless the projection says otherwise.
const DEFAULT_TOKEN_SECONDS: i64 = 3600;

/// Every volume of the pod, with its files.
pub(crate) async fn resolve_volumes(
    ctx: &EnvContext<'_>,
    source: &dyn ConfigSource,
) -> Result<Vec<VolumeLaunch>, ConfigError> {
    let pod = ctx.pod;
    let mut out = Vec::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        out.push(
            resolve(ctx, pod, volume, source)
                .await
                .map_err(|e| ConfigError(format!("volume {:?}: {}", volume.name, e.0)))?,
        );
    }
    Ok(out)
}

async fn resolve(
    ctx: &EnvContext<'_>,
    pod: &Pod,
    volume: &Volume,
    source: &dyn ConfigSource,
) -> Result<VolumeLaunch, ConfigError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if let Some(empty) = &volume.empty_dir {
        let memory = empty.medium.as_deref() == Some("Memory");
        return Ok(VolumeLaunch::empty_dir(&volume.name, memory));
    }
    let mut files = Vec::new();
    if let Some(cm) = &volume.config_map {
        let mode = cm.default_mode.unwrap_or(DEFAULT_MODE);
        let found = source
            .config_map(namespace, &cm.name)
            .await
            .map_err(ConfigError)?;
        match found {
            Some(found) => config_map_files(&found, cm.items.as_deref(), mode, &mut files)?,
            None if cm.optional == Some(true) => {}
            None => return Err(ConfigError(format!("configmap {:?} not found", cm.name))),
        }
    } else if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let mode = secret.default_mode.unwrap_or(DEFAULT_MODE);
        match source.secret(namespace, &name).await.map_err(ConfigError)? {
            Some(found) => secret_files(&found, secret.items.as_deref(), mode, &mut files)?,
            None if secret.optional == Some(true) => {}
            None => return Err(ConfigError(format!("secret {name:?} not found"))),
        }
    } else if let Some(downward) = &volume.downward_api {
        let mode = downward.default_mode.unwrap_or(DEFAULT_MODE);
        downward_files(ctx, downward.items.as_deref(), mode, &mut files)?;
    } else if let Some(projected) = &volume.projected {
        let mode = projected.default_mode.unwrap_or(DEFAULT_MODE);
        for part in projected.sources.iter().flatten() {
            if let Some(cm) = &part.config_map {
                match source
                    .config_map(namespace, &cm.name)
                    .await
                    .map_err(ConfigError)?
                {
                    Some(found) => config_map_files(&found, cm.items.as_deref(), mode, &mut files)?,
                    None if cm.optional == Some(true) => {}
                    None => return Err(ConfigError(format!("configmap {:?} not found", cm.name))),
                }
            }
            if let Some(secret) = &part.secret {
                match source
                    .secret(namespace, &secret.name)
                    .await
                    .map_err(ConfigError)?
                {
                    Some(found) => secret_files(&found, secret.items.as_deref(), mode, &mut files)?,
                    None if secret.optional == Some(true) => {}
                    None => return Err(ConfigError(format!("secret {:?} not found", secret.name))),
                }
            }
            if let Some(downward) = &part.downward_api {
                downward_files(ctx, downward.items.as_deref(), mode, &mut files)?;
            }
            if let Some(token) = &part.service_account_token {
                files.push(token_file(pod, token, mode, source).await?);
            }
            if part.cluster_trust_bundle.is_some() || part.pod_certificate.is_some() {
                return Err(ConfigError(
                    "projected clusterTrustBundle and podCertificate sources are not supported by this node"
                        .to_owned(),
                ));
            }
        }
    } else {
        return Err(ConfigError(
            "only emptyDir, configMap, secret, downwardAPI and projected volumes are supported by \
             this node"
                .to_owned(),
        ));
    }
    Ok(VolumeLaunch::files(&volume.name, files))
}

fn pick<'a>(
    data: impl Iterator<Item = (&'a String, Vec<u8>)>,
    items: Option<&[KeyToPath]>,
    mode: i32,
    what: &str,
    out: &mut Vec<VolumeFile>,
) -> Result<(), ConfigError> {
    let data: BTreeMap<&String, Vec<u8>> = data.collect();
    match items {
        None => {
            for (key, value) in data {
                out.push(VolumeFile::new(key.clone(), value, mode));
            }
        }
        Some(items) => {
            for item in items {
                let value = data
                    .get(&item.key)
                    .ok_or_else(|| ConfigError(format!("{what} has no key {:?}", item.key)))?;
                out.push(VolumeFile::new(
                    item.path.clone(),
                    value.clone(),
                    item.mode.unwrap_or(mode),
                ));
            }
        }
    }
    Ok(())
}

fn config_map_files(
    cm: &ConfigMap,
    items: Option<&[KeyToPath]>,
    mode: i32,
    out: &mut Vec<VolumeFile>,
) -> Result<(), ConfigError> {
    let text = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.clone().into_bytes()));
    let binary = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.0.clone()));
    let name = cm.metadata.name.as_deref().unwrap_or_default();
    pick(
        text.chain(binary),
        items,
        mode,
        &format!("configmap {name:?}"),
        out,
    )
}

fn secret_files(
    secret: &Secret,
    items: Option<&[KeyToPath]>,
    mode: i32,
    out: &mut Vec<VolumeFile>,
) -> Result<(), ConfigError> {
    let data = secret.data.iter().flatten().map(|(k, v)| (k, v.0.clone()));
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    pick(data, items, mode, &format!("secret {name:?}"), out)
}

fn downward_files(
    ctx: &EnvContext<'_>,
    items: Option<&[DownwardAPIVolumeFile]>,
    mode: i32,
    out: &mut Vec<VolumeFile>,
) -> Result<(), ConfigError> {
    for item in items.into_iter().flatten() {
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (Some(field), _) => field_value(ctx, &field.field_path)?,
            (None, Some(_)) => {
                return Err(ConfigError(
                    "downwardAPI resourceFieldRef files are not supported by this node".to_owned(),
                ));
            }
            (None, None) => {
                return Err(ConfigError(format!("item {:?} names no field", item.path)));
            }
        };
        out.push(VolumeFile::new(
            item.path.clone(),
            value.into_bytes(),
            item.mode.unwrap_or(mode),
        ));
    }
    Ok(())
}

async fn token_file(
    pod: &Pod,
    projection: &ServiceAccountTokenProjection,
    mode: i32,
    source: &dyn ConfigSource,
) -> Result<VolumeFile, ConfigError> {
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned());
    let token = source
        .service_account_token(
            pod,
            &account,
            projection.audience.as_deref(),
            projection
                .expiration_seconds
                .unwrap_or(DEFAULT_TOKEN_SECONDS),
        )
        .await
        .map_err(ConfigError)?;
    Ok(VolumeFile::new(
        projection.path.clone(),
        token.into_bytes(),
        mode,
    ))
}
