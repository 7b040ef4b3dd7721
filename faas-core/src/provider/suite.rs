//! One test suite for every [`Provider`]: the same steps, run against [`LocalProvider`]
//! in-process and against `faas-k8s`'s `KubernetesProvider` on a cluster, so the two cannot
//! drift apart.
//!
//! [`run`] deploys a function that answers `hello, <body>`, waits until it is ready, calls it,
//! lists it, reads its log, scales it up, down to zero and back, updates it, and removes it,
//! checking on the way that unknown functions and duplicate deployments fail with the same
//! [`ProviderError`] variants everywhere. It returns the first step that did not hold.
//!
//! [`LocalProvider`]: super::LocalProvider
//!
//! ```
//! use faas_core::provider::suite::{self, SuiteFixture};
//! use faas_core::{Dispatcher, FunctionDefinition, FunctionDeployment, LocalProvider, Registry};
//!
//! async fn hello(name: String) -> String { format!("hello, {name}") }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let catalogue = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
//! let provider = LocalProvider::new(catalogue, Dispatcher::new(Registry::new()));
//! let fixture = SuiteFixture::new("default", FunctionDeployment::new("greeter").with_image("hello"));
//! suite::run(&provider, &fixture).await.unwrap();
//! # });
//! ```

use std::fmt;
use std::time::Duration;

use futures::StreamExt as _;

use super::{FunctionDeployment, FunctionRef, FunctionStatus, Provider, ProviderError};
use crate::error::ErrorKind;
use crate::invocation::Invocation;
use crate::logs::LogQuery;

/// What the suite deploys, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SuiteFixture {
    /// The namespace to deploy into.
    pub namespace: String,
    /// A deployment of a function that answers `hello, <body>` (its namespace is set to
    /// [`namespace`](Self::namespace)).
    pub hello: FunctionDeployment,
    /// How long any one wait may take.
    pub timeout: Duration,
}

impl SuiteFixture {
    /// The suite for `hello` in `namespace`, waiting at most 120 s at each step.
    pub fn new(namespace: impl Into<String>, hello: FunctionDeployment) -> Self {
        let namespace = namespace.into();
        SuiteFixture {
            hello: hello.with_namespace(namespace.clone()),
            namespace,
            timeout: Duration::from_secs(120),
        }
    }

    /// Sets how long any one wait may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A step of the suite that did not hold.
#[derive(Debug)]
pub struct SuiteFailure {
    /// What the step checked.
    pub step: &'static str,
    /// What happened instead.
    pub found: String,
}

impl fmt::Display for SuiteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider suite, step `{}`: {}", self.step, self.found)
    }
}

impl std::error::Error for SuiteFailure {}

fn fail(step: &'static str, found: impl fmt::Debug) -> SuiteFailure {
    SuiteFailure {
        step,
        found: format!("{found:?}"),
    }
}

fn check(step: &'static str, holds: bool, found: impl fmt::Debug) -> Result<(), SuiteFailure> {
    if holds {
        Ok(())
    } else {
        Err(fail(step, found))
    }
}

/// Watches `function` until `condition` holds for its status.
async fn wait_for<P: Provider + ?Sized>(
    provider: &P,
    function: &FunctionRef,
    step: &'static str,
    timeout: Duration,
    condition: impl Fn(&FunctionStatus) -> bool,
) -> Result<FunctionStatus, SuiteFailure> {
    let mut statuses = provider.watch(function).await;
    let mut last = None;
    let waited = tokio::time::timeout(timeout, async {
        while let Some(next) = statuses.next().await {
            match next {
                Ok(status) if condition(&status) => return Ok(status),
                Ok(status) => last = Some(status),
                Err(error) => return Err(fail(step, error)),
            }
        }
        Err(fail(step, "the status stream ended"))
    })
    .await;
    match waited {
        Ok(result) => result,
        Err(_) => Err(fail(step, format!("timed out; last status {last:?}"))),
    }
}

