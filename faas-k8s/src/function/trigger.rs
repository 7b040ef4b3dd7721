//! [`FunctionTrigger`]: what starts a function, as the `Function` resource writes it.
//!
//! Each trigger sets exactly one of `http`, `cron`, `queue` or `custom` (a CEL rule says so to
//! the API server); the shape converts to and from faas-core's [`TriggerSpec`].

use std::collections::BTreeMap;

use faas_core::TriggerSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One thing that starts a function: exactly one of its fields is set.
///
/// ```
/// use faas_core::TriggerSpec;
/// use faas_k8s::function::FunctionTrigger;
///
/// let trigger = FunctionTrigger::http("/hello");
/// assert_eq!(serde_json::to_value(&trigger).unwrap(), serde_json::json!({"http": {"path": "/hello"}}));
/// assert_eq!(TriggerSpec::try_from(trigger).unwrap(), TriggerSpec::http("/hello"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.http) ? 1 : 0) + (has(self.cron) ? 1 : 0) + (has(self.queue) ? 1 : 0) + (has(self.custom) ? 1 : 0) == 1",
    "message": "a trigger sets exactly one of http, cron, queue or custom"
}]))]
#[non_exhaustive]
pub struct FunctionTrigger {
    /// An HTTP route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTrigger>,
    /// A schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronTrigger>,
    /// A message queue subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueTrigger>,
    /// A trigger named and configured by key-value pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomTrigger>,
}

/// An HTTP route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HttpTrigger {
    /// The path, starting with `/`.
    #[schemars(length(min = 1, max = 1024))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.startsWith('/')",
        "message": "an HTTP trigger's path must start with /, for example /hello"
    }]))]
    pub path: String,
    /// The accepted methods; any when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// A schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CronTrigger {
    /// The cron expression (with seconds), e.g. `0 */5 * * * *`.
    #[schemars(length(min = 1))]
    pub schedule: String,
    /// An IANA time zone; UTC when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// A message queue subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QueueTrigger {
    /// The broker, e.g. `nats` or `redis`.
    #[schemars(length(min = 1))]
    pub source: String,
    /// The subject, stream or channel.
    #[schemars(length(min = 1))]
    pub subject: String,
}

/// A trigger named and configured by key-value pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CustomTrigger {
    /// The trigger's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Its settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

impl FunctionTrigger {
    /// An HTTP route for `path`, any method.
    pub fn http(path: impl Into<String>) -> Self {
        FunctionTrigger {
            http: Some(HttpTrigger {
                path: path.into(),
                methods: Vec::new(),
            }),
            ..Self::default()
        }
    }

    /// A schedule in UTC.
    pub fn cron(schedule: impl Into<String>) -> Self {
        FunctionTrigger {
            cron: Some(CronTrigger {
                schedule: schedule.into(),
                timezone: None,
            }),
            ..Self::default()
        }
    }

    /// A queue subscription.
    pub fn queue(source: impl Into<String>, subject: impl Into<String>) -> Self {
        FunctionTrigger {
            queue: Some(QueueTrigger {
                source: source.into(),
                subject: subject.into(),
            }),
            ..Self::default()
        }
    }
}

impl From<TriggerSpec> for FunctionTrigger {
    fn from(spec: TriggerSpec) -> Self {
        match spec {
            TriggerSpec::Http { path, methods } => FunctionTrigger {
                http: Some(HttpTrigger { path, methods }),
                ..Self::default()
            },
            TriggerSpec::Cron { schedule, timezone } => FunctionTrigger {
                cron: Some(CronTrigger { schedule, timezone }),
                ..Self::default()
            },
            TriggerSpec::Queue { source, subject } => FunctionTrigger::queue(source, subject),
            TriggerSpec::Custom { name, config } => FunctionTrigger {
                custom: Some(CustomTrigger { name, config }),
                ..Self::default()
            },
            // A kind this crate does not know yet travels as a custom trigger named after it.
            other => FunctionTrigger {
                custom: Some(CustomTrigger {
                    name: other.kind().to_owned(),
                    config: BTreeMap::new(),
                }),
                ..Self::default()
            },
        }
    }
}

/// A [`FunctionTrigger`] that sets none, or more than one, of its fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a trigger sets exactly one of http, cron, queue or custom; this one sets {set}")]
pub struct AmbiguousTrigger {
    /// How many fields were set.
    pub set: usize,
}

impl TryFrom<FunctionTrigger> for TriggerSpec {
    type Error = AmbiguousTrigger;

    fn try_from(trigger: FunctionTrigger) -> Result<Self, Self::Error> {
        let FunctionTrigger {
            http,
            cron,
            queue,
            custom,
        } = trigger;
        let set = [
            http.is_some(),
            cron.is_some(),
            queue.is_some(),
            custom.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count();
        if set != 1 {
            return Err(AmbiguousTrigger { set });
        }
        Ok(if let Some(HttpTrigger { path, methods }) = http {
            TriggerSpec::Http { path, methods }
        } else if let Some(CronTrigger { schedule, timezone }) = cron {
            TriggerSpec::Cron { schedule, timezone }
        } else if let Some(QueueTrigger { source, subject }) = queue {
            TriggerSpec::queue(source, subject)
        } else {
            let CustomTrigger { name, config } = custom.unwrap_or_default();
            TriggerSpec::Custom { name, config }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trigger_spec_round_trips() {
        let specs = [
            TriggerSpec::Http {
                path: "/a".into(),
                methods: vec!["POST".into()],
            },
            TriggerSpec::Cron {
                schedule: "@daily".into(),
                timezone: Some("Europe/Paris".into()),
            },
            TriggerSpec::queue("nats", "orders"),
            TriggerSpec::Custom {
                name: "s3".into(),
                config: BTreeMap::from([("bucket".into(), "in".into())]),
            },
        ];
        for spec in specs {
            let trigger = FunctionTrigger::from(spec.clone());
            assert_eq!(TriggerSpec::try_from(trigger).unwrap(), spec);
        }
    }

    #[test]
    fn a_trigger_with_two_kinds_is_refused() {
        let mut trigger = FunctionTrigger::http("/a");
        trigger.cron = FunctionTrigger::cron("@daily").cron;
        assert_eq!(TriggerSpec::try_from(trigger).unwrap_err().set, 2);
        assert_eq!(
            TriggerSpec::try_from(FunctionTrigger::default())
                .unwrap_err()
                .set,
            0
        );
    }
}
