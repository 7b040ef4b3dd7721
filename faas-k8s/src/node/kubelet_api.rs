//! The kubelet API, as far as `kubectl logs`, `exec`, `attach`, `port-forward` and metrics need
//! it: `GET /containerLogs/{ns}/{pod}/{container}`, `/exec/{ns}/{pod}/{container}`,
//! `/attach/{ns}/{pod}/{container}` and `/portForward/{ns}/{pod}` (upgraded to SPDY/3.1, see
//! `streaming`) and `GET /stats/summary`.
//!
//! The API server reaches it at the node's `InternalIP` and `daemonEndpoints.kubeletEndpoint`
//! port. It is served on TLS; callers are known by a client certificate signed by the configured
//! CA (the cluster CA, which signs the API server's kubelet client certificate) or by a bearer
//! token, and each request is authorized by the API server as a kubelet authorizes it (see
//! `kubelet_auth`): no credentials is 401, not allowed is 403. A certificate from another CA
//! fails the handshake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::backend::{BackendError, LogOptions, PodBackend};
use super::config::KubeletTls;
use super::kubelet_auth::{Authorizer, Caller, authorize, certificate_user};
use super::pods::PodRegistry;
use super::streaming::{self, Session};
use crate::error::{Error, Result};

/// Builds the TLS configuration: the serving certificate, and client certificates required and
/// verified against `client_ca`.
pub(crate) fn server_config(tls: &KubeletTls) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| Error::tls(format!("reading {}", tls.cert.display()), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| Error::tls(format!("parsing {}", tls.cert.display()), e))?;
    if certs.is_empty() {
        return Err(Error::tls(
            format!("reading {}", tls.cert.display()),
            "no certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| Error::tls(format!("reading {}", tls.key.display()), e))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&tls.client_ca)
        .map_err(|e| Error::tls(format!("reading {}", tls.client_ca.display()), e))?
    {
        let ca = ca.map_err(|e| Error::tls(format!("parsing {}", tls.client_ca.display()), e))?;
        roots
            .add(ca)
            .map_err(|e| Error::tls(format!("adding {}", tls.client_ca.display()), e))?;
    }
    // A client without a certificate may still come with a bearer token.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::tls("building the client certificate verifier", e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("choosing TLS versions", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| Error::tls("loading the serving certificate", e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Clone)]
struct ApiState {
    registry: PodRegistry,
    backend: Arc<dyn PodBackend>,
    node: String,
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|v| v.is_empty() || v == "true" || v == "1")
}

/// A query parameter the kubelet API cannot use; answered with 400 and the message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadQuery(String);

impl IntoResponse for BadQuery {
    fn into_response(self) -> Response {
        text(StatusCode::BAD_REQUEST, self.0)
    }
}

fn number(query: &HashMap<String, String>, name: &str) -> Result<Option<i64>, BadQuery> {
    query
        .get(name)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| BadQuery(format!("{name}: {v:?} is not a number")))
        })
        .transpose()
}

/// Reads the `containerLogs` query as the kubelet does (`tailLines`, `sinceSeconds`, `sinceTime`,
/// `timestamps`, `follow`, `limitBytes`).
pub(crate) fn log_options(
    query: &HashMap<String, String>,
    now: SystemTime,
) -> Result<LogOptions, BadQuery> {
    let previous = flag(query, "previous");
    let mut opts = LogOptions {
        timestamps: flag(query, "timestamps"),
        // A previous run has ended: there is nothing to follow.
        follow: flag(query, "follow") && !previous,
        previous,
        ..Default::default()
    };
    if let Some(n) = number(query, "tailLines")? {
        opts.tail_lines = Some(usize::try_from(n.max(0)).unwrap_or(0));
    }
    if let Some(n) = number(query, "limitBytes")? {
        if n <= 0 {
            return Err(BadQuery("limitBytes must be positive".to_owned()));
        }
        opts.limit_bytes = usize::try_from(n).ok();
    }
    if let Some(n) = number(query, "sinceSeconds")? {
        if n <= 0 {
            return Err(BadQuery("sinceSeconds must be positive".to_owned()));
        }
        opts.since = now.checked_sub(Duration::from_secs(n.unsigned_abs()));
    }
    if let Some(t) = query.get("sinceTime") {
        let at: k8s_openapi::jiff::Timestamp = t
            .parse()
            .map_err(|_| BadQuery(format!("sinceTime: {t:?} is not an RFC 3339 time")))?;
        opts.since = Some(SystemTime::from(at));
    }
    Ok(opts)
}

