//! The control plane that `cargo xtask cluster up` runs behaves like a real
//! cluster: these tests prove the harness and the cluster, not faas.

use std::collections::BTreeMap;
use std::fmt::Debug;

use faas_e2e::wait::{self, Poll};
use faas_e2e::{E2E_LABEL, Result, TestCluster};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use kube::{Api, CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A label no node carries: keeps pods Pending even when a (tainted or
/// not) virtual node of another test is registered in the same cluster.
const NO_SUCH_NODE: (&str, &str) = ("faas.dev/e2e-no-such-node", "true");

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn assert_forbidden<T: Debug>(result: kube::Result<T>, what: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn a_test_namespace_is_active_with_its_service_account_and_root_ca() -> Result<()> {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("namespace").await?;

    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let created = namespaces.get(ns.name()).await?;
    assert_eq!(
        created.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
    assert_eq!(
        created.metadata.labels.unwrap_or_default()[E2E_LABEL],
        "true"
    );

    // The root-CA publisher hands every namespace the cluster CA.
    let root_ca = wait::for_object(
        &ns.api::<ConfigMap>(),
        "kube-root-ca.crt",
        "the kube-root-ca.crt ConfigMap",
        |cm: &ConfigMap| cm.data.as_ref().is_some_and(|d| d.contains_key("ca.crt")),
    )
    .await?;
    let published = &root_ca.data.unwrap_or_default()["ca.crt"];
    if let Ok(ca) = std::fs::read_to_string(&cluster.paths().pki.ca_cert) {
        assert_eq!(
            published.trim(),
            ca.trim(),
            "kube-root-ca.crt is the cluster CA"
        );
    }

    // The namespace controller empties and removes a deleted namespace.
    let name = ns.name().to_owned();
    ns.delete().await?;
    assert!(namespaces.get_opt(&name).await?.is_none());
    Ok(())
}

fn web_deployment(replicas: i32) -> Deployment {
    let app = labels(&[("app", "web")]);
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(app.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: Some("registry.invalid/faas/web:1".into()),
                        ..Container::default()
                    }],
                    node_selector: Some(labels(&[NO_SUCH_NODE])),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

fn owned_by<K: Resource>(object: &K, owner_uid: &str) -> bool {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.uid == owner_uid && owner.controller == Some(true))
}

fn unschedulable(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
}

#[tokio::test]
async fn a_deployment_gets_a_replicaset_and_pods_that_stay_pending_without_a_node() -> Result<()> {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("deployment").await?;
    let deployments = ns.api::<Deployment>();
    let replica_sets = ns.api::<ReplicaSet>();
    let pods = ns.api::<Pod>();

    let deployment = deployments
        .create(&PostParams::default(), &web_deployment(2))
        .await?;
    let deployment_uid = deployment.uid().expect("created objects have a uid");

    // The deployment controller makes a ReplicaSet it controls ...
    let replica_set = wait::until("a ReplicaSet controlled by deployment web", || async {
        let list = replica_sets.list(&ListParams::default()).await?;
        Ok(
            match list
                .items
                .into_iter()
                .find(|rs| owned_by(rs, &deployment_uid))
            {
                Some(rs) => Poll::Ready(rs),
                None => Poll::Pending("no ReplicaSet yet".into()),
            },
        )
    })
    .await?;
    assert_eq!(replica_set.spec.replicas, Some(2));
    let replica_set_uid = replica_set.uid().expect("uid");

    // ... the ReplicaSet controller makes the pods, and the scheduler finds
    // no node for them: they stay Pending, unbound.
    let pending = wait::until("two pods the scheduler found no node for", || async {
        let list = pods.list(&ListParams::default().labels("app=web")).await?;
        let mine: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|pod| owned_by(pod, &replica_set_uid))
            .collect();
        let judged = mine.iter().filter(|pod| unschedulable(pod)).count();
        Ok(if mine.len() == 2 && judged == 2 {
            Poll::Ready(mine)
        } else {
            Poll::Pending(format!(
                "{} pods, {judged} marked Unschedulable",
                mine.len()
            ))
        })
    })
    .await?;
    for pod in &pending {
        let spec = pod.spec.as_ref().expect("pods have a spec");
        assert_eq!(spec.node_name, None, "{} must not be bound", pod.name_any());
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        assert_eq!(phase, Some("Pending"));
        assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    }

    // The deployment's status counts them as unavailable.
    wait::for_object(
        &deployments,
        "web",
        "deployment web to report 2 replicas, 2 unavailable",
        |d: &Deployment| {
            d.status
                .as_ref()
                .is_some_and(|s| s.replicas == Some(2) && s.unavailable_replicas == Some(2))
        },
    )
    .await?;

    // Foreground deletion: the garbage collector removes the ReplicaSet and
    // its pods before the Deployment itself goes.
    deployments
        .delete("web", &DeleteParams::foreground())
        .await?;
    wait::for_deletion(&deployments, "web").await?;
    assert!(
        replica_sets
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    let left = pods.list(&ListParams::default()).await?.items;
    assert!(
        left.iter()
            .all(|pod| pod.metadata.deletion_timestamp.is_some()),
        "pods left behind: {:?}",
        left.iter().map(ResourceExt::name_any).collect::<Vec<_>>()
    );
    Ok(())
}

/// A custom resource defined only for this test. Its schema comes from the
/// derive; the test serves it under an API group of its own, so runs that
/// share a cluster never step on each other's definition.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "harness.e2e.faas.dev",
    version = "v1",
    kind = "Widget",
    namespaced
)]
struct WidgetSpec {
    size: u32,
    color: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

fn established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Established" && c.status == "True")
}

fn widget_spec(object: &DynamicObject) -> WidgetSpec {
    serde_json::from_value(object.data["spec"].clone()).expect("a Widget's spec")
}

#[tokio::test]
async fn a_custom_resource_round_trips_with_server_side_apply() -> Result<()> {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("crd").await?;
    let group = format!("{}.e2e.faas.dev", ns.name());
    let mut crd = Widget::crd();
    crd.spec.group.clone_from(&group);
    crd.metadata.name = Some(format!("{}.{group}", crd.spec.names.plural));
    let crd_name = crd.name_any();
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client());
    let manager = PatchParams::apply("faas-e2e").force();
    crds.patch(&crd_name, &manager, &Patch::Apply(&crd)).await?;
    wait::for_object(
        &crds,
        &crd_name,
        "the Widget CRD to be established",
        established,
    )
    .await?;

    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(cluster.client(), ns.name(), &resource);
    let api_version = resource.api_version.clone();
    let apply = |spec: serde_json::Value| {
        serde_json::json!({
            "apiVersion": api_version,
            "kind": "Widget",
            "metadata": { "name": "first" },
            "spec": spec,
        })
    };
    let desired = WidgetSpec {
        size: 3,
        color: "blue".into(),
        note: None,
    };
    let first = apply(serde_json::to_value(&desired).expect("a spec serializes"));
    // The new resource may be established a moment before it is served.
    let applied = wait::until("the first server-side apply of a Widget", || async {
        Ok(Poll::Ready(
            widgets
                .patch("first", &manager, &Patch::Apply(&first))
                .await?,
        ))
    })
    .await?;
    assert_eq!(widget_spec(&applied), desired);
    let fetched = widgets.get("first").await?;
    assert_eq!(widget_spec(&fetched), desired);
    assert!(
        fetched
            .managed_fields()
            .iter()
            .any(|f| f.manager.as_deref() == Some("faas-e2e")
                && f.operation.as_deref() == Some("Apply")),
        "faas-e2e must own the fields it applied: {:?}",
        fetched.managed_fields()
    );

    // A second manager applies only the field it owns; the rest stays.
    let other = PatchParams::apply("faas-e2e-other");
    let note = apply(serde_json::json!({ "note": "owned by another manager" }));
    let merged = widget_spec(&widgets.patch("first", &other, &Patch::Apply(&note)).await?);
    assert_eq!(
        merged,
        WidgetSpec {
            note: Some("owned by another manager".into()),
            ..desired
        }
    );

    // Taking over a field another manager owns is a conflict unless forced.
    let takeover = apply(serde_json::json!({ "size": 5 }));
    match widgets
        .patch("first", &other, &Patch::Apply(&takeover))
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409, "{status:?}"),
        other => panic!("expected a 409 conflict, got {other:?}"),
    }
    let forced = PatchParams::apply("faas-e2e-other").force();
    let taken = widgets
        .patch("first", &forced, &Patch::Apply(&takeover))
        .await?;
    assert_eq!(widget_spec(&taken).size, 5);
    assert!(taken.metadata.generation > fetched.metadata.generation);

    widgets.delete("first", &DeleteParams::default()).await?;
    wait::for_deletion(&widgets, "first").await?;
    crds.delete(&crd_name, &DeleteParams::default()).await?;
    wait::for_deletion(&crds, &crd_name).await?;
    Ok(())
}

