//! The `Function` resource and its operator on the real control plane and a virtual node: the
//! API server refuses bad specs, a Function becomes an owned Deployment and Service whose pods
//! run on the virtual node (with one status write on its way to Ready), drift is healed, a steady
//! Function causes no writes, a stalled rollout, a missing Secret and a refused write become
//! conditions, and two operators fail over through a Lease.
//!
//! Needs `cargo xtask cluster up` (and root for the pods' network namespace); without a control
//! plane every test fails saying so.

use std::time::Duration;

use faas_core::{FunctionDefinition, Registry};
use faas_e2e::hosting::{
    FunctionNode, TestOperator, install_function_crd, operator_client, serial,
    service_account_client, test_config, wait_function_pods_gone,
};
use faas_e2e::wait::{self, Poll};
use faas_e2e::{TestCluster, TestNamespace};
use faas_k8s::function::{FUNCTION_LABEL, Function, FunctionSpec, FunctionTrigger, Placement};
use faas_k8s::node::function::function_image;
use faas_k8s::operator::{FunctionController, LeaderElection, operator_rules};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

fn registry() -> Registry {
    Registry::from([FunctionDefinition::from_handler("hello", hello)])
}

fn hello_function(name: &str) -> Function {
    Function::new(
        name,
        FunctionSpec::new(function_image("hello"))
            .with_trigger(FunctionTrigger::http("/hello"))
            .with_placement(Placement::VirtualNode)
            .with_drain_timeout(Duration::from_secs(1)),
    )
}

/// The `Ready` condition's status and reason.
fn ready(function: &Function) -> Option<(String, String)> {
    let condition = function.status.as_ref()?.ready_condition()?;
    Some((condition.status.clone(), condition.reason.clone()))
}

async fn wait_reason(api: &Api<Function>, name: &str, reason: &str) -> Function {
    let want = reason.to_owned();
    wait::for_object(
        api,
        name,
        format!("Function {name} to report {reason}"),
        move |f| ready(f).is_some_and(|(_, r)| r == want),
    )
    .await
    .expect("the Function reaches the condition")
}

async fn wait_ready(api: &Api<Function>, name: &str, replicas: i32) -> Function {
    wait::for_object(
        api,
        name,
        format!("Function {name} Ready with {replicas} ready replica(s)"),
        move |f| {
            ready(f).is_some_and(|(status, _)| status == "True")
                && f.status.as_ref().and_then(|s| s.ready_replicas) == Some(replicas)
                && f.status.as_ref().and_then(|s| s.observed_generation) == f.metadata.generation
        },
    )
    .await
    .expect("the Function becomes Ready")
}

