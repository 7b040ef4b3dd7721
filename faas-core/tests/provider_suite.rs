//! The provider suite against [`LocalProvider`]; `faas-e2e`'s `provider` test runs the same
//! suite against the Kubernetes provider.

use std::time::Duration;

use faas_core::provider::suite::{self, SuiteFixture};
use faas_core::{FunctionDefinition, FunctionDeployment, LocalExecutor, LocalProvider, Registry};

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

#[tokio::test]
async fn the_local_provider_passes_the_provider_suite() {
    let catalogue = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
    let executor = LocalExecutor::new(Registry::new());
    let provider = LocalProvider::new(catalogue, executor.dispatcher()).with_namespace("suite");
    let fixture = SuiteFixture::new(
        "suite",
        FunctionDeployment::new("greeter").with_image("hello"),
    )
    .with_timeout(Duration::from_secs(10));
    suite::run(&provider, &fixture).await.unwrap();
}
