//! `faasctl`: a command line over [`KubernetesProvider`] (feature `cli`).
//!
//! ```text
//! faasctl deploy hello --image faas.dev/function/hello      # create or update, wait until Ready
//! faasctl deploy -f hello.yaml                              # Function manifests, applied server-side
//! faasctl list [-A]          faasctl describe hello
//! faasctl invoke hello ada   echo ada | faasctl invoke hello -   faasctl invoke hello --file in.json
//! faasctl scale hello 3 --wait
//! faasctl logs hello [-f] [--tail 20]
//! faasctl remove hello
//! ```
//!
//! `--kubeconfig`, `--context` and `-n/--namespace` work as kubectl's do; `-o json|yaml` prints
//! for programs. `describe` shows the calls the function's running pods have answered
//! (`invocationCount`, summed from the function runtime's `/metrics` on each pod through the
//! API server, whichever way the calls came). Waiting shows a spinner with the function's current condition, and stops with
//! the reason when the function cannot become ready. The exit codes are in [`exit`].

mod args;
pub mod exit;
mod output;

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::time::Duration;

use faas_core::{
    FunctionDeployment, FunctionRef, Invocation, LogQuery, Provider, ProviderError, ScalingHints,
};
use futures::StreamExt as _;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, ResourceExt as _};

pub use args::{Command, DeployArgs, FaasctlArgs, InvokeArgs, Output};

use crate::error::ErrorChain;
use crate::function::Function;
use crate::provider::KubernetesProvider;

/// The field manager of what `faasctl deploy -f` applies.
pub const FIELD_MANAGER: &str = "faasctl";

/// A failure, with the exit code it maps to and a message naming the function and what to do.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    fn provider(error: &ProviderError, function: &FunctionRef) -> Self {
        let advice = match error {
            ProviderError::NotFound { .. } => format!(
                ": check the name, or list the functions with `faasctl list -n {}`",
                function.namespace
            ),
            ProviderError::Conflict { .. } => ": it changed meanwhile; run the command again".into(),
            ProviderError::Forbidden { .. } => {
                ": the kubeconfig's identity lacks the permission; ask for access to functions.faas.rs"
                    .into()
            }
            ProviderError::NotReady { .. } => format!(
                ": see `faasctl describe {} -n {}`",
                function.name, function.namespace
            ),
            ProviderError::Unavailable { .. } => {
                ": is the API server up and the kubeconfig right?".into()
            }
            _ => String::new(),
        };
        Failure::new(
            exit::for_provider(error),
            format!("{}{advice}", ErrorChain(error)),
        )
    }
}

async fn config(args: &FaasctlArgs) -> Result<kube::Config, Failure> {
    let unusable = |e: &dyn std::error::Error| {
        Failure::new(
            exit::FAILED,
            format!("cannot use the kubeconfig: {}", ErrorChain(e)),
        )
    };
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                Failure::new(
                    exit::FAILED,
                    format!(
                        "cannot read kubeconfig {}: {}",
                        path.display(),
                        ErrorChain(&e)
                    ),
                )
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| unusable(&e))?
        }
        None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| unusable(&e))?,
        None => kube::Config::infer().await.map_err(|e| unusable(&e))?,
    };
    Ok(config)
}

/// Runs `faasctl` with `args`, printing to stdout and stderr; returns the exit code.
pub async fn run(args: FaasctlArgs) -> u8 {
    match execute(args).await {
        Ok(()) => exit::OK,
        Err(failure) => {
            eprintln!("faasctl: {}", failure.message);
            failure.code
        }
    }
}

