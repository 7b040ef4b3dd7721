//! The `faas-gateway` command line: the gateway and the autoscaler in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{BasicAuth, Gateway, GatewayConfig};
use crate::autoscaler::{Autoscaler, AutoscalerConfig, ScaleTarget, ScalingPolicy};
use crate::provider::KubernetesProvider;

/// What the autoscaler writes replicas to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// The Function's scale subresource (the operator copies it to the Deployment).
    Function,
    /// The Deployment's scale subresource.
    Deployment,
}

/// The arguments of `faas-gateway`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "faas-gateway",
    version,
    about = "The faas gateway, activator and autoscaler"
)]
#[non_exhaustive]
pub struct GatewayArgs {
    /// The kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The namespace of a function named without `.namespace`.
    #[arg(long, default_value = "default")]
    pub default_namespace: String,
    /// Route to and scale only functions of this namespace (default: all).
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// The label selector of functions' EndpointSlices (empty: every Service).
    #[arg(long, default_value = super::FUNCTION_LABEL)]
    pub endpoint_selector: String,
    /// A directory holding `basic-auth-user` and `basic-auth-password` (a mounted
    /// Secret): `/system/*` then needs those credentials.
    #[arg(long)]
    pub basic_auth_dir: Option<PathBuf>,
    /// Ask function calls for the credentials too.
    #[arg(long, requires = "basic_auth_dir")]
    pub protect_functions: bool,
    /// The deadline of a call without `x-timeout`, holding included.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub default_timeout: Duration,
    /// Calls held per function while it wakes; more get 429.
    #[arg(long, default_value_t = 1000)]
    pub max_held: u64,
    /// The largest request body, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub body_limit: usize,
    /// How long a stopping gateway lets calls finish.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Serve no `/system/*` (they answer 503): functions are managed elsewhere, and the
    /// gateway's identity needs no write access to them.
    #[arg(long)]
    pub no_system_api: bool,
    /// Keep asynchronous calls in NATS JetStream at this server (`nats://host:port`) instead of
    /// memory: the gateway creates the stream and the durable consumer when missing.
    #[cfg(feature = "nats")]
    #[arg(long, env = "FAAS_NATS_URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream of asynchronous calls.
    #[cfg(feature = "nats")]
    #[arg(long, default_value = "FAAS_ASYNC", requires = "nats_url")]
    pub async_stream: String,
    /// How long a call taken by a gateway that stopped answering (killed, cut off) waits before
    /// another gateway gets it: the durable consumer's ack wait (at least 1s). A running call
    /// reports progress well within it.
    #[cfg(feature = "nats")]
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, requires = "nats_url")]
    pub nats_ack_wait: Duration,
    /// Publish asynchronous calls that failed their last attempt to this subject (a stream
    /// must capture it); without it they are kept in memory and logged.
    #[cfg(feature = "nats")]
    #[arg(long, requires = "nats_url")]
    pub dead_letter_subject: Option<String>,
    /// Run without the autoscaler (something else scales the functions).
    #[arg(long)]
    pub no_autoscaler: bool,
    /// What the autoscaler scales.
    #[arg(long, value_enum, default_value_t = TargetKind::Function)]
    pub scale_target: TargetKind,
    /// How often the autoscaler decides.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub scale_tick: Duration,
    /// The scale-to-zero grace of functions that do not set one.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub scale_to_zero_grace: Duration,
    /// The in-flight calls per replica of functions that do not set a target.
    #[arg(long, default_value_t = 10.0)]
    pub target_concurrency: f64,
    /// The stable window of the concurrency average.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub stable_window: Duration,
    /// The panic window of the concurrency average.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    pub panic_window: Duration,
}

async fn kube_config(
    kubeconfig: Option<&PathBuf>,
) -> Result<kube::Config, Box<dyn std::error::Error>> {
    Ok(match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await?,
    })
}

