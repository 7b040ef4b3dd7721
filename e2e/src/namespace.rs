//! One namespace per test, deleted when the test ends.

use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client, Resource};

use crate::Result;
use crate::cluster::TestCluster;
use crate::wait::{self, Poll};

/// The label every test namespace carries, so leftovers can be found:
/// `kubectl get ns -l faas.dev/e2e`.
pub const E2E_LABEL: &str = "faas.dev/e2e";

/// A namespace with a unique name for one test. Dropping it deletes the
/// namespace (and so everything in it) in the background, also when the
/// test panicked; `FAAS_E2E_KEEP_NAMESPACES=1` keeps it for debugging.
pub struct TestNamespace {
    name: String,
    client: Client,
    config: kube::Config,
    deleted: bool,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestNamespace {
    /// Creates `e2e-<prefix>-<random>` and waits until its default
    /// ServiceAccount exists, so pods can be created in it at once.
    pub async fn create(cluster: &TestCluster, prefix: &str) -> Result<Self> {
        let name = unique_name(prefix);
        let namespaces: Api<Namespace> = Api::all(cluster.client());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(E2E_LABEL.to_owned(), "true".to_owned())])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await?;
        let created = Self {
            name,
            client: cluster.client(),
            config: cluster.config().clone(),
            deleted: false,
        };
        let accounts = created.api::<ServiceAccount>();
        wait::until(
            format_args!("the default ServiceAccount of namespace {}", created.name),
            || async {
                Ok(match accounts.get_opt("default").await? {
                    Some(_) => Poll::Ready(()),
                    None => Poll::Pending("no default ServiceAccount yet".into()),
                })
            },
        )
        .await?;
        Ok(created)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An admin [`Api`] for namespaced objects of kind `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Waits for an Event of this namespace with `reason`, about the object named `regarding`
    /// when one is given, and returns it.
    pub async fn wait_event(&self, reason: &str, regarding: Option<&str>) -> Result<Event> {
        let events = self.api::<Event>();
        let what = match regarding {
            Some(name) => format!("a {reason} Event about {name}"),
            None => format!("a {reason} Event"),
        };
        wait::until(what, || {
            let events = events.clone();
            async move {
                let found = events
                    .list(&Default::default())
                    .await?
                    .items
                    .into_iter()
                    .find(|e| {
                        e.reason.as_deref() == Some(reason)
                            && regarding.is_none_or(|name| {
                                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                            })
                    });
                Ok(match found {
                    Some(event) => Poll::Ready(event),
                    None => Poll::Pending("no such Event yet".to_owned()),
                })
            }
        })
        .await
    }

    /// Deletes the namespace now and waits until it is gone.
    pub async fn delete(mut self) -> Result<()> {
        self.deleted = true;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .delete(&self.name, &DeleteParams::background())
            .await?;
        wait::for_deletion(&namespaces, &self.name).await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted || std::env::var_os("FAAS_E2E_KEEP_NAMESPACES").is_some_and(|v| v == "1") {
            return;
        }
        // Drop cannot await, and the test's runtime may be blocked right
        // here: delete from a thread with its own runtime and client.
        let name = self.name.clone();
        let config = self.config.clone();
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let client = Client::try_from(config).map_err(std::io::Error::other)?;
                let namespaces: Api<Namespace> = Api::all(client);
                namespaces
                    .delete(&name, &DeleteParams::background())
                    .await
                    .map(|_| ())
                    .map_err(std::io::Error::other)
            })
        })
        .join();
        if let Ok(Err(err)) = deleted {
            eprintln!("cannot delete test namespace {}: {err}", self.name);
        }
    }
}

/// `e2e-<prefix>-<8 random hex>`, cut to a valid namespace name.
fn unique_name(prefix: &str) -> String {
    let clean: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-');
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut name = format!("e2e-{clean}");
    name.truncate(63 - 1 - suffix.len());
    format!("{}-{suffix}", name.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_valid_dns_labels() {
        let a = unique_name("Deployment_Pods");
        let b = unique_name("Deployment_Pods");
        assert_ne!(a, b);
        assert!(a.starts_with("e2e-deployment-pods-"), "{a}");
        let long = unique_name(&"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
        assert!(
            long.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
