//! The function backend serving registered functions on pod addresses, over real sockets.

use std::net::IpAddr;
use std::time::Duration;

use faas_core::{FunctionDefinition, Registry};
use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig, function_image};
use faas_k8s::node::{
    AddressPool, BackendError, ContainerLaunch, ContainerState, LogOptions, PodBackend, PodKey,
    PodLaunch,
};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

#[path = "support/root.rs"]
mod root;

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

async fn shout(text: String) -> String {
    text.to_uppercase()
}

/// Told when a `hold` call is running; a `hold` call answers once told to.
static HOLD_STARTED: Notify = Notify::const_new();
static HOLD_RELEASE: Notify = Notify::const_new();

async fn hold(_: String) -> String {
    HOLD_STARTED.notify_one();
    HOLD_RELEASE.notified().await;
    "held".to_owned()
}

fn backend(range: u8) -> FunctionBackend {
    let registry = Registry::from([
        FunctionDefinition::from_handler("hello", hello),
        FunctionDefinition::from_handler("shout", shout),
        FunctionDefinition::from_handler("hold", hold),
    ]);
    FunctionBackend::new(
        FunctionBackendConfig::new(registry).with_addresses(AddressPool::new(
            format!("127.78.{range}.0/24").parse().unwrap(),
        )),
    )
}

fn key(name: &str) -> PodKey {
    PodKey::new("default", name, format!("uid-{name}"))
}

fn function_pod(name: &str, function: &str) -> PodLaunch {
    PodLaunch::new(
        key(name),
        vec![ContainerLaunch::new("function", function_image(function))],
    )
}