/// Runs the gateway (and, unless told not to, the autoscaler) as the command
/// line asks, until SIGINT or SIGTERM; then drains.
///
/// # Errors
///
/// The kubeconfig, the credentials or the scaling settings are unusable, or
/// the listener cannot be bound.
pub async fn run(args: GatewayArgs) -> Result<(), Box<dyn std::error::Error>> {
    let kube_config = kube_config(args.kubeconfig.as_ref()).await?;
    let client = kube::Client::try_from(kube_config.clone())?;
    let mut config = GatewayConfig::builder()
        .default_namespace(&args.default_namespace)
        .default_timeout(args.default_timeout)
        .max_held(args.max_held)
        .body_limit(args.body_limit)
        .drain_timeout(args.drain_timeout)
        .protect_functions(args.protect_functions)
        .endpoint_selector(
            (!args.endpoint_selector.is_empty()).then(|| args.endpoint_selector.clone()),
        );
    if let Some(namespace) = &args.watch_namespace {
        config = config.watch_namespace(namespace);
    }
    if let Some(dir) = &args.basic_auth_dir {
        config = config.credentials(BasicAuth::from_secret_dir(dir)?);
    }
    let mut gateway = Gateway::builder(config.build()).discover(client.clone());
    if !args.no_system_api {
        // `/system/*` manages Function resources; the operator turns them into pods. Its
        // provider relays calls and metric reads through a client that never retries a
        // function's own 429/503/504.
        gateway = gateway.provider(Arc::new(KubernetesProvider::from_config(kube_config)?));
    }
    #[cfg(feature = "nats")]
    if let Some(url) = &args.nats_url {
        let nats = async_nats::connect(url.as_str())
            .await
            .map_err(|e| format!("connecting to NATS at {url}: {e}"))?;
        let context = async_nats::jetstream::new(nats);
        let queue = super::JetStreamQueue::connect(
            context.clone(),
            super::JetStreamQueueConfig::default()
                .with_stream(&args.async_stream)
                .with_ack_wait(args.nats_ack_wait),
        )
        .await?;
        gateway = gateway.jetstream(queue);
        if let Some(subject) = &args.dead_letter_subject {
            gateway = gateway.dead_letter(Arc::new(faas_triggers::nats::NatsDeadLetter::new(
                context,
                subject.clone(),
            )));
        }
        tracing::info!(%url, stream = %args.async_stream, "asynchronous calls kept in NATS JetStream");
    }
    let gateway = gateway.build();

    let autoscaler = if args.no_autoscaler {
        None
    } else {
        let policy = ScalingPolicy::builder()
            .target_concurrency(args.target_concurrency)
            .scale_to_zero_grace(args.scale_to_zero_grace)
            .stable_window(args.stable_window)
            .panic_window(args.panic_window)
            .build()?;
        let mut scaling = AutoscalerConfig::builder()
            .tick(args.scale_tick)
            .default_policy(policy)
            .target(match args.scale_target {
                TargetKind::Function => ScaleTarget::Function,
                TargetKind::Deployment => ScaleTarget::Deployment,
            });
        if let Some(namespace) = &args.watch_namespace {
            scaling = scaling.namespace(namespace);
        }
        if args.scale_target == TargetKind::Deployment && !args.endpoint_selector.is_empty() {
            scaling = scaling.selector(&args.endpoint_selector);
        }
        Some(
            Autoscaler::new(client, scaling.build(), gateway.routing_table())
                .with_metrics(gateway.metrics()),
        )
    };

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("binding {}: {e}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, autoscaler = autoscaler.is_some(), "gateway listening");
    let stop = gateway.shutdown_handle();
    let scaler_stop = autoscaler.as_ref().map(Autoscaler::shutdown_handle);
    let scaler = autoscaler.map(|a| tokio::spawn(a.run()));
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stopping: draining held and running calls");
        stop.cancel();
    });
    let served = gateway.serve(listener).await;
    // The autoscaler keeps waking functions for held calls until the drain is over.
    if let Some(stop) = scaler_stop {
        stop.cancel();
    }
    if let Some(scaler) = scaler {
        let _ = scaler.await;
    }
    served?;
    Ok(())
}
