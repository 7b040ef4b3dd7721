//! The Kubernetes events trigger (`faas_triggers::kube`) against the real
//! control plane: changes reach the function as CloudEvents, a restart
//! resumes from the checkpoint without losing a change, a failed call gets
//! the change again, and an expired resourceVersion (410 Gone) relists.

#[path = "../../faas-triggers/tests/events/mod.rs"]
mod events;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use events::{Host, Recorder, Seen, accept};
use faas_core::trigger::LagSource as _;
use faas_core::{FunctionError, InvocationPolicy, Registry, RetryPolicy};
use faas_e2e::{TestCluster, TestNamespace};
use faas_triggers::Error;
use faas_triggers::kube::{
    CheckpointStore, EVENT_TYPE_ADDED, EVENT_TYPE_DELETED, EVENT_TYPE_MODIFIED, KubeTrigger,
    KubeTriggerConfig,
};
use k8s_openapi::api::core::v1::{ConfigMap, Event, ObjectReference};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};

/// The label the test's ConfigMaps carry (the namespace's own
/// `kube-root-ca.crt` does not).
const LABEL: &str = "faas.rs/kube-events-test";

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(LABEL.to_owned(), "yes".to_owned())])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("value".to_owned(), value.to_owned())])),
        ..ConfigMap::default()
    }
}

async fn create(ns: &TestNamespace, name: &str, value: &str) -> ConfigMap {
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &config_map(name, value))
        .await
        .expect("create the ConfigMap")
}

async fn change(ns: &TestNamespace, name: &str, value: &str) -> ConfigMap {
    let patch = serde_json::json!({ "data": { "value": value } });
    ns.api::<ConfigMap>()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("change the ConfigMap")
}

async fn delete(ns: &TestNamespace, name: &str) {
    ns.api::<ConfigMap>()
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete the ConfigMap");
}

fn watching(ns: &TestNamespace) -> KubeTriggerConfig {
    KubeTriggerConfig::new("v1", "ConfigMap")
        .with_namespace(ns.name())
        .with_label_selector(format!("{LABEL}=yes"))
}

fn trigger(cluster: &TestCluster, config: KubeTriggerConfig) -> KubeTrigger {
    KubeTrigger::new("react", config)
        .expect("a valid configuration")
        .with_client(cluster.client())
}

fn checkpoint_file(ns: &TestNamespace) -> PathBuf {
    std::env::temp_dir()
        .join("faas-kube-events")
        .join(format!("{}.json", ns.name()))
}

