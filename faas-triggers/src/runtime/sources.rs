//! The event sources the registered functions declare (`TriggerSpec::Nats`,
//! `RedisStream`, `Postgres`, `Storage`, `Kube`), made into running triggers
//! from the runtime's settings.

use faas_core::{LocalExecutorBuilder, Registry, TriggerSpec};

#[cfg(feature = "kube")]
use super::config::ENV_KUBE_CHECKPOINT;
#[cfg(feature = "nats")]
use super::config::ENV_NATS_URL;
#[cfg(feature = "postgres")]
use super::config::ENV_POSTGRES_URL;
#[cfg(feature = "redis")]
use super::config::ENV_REDIS_URL;
use super::config::RuntimeConfig;
use crate::{Error, Result};

/// Adds to `builder` one trigger per event source a function of `registry`
/// declares, unless `config` turns the event sources off.
///
/// # Errors
///
/// [`Error::InvalidTrigger`] naming the function and the source: a variable
/// the source needs is not set (the inner [`Error::InvalidConfig`] names
/// it), a setting is malformed, or this build lacks the source's feature.
pub(crate) fn add_event_sources(
    mut builder: LocalExecutorBuilder,
    registry: &Registry,
    config: &RuntimeConfig,
) -> Result<LocalExecutorBuilder> {
    if !config.events() {
        return Ok(builder);
    }
    for function in registry.iter() {
        let name = function.name();
        for spec in &function.meta().triggers {
            let trigger: &'static str = match spec {
                TriggerSpec::Nats { .. } => "nats",
                TriggerSpec::RedisStream { .. } => "redis",
                TriggerSpec::Postgres { .. } => "postgres",
                TriggerSpec::Storage { .. } => "storage",
                TriggerSpec::Kube { .. } => "kube",
                _ => continue,
            };
            builder =
                add_one(builder, name, spec, config).map_err(|source| Error::InvalidTrigger {
                    function: name.to_owned(),
                    trigger,
                    source: Box::new(source),
                })?;
        }
    }
    Ok(builder)
}

/// The trigger of one declared source.
#[allow(unused_variables, unused_mut)]
fn add_one(
    mut builder: LocalExecutorBuilder,
    function: &str,
    spec: &TriggerSpec,
    config: &RuntimeConfig,
) -> Result<LocalExecutorBuilder> {
    match spec {
        #[cfg(feature = "nats")]
        TriggerSpec::Nats {
            stream,
            subject,
            consumer,
        } => {
            let url = needed(config, ENV_NATS_URL, "nats://127.0.0.1:4222")?;
            let mut settings = crate::nats::NatsTriggerConfig::new(
                url,
                stream,
                consumer.as_deref().unwrap_or(function),
            );
            if let Some(subject) = subject {
                settings = settings.with_filter_subject(subject);
            }
            Ok(builder.trigger(crate::nats::NatsTrigger::new(function, settings)?))
        }
        #[cfg(feature = "redis")]
        TriggerSpec::RedisStream { stream, group } => {
            let url = needed(config, ENV_REDIS_URL, "redis://127.0.0.1:6379")?;
            let settings = crate::redis::RedisStreamTriggerConfig::new(
                url,
                stream,
                group.as_deref().unwrap_or(function),
            );
            Ok(builder.trigger(crate::redis::RedisStreamTrigger::new(function, settings)?))
        }
        #[cfg(feature = "postgres")]
        TriggerSpec::Postgres { table } => {
            let url = needed(
                config,
                ENV_POSTGRES_URL,
                "postgres://user:password@127.0.0.1:5432/db",
            )?;
            let settings = crate::postgres::PostgresTriggerConfig::new(url, table);
            Ok(builder.trigger(crate::postgres::PostgresTrigger::new(function, settings)?))
        }
        #[cfg(feature = "storage")]
        TriggerSpec::Storage { dir } => {
            let mut path = std::path::PathBuf::from(dir);
            if path.is_relative()
                && let Some(root) = config.source_setting(super::config::ENV_STORAGE_ROOT)
            {
                path = std::path::Path::new(root).join(path);
            }
            let settings = crate::storage::StorageTriggerConfig::new(path);
            Ok(builder.trigger(crate::storage::StorageTrigger::new(function, settings)?))
        }
        #[cfg(feature = "kube")]
        TriggerSpec::Kube {
            api_version,
            object_kind,
            namespace,
            label_selector,
            field_selector,
        } => {
            let mut settings = crate::kube::KubeTriggerConfig::new(api_version, object_kind);
            if let Some(namespace) = namespace {
                settings = settings.with_namespace(namespace);
            }
            if let Some(selector) = label_selector {
                settings = settings.with_label_selector(selector);
            }
            if let Some(selector) = field_selector {
                settings = settings.with_field_selector(selector);
            }
            if let Some(store) = config.source_setting(ENV_KUBE_CHECKPOINT) {
                settings = settings.with_checkpoint(kube_checkpoint(store, function)?);
            }
            Ok(builder.trigger(crate::kube::KubeTrigger::new(function, settings)?))
        }
        other => Err(Error::InvalidConfig {
            key: format!("trigger {}", other.kind()),
            value: function.to_owned(),
            reason: format!(
                "this build of faas-triggers has no `{}` feature: enable it to run this source",
                other.kind()
            ),
        }),
    }
}

