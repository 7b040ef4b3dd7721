//! Startup, readiness and liveness probes, run by the node itself since no kubelet does.
//!
//! Each running container gets one probing task. Its startup probe runs first (if any); then the
//! readiness and liveness probes run side by side, each on its own period. A probe's result only
//! changes after `successThreshold` consecutive successes or `failureThreshold` consecutive
//! failures, as on a kubelet; the task reports each change to the pod's worker, which turns
//! readiness into the pod's Ready condition and a liveness or startup failure into a restart.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::backend::{PodBackend, PodKey};

/// Which probe a result belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

/// A probe's settings with the kubelet's defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProbeSettings {
    pub(crate) initial_delay: Duration,
    pub(crate) period: Duration,
    pub(crate) timeout: Duration,
    pub(crate) success_threshold: u32,
    pub(crate) failure_threshold: u32,
}

fn seconds(value: Option<i32>, default: u64, min: u64) -> Duration {
    let secs = value.map_or(default, |v| u64::try_from(v).unwrap_or(default));
    Duration::from_secs(secs.max(min))
}

impl ProbeSettings {
    pub(crate) fn from_probe(probe: &Probe, kind: ProbeKind) -> Self {
        let threshold = |v: Option<i32>, default: u32| {
            v.and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        Self {
            initial_delay: seconds(probe.initial_delay_seconds, 0, 0),
            period: seconds(probe.period_seconds, 10, 1),
            timeout: seconds(probe.timeout_seconds, 1, 1),
            // Liveness and startup probes must succeed once; the API server enforces it, this
            // keeps a hand-made pod honest too.
            success_threshold: match kind {
                ProbeKind::Readiness => threshold(probe.success_threshold, 1),
                ProbeKind::Startup | ProbeKind::Liveness => 1,
            },
            failure_threshold: threshold(probe.failure_threshold, 3),
        }
    }
}

/// Turns single probe outcomes into a result that only changes after enough consecutive equal
/// outcomes.
#[derive(Clone, Debug)]
pub(crate) struct ProbeTracker {
    success_threshold: u32,
    failure_threshold: u32,
    last: Option<bool>,
    run: u32,
    result: Option<bool>,
}

impl ProbeTracker {
    /// A tracker whose result starts as `initial` (readiness starts failed, liveness succeeded,
    /// startup unknown).
    pub(crate) fn new(settings: &ProbeSettings, initial: Option<bool>) -> Self {
        Self {
            success_threshold: settings.success_threshold,
            failure_threshold: settings.failure_threshold,
            last: None,
            run: 0,
            result: initial,
        }
    }

    /// Records one outcome; returns the new result when it changed.
    pub(crate) fn record(&mut self, ok: bool) -> Option<bool> {
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let needed = if ok {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run < needed || self.result == Some(ok) {
            return None;
        }
        self.result = Some(ok);
        Some(ok)
    }
}

/// What a probe is run against.
#[derive(Clone)]
pub(crate) struct ProbeTarget {
    pub(crate) backend: Arc<dyn PodBackend>,
    pub(crate) key: PodKey,
    pub(crate) container: Container,
    pub(crate) pod_ip: Option<IpAddr>,
}

/// One probe outcome: `Err` carries why it failed.
pub(crate) type Outcome = Result<(), String>;

fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Ok(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("container has no port named {name:?}"))
        }
    }
}

fn resolve_host(host: Option<&str>, target: &ProbeTarget) -> Result<String, String> {
    match host.filter(|h| !h.is_empty()) {
        Some(h) => Ok(h.to_owned()),
        None => target
            .pod_ip
            .map(|ip| ip.to_string())
            .ok_or_else(|| "the pod has no IP yet".to_owned()),
    }
}

/// Runs a probe once, within its timeout.
pub(crate) async fn run_once(probe: &Probe, timeout: Duration, target: &ProbeTarget) -> Outcome {
    match tokio::time::timeout(timeout, run_action(probe, target)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("probe timed out after {timeout:?}")),
    }
}