async fn container_logs(
    State(state): State<ApiState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let opts = match log_options(&query, SystemTime::now()) {
        Ok(opts) => opts,
        Err(bad) => return bad.into_response(),
    };
    let Some(key) = state.registry.lookup(&namespace, &pod) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{pod} is not on this node"),
        );
    };
    match state.backend.logs(&key, &container, opts).await {
        Ok(stream) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            Body::from_stream(stream),
        )
            .into_response(),
        Err(BackendError::NotFound(_)) => text(
            StatusCode::NOT_FOUND,
            format!("container {container:?} of pod {namespace}/{pod} is not found"),
        ),
        Err(e @ BackendError::NoPreviousRun { .. }) => text(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the log failed: {e}"),
        ),
    }
}

/// `GET /stats/summary`: CPU time and memory of every pod's containers the backend can measure,
/// in the kubelet's summary format (what `kubectl top` figures are computed from).
async fn stats_summary(State(state): State<ApiState>) -> Response {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (mut node_cpu, mut node_memory) = (0u64, 0u64);
    let mut pods = Vec::new();
    for key in state.registry.all() {
        let usage = match state.backend.stats(&key).await {
            Ok(Some(usage)) => usage,
            Ok(None) | Err(BackendError::NotFound(_)) => continue,
            Err(e) => {
                tracing::debug!(pod = %key, error = %e, "measuring a pod failed");
                continue;
            }
        };
        let cpu: u64 = usage.iter().map(|c| c.cpu_nanoseconds).sum();
        let memory: u64 = usage.iter().map(|c| c.memory_bytes).sum();
        node_cpu += cpu;
        node_memory += memory;
        let containers: Vec<_> = usage
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "cpu": {"time": now, "usageCoreNanoSeconds": c.cpu_nanoseconds},
                    "memory": {"time": now, "workingSetBytes": c.memory_bytes, "rssBytes": c.memory_bytes},
                })
            })
            .collect();
        pods.push(serde_json::json!({
            "podRef": {"name": key.name, "namespace": key.namespace, "uid": key.uid},
            "containers": containers,
            "cpu": {"time": now, "usageCoreNanoSeconds": cpu},
            "memory": {"time": now, "workingSetBytes": memory, "rssBytes": memory},
        }));
    }
    let summary = serde_json::json!({
        "node": {
            "nodeName": state.node,
            "cpu": {"time": now, "usageCoreNanoSeconds": node_cpu},
            "memory": {"time": now, "workingSetBytes": node_memory, "rssBytes": node_memory},
        },
        "pods": pods,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        summary.to_string(),
    )
        .into_response()
}

/// The pod `namespace/name` on this node, if it is here and (when the path names one) has `uid`.
fn pod_key(
    state: &ApiState,
    namespace: &str,
    pod: &str,
    uid: Option<&str>,
) -> Result<super::backend::PodKey, BadPath> {
    match state.registry.lookup(namespace, pod) {
        Some(key) if uid.is_none_or(|uid| uid == key.uid) => Ok(key),
        _ => Err(BadPath(format!(
            "pod {namespace}/{pod} is not on this node"
        ))),
    }
}

/// A path naming no pod of this node; answered with 404 and the message.
pub(crate) struct BadPath(String);

impl IntoResponse for BadPath {
    fn into_response(self) -> Response {
        text(StatusCode::NOT_FOUND, self.0)
    }
}