/// What reached the function: (type, subject, value of `data.value`).
fn changes(seen: &[Seen]) -> Vec<(String, String, Option<String>)> {
    seen.iter()
        .map(|seen| {
            let object: serde_json::Value = serde_json::from_slice(&seen.data).unwrap();
            (
                seen.ty.clone(),
                seen.subject.clone().unwrap_or_default(),
                object["data"]["value"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn added(subject: &str, value: &str) -> (String, String, Option<String>) {
    (EVENT_TYPE_ADDED.into(), subject.into(), Some(value.into()))
}

fn modified(subject: &str, value: &str) -> (String, String, Option<String>) {
    (
        EVENT_TYPE_MODIFIED.into(),
        subject.into(),
        Some(value.into()),
    )
}

fn has(seen: &[Seen], ty: &str, subject: &str) -> bool {
    seen.iter()
        .any(|s| s.ty == ty && s.subject.as_deref() == Some(subject))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_changed_and_deleted_objects_reach_the_function_in_order() {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("kube-events").await.unwrap();
    let recorder = Recorder::default();
    let registry =
        Registry::from([recorder.function("react", accept(), InvocationPolicy::default())]);
    let trigger = trigger(&cluster, watching(&ns));
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    host.wait_ready_status(200).await;

    let created = create(&ns, "settings", "one").await;
    let subject = format!("{}/settings", ns.name());
    recorder
        .wait_until("the added event", |seen| {
            has(seen, EVENT_TYPE_ADDED, &subject)
        })
        .await;
    change(&ns, "settings", "two").await;
    recorder
        .wait_until("the modified event", |seen| {
            has(seen, EVENT_TYPE_MODIFIED, &subject)
        })
        .await;
    delete(&ns, "settings").await;
    recorder
        .wait_until("the deleted event", |seen| {
            has(seen, EVENT_TYPE_DELETED, &subject)
        })
        .await;
    // An object outside the selector never arrives.
    let mut unlabelled = config_map("unlabelled", "x");
    unlabelled.metadata.labels = None;
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &unlabelled)
        .await
        .unwrap();

    let seen = recorder.all();
    assert_eq!(
        changes(&seen),
        [
            added(&subject, "one"),
            modified(&subject, "two"),
            (
                EVENT_TYPE_DELETED.into(),
                subject.clone(),
                Some("two".into())
            ),
        ]
    );
    let uid = created.metadata.uid.unwrap();
    let first = &seen[0];
    assert_eq!(
        first.id,
        format!("{uid}:{}:added", created.metadata.resource_version.unwrap())
    );
    assert_eq!(
        first.source,
        format!("/api/v1/namespaces/{}/configmaps", ns.name())
    );
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(first.attempt, 1);
    assert!(seen.iter().all(|s| s.id.starts_with(&uid)));
    assert!(
        !lag.lag().await.unwrap().active,
        "nothing pending once handled"
    );
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_its_checkpoint_without_losing_a_change() {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("kube-resume").await.unwrap();
    let path = checkpoint_file(&ns);
    let _ = std::fs::remove_file(&path);
    let config = watching(&ns).with_checkpoint(CheckpointStore::File(path.clone()));
    let subject = |name: &str| format!("{}/{name}", ns.name());

    create(&ns, "kept", "1").await;
    create(&ns, "changed", "1").await;
    create(&ns, "removed", "1").await;
    let first = Recorder::default();
    let host = Host::start(
        Registry::from([first.function("react", accept(), InvocationPolicy::default())]),
        trigger(&cluster, config.clone()),
    )
    .await;
    first
        .wait_until("the three existing objects as added", |seen| {
            seen.len() >= 3
        })
        .await;
    host.stop().await.unwrap();
    assert!(path.is_file(), "the checkpoint is written");

    // While nobody watches: two changes of one object, a deletion, a creation.
    change(&ns, "changed", "2").await;
    change(&ns, "changed", "3").await;
    delete(&ns, "removed").await;
    create(&ns, "new", "1").await;

    let second = Recorder::default();
    let host = Host::start(
        Registry::from([second.function("react", accept(), InvocationPolicy::default())]),
        trigger(&cluster, config),
    )
    .await;
    second
        .wait_until("the changes made while stopped", |seen| {
            has(seen, EVENT_TYPE_ADDED, &subject("new"))
                && has(seen, EVENT_TYPE_DELETED, &subject("removed"))
                && seen.iter().any(|s| {
                    s.subject.as_deref() == Some(&subject("changed"))
                        && changes(std::slice::from_ref(s))[0].2.as_deref() == Some("3")
                })
        })
        .await;
    // Let anything else that would come arrive before judging.
    create(&ns, "marker", "1").await;
    second
        .wait_until("the marker", |seen| {
            has(seen, EVENT_TYPE_ADDED, &subject("marker"))
        })
        .await;
    host.stop().await.unwrap();

    let seen = changes(&second.all());
    // Resumed from the checkpoint's resourceVersion: every change (each
    // version of `changed`, in order), and nothing handled before the
    // restart again. Different objects may interleave.
    let of = |name: &str| -> Vec<(String, String, Option<String>)> {
        seen.iter()
            .filter(|(_, subject_seen, _)| *subject_seen == subject(name))
            .cloned()
            .collect()
    };
    assert_eq!(
        of("changed"),
        [
            modified(&subject("changed"), "2"),
            modified(&subject("changed"), "3")
        ]
    );
    assert_eq!(
        of("removed"),
        [(
            EVENT_TYPE_DELETED.into(),
            subject("removed"),
            Some("1".into())
        )]
    );
    assert_eq!(of("new"), [added(&subject("new"), "1")]);
    assert!(of("kept").is_empty(), "{seen:?}");
    assert_eq!(seen.len(), 5, "{seen:?}");
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_gets_the_same_change_again_with_the_next_attempt() {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("kube-retry").await.unwrap();
    let failures = Arc::new(AtomicU32::new(0));
    let verdict: events::Verdict = {
        let failures = Arc::clone(&failures);
        Arc::new(move |_| {
            if failures.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(FunctionError::internal("not yet"))
            } else {
                Ok(())
            }
        })
    };
    let policy = InvocationPolicy::default().with_retry(
        RetryPolicy::new(5)
            .with_initial_backoff(Duration::from_millis(50))
            .with_max_backoff(Duration::from_millis(200))
            .with_jitter(0.0),
    );
    let recorder = Recorder::default();
    let path = checkpoint_file(&ns);
    let _ = std::fs::remove_file(&path);
    let host = Host::start(
        Registry::from([recorder.function("react", verdict, policy)]),
        trigger(
            &cluster,
            watching(&ns).with_checkpoint(CheckpointStore::File(path.clone())),
        ),
    )
    .await;
    host.wait_ready_status(200).await;
    create(&ns, "flaky", "1").await;
    recorder
        .wait_until("a third attempt", |seen| seen.len() >= 3)
        .await;
    // The next change of the object comes after the retried one, not before.
    change(&ns, "flaky", "2").await;
    recorder
        .wait_until("the modification", |seen| seen.len() >= 4)
        .await;
    host.stop().await.unwrap();
    let seen = recorder.all();
    assert_eq!(seen[0].id, seen[1].id);
    assert_eq!(seen[1].id, seen[2].id);
    let attempts: Vec<u32> = seen.iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 1]);
    assert_eq!(seen[3].ty, EVENT_TYPE_MODIFIED);
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(checkpoint["objects"].as_object().unwrap().len(), 1);
    let _ = std::fs::remove_file(&path);
}

/// Compacts the cluster's etcd up to its current revision, through etcd's
/// JSON gateway (`cargo xtask cluster up` serves etcd on plain loopback
/// HTTP): every older resourceVersion is then gone from storage, as after
/// the API server's own periodic compaction.
async fn compact_etcd(cluster: &TestCluster) {
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cluster.paths().dir.join("cluster.json")).expect("cluster.json"),
    )
    .unwrap();
    let port = state["options"]["etcd_port"].as_u64().expect("etcd_port");
    let header = etcd_post(port, "/v3/kv/range", r#"{"key":"AA=="}"#).await;
    let revision = header["header"]["revision"].as_str().expect("revision");
    let body = format!(r#"{{"revision":"{revision}","physical":true}}"#);
    etcd_post(port, "/v3/kv/compaction", &body).await;
}

async fn etcd_post(port: u64, path: &str, body: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port as u16))
        .await
        .expect("etcd answers");
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json = &answer[answer.find('{').expect("a JSON body")..];
    let json = &json[..=json.rfind('}').unwrap()];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn event(namespace: &str, name: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(LABEL.to_owned(), "yes".to_owned())])),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            kind: Some("ConfigMap".into()),
            name: Some("settings".into()),
            namespace: Some(namespace.to_owned()),
            ..ObjectReference::default()
        },
        reason: Some("Tested".into()),
        message: Some(name.to_owned()),
        ..Event::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_resource_version_lists_again_and_finds_what_changed() {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("kube-gone").await.unwrap();
    let path = checkpoint_file(&ns);
    // Events: the API server keeps no watch cache for them, so a watch from
    // a compacted resourceVersion meets etcd's compaction: 410 Gone.
    ns.api::<Event>()
        .create(&PostParams::default(), &event(ns.name(), "present"))
        .await
        .unwrap();
    compact_etcd(&cluster).await;
    // A checkpoint from before the compaction that knows an Event gone since.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let checkpoint = serde_json::json!({
        "resource_version": "2",
        "objects": { "00000000-dead-beef-0000-000000000000": {
            "namespace": ns.name(), "name": "ghost", "resource_version": "2" } },
    });
    std::fs::write(&path, checkpoint.to_string()).unwrap();

    let recorder = Recorder::default();
    let config = KubeTriggerConfig::new("v1", "Event")
        .with_namespace(ns.name())
        .with_label_selector(format!("{LABEL}=yes"))
        .with_checkpoint(CheckpointStore::File(path.clone()));
    let host = Host::start(
        Registry::from([recorder.function("react", accept(), InvocationPolicy::default())]),
        trigger(&cluster, config),
    )
    .await;
    let subject = |name: &str| format!("{}/{name}", ns.name());
    recorder
        .wait_until("the relisted state", |seen| {
            has(seen, EVENT_TYPE_ADDED, &subject("present"))
                && has(seen, EVENT_TYPE_DELETED, &subject("ghost"))
        })
        .await;
    host.stop().await.unwrap();
    let ghost = recorder
        .all()
        .into_iter()
        .find(|s| s.ty == EVENT_TYPE_DELETED)
        .unwrap();
    assert_eq!(ghost.id, "00000000-dead-beef-0000-000000000000:2:deleted");
    assert_eq!(
        ghost.source,
        format!("/api/v1/namespaces/{}/events", ns.name())
    );
    let object: serde_json::Value = serde_json::from_slice(&ghost.data).unwrap();
    assert_eq!(object["kind"], "Event");
    assert_eq!(object["metadata"]["name"], "ghost");
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_ne!(stored["resource_version"], "2", "the checkpoint moved on");
    assert_eq!(stored["objects"].as_object().unwrap().len(), 1);
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_checkpoint_is_kept_in_the_cluster() {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("kube-cm").await.unwrap();
    let store = CheckpointStore::ConfigMap {
        namespace: ns.name().to_owned(),
        name: "react-checkpoint".to_owned(),
    };
    create(&ns, "first", "1").await;
    let recorder = Recorder::default();
    let host = Host::start(
        Registry::from([recorder.function("react", accept(), InvocationPolicy::default())]),
        trigger(&cluster, watching(&ns).with_checkpoint(store.clone())),
    )
    .await;
    recorder
        .wait_until("the first object", |seen| !seen.is_empty())
        .await;
    host.stop().await.unwrap();
    let stored = ns
        .api::<ConfigMap>()
        .get("react-checkpoint")
        .await
        .expect("the checkpoint ConfigMap");
    let text = &stored.data.unwrap()["checkpoint.json"];
    assert!(text.contains("\"first\""), "{text}");

    // A restart with nothing changed delivers nothing again.
    let again = Recorder::default();
    let host = Host::start(
        Registry::from([again.function("react", accept(), InvocationPolicy::default())]),
        trigger(&cluster, watching(&ns).with_checkpoint(store)),
    )
    .await;
    create(&ns, "second", "1").await;
    again
        .wait_until("the second object", |seen| !seen.is_empty())
        .await;
    host.stop().await.unwrap();
    let subjects: Vec<String> = again.all().into_iter().filter_map(|s| s.subject).collect();
    assert_eq!(subjects, [format!("{}/second", ns.name())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_errors_naming_the_setting() {
    let cluster = TestCluster::require().await;
    let ns = cluster.namespace("kube-bad").await.unwrap();
    let cases = [
        (
            KubeTriggerConfig::new("v1", "ConfigMapp").with_namespace(ns.name()),
            "kube.kind",
        ),
        (
            KubeTriggerConfig::new("nosuch.example.com/v1", "Widget"),
            "kube.api_version",
        ),
        (
            watching(&ns).with_label_selector("app in (a"),
            "kube.label_selector",
        ),
        (
            watching(&ns).with_field_selector("spec.nope=1"),
            "kube.field_selector",
        ),
        (
            KubeTriggerConfig::new("v1", "Node").with_namespace(ns.name()),
            "kube.namespace",
        ),
    ];
    for (config, key) in cases {
        let host = Host::start(
            Registry::from([Recorder::default().function(
                "react",
                accept(),
                InvocationPolicy::default(),
            )]),
            trigger(&cluster, config),
        )
        .await;
        let outcome = tokio::time::timeout(events::PATIENCE, host.task)
            .await
            .expect("a bad setting stops the host")
            .expect("no panic");
        let text = format!("{:?}", outcome.expect_err("a configuration error"));
        assert!(text.contains(key), "{key}: {text}");
    }
    let error =
        KubeTrigger::new("react", KubeTriggerConfig::new("apps/v1", "deployments")).unwrap_err();
    assert!(
        matches!(error, Error::InvalidConfig { ref key, .. } if key == "kube.kind"),
        "{error}"
    );
}