/// Runs the action of `probe` (or of a lifecycle hook) once, with no time limit.
pub(crate) async fn run_action(probe: &Probe, target: &ProbeTarget) -> Outcome {
    if let Some(http) = &probe.http_get {
        let host = resolve_host(http.host.as_deref(), target)?;
        let port = resolve_port(&http.port, &target.container)?;
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("http"))
        {
            return Err(format!(
                "httpGet scheme {:?} is not supported by this node (only HTTP)",
                http.scheme.as_deref().unwrap_or_default()
            ));
        }
        let path = http.path.as_deref().unwrap_or("/");
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return http_get(&host, port, path, &headers).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host = resolve_host(tcp.host.as_deref(), target)?;
        let port = resolve_port(&tcp.port, &target.container)?;
        return TcpStream::connect((host.as_str(), port))
            .await
            .map(drop)
            .map_err(|e| format!("dial tcp {host}:{port}: {e}"));
    }
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        return match target
            .backend
            .exec(&target.key, &target.container.name, command)
            .await
        {
            Ok(0) => Ok(()),
            Ok(code) => Err(format!("command exited with {code}")),
            Err(e) => Err(format!("exec failed: {e}")),
        };
    }
    if probe.grpc.is_some() {
        return Err("gRPC probes are not supported by this node".to_owned());
    }
    Err("the probe names no action (httpGet, tcpSocket or exec)".to_owned())
}

async fn http_get(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> Outcome {
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {host}:{port}: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, "kube-probe/1.37")
        .header(http::header::ACCEPT, "*/*");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("invalid probe request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("GET http://{host}:{port}{path}: {e}"))?;
        let status = response.status();
        // Drain a little of the body so the server is not cut off mid-write.
        let _ = response.into_body().collect().await;
        if (200..400).contains(&status.as_u16()) {
            Ok(())
        } else {
            Err(format!(
                "HTTP probe failed with statuscode: {}",
                status.as_u16()
            ))
        }
    }
    .await;
    driver.abort();
    result
}

/// A probe result change, reported to the pod's worker.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ProbeUpdate {
    /// The startup probe succeeded (sent at once when there is none).
    Started,
    /// The readiness result changed.
    Ready(bool),
    /// The liveness probe failed `failureThreshold` times in a row.
    LivenessFailed(String),
    /// The startup probe failed `failureThreshold` times in a row.
    StartupFailed(String),
    /// The `postStart` hook failed: the run is killed.
    PostStartFailed(String),
}

/// A [`ProbeUpdate`] for one run of one container.
#[derive(Clone, Debug)]
pub(crate) struct ProbeReport {
    pub(crate) container: String,
    /// When the container run being probed started: reports about an earlier run are stale.
    pub(crate) run: SystemTime,
    pub(crate) update: ProbeUpdate,
}

/// The first pause between readiness probes before the first success; it doubles up to
/// [`LAST_READINESS_RETRY`].
const FIRST_READINESS_RETRY: Duration = Duration::from_millis(10);
/// The longest pause between readiness probes before the first success (or the probe's period,
/// when shorter): a container that takes a few hundred milliseconds to listen is seen ready
/// within this of it, not a doubled pause later.
const LAST_READINESS_RETRY: Duration = Duration::from_millis(100);

async fn sleep_until_after(started_at: SystemTime, delay: Duration) {
    let elapsed = SystemTime::now()
        .duration_since(started_at)
        .unwrap_or(Duration::ZERO);
    if let Some(rest) = delay.checked_sub(elapsed) {
        tokio::time::sleep(rest).await;
    }
}