async fn create(api: &Api<Function>, function: &Function) -> Result<Function, kube::Error> {
    api.create(&PostParams::default(), function).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_refuses_bad_specs_with_a_readable_message() -> TestResult {
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let ns = cluster.namespace("fn-bad").await?;
    let api = ns.api::<Function>();
    let cases = [
        (json!({"image": "x", "replicas": -1}), "spec.replicas"),
        (
            json!({"image": "x", "scaling": {"min": 3, "max": 1}}),
            "scaling.min must not be greater than scaling.max",
        ),
        (
            json!({"image": "x", "scaling": {"scaleToZeroGrace": "soon"}}),
            "scaling.scaleToZeroGrace must be a duration such as 30s",
        ),
        (
            json!({"image": "x", "policy": {"deadline": "10"}}),
            "policy.deadline must be a duration",
        ),
        (
            json!({"image": "x", "triggers": [{"http": {"path": "hello"}}]}),
            "an HTTP trigger's path must start with /",
        ),
        (
            json!({"image": "x", "triggers": [{"http": {"path": "/a"}, "cron": {"schedule": "@daily"}}]}),
            "a trigger sets exactly one of http, cron, queue or custom",
        ),
        (json!({"replicas": 1}), "spec.image"),
    ];
    // Raw objects, as `kubectl apply` sends them: some of these the Rust type would refuse.
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client(),
        ns.name(),
        &kube::api::ApiResource::erase::<Function>(&()),
    );
    for (index, (spec, expected)) in cases.into_iter().enumerate() {
        let object: kube::api::DynamicObject = serde_json::from_value(json!({
            "apiVersion": "faas.rs/v1alpha1",
            "kind": "Function",
            "metadata": {"name": format!("bad-{index}")},
            "spec": spec,
        }))?;
        let error = raw
            .create(&PostParams::default(), &object)
            .await
            .expect_err("the API server refuses the spec");
        let kube::Error::Api(status) = error else {
            panic!("expected an API error, got {error:?}");
        };
        assert_eq!(status.code, 422, "{status:?}");
        assert!(
            status.message.contains(expected),
            "the refusal of {spec} says {:?}, not {expected:?}",
            status.message
        );
    }
    // A valid one is accepted, and so is what a function binary prints for `--manifests`.
    create(&api, &hello_function("good")).await?;
    let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)
        .with_trigger(faas_core::TriggerSpec::http("/hello"))
        .with_trigger(faas_core::TriggerSpec::cron("0 */5 * * * *"))]);
    let request = faas_triggers::manifests::ManifestRequest::default();
    for manifest in faas_triggers::manifests::function_manifests(&registry, &request) {
        let object: kube::api::DynamicObject = serde_json::from_value(manifest)?;
        raw.create(&PostParams::default(), &object).await?;
    }
    ns.delete().await?;
    Ok(())
}

async fn resource_versions(ns: &TestNamespace, name: &str) -> (String, String, String) {
    let rv = |meta: &kube::api::ObjectMeta| meta.resource_version.clone().unwrap_or_default();
    let function = ns.api::<Function>().get(name).await.expect("the Function");
    let deployment = ns
        .api::<Deployment>()
        .get(name)
        .await
        .expect("the Deployment");
    let service = ns.api::<Service>().get(name).await.expect("the Service");
    (
        rv(&function.metadata),
        rv(&deployment.metadata),
        rv(&service.metadata),
    )
}