async fn execute(args: FaasctlArgs) -> Result<(), Failure> {
    let config = config(&args).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let provider = KubernetesProvider::from_config(config).map_err(|e| {
        Failure::new(
            exit::FAILED,
            format!("cannot build a client: {}", ErrorChain(&e)),
        )
    })?;
    let client = provider.client().clone();
    let at = |name: &str| FunctionRef::new(&namespace, name);
    match args.command {
        Command::Deploy(deploy) => {
            let functions = match &deploy.file {
                Some(file) => apply_manifest(&client, &namespace, file).await?,
                None => vec![deploy_flags(&provider, &namespace, &deploy).await?],
            };
            if !deploy.no_wait {
                for function in &functions {
                    wait_ready(&provider, function, deploy.timeout, args.output).await?;
                }
            }
            if args.output != Output::Table {
                let mut statuses = Vec::new();
                for function in &functions {
                    statuses.push(
                        provider
                            .status(function)
                            .await
                            .map_err(|e| Failure::provider(&e, function))?,
                    );
                }
                output::print(&statuses, args.output)?;
            }
            Ok(())
        }
        Command::List { all_namespaces } => {
            let scope = (!all_namespaces).then_some(namespace.as_str());
            let list = provider
                .list(scope)
                .await
                .map_err(|e| Failure::provider(&e, &at("*")))?;
            match args.output {
                Output::Table => output::table(&list, all_namespaces),
                other => output::print(&list, other),
            }
        }
        Command::Describe { name } => {
            let function = at(&name);
            let status = provider
                .status(&function)
                .await
                .map_err(|e| Failure::provider(&e, &function))?;
            match args.output {
                Output::Table => output::describe(&status),
                other => output::print(&status, other),
            }
        }
        Command::Invoke(invoke) => invoke_function(&provider, at(&invoke.name), &invoke).await,
        Command::Scale {
            name,
            replicas,
            wait,
            timeout,
        } => {
            let function = at(&name);
            provider
                .scale(&function, replicas)
                .await
                .map_err(|e| Failure::provider(&e, &function))?;
            if wait && replicas > 0 {
                wait_ready(&provider, &function, timeout, args.output).await?;
            } else if args.output == Output::Table {
                println!("{function} scaled to {replicas}");
            }
            Ok(())
        }
        Command::Logs { name, follow, tail } => {
            let function = at(&name);
            let mut options = LogQuery::new().with_follow(follow);
            if let Some(tail) = tail {
                options = options.with_tail(tail);
            }
            let mut lines = provider.logs(&function, options).await;
            let mut stdout = std::io::stdout();
            while let Some(line) = lines.next().await {
                let line = line.map_err(|e| Failure::provider(&e, &function))?;
                let _ = writeln!(stdout, "{}", line.text);
                let _ = stdout.flush();
            }
            Ok(())
        }
        Command::Remove { name } => {
            let function = at(&name);
            provider
                .remove(&function)
                .await
                .map_err(|e| Failure::provider(&e, &function))?;
            if args.output == Output::Table {
                println!("{function} removed");
            }
            Ok(())
        }
    }
}

/// Creates the function the flags describe, or updates it when it exists.
async fn deploy_flags(
    provider: &KubernetesProvider,
    namespace: &str,
    args: &DeployArgs,
) -> Result<FunctionRef, Failure> {
    let name = args.name.clone().unwrap_or_default();
    let mut deployment = FunctionDeployment::new(&name).with_namespace(namespace);
    if let Some(image) = &args.image {
        deployment = deployment.with_image(image);
    }
    for (key, value) in &args.env {
        deployment = deployment.with_env(key, value);
    }
    for (key, value) in &args.labels {
        deployment = deployment.with_label(key, value);
    }
    for secret in &args.secrets {
        deployment = deployment.with_secret(secret);
    }
    if args.min.is_some() || args.max.is_some() || args.target_concurrency.is_some() {
        let mut hints = ScalingHints::default().with_min_replicas(args.min.unwrap_or(0));
        if let Some(max) = args.max {
            hints = hints.with_max_replicas(max);
        }
        if let Some(target) = args.target_concurrency {
            hints = hints.with_target_concurrency(target);
        }
        deployment = deployment.with_scaling(hints);
    }
    if let Some(timeout) = args.call_timeout {
        deployment = deployment.with_timeout(timeout);
    }
    let function = deployment.reference();
    match provider.deploy(deployment.clone()).await {
        Ok(()) => Ok(function),
        Err(ProviderError::Conflict { .. }) => provider
            .update(deployment)
            .await
            .map(|()| function.clone())
            .map_err(|e| Failure::provider(&e, &function)),
        Err(e) => Err(Failure::provider(&e, &function)),
    }
}

