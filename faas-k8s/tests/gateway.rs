//! The gateway on loopback, in front of real function runtimes: routing, the
//! activator (hold, release, bounds, deadline, drain), retries on another
//! endpoint, error bodies, `/system/*` with and without credentials, and
//! asynchronous calls with callbacks, retried by each function's own policy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{
    Context, FunctionDefinition, FunctionError, LocalExecutor, LocalProvider, Registry, RetryPolicy,
};
use faas_k8s::function::FunctionPolicy;
use faas_k8s::gateway::{
    AsyncCallPolicy, BasicAuth, EndpointAddress, FunctionKey, Gateway, GatewayConfig, RoutingTable,
};
use faas_triggers::{Runtime, RuntimeConfig};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous: the machine is shared; nothing here measures time.
const PATIENCE: Duration = Duration::from_secs(60);

async fn echo(body: Bytes) -> Bytes {
    body
}

async fn fail() -> Result<String, FunctionError> {
    Err(FunctionError::internal("always fails"))
}

/// The attempts each call id reached a counting function, as the function itself counts them.
static ATTEMPTS: std::sync::Mutex<std::collections::BTreeMap<String, u32>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Counts the attempt of its call, then fails (a retryable internal error).
async fn counted(context: Context) -> Result<String, FunctionError> {
    *ATTEMPTS
        .lock()
        .unwrap()
        .entry(context.call_id().to_string())
        .or_default() += 1;
    Err(FunctionError::internal("counted and failed"))
}

/// Counts the attempt of its call; the first attempt never answers, a later one does.
async fn stalled_once(context: Context) -> Result<String, FunctionError> {
    let attempt = {
        let mut attempts = ATTEMPTS.lock().unwrap();
        let seen = attempts.entry(context.call_id().to_string()).or_default();
        *seen += 1;
        *seen
    };
    if attempt == 1 {
        std::future::pending::<()>().await;
    }
    Ok(format!("answered at attempt {attempt}"))
}

/// The attempts the counting functions saw for `call_id`.
fn attempts_of(call_id: &str) -> u32 {
    ATTEMPTS.lock().unwrap().get(call_id).copied().unwrap_or(0)
}

fn functions() -> Registry {
    Registry::from([
        FunctionDefinition::from_handler("echo", echo),
        FunctionDefinition::from_handler("fail", fail),
        // The same failing function under three names, each given its own policy by a test.
        FunctionDefinition::from_handler("limited", counted),
        FunctionDefinition::from_handler("patient", counted),
        FunctionDefinition::from_handler("counted", counted),
        FunctionDefinition::from_handler("stalled", stalled_once),
    ])
}

/// The policy of a Function whose `spec.policy` asks for `attempts` and a short back-off.
fn policy_of_spec(attempts: i32, dead_letter: Option<&str>) -> AsyncCallPolicy {
    let mut spec = FunctionPolicy::default()
        .with_max_attempts(attempts)
        .with_backoff(Duration::from_millis(20));
    if let Some(target) = dead_letter {
        spec = spec.with_dead_letter(target);
    }
    AsyncCallPolicy::from_function_policy(Some(&spec), &RetryPolicy::default())
        .expect("a valid spec.policy")
}

/// A function runtime on a loopback port, as a pod would run it.
struct Pod {
    addr: SocketAddr,
    stop: faas_core::HostShutdown,
    task: JoinHandle<()>,
}

impl Pod {
    async fn start() -> Pod {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let runtime = Runtime::new(functions(), RuntimeConfig::default()).with_listener(listener);
        let stop = runtime.shutdown_handle();
        let task = tokio::spawn(async move {
            runtime.run().await.expect("the runtime serves");
        });
        Pod { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.shutdown();
        let _ = self.task.await;
    }
}

/// A gateway served on a loopback port.
struct TestGateway {
    url: String,
    table: Arc<RoutingTable>,
    stop: CancellationToken,
    task: JoinHandle<faas_k8s::Result<()>>,
}

impl TestGateway {
    async fn start(gateway: Gateway) -> TestGateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let table = gateway.routing_table();
        let stop = gateway.shutdown_handle();
        let task = tokio::spawn(gateway.serve(listener));
        TestGateway {
            url,
            table,
            stop,
            task,
        }
    }

