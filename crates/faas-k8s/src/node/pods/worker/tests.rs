//! A single decision against a mock API server: a status write that conflicts re-reads the pod and
//! writes again on top of the fresh version, keeping what others wrote.

use std::sync::Arc;
use std::time::SystemTime;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use serde_json::json;

use super::super::super::backend::{
    Capacity, ContainerRuntimeStatus, ContainerState, PodRuntimeStatus,
};
use super::super::super::config::NodeConfig;
use super::super::super::testing::StaticBackend;
use super::super::state::Stage;
use super::{PodContext, Worker};

fn pod(resource_version: &str, qos: Option<&str>) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": resource_version},
        "spec": {"nodeName": "vn", "containers": [{"name": "app", "image": "local/app"}]},
        "status": qos.map(|q| json!({"qosClass": q})),
    })
}

fn respond(status: u16, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

async fn body_json(request: Request<Body>) -> serde_json::Value {
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_conflicting_status_write_is_retried_on_the_fresh_pod() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let ctx = Arc::new(PodContext {
        client,
        backend: Arc::new(StaticBackend { log: "" }),
        config: Arc::new(NodeConfig::builder("vn").build().unwrap()),
        allocatable: Capacity::new("1", "1Gi", 10),
    });
    let initial: Pod = serde_json::from_value(pod("1", None)).unwrap();
    let mut worker = Worker::new(ctx, initial);
    worker.stage = Stage::Running;
    worker.runtime = Some(PodRuntimeStatus::new(
        worker.key.clone(),
        Some("127.1.0.2".parse().unwrap()),
        vec![ContainerRuntimeStatus::new(
            "app",
            ContainerState::Running {
                started_at: SystemTime::now(),
            },
            0,
            None,
        )],
    ));
    let task = tokio::spawn(async move {
        worker.write_status().await;
        worker
    });

    let (request, send) = handle.next_request().await.expect("a status write");
    assert_eq!(request.method(), Method::PUT);
    assert_eq!(
        request.uri().path(),
        "/api/v1/namespaces/shop/pods/web/status"
    );
    let first = body_json(request).await;
    assert_eq!(first["metadata"]["resourceVersion"], "1");
    send.send_response(respond(
        409,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict",
               "code": 409, "message": "the object has been modified"}),
    ));

    let (request, send) = handle.next_request().await.expect("a re-read");
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().path(), "/api/v1/namespaces/shop/pods/web");
    send.send_response(respond(200, pod("2", Some("BestEffort"))));

    let (request, send) = handle.next_request().await.expect("a second status write");
    assert_eq!(request.method(), Method::PUT);
    let mut second = body_json(request).await;
    assert_eq!(second["metadata"]["resourceVersion"], "2");
    assert_eq!(
        second["status"]["qosClass"], "BestEffort",
        "what others wrote survives"
    );
    assert_eq!(second["status"]["phase"], "Running");
    assert_eq!(second["status"]["podIP"], "127.1.0.2");
    second["metadata"]["resourceVersion"] = json!("3");
    send.send_response(respond(200, second));

    let worker = task.await.unwrap();
    assert_eq!(worker.pod.metadata.resource_version.as_deref(), Some("3"));
    assert!(!worker.gone);
}