/// The field managers of an object's own fields (not its status), with their operation.
fn spec_managers(metadata: &kube::api::ObjectMeta) -> Vec<(String, String)> {
    metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.subresource.as_deref().is_none_or(str::is_empty))
        .map(|entry| {
            (
                entry.manager.clone().unwrap_or_default(),
                entry.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

async fn wait_reconciles(operator: &TestOperator, above: u64) {
    wait::until(
        format!("the operator to reconcile more than {above} times"),
        || async {
            let seen = operator.stats().reconciles();
            Ok(if seen > above {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{seen} reconciles"))
            })
        },
    )
    .await
    .expect("the operator reconciles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_runs_on_the_virtual_node_heals_drift_and_idles_without_writes() -> TestResult {
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let node = FunctionNode::start(&cluster, registry()).await?;
    let ns = cluster.namespace("fn-life").await?;
    // A rollout that stalls for ten minutes is reported as Progressing; this one does not stall,
    // so its only status write is the Ready one (however slow the machine).
    let operator = TestOperator::start(FunctionController::new(
        operator_client(&cluster, &ns, "operator").await?,
        test_config(&ns).with_progress_report_delay(Duration::from_secs(600)),
    ));
    let api = ns.api::<Function>();
    let mut function = hello_function("hello");
    function.spec = function.spec.with_env("E2E_GREETING", "hi");
    let created = create(&api, &function).await?;
    let function = wait_ready(&api, "hello", 1).await;
    assert_eq!(
        (
            operator.stats().object_writes(),
            operator.stats().status_writes()
        ),
        (2, 1),
        "to Ready, a Function costs its Deployment, its Service and one status write"
    );
    let status = function.status.clone().unwrap_or_default();
    assert_eq!(status.selector.as_deref(), Some("faas.rs/function=hello"));
    assert!(
        status
            .url
            .as_deref()
            .is_some_and(|url| url.contains("hello"))
    );
    assert_eq!(status.replicas, Some(1));

    // Owned Deployment and Service, pods on the virtual node.
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let deployment = ns.api::<Deployment>().get("hello").await?;
    let service = ns.api::<Service>().get("hello").await?;
    for owners in [
        &deployment.metadata.owner_references,
        &service.metadata.owner_references,
    ] {
        let owner = &owners.as_ref().expect("owner references")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Function", uid.as_str())
        );
    }
    for entries in [
        spec_managers(&deployment.metadata),
        spec_managers(&service.metadata),
    ] {
        assert_eq!(
            entries,
            [("faas-operator".to_owned(), "Update".to_owned())],
            "the operator created the Deployment and the Service and nobody else wrote them"
        );
    }
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels(&format!("{FUNCTION_LABEL}=hello")))
        .await?;
    assert_eq!(pods.items.len(), 1);
    let pod = &pods.items[0];
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(node.name())
    );

    // Steady: reconciles happen, nothing is written.
    let before = resource_versions(&ns, "hello").await;
    let writes = (
        operator.stats().object_writes(),
        operator.stats().status_writes(),
    );
    for round in 0..2 {
        let seen = operator.stats().reconciles();
        api.patch(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"e2e/poke": round.to_string()}}})),
        )
        .await?;
        wait_reconciles(&operator, seen).await;
    }
    let after = resource_versions(&ns, "hello").await;
    assert_eq!(
        (before.1, before.2),
        (after.1.clone(), after.2.clone()),
        "the Deployment and Service were not written"
    );
    let function = api.get("hello").await?;
    assert_eq!(
        function.status.as_ref(),
        Some(&status),
        "the status was not rewritten"
    );
    assert_eq!(
        writes,
        (
            operator.stats().object_writes(),
            operator.stats().status_writes()
        ),
        "a steady Function causes no writes"
    );

    // A variable dropped from the Function leaves the Deployment: before its first apply over
    // the Deployment it created, the operator made its create's fields its applied fields, so
    // no other entry keeps the variable and nothing is owned twice.
    api.patch(
        "hello",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"env": null}})),
    )
    .await?;
    let deployment = wait::for_object(
        &ns.api::<Deployment>(),
        "hello",
        "the Deployment without the dropped variable",
        |d| {
            d.spec.template.spec.as_ref().is_some_and(|s| {
                !s.containers[0]
                    .env
                    .iter()
                    .flatten()
                    .any(|var| var.name == "E2E_GREETING")
            })
        },
    )
    .await?;
    let service = wait::for_object(
        &ns.api::<Service>(),
        "hello",
        "the Service applied for the new generation",
        |s| {
            spec_managers(&s.metadata)
                .iter()
                .any(|(_, operation)| operation == "Apply")
        },
    )
    .await?;
    for entries in [
        spec_managers(&deployment.metadata),
        spec_managers(&service.metadata),
    ] {
        assert_eq!(
            entries,
            [("faas-operator".to_owned(), "Apply".to_owned())],
            "one entry, the operator's apply, owns each object"
        );
    }
    assert_eq!(
        operator.stats().ownership_moves(),
        2,
        "the Deployment's and the Service's fields moved once each"
    );
    wait_ready(&api, "hello", 1).await;

    // Drift: an edited Deployment and a deleted Service come back as the Function says.
    ns.api::<Deployment>()
        .patch(
            "hello",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "function", "image": function_image("other")}
            ]}}}})),
        )
        .await?;
    ns.api::<Service>()
        .delete("hello", &DeleteParams::default())
        .await?;
    let image = function_image("hello");
    wait::for_object(
        &ns.api::<Deployment>(),
        "hello",
        "the Deployment's image to be healed",
        move |d| {
            d.spec
                .template
                .spec
                .as_ref()
                .is_some_and(|s| s.containers[0].image.as_deref() == Some(image.as_str()))
        },
    )
    .await?;
    wait::for_object(
        &ns.api::<Service>(),
        "hello",
        "the Service to come back",
        |_| true,
    )
    .await?;
    wait_ready(&api, "hello", 1).await;
    let events = ns.api::<Event>().list(&ListParams::default()).await?;
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Applied")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("hello")),
        "healing is recorded as an Event on the Function"
    );

    // Removal: the owned objects and pods go with the Function.
    api.delete("hello", &DeleteParams::default()).await?;
    wait::for_deletion(&ns.api::<Deployment>(), "hello").await?;
    wait::for_deletion(&ns.api::<Service>(), "hello").await?;
    wait_function_pods_gone(&ns, "hello").await?;
    node.wait_backend_pods(0).await?;
    assert!(!operator.is_finished());
    operator.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_stalls_is_reported_as_progressing_with_the_scheduler_s_reason() -> TestResult
{
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let ns = cluster.namespace("fn-stall").await?;
    let operator = TestOperator::start(FunctionController::new(
        operator_client(&cluster, &ns, "operator").await?,
        test_config(&ns).with_progress_report_delay(Duration::from_secs(1)),
    ));
    let api = ns.api::<Function>();
    let mut function = hello_function("enormous");
    // No node has this much CPU: the pod is never scheduled and the rollout stands still.
    function.spec = function.spec.with_resources(serde_json::from_value(json!({
        "requests": {"cpu": "4000"}
    }))?);
    create(&api, &function).await?;
    let waiting = wait::for_object(
        &api,
        "enormous",
        "the Function to say its pod is not scheduled",
        |f| {
            f.status
                .as_ref()
                .and_then(|s| s.ready_condition())
                .is_some_and(|c| c.reason == "Progressing" && c.message.contains("not scheduled"))
        },
    )
    .await?;
    let condition = waiting
        .status
        .as_ref()
        .and_then(|s| s.ready_condition())
        .cloned()
        .expect("a Ready condition");
    assert_eq!(condition.status, "False");
    assert!(
        condition.message.contains("0 of 1 replica(s) ready"),
        "{}",
        condition.message
    );
    operator.stop().await;
    ns.delete().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_a_condition_until_the_secret_exists() -> TestResult {
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let node = FunctionNode::start(&cluster, registry()).await?;
    let ns = cluster.namespace("fn-secret").await?;
    let operator =
        TestOperator::for_namespace(operator_client(&cluster, &ns, "operator").await?, &ns);
    let api = ns.api::<Function>();
    let mut function = hello_function("secretive");
    function.spec = function.spec.with_secret("creds");
    create(&api, &function).await?;
    let waiting = wait_reason(&api, "secretive", "SecretMissing").await;
    let condition = waiting
        .status
        .as_ref()
        .and_then(|s| s.ready_condition())
        .cloned()
        .expect("a Ready condition");
    assert_eq!(condition.status, "False");
    assert!(condition.message.contains("creds"), "{}", condition.message);
    let warning = ns.wait_event("SecretMissing", None).await?;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"TOKEN": "t0p"},
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    wait_ready(&api, "secretive", 1).await;
    operator.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_is_reported_on_the_function_and_not_retried_on_every_event() -> TestResult
{
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let node = FunctionNode::start(&cluster, registry()).await?;
    let ns = cluster.namespace("fn-rbac").await?;
    // The generated rules, less the right to write Services.
    let mut rules = operator_rules();
    for rule in &mut rules {
        if rule.resources.as_deref() == Some(&["services".to_owned()][..]) {
            rule.verbs
                .retain(|verb| verb != "create" && verb != "patch");
        }
    }
    let role = Role {
        metadata: kube::api::ObjectMeta {
            name: Some("partial-operator".into()),
            ..Default::default()
        },
        rules: Some(rules),
    };
    ns.api::<Role>()
        .create(&PostParams::default(), &role)
        .await?;
    let binding = RoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some("partial-operator".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "partial-operator".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "partial".into(),
            namespace: Some(ns.name().to_owned()),
            api_group: None,
        }]),
    };
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await?;
    let client = service_account_client(&cluster, &ns, "partial").await?;
    let operator = TestOperator::start(FunctionController::new(
        client,
        test_config(&ns).with_forbidden_retry(Duration::from_secs(3600)),
    ));
    let api = ns.api::<Function>();
    create(&api, &hello_function("refused")).await?;
    let function = wait_reason(&api, "refused", "Forbidden").await;
    let message = function
        .status
        .as_ref()
        .and_then(|s| s.ready_condition())
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.contains("Service") && message.contains("faas-operator rbac"),
        "{message}"
    );
    // The Deployment it may write runs; its pods' events reconcile the Function again and again,
    // yet the refused write is not tried again before the retry delay.
    wait::for_object(
        &ns.api::<Deployment>(),
        "refused",
        "the Deployment's replica to be ready",
        |d| d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1),
    )
    .await?;
    let seen = operator.stats().reconciles();
    api.patch(
        "refused",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"e2e/poke": "1"}}})),
    )
    .await?;
    wait_reconciles(&operator, seen).await;
    assert_eq!(
        operator.stats().forbidden(),
        1,
        "one refused write, not one per event"
    );
    assert_eq!(
        operator
            .stats()
            .failures
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "a refusal is a condition, not an error retried in a loop"
    );
    operator.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// Waits until operator `instance` holds the Lease.