#[tokio::test]
async fn the_restricted_identity_is_refused_beyond_what_a_role_grants() -> Result<()> {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("rbac").await?;
    let restricted = cluster.restricted_client().await?;
    let user = cluster.restricted_user();

    // It is who the kubeconfig says, and no admin.
    let reviews: Api<SelfSubjectReview> = Api::all(restricted.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let info = review
        .status
        .and_then(|s| s.user_info)
        .expect("a SelfSubjectReview says who asked");
    assert_eq!(info.username.as_deref(), Some(user.as_str()));
    let groups = info.groups.unwrap_or_default();
    assert!(
        groups.iter().any(|g| g == "system:authenticated"),
        "{groups:?}"
    );
    assert!(!groups.iter().any(|g| g == "system:masters"), "{groups:?}");

    // Refused everywhere before any grant.
    let pods: Api<Pod> = Api::namespaced(restricted.clone(), ns.name());
    assert_forbidden(pods.list(&ListParams::default()).await, "list pods");
    let namespaces: Api<Namespace> = Api::all(restricted.clone());
    assert_forbidden(
        namespaces
            .create(&PostParams::default(), &Namespace::default())
            .await,
        "create a namespace",
    );
    let system: Api<ConfigMap> = Api::namespaced(restricted.clone(), "kube-system");
    assert_forbidden(
        system.list(&ListParams::default()).await,
        "list kube-system",
    );

    // An admin grants reading pods in the test namespace only.
    let role = Role {
        metadata: ObjectMeta {
            name: Some("pod-reader".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".into()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
    };
    ns.api::<Role>()
        .create(&PostParams::default(), &role)
        .await?;
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("pod-reader".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "pod-reader".into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: user.clone(),
            ..Subject::default()
        }]),
    };
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await?;

    // The authorizer learns of the binding through its informers.
    wait::until(
        "the restricted identity to be allowed to list pods",
        || async {
            Ok(match pods.list(&ListParams::default()).await {
                Ok(_) => Poll::Ready(()),
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    Poll::Pending("still forbidden".into())
                }
                Err(other) => return Err(other.into()),
            })
        },
    )
    .await?;

    // Nothing beyond the grant.
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some("not-allowed".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("registry.invalid/c:1".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    assert_forbidden(
        pods.create(&PostParams::default(), &pod).await,
        "create a pod",
    );
    let elsewhere: Api<Pod> = Api::namespaced(restricted.clone(), "default");
    assert_forbidden(
        elsewhere.list(&ListParams::default()).await,
        "list pods in another namespace",
    );
    let roles: Api<Role> = Api::namespaced(restricted, ns.name());
    assert_forbidden(
        roles.delete("pod-reader", &DeleteParams::default()).await,
        "delete its own Role",
    );
    Ok(())
}