/// Applies the Function resources of a manifest (`-` for stdin) server-side.
async fn apply_manifest(
    client: &kube::Client,
    namespace: &str,
    file: &std::path::Path,
) -> Result<Vec<FunctionRef>, Failure> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::new(exit::INVALID, format!("reading stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| Failure::new(exit::INVALID, format!("reading {}: {e}", file.display())))?
    };
    let functions: Vec<Function> = serde_saphyr::from_multiple(&text).map_err(|e| {
        Failure::new(
            exit::INVALID,
            format!("{} holds no valid Function resources: {e}", file.display()),
        )
    })?;
    if functions.is_empty() {
        return Err(Failure::new(
            exit::INVALID,
            format!("{} holds no Function resources", file.display()),
        ));
    }
    let mut applied = Vec::new();
    for mut function in functions {
        let ns = function.namespace().unwrap_or_else(|| namespace.to_owned());
        function.metadata.namespace = Some(ns.clone());
        let reference = FunctionRef::new(&ns, function.name_any());
        let api: Api<Function> = Api::namespaced(client.clone(), &ns);
        api.patch(
            &reference.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&function),
        )
        .await
        .map_err(|e| {
            Failure::provider(
                &crate::provider::kube_error(e, &reference, "applying"),
                &reference,
            )
        })?;
        applied.push(reference);
    }
    Ok(applied)
}

/// Waits until `function` is ready, showing its condition on a spinner.
async fn wait_ready(
    provider: &KubernetesProvider,
    function: &FunctionRef,
    timeout: Duration,
    format: Output,
) -> Result<(), Failure> {
    let spinner = indicatif::ProgressBar::new_spinner();
    if !std::io::stderr().is_terminal() {
        spinner.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner.set_message(format!("{function}: waiting for the operator"));
    let mut statuses = provider.watch(function).await;
    let watched = tokio::time::timeout(timeout, async {
        while let Some(status) = statuses.next().await {
            let status = status.map_err(|e| Failure::provider(&e, function))?;
            let reason = status.reason.clone().unwrap_or_default();
            let message = status.message.clone().unwrap_or_default();
            if status.is_ready() {
                return Ok(message);
            }
            if status.failed {
                return Err(Failure::provider(
                    &ProviderError::NotReady {
                        function: function.clone(),
                        reason,
                        message,
                    },
                    function,
                ));
            }
            spinner.set_message(format!("{function}: {reason}: {message}"));
        }
        Err(Failure::new(
            exit::UNAVAILABLE,
            format!("the status of {function} stopped coming"),
        ))
    })
    .await;
    spinner.finish_and_clear();
    match watched {
        Ok(Ok(message)) => {
            if format == Output::Table {
                println!("{function} is ready: {message}");
            }
            Ok(())
        }
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(Failure::new(
            exit::NOT_READY,
            format!(
                "{function} is not ready after {}s: see `faasctl describe {} -n {}`",
                timeout.as_secs(),
                function.name,
                function.namespace
            ),
        )),
    }
}

/// Calls the function with the body from the argument, a file or stdin; prints the answer.
async fn invoke_function(
    provider: &KubernetesProvider,
    function: FunctionRef,
    args: &InvokeArgs,
) -> Result<(), Failure> {
    let body: Vec<u8> = match (&args.data, &args.file) {
        (Some(data), _) if data != "-" => data.clone().into_bytes(),
        (_, Some(file)) => std::fs::read(file)
            .map_err(|e| Failure::new(exit::INVALID, format!("reading {}: {e}", file.display())))?,
        (Some(_), None) => read_stdin()?,
        (None, None) if !std::io::stdin().is_terminal() => read_stdin()?,
        (None, None) => Vec::new(),
    };
    let mut invocation = Invocation::new(body).with_method(http::Method::POST);
    if let Some(content_type) = &args.content_type {
        invocation = invocation.with_header(http::header::CONTENT_TYPE, content_type.as_str());
    }
    for (name, value) in &args.headers {
        let name = http::HeaderName::try_from(name.as_str())
            .map_err(|e| Failure::new(exit::INVALID, format!("header `{name}`: {e}")))?;
        let value = http::HeaderValue::try_from(value.as_str())
            .map_err(|e| Failure::new(exit::INVALID, format!("header value `{value}`: {e}")))?;
        invocation = invocation.with_header(name, value);
    }
    match provider.invoke(&function, invocation).await {
        Ok(response) => {
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(response.body());
            let _ = stdout.flush();
            Ok(())
        }
        Err(error) => Err(Failure::new(
            exit::for_call(&error),
            format!(
                "calling {function} failed ({}): {}",
                error.kind().as_str(),
                error.message()
            ),
        )),
    }
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .map_err(|e| Failure::new(exit::INVALID, format!("reading stdin: {e}")))?;
    Ok(body)
}