/// Sends one request and returns (status code, body).
async fn request(
    ip: IpAddr,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect((ip, port)).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: pod\r\ncontent-type: text/plain\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap();
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_pod_answers_on_its_own_address() {
    let backend = backend(1);
    let status = backend
        .create(function_pod("hello", "hello"))
        .await
        .unwrap();
    let ip = status.pod_ip.unwrap();
    assert!(ip.to_string().starts_with("127.78.1."), "{ip}");
    assert!(matches!(
        status.container("function").unwrap().state,
        ContainerState::Running { .. }
    ));

    // As the OpenFaaS watchdog: the pod's root calls the function; so does /function/<name>.
    assert_eq!(
        request(ip, 8080, "POST", "/", "pod").await.unwrap(),
        (200, "hello, pod".to_owned())
    );
    assert_eq!(
        request(ip, 8080, "POST", "/function/hello", "path")
            .await
            .unwrap(),
        (200, "hello, path".to_owned())
    );
    let (code, _) = request(ip, 8080, "POST", "/function/shout", "x")
        .await
        .unwrap();
    assert_eq!(code, 404, "a pod serves only its own function");
    assert_eq!(
        request(ip, 8080, "GET", "/_/health", "").await.unwrap().0,
        200
    );

    let logs = backend
        .logs(&key("hello"), "function", LogOptions::default())
        .await
        .unwrap();
    let chunks: Vec<_> = logs.map(|c| c.unwrap()).collect().await;
    let text = String::from_utf8(chunks.concat()).unwrap();
    assert!(text.contains("serving hello"), "{text}");
    assert!(text.lines().count() >= 3, "a line per call: {text}");

    backend
        .restart_container(&key("hello"), "function")
        .await
        .unwrap();
    let status = backend.status(&key("hello")).await.unwrap().unwrap();
    let container = status.container("function").unwrap();
    assert_eq!(container.restart_count, 1);
    assert_eq!(container.last_termination.as_ref().unwrap().exit_code, 0);
    assert_eq!(
        request(ip, 8080, "POST", "/", "again").await.unwrap(),
        (200, "hello, again".to_owned())
    );
    assert!(matches!(
        backend
            .exec(&key("hello"), "function", vec!["true".into()])
            .await,
        Err(BackendError::Io(_))
    ));
    backend
        .delete(&key("hello"), Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_function_pods_share_a_port_and_delete_stops_serving() {
    let backend = backend(2);
    let mut events = backend.events();
    let a = backend.create(function_pod("a", "hello")).await.unwrap();
    let b = backend.create(function_pod("b", "shout")).await.unwrap();
    let (ip_a, ip_b) = (a.pod_ip.unwrap(), b.pod_ip.unwrap());
    assert_ne!(ip_a, ip_b);
    assert_eq!(events.next().await, Some(key("a")));
    assert_eq!(events.next().await, Some(key("b")));
    assert_eq!(
        request(ip_a, 8080, "POST", "/", "a").await.unwrap().1,
        "hello, a"
    );
    assert_eq!(request(ip_b, 8080, "POST", "/", "b").await.unwrap().1, "B");

    backend
        .delete(&key("a"), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        request(ip_a, 8080, "POST", "/", "a").await.is_err(),
        "a deleted pod no longer listens"
    );
    assert!(backend.status(&key("a")).await.unwrap().is_none());
    assert_eq!(request(ip_b, 8080, "POST", "/", "b").await.unwrap().1, "B");
    assert_eq!(backend.list().await.unwrap().len(), 1);
    backend
        .delete(&key("b"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(backend.config().addresses.in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_that_name_no_function_are_refused() {
    let backend = backend(3);
    for (image, needle) in [
        (function_image("missing"), "hello, hold, shout"),
        ("nginx:1.27".to_owned(), "faas.dev/function/"),
    ] {
        let pod = PodLaunch::new(key("bad"), vec![ContainerLaunch::new("c", image.clone())]);
        match backend.create(pod).await.unwrap_err() {
            BackendError::InvalidImage { image: got, reason } => {
                assert_eq!(got, image);
                assert!(reason.contains(needle), "{reason}");
            }
            other => panic!("expected InvalidImage, got {other:?}"),
        }
    }
    // Two containers on one port of one address: the second cannot listen.
    let clash = PodLaunch::new(
        key("clash"),
        vec![
            ContainerLaunch::new("one", function_image("hello")),
            ContainerLaunch::new("two", function_image("shout")),
        ],
    );
    let err = backend.create(clash).await.unwrap_err();
    assert!(
        matches!(err, BackendError::Start { ref container, .. } if container == "two"),
        "{err:?}"
    );
    assert!(backend.list().await.unwrap().is_empty());
    assert_eq!(backend.config().addresses.in_use(), 0);

    // Declared ports are honoured.
    let ports = PodLaunch::new(
        key("ports"),
        vec![
            ContainerLaunch::new("one", function_image("hello")).with_ports(vec![9001]),
            ContainerLaunch::new("two", function_image("shout")).with_ports(vec![9002]),
        ],
    );
    let ip = backend.create(ports).await.unwrap().pod_ip.unwrap();
    assert_eq!(
        request(ip, 9001, "POST", "/", "x").await.unwrap().1,
        "hello, x"
    );
    assert_eq!(request(ip, 9002, "POST", "/", "x").await.unwrap().1, "X");
    backend.shutdown(Duration::from_secs(5)).await;
    assert!(request(ip, 9001, "POST", "/", "x").await.is_err());
}

/// Needs root (see `support/root.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_pods_can_live_in_a_network_namespace() {
    if !root::may_run("function_pods_can_live_in_a_network_namespace") {
        return;
    }
    use faas_k8s::node::network::PodNetwork;
    let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
    let backend = FunctionBackend::new(
        FunctionBackendConfig::new(registry)
            .with_addresses(AddressPool::new("10.248.1.0/24".parse().unwrap()))
            .with_network(PodNetwork::namespace("faasfnns", "10.248.0.0/16")),
    );
    let status = match backend.create(function_pod("ns", "hello")).await {
        Ok(status) => status,
        Err(e) => panic!("a pod network namespace needs root: {e:?}"),
    };
    let ip = status.pod_ip.unwrap();
    assert!(ip.to_string().starts_with("10.248.1."), "{ip}");
    assert_eq!(
        request(ip, 8080, "POST", "/", "ns").await.unwrap(),
        (200, "hello, ns".to_owned())
    );
    backend
        .delete(&key("ns"), Duration::from_secs(5))
        .await
        .unwrap();
    // The namespace refuses an address it no longer has at once (bounded so that a dropped
    // packet fails the test instead of waiting for TCP to give up).
    let after = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::net::TcpStream::connect((ip, 8080)),
    )
    .await
    .expect("a deleted pod's address is refused, not left unanswered");
    let err = after.expect_err("a deleted pod stops serving");
    assert_eq!(err.kind(), std::io::ErrorKind::HostUnreachable, "{err}");

    // The namespace lost its last pod address but keeps its routes: the next pod answers.
    let ip = backend
        .create(function_pod("ns2", "hello"))
        .await
        .unwrap()
        .pod_ip
        .unwrap();
    // Bounded so that a lost route fails the test instead of waiting for TCP's own timeout.
    let answer = tokio::time::timeout(
        Duration::from_secs(60),
        request(ip, 8080, "POST", "/", "again"),
    );
    let answer = answer.await.expect("the next pod answers").unwrap();
    assert_eq!(answer.1, "hello, again");
    backend
        .delete(&key("ns2"), Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pod_finishes_its_calls_in_flight_and_takes_no_new_ones() {
    let backend = backend(5);
    let held = backend.create(function_pod("held", "hold")).await.unwrap();
    let other = backend
        .create(function_pod("other", "hello"))
        .await
        .unwrap();
    let (ip, other_ip) = (held.pod_ip.unwrap(), other.pod_ip.unwrap());

    let call = tokio::spawn(request(ip, 8080, "POST", "/", "x"));
    HOLD_STARTED.notified().await;
    let deleting = tokio::spawn({
        let backend = backend.clone();
        async move { backend.delete(&key("held"), Duration::from_secs(60)).await }
    });

    // The pod's address stops taking connections while its call still runs.
    let refused = async {
        while tokio::net::TcpStream::connect((ip, 8080)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), refused)
        .await
        .expect("the deleted pod's address refuses new connections");
    assert!(!deleting.is_finished(), "the call in flight is waited for");
    // The other pod, on the same accept loop, serves on.
    assert_eq!(
        request(other_ip, 8080, "POST", "/", "b").await.unwrap(),
        (200, "hello, b".to_owned())
    );

    HOLD_RELEASE.notify_one();
    assert_eq!(call.await.unwrap().unwrap(), (200, "held".to_owned()));
    deleting.await.unwrap().unwrap();
    assert!(backend.status(&key("held")).await.unwrap().is_none());
    backend
        .delete(&key("other"), Duration::from_secs(5))
        .await
        .unwrap();
}