/// `/exec/...` and `/attach/...`: the path is `{ns}/{pod}/{container}` or
/// `{ns}/{pod}/{uid}/{container}`.
async fn remote_command(
    state: ApiState,
    parts: Vec<String>,
    request: Request,
    exec: bool,
) -> Response {
    let (namespace, pod, uid, container) = match parts.as_slice() {
        [ns, pod, container] => (ns, pod, None, container),
        [ns, pod, uid, container] => (ns, pod, Some(uid.as_str()), container),
        _ => return text(StatusCode::NOT_FOUND, "no such kubelet API path"),
    };
    let key = match pod_key(&state, namespace, pod, uid) {
        Ok(key) => key,
        Err(missing) => return missing.into_response(),
    };
    let session = if exec {
        Session::Exec(Vec::new())
    } else {
        Session::Attach
    };
    streaming::remote_command(request, state.backend, key, container.clone(), session)
}

async fn exec3(
    State(state): State<ApiState>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    remote_command(state, vec![ns, pod, container], request, true).await
}

async fn exec4(
    State(state): State<ApiState>,
    Path((ns, pod, uid, container)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    remote_command(state, vec![ns, pod, uid, container], request, true).await
}

async fn attach3(
    State(state): State<ApiState>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    remote_command(state, vec![ns, pod, container], request, false).await
}

async fn attach4(
    State(state): State<ApiState>,
    Path((ns, pod, uid, container)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    remote_command(state, vec![ns, pod, uid, container], request, false).await
}

async fn port_forward2(
    State(state): State<ApiState>,
    Path((namespace, pod)): Path<(String, String)>,
    request: Request,
) -> Response {
    match pod_key(&state, &namespace, &pod, None) {
        Ok(key) => streaming::port_forward(request, state.backend, key).await,
        Err(missing) => missing.into_response(),
    }
}

async fn port_forward3(
    State(state): State<ApiState>,
    Path((namespace, pod, uid)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    match pod_key(&state, &namespace, &pod, Some(&uid)) {
        Ok(key) => streaming::port_forward(request, state.backend, key).await,
        Err(missing) => missing.into_response(),
    }
}

fn router(state: ApiState, auth: Authorizer) -> Router {
    let streams = MethodFilter::GET.or(MethodFilter::POST);
    Router::new()
        .route("/exec/{namespace}/{pod}/{container}", on(streams, exec3))
        .route(
            "/exec/{namespace}/{pod}/{uid}/{container}",
            on(streams, exec4),
        )
        .route(
            "/attach/{namespace}/{pod}/{container}",
            on(streams, attach3),
        )
        .route(
            "/attach/{namespace}/{pod}/{uid}/{container}",
            on(streams, attach4),
        )
        .route("/portForward/{namespace}/{pod}", on(streams, port_forward2))
        .route(
            "/portForward/{namespace}/{pod}/{uid}",
            on(streams, port_forward3),
        )
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/stats/summary", get(stats_summary))
        .route_layer(axum::middleware::from_fn_with_state(auth, authorize))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// A bound kubelet API server; [`serve`](Self::serve) runs it.
pub(crate) struct KubeletApi {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
}

impl KubeletApi {
    /// Loads the TLS material and binds `addr`; errors here are configuration errors.
    pub(crate) async fn bind(
        addr: SocketAddr,
        tls: &KubeletTls,
        registry: PodRegistry,
        backend: Arc<dyn PodBackend>,
        auth: Authorizer,
    ) -> Result<Self> {
        let config = server_config(tls)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("binding the kubelet API on {addr}"), e))?;
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            router: router(
                ApiState {
                    registry,
                    backend,
                    node: auth.node.clone(),
                },
                auth,
            ),
        })
    }

    /// The address it listens on.
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves connections until `shutdown`, then drops them (log streams that follow end there).
    pub(crate) async fn serve(self, shutdown: CancellationToken) {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a kubelet API connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let acceptor = self.acceptor.clone();
            let router = self.router.clone();
            connections.spawn(async move {
                let tls = match acceptor.accept(stream).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "kubelet API TLS handshake refused");
                        return;
                    }
                };
                let caller = Caller(
                    tls.get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(|cert| certificate_user(cert)),
                );
                let service = TowerToHyperService::new(router.layer(axum::Extension(caller)));
                if let Err(e) = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "kubelet API connection ended");
                }
            });
        }
        connections.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn log_query_reads_like_a_kubelet() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let opts = log_options(
            &query(&[
                ("tailLines", "5"),
                ("timestamps", "true"),
                ("follow", "true"),
                ("sinceSeconds", "10"),
                ("limitBytes", "100"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(opts.tail_lines, Some(5));
        assert!(opts.timestamps && opts.follow);
        assert_eq!(
            opts.since,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(990))
        );
        assert_eq!(opts.limit_bytes, Some(100));

        let opts = log_options(&query(&[("sinceTime", "1970-01-01T00:00:20Z")]), now).unwrap();
        assert_eq!(
            opts.since,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(20))
        );
        assert!(!opts.follow);

        let previous =
            log_options(&query(&[("previous", "true"), ("follow", "true")]), now).unwrap();
        assert!(
            previous.previous && !previous.follow,
            "a previous run is not followed"
        );
        assert!(
            !log_options(&query(&[("previous", "false")]), now)
                .unwrap()
                .previous
        );
        let bad = log_options(&query(&[("tailLines", "many")]), now).unwrap_err();
        assert_eq!(
            bad,
            BadQuery("tailLines: \"many\" is not a number".to_owned())
        );
        assert_eq!(bad.into_response().status(), StatusCode::BAD_REQUEST);
    }

    mod tls {
        use std::path::Path;

        use bytes::Bytes;
        use http_body_util::{BodyExt, Empty};
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair,
        };
        use rustls::pki_types::ServerName;
        use tokio_rustls::TlsConnector;

        use super::super::*;
        use crate::node::backend::PodKey;
        use crate::node::testing::StaticBackend;

        struct Pki {
            ca_pem: String,
            issuer: Issuer<'static, KeyPair>,
        }

        impl Pki {
            fn new() -> Self {
                let key = KeyPair::generate().unwrap();
                let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params
                    .distinguished_name
                    .push(DnType::CommonName, "test cluster CA");
                let cert = params.self_signed(&key).unwrap();
                Self {
                    ca_pem: cert.pem(),
                    issuer: Issuer::new(params, key),
                }
            }

            /// A leaf certificate and its key, as PEM.
            fn leaf(&self, san: &[&str], client: bool) -> (String, String) {
                self.leaf_named("leaf", san, client)
            }

            fn leaf_named(&self, cn: &str, san: &[&str], client: bool) -> (String, String) {
                let key = KeyPair::generate().unwrap();
                let sans: Vec<String> = san.iter().map(|s| (*s).to_owned()).collect();
                let mut params = CertificateParams::new(sans).unwrap();
                params.distinguished_name.push(DnType::CommonName, cn);
                if client {
                    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                }
                let cert = params.signed_by(&key, &self.issuer).unwrap();
                (cert.pem(), key.serialize_pem())
            }
        }

        /// An API server that allows the user `leaf` everything and reviews no token.
        fn mock_api_server() -> kube::Client {
            use http_body_util::BodyExt as _;
            let (service, mut handle) = tower_test::mock::pair::<
                http::Request<kube::client::Body>,
                http::Response<kube::client::Body>,
            >();
            tokio::spawn(async move {
                while let Some((request, send)) = handle.next_request().await {
                    let sar = request.uri().path().ends_with("subjectaccessreviews");
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let mut review: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    review["status"] = if sar {
                        serde_json::json!({"allowed": review["spec"]["user"] == "leaf"})
                    } else {
                        serde_json::json!({"authenticated": false})
                    };
                    let body = kube::client::Body::from(serde_json::to_vec(&review).unwrap());
                    send.send_response(http::Response::new(body));
                }
            });
            kube::Client::new(service, "default")
        }

        fn write(dir: &Path, name: &str, pem: &str) -> std::path::PathBuf {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        }

        async fn get(
            addr: SocketAddr,
            ca_pem: &str,
            client: Option<(&str, &str)>,
            path: &str,
        ) -> Result<(u16, String), String> {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
            let config = match client {
                Some((cert, key)) => {
                    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                        .collect::<Result<Vec<_>, _>>()
                        .unwrap();
                    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
                    builder.with_client_auth_cert(chain, key).unwrap()
                }
                None => builder.with_no_client_auth(),
            };
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let tls = TlsConnector::from(Arc::new(config))
                .connect(ServerName::try_from("127.0.0.1").unwrap(), stream)
                .await
                .map_err(|e| e.to_string())?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let request = http::Request::get(path)
                .header(http::header::HOST, "127.0.0.1")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok((
                status,
                String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            ))
        }

        #[tokio::test]
        async fn callers_are_authenticated_and_authorized_by_the_api_server() {
            let dir = std::env::temp_dir().join(format!("faas-kubelet-api-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let pki = Pki::new();
            let (server_cert, server_key) = pki.leaf(&["127.0.0.1"], false);
            let tls = KubeletTls {
                cert: write(&dir, "server.crt", &server_cert),
                key: write(&dir, "server.key", &server_key),
                client_ca: write(&dir, "ca.crt", &pki.ca_pem),
            };
            let registry = PodRegistry::default();
            registry.insert(&PodKey::new("shop", "web", "u1"));
            let backend: Arc<dyn PodBackend> = Arc::new(StaticBackend {
                log: "listening\nGET / -> 200\n",
            });
            let auth = Authorizer {
                client: mock_api_server(),
                node: "vn".to_owned(),
            };
            let api = KubeletApi::bind(
                "127.0.0.1:0".parse().unwrap(),
                &tls,
                registry,
                backend,
                auth,
            )
            .await
            .unwrap();
            let addr = api.local_addr().unwrap();
            let shutdown = CancellationToken::new();
            let server = tokio::spawn(api.serve(shutdown.clone()));

            let (client_cert, client_key) = pki.leaf(&[], true);
            let client = Some((client_cert.as_str(), client_key.as_str()));
            assert_eq!(
                get(addr, &pki.ca_pem, client, "/containerLogs/shop/web/app").await,
                Ok((200, "listening\nGET / -> 200\n".to_owned()))
            );
            let (status, body) = get(addr, &pki.ca_pem, client, "/containerLogs/shop/nope/app")
                .await
                .unwrap();
            assert_eq!(status, 404, "{body}");
            assert!(body.contains("shop/nope"), "{body}");
            let (status, _) = get(addr, &pki.ca_pem, client, "/containerLogs/shop/web/other")
                .await
                .unwrap();
            assert_eq!(status, 404);
            let (status, _) = get(
                addr,
                &pki.ca_pem,
                client,
                "/containerLogs/shop/web/app?tailLines=x",
            )
            .await
            .unwrap();
            assert_eq!(status, 400);

            // No credentials: health only.
            assert_eq!(
                get(addr, &pki.ca_pem, None, "/healthz").await,
                Ok((200, "ok".to_owned()))
            );
            let (status, _) = get(addr, &pki.ca_pem, None, "/containerLogs/shop/web/app")
                .await
                .unwrap();
            assert_eq!(status, 401);
            // A certificate of the cluster CA whose user may not: forbidden.
            let (other_cert, other_key) = pki.leaf_named("someone", &[], true);
            let (status, body) = get(
                addr,
                &pki.ca_pem,
                Some((&other_cert, &other_key)),
                "/containerLogs/shop/web/app",
            )
            .await
            .unwrap();
            assert_eq!(status, 403, "{body}");
            // A certificate from another CA: refused.
            let other = Pki::new();
            let (rogue_cert, rogue_key) = other.leaf(&[], true);
            assert!(
                get(
                    addr,
                    &pki.ca_pem,
                    Some((&rogue_cert, &rogue_key)),
                    "/healthz"
                )
                .await
                .is_err()
            );
            shutdown.cancel();
            server.await.unwrap();
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
