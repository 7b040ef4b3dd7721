//! Single decisions of the worker: against a mock API server, a status write that conflicts
//! re-reads the pod and writes again on top of the fresh version, keeping what others wrote; and
//! against a scripted backend, a container that crashes again right after its restart.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use serde_json::json;

use super::super::super::backend::{
    BackendError, Capacity, ContainerRuntimeStatus, ContainerState, LogOptions, LogStream,
    PodBackend, PodEvents, PodKey, PodLaunch, PodRuntimeStatus, Terminated,
};
use super::super::super::config::{DEFAULT_MAX_API_REQUESTS, NodeConfig};
use super::super::super::testing::StaticBackend;
use super::super::record::SharedPodParts;
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
        services: kube::runtime::reflector::store().0,
        api_requests: tokio::sync::Semaphore::new(DEFAULT_MAX_API_REQUESTS),
        shared: SharedPodParts::default(),
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
    assert_eq!(worker.pod.metadata().resource_version.as_deref(), Some("3"));
    assert!(!worker.gone);
}

/// A container that exits as soon as it starts; every restart is one more run.
struct CrashingBackend {
    runs: std::sync::Mutex<u32>,
}

#[async_trait::async_trait]
impl PodBackend for CrashingBackend {
    fn name(&self) -> &str {
        "crashing"
    }
    fn capacity(&self) -> Capacity {
        Capacity::new("1", "1Gi", 1)
    }
    async fn create(&self, pod: PodLaunch) -> Result<PodRuntimeStatus, BackendError> {
        Err(BackendError::NotFound(pod.key))
    }
    async fn update(&self, _pod: PodLaunch) -> Result<(), BackendError> {
        Ok(())
    }
    async fn restart_container(&self, _key: &PodKey, _c: &str) -> Result<(), BackendError> {
        *self.runs.lock().unwrap() += 1;
        Ok(())
    }
    async fn delete(&self, _key: &PodKey, _grace: Duration) -> Result<(), BackendError> {
        Ok(())
    }
    async fn status(&self, key: &PodKey) -> Result<Option<PodRuntimeStatus>, BackendError> {
        let run = *self.runs.lock().unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(run) + 1);
        let exit = Terminated {
            message: None,
            exit_code: 1,
            signal: None,
            reason: "Error".into(),
            started_at: at,
            finished_at: at,
        };
        Ok(Some(PodRuntimeStatus::new(
            key.clone(),
            None,
            vec![ContainerRuntimeStatus::new(
                "app",
                ContainerState::Terminated(exit),
                run,
                None,
            )],
        )))
    }
    async fn list(&self) -> Result<Vec<PodRuntimeStatus>, BackendError> {
        Ok(Vec::new())
    }
    async fn logs(
        &self,
        key: &PodKey,
        _c: &str,
        _o: LogOptions,
    ) -> Result<LogStream, BackendError> {
        Err(BackendError::NotFound(key.clone()))
    }
    async fn exec(&self, key: &PodKey, _c: &str, _cmd: Vec<String>) -> Result<i32, BackendError> {
        Err(BackendError::NotFound(key.clone()))
    }
    fn events(&self) -> PodEvents {
        Box::pin(futures::stream::pending())
    }
}

#[tokio::test]
async fn a_container_that_crashes_again_at_once_waits_in_back_off_not_done() {
    let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let backend = Arc::new(CrashingBackend {
        runs: std::sync::Mutex::new(0),
    });
    let ctx = Arc::new(PodContext {
        client: kube::Client::new(service, "default"),
        backend: backend.clone(),
        config: Arc::new(NodeConfig::builder("vn").build().unwrap()),
        allocatable: Capacity::new("1", "1Gi", 10),
        services: kube::runtime::reflector::store().0,
        api_requests: tokio::sync::Semaphore::new(DEFAULT_MAX_API_REQUESTS),
        shared: SharedPodParts::default(),
    });
    let mut worker = Worker::new(ctx, serde_json::from_value(pod("1", None)).unwrap());
    worker.stage = Stage::Running;
    worker.supervise().await;
    // The first crash restarts at once; the new run's crash is decided about too: back-off.
    assert_eq!(*backend.runs.lock().unwrap(), 1);
    assert_eq!(worker.stage, Stage::Running, "an Always pod is never done");
    let track = worker.tracks.get("app").expect("a track");
    let (_, delay) = track
        .restart_due
        .expect("a restart is due after the back-off");
    assert_eq!(delay, Duration::from_secs(10));
}

/// A worker waits far more than it works: its task must not keep room for the deepest call it
/// makes (a status write, a launch) while it waits. Measured on the task's future, whose size is
/// what the runtime allocates per pod.
#[tokio::test]
async fn an_idle_worker_task_keeps_little() {
    let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Arc::new(PodContext {
        client: kube::Client::new(service, "default"),
        backend: Arc::new(StaticBackend { log: "" }),
        config: Arc::new(NodeConfig::builder("vn").build().unwrap()),
        allocatable: Capacity::new("1", "1Gi", 10),
        services: kube::runtime::reflector::store().0,
        api_requests: tokio::sync::Semaphore::new(DEFAULT_MAX_API_REQUESTS),
        shared: SharedPodParts::default(),
    });
    let worker = Box::new(Worker::new(
        ctx,
        serde_json::from_value(pod("1", None)).unwrap(),
    ));
    let (_tx, rx) = crate::node::pods::inbox::inbox();
    let task = worker.run(rx);
    let size = std::mem::size_of_val(&task);
    eprintln!(
        "worker task {size} bytes, Pod {} bytes, Worker {} bytes",
        std::mem::size_of::<Pod>(),
        std::mem::size_of::<Worker>()
    );
    assert!(size <= 1024, "the worker's task takes {size} bytes");
}