/// Probes one container run until it is cancelled (by dropping or aborting the task).
pub(crate) async fn probe_container(
    target: ProbeTarget,
    run: SystemTime,
    reports: mpsc::UnboundedSender<ProbeReport>,
) {
    let send = |update: ProbeUpdate| {
        let _ = reports.send(ProbeReport {
            container: target.container.name.clone(),
            run,
            update,
        });
    };
    // The postStart hook runs first; no probe runs before it completed.
    if let Some(hook) = super::hooks::post_start(&target)
        && let Err(message) = super::hooks::run_hook(hook, &target).await
    {
        send(ProbeUpdate::PostStartFailed(message));
        return;
    }
    if let Some(probe) = target.container.startup_probe.clone() {
        let settings = ProbeSettings::from_probe(&probe, ProbeKind::Startup);
        let mut tracker = ProbeTracker::new(&settings, None);
        sleep_until_after(run, settings.initial_delay).await;
        let mut ticker = tokio::time::interval(settings.period);
        loop {
            ticker.tick().await;
            let outcome = run_once(&probe, settings.timeout, &target).await;
            match tracker.record(outcome.is_ok()) {
                Some(true) => break,
                Some(false) => {
                    send(ProbeUpdate::StartupFailed(
                        outcome.err().unwrap_or_default(),
                    ));
                    return;
                }
                None => {}
            }
        }
    }
    send(ProbeUpdate::Started);

    let readiness = async {
        let Some(probe) = target.container.readiness_probe.clone() else {
            return;
        };
        let settings = ProbeSettings::from_probe(&probe, ProbeKind::Readiness);
        let mut tracker = ProbeTracker::new(&settings, Some(false));
        sleep_until_after(run, settings.initial_delay).await;
        // Until its first success the container is not ready whatever a failure says, so the
        // probe runs again soon rather than a whole period later: a pod woken from zero is
        // ready (and gets calls) as soon as it listens. That lasts one period at most; then
        // the probe keeps its period.
        let mut retry = FIRST_READINESS_RETRY;
        let last_retry = LAST_READINESS_RETRY.min(settings.period);
        let soon_until = tokio::time::Instant::now() + settings.period;
        loop {
            let outcome = run_once(&probe, settings.timeout, &target).await;
            let ok = outcome.is_ok();
            if let Some(ready) = tracker.record(ok) {
                send(ProbeUpdate::Ready(ready));
            }
            if ok || tokio::time::Instant::now() + retry > soon_until {
                break;
            }
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(last_retry);
        }
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + settings.period,
            settings.period,
        );
        loop {
            ticker.tick().await;
            let outcome = run_once(&probe, settings.timeout, &target).await;
            if let Some(ready) = tracker.record(outcome.is_ok()) {
                send(ProbeUpdate::Ready(ready));
            }
        }
    };
    let liveness = async {
        let Some(probe) = target.container.liveness_probe.clone() else {
            return futures::future::pending::<()>().await;
        };
        let settings = ProbeSettings::from_probe(&probe, ProbeKind::Liveness);
        let mut tracker = ProbeTracker::new(&settings, Some(true));
        sleep_until_after(run, settings.initial_delay).await;
        let mut ticker = tokio::time::interval(settings.period);
        loop {
            ticker.tick().await;
            let outcome = run_once(&probe, settings.timeout, &target).await;
            if tracker.record(outcome.is_ok()) == Some(false) {
                send(ProbeUpdate::LivenessFailed(
                    outcome.err().unwrap_or_default(),
                ));
                return;
            }
        }
    };
    tokio::select! {
        () = async { readiness.await; futures::future::pending::<()>().await } => {}
        () = liveness => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(success: u32, failure: u32) -> ProbeSettings {
        ProbeSettings {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn readiness_needs_consecutive_successes_and_failures() {
        let mut t = ProbeTracker::new(&settings(2, 3), Some(false));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(true));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
        assert_eq!(t.record(false), None);
    }

    #[test]
    fn liveness_starts_alive_and_fails_after_the_threshold() {
        let mut t = ProbeTracker::new(&settings(1, 2), Some(true));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
    }

    #[test]
    fn startup_result_is_unknown_until_decided() {
        let mut t = ProbeTracker::new(&settings(1, 3), None);
        assert_eq!(t.record(true), Some(true));
        let mut t = ProbeTracker::new(&settings(1, 1), None);
        assert_eq!(t.record(false), Some(false));
    }

    /// Answers exec probes with failure `failures` times, then with success.
    struct WarmingBackend {
        failures: std::sync::atomic::AtomicU32,
        inner: super::super::testing::StaticBackend,
    }

    #[async_trait::async_trait]
    impl PodBackend for WarmingBackend {
        fn name(&self) -> &str {
            "warming"
        }
        fn capacity(&self) -> super::super::backend::Capacity {
            self.inner.capacity()
        }
        async fn create(
            &self,
            pod: super::super::backend::PodLaunch,
        ) -> Result<super::super::backend::PodRuntimeStatus, super::super::backend::BackendError>
        {
            self.inner.create(pod).await
        }
        async fn update(
            &self,
            pod: super::super::backend::PodLaunch,
        ) -> Result<(), super::super::backend::BackendError> {
            self.inner.update(pod).await
        }
        async fn restart_container(
            &self,
            key: &PodKey,
            c: &str,
        ) -> Result<(), super::super::backend::BackendError> {
            self.inner.restart_container(key, c).await
        }
        async fn delete(
            &self,
            key: &PodKey,
            grace: Duration,
        ) -> Result<(), super::super::backend::BackendError> {
            self.inner.delete(key, grace).await
        }
        async fn status(
            &self,
            key: &PodKey,
        ) -> Result<
            Option<super::super::backend::PodRuntimeStatus>,
            super::super::backend::BackendError,
        > {
            self.inner.status(key).await
        }
        async fn list(
            &self,
        ) -> Result<Vec<super::super::backend::PodRuntimeStatus>, super::super::backend::BackendError>
        {
            self.inner.list().await
        }
        async fn logs(
            &self,
            key: &PodKey,
            container: &str,
            opts: super::super::backend::LogOptions,
        ) -> Result<super::super::backend::LogStream, super::super::backend::BackendError> {
            self.inner.logs(key, container, opts).await
        }
        async fn exec(
            &self,
            _key: &PodKey,
            _c: &str,
            _cmd: Vec<String>,
        ) -> Result<i32, super::super::backend::BackendError> {
            use std::sync::atomic::Ordering;
            let left = self.failures.load(Ordering::SeqCst);
            if left == 0 {
                return Ok(0);
            }
            self.failures.store(left - 1, Ordering::SeqCst);
            Ok(1)
        }
        fn events(&self) -> super::super::backend::PodEvents {
            self.inner.events()
        }
    }

    /// On the virtual clock: a container that answers its readiness probe on the fourth try is
    /// reported ready tens of milliseconds after it started, not whole probe periods later.
    #[tokio::test(start_paused = true)]
    async fn readiness_is_probed_again_soon_until_the_first_success() {
        let probe = Probe {
            exec: Some(k8s_openapi::api::core::v1::ExecAction {
                command: Some(vec!["ready?".into()]),
            }),
            period_seconds: Some(10),
            ..Default::default()
        };
        let target = ProbeTarget {
            backend: Arc::new(WarmingBackend {
                failures: std::sync::atomic::AtomicU32::new(3),
                inner: super::super::testing::StaticBackend { log: "" },
            }),
            key: PodKey::new("ns", "p", "u"),
            container: Container {
                name: "app".into(),
                readiness_probe: Some(probe),
                ..Default::default()
            },
            pod_ip: None,
        };
        let (sender, mut reports) = mpsc::unbounded_channel();
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(probe_container(target, SystemTime::now(), sender));
        assert_eq!(reports.recv().await.unwrap().update, ProbeUpdate::Started);
        assert_eq!(
            reports.recv().await.unwrap().update,
            ProbeUpdate::Ready(true)
        );
        let took = started.elapsed();
        // Retries after 10, 20 and 40 ms; a whole period would be 10 s.
        assert!(took < Duration::from_secs(1), "ready after {took:?}");
        task.abort();
    }

    #[test]
    fn kubelet_defaults_fill_in() {
        let s = ProbeSettings::from_probe(&Probe::default(), ProbeKind::Readiness);
        assert_eq!(
            s,
            ProbeSettings {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
        let probe = Probe {
            success_threshold: Some(4),
            period_seconds: Some(0),
            ..Default::default()
        };
        let s = ProbeSettings::from_probe(&probe, ProbeKind::Liveness);
        assert_eq!(s.success_threshold, 1);
        assert_eq!(s.period, Duration::from_secs(1));
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let container = Container {
            ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                container_port: 8080,
                name: Some("http".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &container),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &container), Ok(81));
        assert!(resolve_port(&IntOrString::String("grpc".into()), &container).is_err());
    }

    #[tokio::test]
    async fn tcp_and_http_probes_against_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 1024];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let status = if request.starts_with("GET /ok ") {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    };
                    let _ = stream
                        .write_all(
                            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes(),
                        )
                        .await;
                });
            }
        });
        let target = ProbeTarget {
            backend: Arc::new(super::super::testing::StaticBackend { log: "" }),
            key: PodKey::new("ns", "p", "u"),
            container: Container::default(),
            pod_ip: Some("127.0.0.1".parse().unwrap()),
        };
        let http = |path: &str| Probe {
            http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(i32::from(port)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let t = Duration::from_secs(30);
        assert_eq!(run_once(&http("/ok"), t, &target).await, Ok(()));
        let err = run_once(&http("/bad"), t, &target).await.unwrap_err();
        assert!(err.contains("503"), "{err}");
        let tcp = Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                host: None,
                port: IntOrString::Int(i32::from(port)),
            }),
            ..Default::default()
        };
        assert_eq!(run_once(&tcp, t, &target).await, Ok(()));
        let exec = |cmd: &str| Probe {
            exec: Some(k8s_openapi::api::core::v1::ExecAction {
                command: Some(vec![cmd.into()]),
            }),
            ..Default::default()
        };
        assert_eq!(run_once(&exec("true"), t, &target).await, Ok(()));
        assert!(run_once(&exec("false"), t, &target).await.is_err());
    }
}