/// The value of `variable`, or an error naming it.
#[cfg(any(feature = "nats", feature = "redis", feature = "postgres"))]
fn needed<'a>(config: &'a RuntimeConfig, variable: &str, example: &str) -> Result<&'a str> {
    config
        .source_setting(variable)
        .ok_or_else(|| Error::InvalidConfig {
            key: variable.to_owned(),
            value: String::new(),
            reason: format!("not set: this source needs its server's address, e.g. {example}"),
        })
}

/// The checkpoint of `function`'s kube source from `FAAS_KUBE_CHECKPOINT`:
/// `file:/DIR/` (the file `DIR/<function>.json`), `configmap:NAMESPACE`
/// (the ConfigMap `<function>-kube-checkpoint`), or `memory`.
#[cfg(feature = "kube")]
fn kube_checkpoint(setting: &str, function: &str) -> Result<crate::kube::CheckpointStore> {
    use crate::kube::CheckpointStore;
    let setting = setting.trim();
    if let Some(dir) = setting.strip_prefix("file:").filter(|dir| !dir.is_empty()) {
        return Ok(CheckpointStore::File(
            std::path::Path::new(dir).join(format!("{function}.json")),
        ));
    }
    if let Some(namespace) = setting.strip_prefix("configmap:") {
        let name = format!(
            "{}-kube-checkpoint",
            super::manifests::kubernetes_name(function)
        );
        return CheckpointStore::parse(
            ENV_KUBE_CHECKPOINT,
            &format!("configmap:{namespace}/{name}"),
        );
    }
    CheckpointStore::parse(ENV_KUBE_CHECKPOINT, setting)
}

// The tests build every event source.
#[cfg(all(
    test,
    feature = "nats",
    feature = "redis",
    feature = "postgres",
    feature = "storage"
))]
mod tests {
    use faas_core::{FunctionDefinition, LocalExecutor};

    use super::*;

    async fn noop() {}

    fn error_of(result: Result<LocalExecutorBuilder>) -> Error {
        match result {
            Ok(_) => panic!("an error was expected"),
            Err(error) => error,
        }
    }

    fn registry(spec: TriggerSpec) -> Registry {
        Registry::from([FunctionDefinition::from_handler("react", noop).with_trigger(spec)])
    }

    #[test]
    fn a_missing_server_variable_is_named() {
        let config = RuntimeConfig::default();
        for (spec, variable) in [
            (TriggerSpec::nats("ORDERS"), "FAAS_NATS_URL"),
            (TriggerSpec::redis_stream("signups"), "FAAS_REDIS_URL"),
            (TriggerSpec::postgres("orders"), "FAAS_POSTGRES_URL"),
        ] {
            let registry = registry(spec);
            let error = error_of(add_event_sources(
                LocalExecutor::builder(registry.clone()),
                &registry,
                &config,
            ));
            let Error::InvalidTrigger {
                function, source, ..
            } = &error
            else {
                panic!("{error}");
            };
            assert_eq!(function, "react");
            assert!(source.to_string().contains(variable), "{source}");
        }
        // Turned off: nothing is needed.
        let registry = registry(TriggerSpec::nats("ORDERS"));
        let _builder = add_event_sources(
            LocalExecutor::builder(registry.clone()),
            &registry,
            &config.with_events(false),
        )
        .unwrap();
    }

    #[test]
    fn sources_are_built_from_the_settings() {
        let dir = std::env::temp_dir();
        let config = RuntimeConfig::default()
            .with_source_setting("FAAS_NATS_URL", "nats://127.0.0.1:4222")
            .unwrap()
            .with_source_setting("FAAS_STORAGE_ROOT", dir.display().to_string())
            .unwrap();
        let both = Registry::from([FunctionDefinition::from_handler("react", noop)
            .with_trigger(TriggerSpec::nats("ORDERS"))
            .with_trigger(TriggerSpec::storage("."))]);
        let _builder =
            add_event_sources(LocalExecutor::builder(both.clone()), &both, &config).unwrap();
        let bad = registry(TriggerSpec::Nats {
            stream: "A.B".into(),
            subject: None,
            consumer: None,
        });
        let error = error_of(add_event_sources(
            LocalExecutor::builder(bad.clone()),
            &bad,
            &config,
        ));
        assert!(format!("{error:?}").contains("nats.stream"), "{error:?}");
        assert!(
            RuntimeConfig::default()
                .with_source_setting("FAAS_NOPE", "x")
                .is_err()
        );
    }

    #[cfg(feature = "kube")]
    #[test]
    fn kube_checkpoints_are_one_per_function() {
        use crate::kube::CheckpointStore;
        assert_eq!(
            kube_checkpoint("file:/var/lib/faas", "audit").unwrap(),
            CheckpointStore::File("/var/lib/faas/audit.json".into())
        );
        assert_eq!(
            kube_checkpoint("configmap:shop", "audit_log").unwrap(),
            CheckpointStore::ConfigMap {
                namespace: "shop".into(),
                name: "audit-log-kube-checkpoint".into()
            }
        );
        assert!(kube_checkpoint("s3://bucket", "audit").is_err());
    }
}