/// Runs the suite; see the [module](self) documentation.
///
/// # Errors
///
/// The first step that did not hold.
pub async fn run<P: Provider + ?Sized>(
    provider: &P,
    fixture: &SuiteFixture,
) -> Result<(), SuiteFailure> {
    let timeout = fixture.timeout;
    let function = fixture.hello.reference();
    let ghost = FunctionRef::new(&fixture.namespace, "no-such-function");

    // Unknown functions fail the same way everywhere.
    let status = provider.status(&ghost).await;
    check(
        "status of an unknown function is NotFound",
        matches!(status, Err(ProviderError::NotFound { .. })),
        &status,
    )?;
    let scaled = provider.scale(&ghost, 1).await;
    check(
        "scaling an unknown function is NotFound",
        matches!(scaled, Err(ProviderError::NotFound { .. })),
        &scaled,
    )?;
    let removed = provider.remove(&ghost).await;
    check(
        "removing an unknown function is NotFound",
        matches!(removed, Err(ProviderError::NotFound { .. })),
        &removed,
    )?;
    let invoked = provider.invoke(&ghost, Invocation::new("x")).await;
    check(
        "calling an unknown function is a not-found call error",
        invoked
            .as_ref()
            .is_err_and(|error| error.kind() == ErrorKind::NotFound),
        invoked.as_ref().map(|r| r.status()),
    )?;
    let first_log = provider.logs(&ghost, LogQuery::new()).await.next().await;
    check(
        "the log of an unknown function is one NotFound",
        matches!(first_log, Some(Err(ProviderError::NotFound { .. }))),
        &first_log,
    )?;

    // Deploy, wait, call.
    provider
        .deploy(fixture.hello.clone())
        .await
        .map_err(|e| fail("deploy", e))?;
    let ready = provider
        .wait_ready(&function, timeout)
        .await
        .map_err(|e| fail("the deployed function becomes ready", e))?;
    check(
        "the status names the function",
        ready.name == function.name
            && ready.namespace.as_deref() == Some(function.namespace.as_str())
            && ready.replicas >= 1,
        &ready,
    )?;
    let again = provider.deploy(fixture.hello.clone()).await;
    check(
        "deploying it again is a Conflict",
        matches!(again, Err(ProviderError::Conflict { .. })),
        &again,
    )?;
    let response = provider
        .invoke(&function, Invocation::new("ada"))
        .await
        .map_err(|e| fail("calling the function", e))?;
    check(
        "the function answers",
        response.body() == "hello, ada",
        response.body(),
    )?;

    // List, in its namespace and not in another.
    let listed = provider
        .list(Some(&fixture.namespace))
        .await
        .map_err(|e| fail("list", e))?;
    check(
        "the namespace's list holds the function",
        listed.iter().any(|status| status.name == function.name),
        &listed,
    )?;
    let elsewhere = provider
        .list(Some("faas-suite-elsewhere"))
        .await
        .map_err(|e| fail("list another namespace", e))?;
    check(
        "another namespace's list does not",
        !elsewhere.iter().any(|status| status.name == function.name),
        &elsewhere,
    )?;

    // Its log has lines, and a tail of one has one.
    let lines: Vec<_> = provider
        .logs(&function, LogQuery::new())
        .await
        .collect()
        .await;
    check(
        "the log holds lines and no error",
        !lines.is_empty() && lines.iter().all(Result::is_ok),
        &lines,
    )?;
    let tail: Vec<_> = provider
        .logs(&function, LogQuery::new().with_tail(1))
        .await
        .collect()
        .await;
    check("a tail of one is one line", tail.len() == 1, &tail)?;

    // Scale up, to zero, and back.
    provider
        .scale(&function, 3)
        .await
        .map_err(|e| fail("scale to 3", e))?;
    wait_for(provider, &function, "three replicas ready", timeout, |s| {
        s.replicas == 3 && s.available_replicas == 3 && s.is_ready()
    })
    .await?;
    provider
        .scale(&function, 0)
        .await
        .map_err(|e| fail("scale to 0", e))?;
    wait_for(provider, &function, "scaled to zero", timeout, |s| {
        s.replicas == 0 && s.available_replicas == 0 && !s.is_ready()
    })
    .await?;
    let at_zero = provider.invoke(&function, Invocation::new("x")).await;
    check(
        "a call at zero replicas is Unavailable",
        at_zero
            .as_ref()
            .is_err_and(|error| error.kind() == ErrorKind::Unavailable),
        at_zero.as_ref().map(|r| r.status()),
    )?;
    provider
        .scale(&function, 1)
        .await
        .map_err(|e| fail("scale back to 1", e))?;
    wait_for(
        provider,
        &function,
        "one replica ready again",
        timeout,
        |s| s.replicas == 1 && s.available_replicas == 1 && s.is_ready(),
    )
    .await?;

    // Update, keeping it callable.
    provider
        .update(fixture.hello.clone().with_label("suite", "updated"))
        .await
        .map_err(|e| fail("update", e))?;
    let updated = wait_for(provider, &function, "updated and ready", timeout, |s| {
        s.is_ready() && s.labels.get("suite").map(String::as_str) == Some("updated")
    })
    .await?;
    check(
        "the update kept one replica",
        updated.replicas == 1,
        &updated,
    )?;
    let response = provider
        .invoke(&function, Invocation::new("bob"))
        .await
        .map_err(|e| fail("calling the updated function", e))?;
    check(
        "the updated function answers",
        response.body() == "hello, bob",
        response.body(),
    )?;

    // Remove.
    provider
        .remove(&function)
        .await
        .map_err(|e| fail("remove", e))?;
    let gone = provider.status(&function).await;
    check(
        "a removed function is NotFound",
        matches!(gone, Err(ProviderError::NotFound { .. })),
        &gone,
    )?;
    Ok(())
}