async fn wait_for_leader(leases: &Api<Lease>, instance: &str) -> faas_e2e::Result<()> {
    wait::until(format!("operator {instance} to lead"), || async move {
        Ok(match lease_holder(leases).await {
            Some(holder) if holder == instance => Poll::Ready(()),
            other => Poll::Pending(format!("holder {other:?}")),
        })
    })
    .await
}

async fn lease_holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("faas-operator")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_operator_takes_over_when_the_leader_dies_without_duplicating_objects()
-> TestResult {
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let node = FunctionNode::start(&cluster, registry()).await?;
    let ns = cluster.namespace("fn-leader").await?;
    let client = operator_client(&cluster, &ns, "operator").await?;
    let election = |identity: &str| {
        LeaderElection::new(ns.name(), "faas-operator", identity)
            .with_lease_duration(Duration::from_secs(3))
    };
    let first = TestOperator::start(
        FunctionController::new(client.clone(), test_config(&ns).with_instance("first"))
            .with_leader_election(election("first")),
    );
    let leases = ns.api::<Lease>();
    wait_for_leader(&leases, "first").await?;
    let second = TestOperator::start(
        FunctionController::new(client, test_config(&ns).with_instance("second"))
            .with_leader_election(election("second")),
    );
    let api = ns.api::<Function>();
    create(&api, &hello_function("led")).await?;
    wait_ready(&api, "led", 1).await;
    assert_eq!(
        second.stats().reconciles(),
        0,
        "the standby does not reconcile"
    );

    // The leader dies without releasing the Lease: the standby takes over once it expires.
    first.kill();
    wait_for_leader(&leases, "second").await?;
    api.patch(
        "led",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await?;
    wait_ready(&api, "led", 2).await;
    assert!(second.stats().reconciles() > 0);
    let selector = ListParams::default().labels(&format!("{FUNCTION_LABEL}=led"));
    assert_eq!(ns.api::<Deployment>().list(&selector).await?.items.len(), 1);
    assert_eq!(ns.api::<Service>().list(&selector).await?.items.len(), 1);
    second.stop().await;
    assert_eq!(
        lease_holder(&leases).await,
        None,
        "a stopping leader releases the Lease"
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}
