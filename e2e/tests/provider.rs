//! The provider suite against the Kubernetes provider: the same steps `faas-core` runs against
//! the in-process provider, here on the real control plane, with the operator running under its
//! generated permissions and the function served by a virtual node. Also: a rolling update
//! loses no call.
//!
//! Needs `cargo xtask cluster up` (and root for the pods' network namespace).

use std::time::Duration;

use faas_core::provider::suite::{self, SuiteFixture};
use faas_core::{
    FunctionDefinition, FunctionDeployment, FunctionRef, Invocation, Provider, Registry,
};
use faas_e2e::TestCluster;
use faas_e2e::hosting::{
    FunctionNode, TestOperator, install_function_crd, operator_client, serial,
};
use faas_k8s::node::function::function_image;
use faas_k8s::provider::KubernetesProvider;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

fn registry() -> Registry {
    Registry::from([FunctionDefinition::from_handler("hello", hello)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_provider_passes_the_provider_suite() -> TestResult {
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let node = FunctionNode::start(&cluster, registry()).await?;
    let ns = cluster.namespace("provider").await?;
    let operator =
        TestOperator::for_namespace(operator_client(&cluster, &ns, "operator").await?, &ns);
    let provider = KubernetesProvider::from_config(cluster.config().clone())?;
    let fixture = SuiteFixture::new(
        ns.name(),
        FunctionDeployment::new("greeter").with_image(function_image("hello")),
    );
    suite::run(&provider, &fixture).await?;
    operator.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_loses_no_call() -> TestResult {
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let node = FunctionNode::start(&cluster, registry()).await?;
    let ns = cluster.namespace("rolling").await?;
    let operator =
        TestOperator::for_namespace(operator_client(&cluster, &ns, "operator").await?, &ns);
    let provider = KubernetesProvider::from_config(cluster.config().clone())?;
    let function = FunctionRef::new(ns.name(), "roller");
    let deployment = FunctionDeployment::new("roller")
        .with_namespace(ns.name())
        .with_image(function_image("hello"));
    provider.deploy(deployment.clone()).await?;
    provider
        .wait_ready(&function, Duration::from_secs(120))
        .await?;
    provider.update(deployment.with_env("VERSION", "2")).await?;
    // Calls all through the rollout: until the new generation is ready, and a bounded number.
    let mut calls = 0;
    let mut failures = Vec::new();
    loop {
        calls += 1;
        match provider.invoke(&function, Invocation::new("ada")).await {
            Ok(response) if response.body() == "hello, ada" => {}
            Ok(response) => failures.push(format!("answer {:?}", response.body())),
            Err(error) => failures.push(error.to_string()),
        }
        let status = provider.status(&function).await?;
        if status.is_ready() || calls >= 2000 {
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {failures:?}",
        failures.len()
    );
    let pods = ns
        .api::<k8s_openapi::api::core::v1::Pod>()
        .list(&kube::api::ListParams::default().labels("faas.rs/function=roller"))
        .await?;
    assert!(pods.items.iter().any(|pod| {
        pod.spec.as_ref().is_some_and(|spec| {
            spec.containers[0]
                .env
                .iter()
                .flatten()
                .any(|var| var.name == "VERSION")
        })
    }));
    operator.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}