    async fn with(config: GatewayConfig) -> TestGateway {
        TestGateway::start(Gateway::builder(config).build()).await
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Routes function `name` to `pod` alone (as its endpoint `<name>-1`).
    fn route(&self, name: &str, pod: &Pod) {
        self.table
            .set_endpoints(&key(name), vec![at(pod, &format!("{name}-1"))]);
    }

    /// POSTs `body` to `/function/{path}` through the gateway.
    async fn call(&self, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Answer {
        send(
            Method::POST,
            &format!("{}/function/{path}", self.url),
            headers,
            body,
        )
        .await
    }

    /// Sends `method` to `path` of the gateway.
    async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        send(method, &format!("{}{path}", self.url), headers, body).await
    }

    /// GETs `path` of the gateway.
    async fn get(&self, path: &str) -> Answer {
        send(Method::GET, &format!("{}{path}", self.url), &[], "").await
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn error_kind(&self) -> String {
        assert_eq!(self.headers["content-type"], "application/json");
        self.json()["error"]["kind"].as_str().unwrap().to_owned()
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Answer {
    let mut request = Request::new(Full::new(body.into()));
    *request.method_mut() = method;
    *request.uri_mut() = url.parse().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let response = tokio::time::timeout(PATIENCE, client().request(request))
        .await
        .expect("an answer in time")
        .expect("the request goes through");
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

fn key(name: &str) -> FunctionKey {
    FunctionKey::new("default", name)
}

fn at(pod: &Pod, name: &str) -> EndpointAddress {
    EndpointAddress::new(pod.addr).with_pod(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_to_a_ready_pod_and_keeps_the_call_id() {
    let pod = Pod::start().await;
    let gateway = TestGateway::with(GatewayConfig::default()).await;
    gateway.route("echo", &pod);

    let answer = gateway
        .call("echo", &[("x-call-id", "call-42")], "hello")
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "hello");
    assert_eq!(answer.headers["x-call-id"], "call-42");

    // `name.namespace` names the same function; a sub-path reaches it too.
    let answer = gateway.call("echo.default/a/b?x=1", &[], "sub").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "sub");
    assert!(answer.headers.contains_key("x-call-id"));

    // The function's own errors pass through in the same JSON shape.
    gateway.route("fail", &pod);
    let answer = gateway.call("fail", &[], "").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.error_kind(), "internal");

    let metrics = gateway.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(r#"faas_gateway_calls_total{function="default/echo",code="200"} 2"#),
        "{text}"
    );
    assert_eq!(gateway.table.load_of(&key("echo")).in_flight, 0);
    gateway.stop().await;
    pod.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_oversized_bodies_and_unknown_routes_are_json_errors() {
    let pod = Pod::start().await;
    let gateway = TestGateway::with(GatewayConfig::builder().body_limit(16).build()).await;
    gateway.route("echo", &pod);

    let missing = gateway.call("nobody", &[], "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_kind(), "not_found");
    let invalid = gateway.call("Not_A_Name", &[], "").await;
    assert_eq!(invalid.status, StatusCode::NOT_FOUND);
    let too_large = gateway.call("echo", &[], vec![b'x'; 17]).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.error_kind(), "payload_too_large");
    let route = gateway.get("/nowhere").await;
    assert_eq!(route.status, StatusCode::NOT_FOUND);
    assert_eq!(route.error_kind(), "not_found");
    let healthz = gateway.get("/healthz").await;
    assert_eq!(healthz.status, StatusCode::OK);
    gateway.stop().await;
    pod.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_at_zero_is_held_and_released_to_the_first_ready_pod() {
    let gateway = TestGateway::with(GatewayConfig::default()).await;
    let function = key("echo");
    gateway.table.set_endpoints(&function, vec![]);
    let mut wakes = gateway.table.wakes();
    wakes.borrow_and_update();

    let url = format!("{}/function/echo", gateway.url);
    let call = tokio::spawn(async move { send(Method::POST, &url, &[], "woken").await });
    let table = gateway.table.clone();
    eventually("the call to be held", || table.load_of(&function).held == 1).await;
    tokio::time::timeout(PATIENCE, wakes.changed())
        .await
        .expect("the autoscaler is told at once")
        .unwrap();

    let pod = Pod::start().await;
    gateway
        .table
        .set_endpoints(&function, vec![at(&pod, "echo-1")]);
    let answer = call.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "woken");
    assert_eq!(gateway.table.load_of(&function).held, 0);
    let metrics = gateway.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(r#"faas_gateway_cold_start_seconds_count{function="default/echo"} 1"#),
        "{text}"
    );
    gateway.stop().await;
    pod.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_calls_past_the_bound_get_429_and_past_their_deadline_504() {
    let gateway = TestGateway::with(GatewayConfig::builder().max_held(1).build()).await;
    let function = key("echo");
    gateway.table.set_endpoints(&function, vec![]);

    let url = format!("{}/function/echo", gateway.url);
    let first = tokio::spawn({
        let url = url.clone();
        async move { send(Method::POST, &url, &[("x-timeout", "2s")], "").await }
    });
    let table = gateway.table.clone();
    eventually("the first call to be held", || {
        table.load_of(&function).held == 1
    })
    .await;
    let second = send(Method::POST, &url, &[], "").await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.error_kind(), "overloaded");

    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(first.error_kind(), "timeout");
    assert!(first.json()["error"]["call_id"].is_string());
    assert_eq!(gateway.table.load_of(&function).held, 0);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_on_another_endpoint() {
    let pod = Pod::start().await;
    // An address nobody listens on: bound, then closed.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let gateway = TestGateway::with(GatewayConfig::default()).await;
    gateway.table.set_endpoints(
        &key("echo"),
        vec![
            EndpointAddress::new(dead).with_pod("gone"),
            at(&pod, "echo-1"),
        ],
    );
    for n in 0..20 {
        let answer = gateway.call("echo", &[], format!("{n}")).await;
        assert_eq!(answer.status, StatusCode::OK, "call {n}");
        assert_eq!(answer.body, format!("{n}"));
    }
    gateway.stop().await;
    pod.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_gateway_drains_its_held_calls() {
    let gateway = TestGateway::with(GatewayConfig::default()).await;
    let function = key("echo");
    gateway.table.set_endpoints(&function, vec![]);
    let url = format!("{}/function/echo", gateway.url);
    let call = tokio::spawn(async move { send(Method::POST, &url, &[], "kept").await });
    let table = gateway.table.clone();
    eventually("the call to be held", || table.load_of(&function).held == 1).await;

    gateway.stop.cancel();
    let pod = Pod::start().await;
    gateway
        .table
        .set_endpoints(&function, vec![at(&pod, "echo-1")]);
    let answer = call.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "kept");
    gateway.task.await.unwrap().unwrap();
    pod.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_routes_need_credentials_and_manage_functions_through_the_provider() {
    let executor = LocalExecutor::new(Registry::new());
    let provider = Arc::new(LocalProvider::new(functions(), executor.dispatcher()));
    let gateway = TestGateway::start(
        Gateway::builder(
            GatewayConfig::builder()
                .credentials(BasicAuth::new("admin", "pw"))
                .build(),
        )
        .provider(provider)
        .build(),
    )
    .await;
    let auth = ("authorization", "Basic YWRtaW46cHc="); // admin:pw
    let wrong = ("authorization", "Basic YWRtaW46bm8="); // admin:no

    for (method, path) in [
        (Method::GET, "/system/functions"),
        (Method::POST, "/system/functions"),
        (Method::GET, "/system/function/echo"),
        (Method::POST, "/system/scale-function/echo"),
        (Method::GET, "/system/info"),
    ] {
        for headers in [&[][..], &[wrong][..]] {
            let answer = gateway.request(method.clone(), path, headers, "{}").await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert!(answer.headers.contains_key("www-authenticate"));
            answer.error_kind();
        }
    }

    let deploy = gateway
        .request(
            Method::POST,
            "/system/functions",
            &[auth],
            r#"{"service":"echo","image":"echo","labels":{"tier":"web"}}"#,
        )
        .await;
    assert_eq!(deploy.status, StatusCode::ACCEPTED);
    let bad = gateway
        .request(Method::POST, "/system/functions", &[auth], "{")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error_kind(), "bad_input");

    let list = gateway
        .request(Method::GET, "/system/functions", &[auth], "")
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    assert_eq!(list[0]["name"], "echo");
    assert_eq!(list[0]["labels"]["tier"], "web");
    assert!(list[0]["availableReplicas"].is_u64());

    let scale = gateway
        .request(
            Method::POST,
            "/system/scale-function/echo",
            &[auth],
            r#"{"serviceName":"echo","replicas":0}"#,
        )
        .await;
    assert_eq!(scale.status, StatusCode::ACCEPTED);
    let described = gateway
        .request(Method::GET, "/system/function/echo", &[auth], "")
        .await;
    assert_eq!(described.status, StatusCode::OK);
    assert_eq!(described.json()["replicas"], 0);

    let update = gateway
        .request(
            Method::PUT,
            "/system/functions",
            &[auth],
            r#"{"service":"echo","image":"echo","envVars":{"A":"1"}}"#,
        )
        .await;
    assert_eq!(update.status, StatusCode::ACCEPTED);
    let removed = gateway
        .request(
            Method::DELETE,
            "/system/functions",
            &[auth],
            r#"{"functionName":"echo"}"#,
        )
        .await;
    assert_eq!(removed.status, StatusCode::ACCEPTED);
    let gone = gateway
        .request(Method::GET, "/system/function/echo", &[auth], "")
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_kind(), "not_found");

    let info = gateway
        .request(Method::GET, "/system/info", &[auth], "")
        .await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.json()["asyncQueue"], "memory");
    assert_eq!(info.json()["provider"]["orchestration"], "kubernetes");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_routes_can_require_the_credentials_too() {
    let pod = Pod::start().await;
    let gateway = TestGateway::with(
        GatewayConfig::builder()
            .credentials(BasicAuth::new("admin", "pw"))
            .protect_functions(true)
            .build(),
    )
    .await;
    gateway.route("echo", &pod);
    let url = format!("{}/function/echo", gateway.url);
    assert_eq!(
        send(Method::POST, &url, &[], "x").await.status,
        StatusCode::UNAUTHORIZED
    );
    let answer = send(
        Method::POST,
        &url,
        &[("authorization", "Basic YWRtaW46cHc=")],
        "x",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    gateway.stop().await;
    pod.stop().await;
}

/// A receiver of callbacks on loopback: each POST's headers and body.
async fn callback_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
) {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/done",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sender = sender.clone();
            async move {
                let _ = sender.send((headers, body));
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_answer_202_and_post_their_result_to_the_callback() {
    let pod = Pod::start().await;
    let gateway = TestGateway::with(GatewayConfig::default()).await;
    gateway.route("echo", &pod);
    gateway.route("fail", &pod);
    let (callback, mut results) = callback_receiver().await;

    let accepted = send(
        Method::POST,
        &format!("{}/async-function/echo", gateway.url),
        &[("x-callback-url", &callback), ("x-call-id", "async-1")],
        "later",
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    assert_eq!(accepted.headers["x-call-id"], "async-1");
    let (headers, body) = next_callback(&mut results).await;
    assert_eq!(body, "later");
    assert_eq!(headers["x-call-id"], "async-1");
    assert_eq!(headers["x-function-status"], "200");

    // A function that always fails: every attempt, then the callback with the error.
    let accepted = send(
        Method::POST,
        &format!("{}/async-function/fail", gateway.url),
        &[("x-callback-url", &callback)],
        "",
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let (headers, body) = next_callback(&mut results).await;
    assert_eq!(headers["x-function-status"], "500");
    assert_eq!(headers["x-function-attempts"], "3");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["kind"], "internal");

    let bad = send(
        Method::POST,
        &format!("{}/async-function/echo", gateway.url),
        &[("x-callback-url", "ftp://nowhere")],
        "",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    gateway.stop().await;
    pod.stop().await;
}

/// Receives the callback of one asynchronous call: its headers and body.
async fn next_callback(
    results: &mut tokio::sync::mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
) -> (HeaderMap, Bytes) {
    tokio::time::timeout(PATIENCE, results.recv())
        .await
        .expect("a callback in time")
        .expect("the receiver runs")
}

/// The headers of the next callback.
async fn next_result(
    results: &mut tokio::sync::mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
) -> HeaderMap {
    next_callback(results).await.0
}

/// Queues one asynchronous call of `function` with `call_id`, its result to `callback`.
async fn queue_call(gateway: &str, function: &str, call_id: &str, callback: &str) {
    let accepted = send(
        Method::POST,
        &format!("{gateway}/async-function/{function}"),
        &[("x-callback-url", callback), ("x-call-id", call_id)],
        "payload",
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{function}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_retry_by_their_functions_own_policy_in_memory() {
    use faas_core::InMemoryDeadLetter;

    let pod = Pod::start().await;
    let dead_letter = Arc::new(InMemoryDeadLetter::new());
    let gateway = TestGateway::start(
        Gateway::builder(GatewayConfig::default())
            .async_retry(RetryPolicy::new(2).with_initial_backoff(Duration::from_millis(20)))
            .dead_letter(dead_letter.clone())
            .build(),
    )
    .await;
    let (callback, mut results) = callback_receiver().await;
    let (function_dead_letter, mut letters) = callback_receiver().await;
    for name in ["limited", "patient", "counted"] {
        gateway.route(name, &pod);
    }
    gateway
        .table
        .set_async_policy(&key("limited"), Some(policy_of_spec(1, None)));
    gateway.table.set_async_policy(
        &key("patient"),
        Some(policy_of_spec(3, Some(&function_dead_letter))),
    );

    // One attempt, three attempts, and the gateway's two for the function without a policy.
    for (function, attempts) in [("limited", 1), ("patient", 3), ("counted", 2)] {
        let call_id = format!("memory-{function}");
        queue_call(&gateway.url, function, &call_id, &callback).await;
        let headers = next_result(&mut results).await;
        assert_eq!(headers["x-call-id"], call_id.as_str());
        assert_eq!(headers["x-function-status"], "500");
        assert_eq!(
            headers["x-function-attempts"],
            attempts.to_string().as_str()
        );
        assert_eq!(attempts_of(&call_id), attempts, "{function}");
    }

    // The function naming a dead letter got its failed call POSTed there; the others went to the
    // gateway's.
    let (headers, body) = tokio::time::timeout(PATIENCE, letters.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body, "payload");
    assert_eq!(headers["faas-call-id"], "memory-patient");
    assert_eq!(headers["faas-function"], "default/patient");
    assert_eq!(headers["faas-attempts"], "3");
    assert_eq!(headers["faas-error-kind"], "internal");
    let mut kept: Vec<(String, u32)> = dead_letter
        .entries()
        .iter()
        .map(|l| (l.call_id.to_string(), l.attempts))
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            ("memory-counted".to_owned(), 2),
            ("memory-limited".to_owned(), 1)
        ]
    );

    // Forgetting the policy puts the function back on the gateway's.
    gateway.table.set_async_policy(&key("limited"), None);
    queue_call(&gateway.url, "limited", "memory-limited-again", &callback).await;
    let headers = next_result(&mut results).await;
    assert_eq!(headers["x-function-attempts"], "2");
    assert_eq!(attempts_of("memory-limited-again"), 2);

    // The function's deadline bounds each attempt, far below the call's own timeout: the
    // first attempt, which never answers, fails at it and the second answers.
    gateway.route("stalled", &pod);
    let spec = FunctionPolicy::default()
        .with_deadline(Duration::from_millis(300))
        .with_max_attempts(3)
        .with_backoff(Duration::from_millis(20));
    gateway.table.set_async_policy(
        &key("stalled"),
        Some(AsyncCallPolicy::from_function_policy(Some(&spec), &RetryPolicy::default()).unwrap()),
    );
    let accepted = send(
        Method::POST,
        &format!("{}/async-function/stalled", gateway.url),
        &[
            ("x-callback-url", callback.as_str()),
            ("x-call-id", "memory-stalled"),
            ("x-timeout", "600s"),
        ],
        "payload",
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let (headers, body) = next_callback(&mut results).await;
    assert_eq!(headers["x-call-id"], "memory-stalled");
    assert_eq!(headers["x-function-status"], "200");
    assert_eq!(headers["x-function-attempts"], "2");
    assert_eq!(body, "answered at attempt 2");
    assert_eq!(attempts_of("memory-stalled"), 2);
    gateway.stop().await;
    pod.stop().await;
}

/// The server of `FAAS_NATS_URL` (`cargo xtask services up`, then
/// `eval "$(cargo xtask services env)"`), as a JetStream context.
#[cfg(feature = "nats")]
async fn jetstream() -> async_nats::jetstream::Context {
    let url = std::env::var("FAAS_NATS_URL").expect(
        "FAAS_NATS_URL is not set: run `cargo xtask services up` and \
         `eval \"$(cargo xtask services env)\"` first",
    );
    let client = async_nats::connect(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("no NATS server answers at {url}: {e}"));
    async_nats::jetstream::new(client)
}

/// A run id, and a stream, subjects and consumer of this run alone, named after `prefix`.
#[cfg(feature = "nats")]
fn fresh_queue(prefix: &str) -> (String, faas_k8s::gateway::JetStreamQueueConfig) {
    let run = format!("{:08x}", fastrand::u32(..));
    let config = faas_k8s::gateway::JetStreamQueueConfig::default()
        .with_stream(format!("{}_{run}", prefix.to_uppercase()))
        .with_subject_prefix(format!("{prefix}.{run}"))
        .with_consumer(format!("gateway-{run}"));
    (run, config)
}

#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_on_jetstream_survive_a_gateway_restart_and_dead_letter_after_the_last_attempt()
{
    use faas_core::{InMemoryDeadLetter, RetryPolicy};
    use faas_k8s::gateway::JetStreamQueue;

    let (run, queue_config) = fresh_queue("gwtest");
    let context = jetstream().await;
    let retry = RetryPolicy::new(2)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_millis(200));
    let config = || {
        GatewayConfig::builder()
            .drain_timeout(Duration::from_secs(2))
            .async_workers(4)
            .build()
    };
    let (callback, mut results) = callback_receiver().await;

    // The first gateway takes the calls while the function has no ready replica: they are held,
    // never answered, when it stops.
    let first = TestGateway::start(
        Gateway::builder(config())
            .jetstream(
                JetStreamQueue::connect(context.clone(), queue_config.clone())
                    .await
                    .expect("the stream and the consumer are created"),
            )
            .async_retry(retry.clone())
            .build(),
    )
    .await;
    first.table.set_endpoints(&key("echo"), Vec::new());
    let info = first.get("/system/info").await;
    assert_eq!(info.json()["asyncQueue"], "nats-jetstream");
    let calls = 20;
    for n in 0..calls {
        let call_id = format!("durable-{run}-{n}");
        let accepted = send(
            Method::POST,
            &format!("{}/async-function/echo", first.url),
            &[("x-callback-url", &callback), ("x-call-id", &call_id)],
            format!("call {n}"),
        )
        .await;
        assert_eq!(accepted.status, StatusCode::ACCEPTED, "{n}");
    }
    first.stop().await;
    assert!(results.try_recv().is_err(), "nothing ran while at zero");

    // A new gateway on the same stream, the function now ready: every call is run once.
    let pod = Pod::start().await;
    let dead_letter = Arc::new(InMemoryDeadLetter::new());
    let second = TestGateway::start(
        Gateway::builder(config())
            .jetstream(
                JetStreamQueue::connect(context.clone(), queue_config.clone())
                    .await
                    .expect("the stream and the consumer are found again"),
            )
            .async_retry(retry)
            .dead_letter(dead_letter.clone())
            .build(),
    )
    .await;
    second.route("echo", &pod);
    second.route("fail", &pod);
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < calls {
        let (headers, body) = tokio::time::timeout(PATIENCE, results.recv())
            .await
            .expect("every queued call is answered after the restart")
            .unwrap();
        assert_eq!(headers["x-function-status"], "200");
        let call_id = headers["x-call-id"].to_str().unwrap().to_owned();
        let n: usize = call_id.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(body, format!("call {n}"));
        answered.insert(n, call_id);
    }
    assert_eq!(answered.len(), calls, "none lost");

    // A function that always fails: each attempt is a delivery, then the dead letter and the
    // callback with the error.
    let accepted = send(
        Method::POST,
        &format!("{}/async-function/fail", second.url),
        &[
            ("x-callback-url", &callback),
            ("x-call-id", &format!("failing-{run}")),
        ],
        "",
    )
    .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let (headers, body) = next_callback(&mut results).await;
    assert_eq!(headers["x-function-status"], "500");
    assert_eq!(headers["x-function-attempts"], "2");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["kind"], "internal");
    let letters = dead_letter.entries();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 2);
    assert_eq!(letters[0].function, "default/fail");

    // Everything settled: the work queue is empty.
    let stream = context
        .get_stream(queue_config.stream())
        .await
        .expect("the stream");
    eventually_async("the stream to be empty", || {
        let mut stream = stream.clone();
        async move {
            stream
                .info()
                .await
                .is_ok_and(|info| info.state.messages == 0)
        }
    })
    .await;
    second.stop().await;
    pod.stop().await;
    let _ = context.delete_stream(queue_config.stream()).await;
}

#[cfg(feature = "nats")]
async fn eventually_async<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(PATIENCE, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_on_jetstream_retry_by_their_functions_own_policy() {
    use async_nats::jetstream::stream;
    use faas_core::InMemoryDeadLetter;
    use faas_k8s::gateway::JetStreamQueue;

    let (run, queue_config) = fresh_queue("gwpolicy");
    let context = jetstream().await;
    // The stream that captures the dead-letter subject `patient` names.
    let dead_subject = format!("gwdead.{run}.patient");
    let mut dead_stream = context
        .create_stream(stream::Config {
            name: format!("GWDEAD_{run}"),
            subjects: vec![dead_subject.clone()],
            ..stream::Config::default()
        })
        .await
        .expect("the dead-letter stream is created");
    let pod = Pod::start().await;
    let dead_letter = Arc::new(InMemoryDeadLetter::new());
    let gateway = TestGateway::start(
        Gateway::builder(GatewayConfig::default())
            .jetstream(
                JetStreamQueue::connect(context.clone(), queue_config.clone())
                    .await
                    .expect("the stream and the consumer are created"),
            )
            .async_retry(RetryPolicy::new(2).with_initial_backoff(Duration::from_millis(20)))
            .dead_letter(dead_letter.clone())
            .build(),
    )
    .await;
    for name in ["limited", "patient"] {
        gateway.route(name, &pod);
    }
    gateway
        .table
        .set_async_policy(&key("limited"), Some(policy_of_spec(1, None)));
    gateway.table.set_async_policy(
        &key("patient"),
        Some(policy_of_spec(3, Some(&dead_subject))),
    );
    let (callback, mut results) = callback_receiver().await;

    for (function, attempts) in [("limited", 1), ("patient", 3)] {
        let call_id = format!("jetstream-{run}-{function}");
        queue_call(&gateway.url, function, &call_id, &callback).await;
        let headers = next_result(&mut results).await;
        assert_eq!(headers["x-call-id"], call_id.as_str());
        assert_eq!(
            headers["x-function-attempts"],
            attempts.to_string().as_str()
        );
        assert_eq!(
            attempts_of(&call_id),
            attempts,
            "{function}: one delivery per attempt"
        );
    }
    // `limited` names no dead letter: the gateway's took it; `patient`'s went to its subject.
    let letters = dead_letter.entries();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].function, "default/limited");
    assert_eq!(letters[0].attempts, 1);
    let info = dead_stream.info().await.expect("the dead-letter stream");
    assert_eq!(info.state.messages, 1);
    let letter = dead_stream
        .get_last_raw_message_by_subject(&dead_subject)
        .await
        .expect("the letter");
    assert_eq!(letter.headers.get("Faas-Attempts").unwrap().as_str(), "3");
    assert_eq!(
        letter.headers.get("Faas-Call-Id").unwrap().as_str(),
        format!("jetstream-{run}-patient")
    );
    gateway.stop().await;
    pod.stop().await;
    let _ = context.delete_stream(queue_config.stream()).await;
    let _ = context.delete_stream(format!("GWDEAD_{run}")).await;
}
