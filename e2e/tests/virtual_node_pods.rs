//! Ordinary pods on the virtual node, against the real control plane: what a kubelet gives a
//! container (downward API resources, `envFrom` Secrets, Service variables) and how it reports
//! and ends a pod (readiness gates, `activeDeadlineSeconds`).
//!
//! Needs `cargo xtask cluster up`; without it every test fails saying so.

#[path = "support/vnode.rs"]
mod vnode;

use faas_e2e::TestCluster;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use vnode::*;

fn condition(pod: &Pod, kind: &str) -> Option<(String, Option<String>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_secrets_and_services_reach_the_environment() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-kenv").await;
    let ns = cluster.namespace("vn-kenv").await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"USER": "ada", "TOKEN": "t0k3n"},
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web-front"},
        "spec": {
            "selector": {"app": "nothing"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }))?;
    let service = ns
        .api::<Service>()
        .create(&PostParams::default(), &service)
        .await?;
    let cluster_ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .ok_or("the Service got no cluster IP")?;

    let mut container = server_container(&[], false);
    container["resources"] = json!({
        "limits": {"cpu": "1", "memory": "64Mi"},
        "requests": {"cpu": "250m", "memory": "32Mi"},
    });
    container["envFrom"] = json!([
        {"secretRef": {"name": "creds"}},
        {"secretRef": {"name": "creds"}, "prefix": "S_"},
    ]);
    container["env"].as_array_mut().ok_or("env")?.extend([
        // No divisor: the API server stores "0", which means 1.
        json!({"name": "MEM_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}),
        json!({"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}),
        json!({"name": "MEM_REQ_MI", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory", "divisor": "1Mi"}}}),
        json!({"name": "FRONT", "value": "$(WEB_FRONT_SERVICE_HOST):$(WEB_FRONT_SERVICE_PORT)"}),
    ]);
    create_pod(
        &ns,
        "env",
        pod_spec(&node.name, json!([container]), "Always"),
    )
    .await;
    let stored = ns.api::<Pod>().get("env").await?;
    let divisor = stored.spec.as_ref().and_then(|s| {
        s.containers[0].env.as_ref()?.iter().find_map(|e| {
            (e.name == "MEM_LIMIT").then(|| {
                e.value_from
                    .as_ref()?
                    .resource_field_ref
                    .as_ref()?
                    .divisor
                    .clone()
            })?
        })
    });
    assert_eq!(
        divisor.map(|d| d.0).as_deref(),
        Some("0"),
        "as the API server stores it"
    );
    let pod = wait_pod(&ns, "env", "Running", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    let ip = pod_ip(&pod);
    wait_listening(&ip).await;
    let get = |name: &'static str| {
        let ip = ip.clone();
        async move { http_get(&ip, 8080, &format!("/env/{name}")).await }
    };
    assert_eq!(get("MEM_LIMIT").await?, (200, "67108864".to_owned()));
    assert_eq!(get("CPU_LIMIT").await?, (200, "1".to_owned()));
    assert_eq!(get("MEM_REQ_MI").await?, (200, "32".to_owned()));
    assert_eq!(get("USER").await?, (200, "ada".to_owned()));
    assert_eq!(get("TOKEN").await?, (200, "t0k3n".to_owned()));
    assert_eq!(get("S_USER").await?, (200, "ada".to_owned()));
    assert_eq!(get("S_TOKEN").await?, (200, "t0k3n".to_owned()));
    assert_eq!(
        get("WEB_FRONT_SERVICE_HOST").await?,
        (200, cluster_ip.clone())
    );
    assert_eq!(get("WEB_FRONT_SERVICE_PORT").await?, (200, "80".to_owned()));
    assert_eq!(
        get("WEB_FRONT_SERVICE_PORT_HTTP").await?,
        (200, "80".to_owned())
    );
    assert_eq!(
        get("WEB_FRONT_PORT").await?,
        (200, format!("tcp://{cluster_ip}:80"))
    );
    assert_eq!(
        get("WEB_FRONT_PORT_80_TCP_ADDR").await?,
        (200, cluster_ip.clone())
    );
    assert_eq!(get("FRONT").await?, (200, format!("{cluster_ip}:80")));
    let (code, kubernetes) = get("KUBERNETES_SERVICE_HOST").await?;
    assert_eq!(code, 200, "the kubernetes Service is always there");
    assert!(!kubernetes.is_empty());
    // As root the node enforces the limits: no Warning; otherwise the pod's Events say why not.
    let events = ns.api::<k8s_openapi::api::events::v1::Event>();
    if nix::unistd::geteuid().is_root() {
        let uid = stored.metadata.uid.clone().ok_or("the pod has no uid")?;
        let memory = pod_cgroup("memory", &uid).ok_or("the pod has no memory cgroup")?;
        assert_eq!(
            cgroup_value(&memory.join("server"), "memory.limit_in_bytes"),
            "67108864"
        );
        let list = events.list(&Default::default()).await?;
        assert!(
            !list
                .items
                .iter()
                .any(|e| e.reason.as_deref() == Some("LimitsNotEnforced")),
            "limits are enforced, so nothing warns"
        );
    } else {
        let warning = ns.wait_event("LimitsNotEnforced", Some("env")).await?;
        assert_eq!(warning.type_.as_deref(), Some("Warning"));
        let note = warning.note.as_deref().unwrap_or_default();
        assert!(
            note.contains("server") && note.contains("root"),
            "{warning:?}"
        );
    }

    // Without service links only the kubernetes Service is given.
    let mut container = server_container(&[], false);
    container["name"] = json!("server");
    let mut spec = pod_spec(&node.name, json!([container]), "Always");
    spec["enableServiceLinks"] = json!(false);
    create_pod(&ns, "nolinks", spec).await;
    let pod = wait_pod(&ns, "nolinks", "Running", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    let ip = pod_ip(&pod);
    wait_listening(&ip).await;
    assert_eq!(
        http_get(&ip, 8080, "/env/WEB_FRONT_SERVICE_HOST").await?.0,
        404
    );
    assert_eq!(
        http_get(&ip, 8080, "/env/KUBERNETES_SERVICE_HOST").await?.0,
        200
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_gates_hold_ready_until_their_condition_is_true() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-gate").await;
    let ns = cluster.namespace("vn-gate").await?;
    let mut spec = pod_spec(&node.name, json!([server_container(&[], false)]), "Always");
    spec["readinessGates"] = json!([{"conditionType": "example.com/load-balancer"}]);
    create_pod(&ns, "gated", spec).await;
    let pod = wait_pod(&ns, "gated", "containers ready, gate not", |p| {
        phase(p) == "Running" && condition(p, "ContainersReady").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        condition(&pod, "Ready"),
        Some((
            "False".to_owned(),
            Some("ReadinessGatesNotReady".to_owned())
        ))
    );

    // Someone else (a load balancer controller) sets the gate's condition.
    let patch = json!({"status": {"conditions": [
        {"type": "example.com/load-balancer", "status": "True"},
    ]}});
    ns.api::<Pod>()
        .patch_status("gated", &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    let pod = wait_pod(&ns, "gated", "Ready", pod_ready).await;
    assert_eq!(
        condition(&pod, "example.com/load-balancer").map(|c| c.0),
        Some("True".to_owned()),
        "the node keeps the condition it does not own"
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_stops_the_pod_with_deadline_exceeded() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-deadline").await;
    let ns = cluster.namespace("vn-deadline").await?;
    let is_deadline_exceeded = |p: &Pod| {
        phase(p) == "Failed"
            && p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("DeadlineExceeded")
    };

    let mut spec = pod_spec(&node.name, json!([server_container(&[], false)]), "Always");
    spec["activeDeadlineSeconds"] = json!(2);
    create_pod(&ns, "short", spec).await;
    let pod = wait_pod(
        &ns,
        "short",
        "Failed with DeadlineExceeded",
        is_deadline_exceeded,
    )
    .await;
    let container = &pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default()[0];
    assert!(
        container
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some(),
        "{container:?}"
    );
    assert!(!pod_ready(&pod));

    // Set on a pod that already runs.
    create_pod(
        &ns,
        "running",
        pod_spec(&node.name, json!([server_container(&[], false)]), "Always"),
    )
    .await;
    let pod = wait_pod(&ns, "running", "Running", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    let ip = pod_ip(&pod);
    ns.api::<Pod>()
        .patch(
            "running",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"activeDeadlineSeconds": 1}})),
        )
        .await?;
    wait_pod(
        &ns,
        "running",
        "Failed with DeadlineExceeded",
        is_deadline_exceeded,
    )
    .await;
    assert!(
        http_get(&ip, 8080, "/").await.is_err(),
        "the process was stopped"
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_pods_run_in_the_node_network_on_its_address() -> TestResult {
    let cluster = TestCluster::require().await;
    // Pods of this node live in a network namespace of their own; a hostNetwork pod must not.
    let node = TestNode::start_with(&cluster, "vn-hostnet", true).await;
    let ns = cluster.namespace("vn-hostnet").await?;
    let host_netns = std::fs::read_link("/proc/self/ns/net")?;
    let check = "test \"$(readlink /proc/self/ns/net)\" = \"$HOST_NETNS\" \
                 && test \"$POD_IP\" = \"$HOST_IP\" && test \"$MY_POD_IP\" = \"$HOST_IP\"";
    let container = json!({
        "name": "check",
        "image": SERVER_IMAGE,
        "command": ["/bin/sh", "-c", check],
        "env": [
            {"name": "HOST_NETNS", "value": host_netns.to_string_lossy()},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
    });
    let mut spec = pod_spec(&node.name, json!([container]), "Never");
    spec["hostNetwork"] = json!(true);
    create_pod(&ns, "host", spec).await;
    let pod = wait_pod(&ns, "host", "Succeeded or Failed", |p| {
        matches!(phase(p), "Succeeded" | "Failed")
    })
    .await;
    assert_eq!(phase(&pod), "Succeeded", "{:?}", pod.status);
    let status = pod.status.as_ref().ok_or("no status")?;
    assert_eq!(
        status.pod_ip, status.host_ip,
        "a hostNetwork pod has the node's address"
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_see_their_hostname_hosts_file_and_leave_termination_messages() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-ident").await;
    let ns = cluster.namespace("vn-ident").await?;
    // Checks what a kubelet would give it, then says so in its termination message.
    let check = "test \"$(cat /proc/sys/kernel/hostname)\" = db-0 \
        && grep -q \"^$MY_IP\tdb-0.db.$NS.svc.cluster.local\tdb-0$\" /etc/hosts \
        && grep -q \"^10.1.2.3\tfoo.local\tbar.local$\" /etc/hosts \
        && printf 'all seen' > /dev/termination-log";
    let fails = "echo starting; echo something broke; exit 3";
    let containers = json!([
        {
            "name": "check",
            "image": SERVER_IMAGE,
            "command": ["/bin/sh", "-c", check],
            "env": [
                {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            ],
        },
        {
            "name": "fails",
            "image": SERVER_IMAGE,
            "command": ["/bin/sh", "-c", fails],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        },
    ]);
    let mut spec = pod_spec(&node.name, containers, "Never");
    spec["hostname"] = json!("db-0");
    spec["subdomain"] = json!("db");
    spec["hostAliases"] = json!([{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]);
    create_pod(&ns, "ident", spec).await;
    let pod = wait_pod(&ns, "ident", "Failed", |p| phase(p) == "Failed").await;
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let terminated = |name: &str| {
        statuses
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.state.as_ref()?.terminated.clone())
    };
    let check = terminated("check").ok_or("check did not terminate")?;
    assert_eq!(
        (check.exit_code, check.message.as_deref()),
        (0, Some("all seen")),
        "{check:?}"
    );
    let fails = terminated("fails").ok_or("fails did not terminate")?;
    assert_eq!(fails.exit_code, 3);
    assert_eq!(
        fails.message.as_deref(),
        Some("starting\nsomething broke\n"),
        "the end of its log"
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_previous_shows_the_run_before_the_restart() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-prev").await;
    let ns = cluster.namespace("vn-prev").await?;
    let container = json!({
        "name": "crash",
        "image": SERVER_IMAGE,
        "command": ["/bin/sh", "-c", "echo \"run $(cat /proc/sys/kernel/random/uuid)\"; sleep 1; exit 1"],
    });
    create_pod(
        &ns,
        "crash",
        pod_spec(&node.name, json!([container]), "Always"),
    )
    .await;
    // Before any restart there is no previous run.
    wait_pod(&ns, "crash", "started once", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs[0].container_id.is_some())
    })
    .await;
    let early = faas_e2e::run_kubectl(&cluster, &["-n", ns.name(), "logs", "crash", "--previous"]);
    let restarted = ns
        .api::<Pod>()
        .get("crash")
        .await?
        .status
        .and_then(|s| s.container_statuses)
        .is_some_and(|cs| cs[0].restart_count > 0);
    if !restarted {
        assert!(!early.status.success());
        let stderr = String::from_utf8_lossy(&early.stderr);
        assert!(stderr.contains("previous terminated container"), "{stderr}");
    }

    wait_pod(&ns, "crash", "restarted", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs[0].restart_count >= 1)
    })
    .await;
    let previous =
        faas_e2e::run_kubectl(&cluster, &["-n", ns.name(), "logs", "crash", "--previous"]);
    let stderr = String::from_utf8_lossy(&previous.stderr);
    assert!(previous.status.success(), "{stderr}");
    let text = String::from_utf8(previous.stdout)?;
    let uuid = text
        .strip_prefix("run ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .ok_or_else(|| format!("unexpected previous log {text:?}"))?;
    assert_eq!(uuid.len(), 36, "{text:?}");
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// The STATUS column of `kubectl get pod`.
fn kubectl_status(cluster: &TestCluster, ns: &str, pod: &str) -> String {
    let out = faas_e2e::run_kubectl(cluster, &["-n", ns, "get", "pod", pod, "--no-headers"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned()
}

fn init_state(pod: &Pod, index: usize) -> Option<k8s_openapi::api::core::v1::ContainerState> {
    pod.status
        .as_ref()?
        .init_container_statuses
        .as_ref()?
        .get(index)?
        .state
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_in_order_before_the_containers_as_kubectl_shows() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-init").await;
    let ns = cluster.namespace("vn-init").await?;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("vn-init")
        .join(ns.name());
    std::fs::create_dir_all(&dir)?;
    let (marker, go) = (dir.join("first-ran"), dir.join("go"));
    let init = json!([
        {"name": "first", "image": SERVER_IMAGE, "command": ["/bin/sh", "-c", "touch \"$MARKER\""],
         "env": [{"name": "MARKER", "value": marker.to_string_lossy()}]},
        {"name": "second", "image": SERVER_IMAGE,
         "command": ["/bin/sh", "-c", "test -e \"$MARKER\" && while [ ! -e \"$GO\" ]; do sleep 0.2; done"],
         "env": [{"name": "MARKER", "value": marker.to_string_lossy()}, {"name": "GO", "value": go.to_string_lossy()}]},
    ]);
    let mut spec = pod_spec(&node.name, json!([server_container(&[], false)]), "Always");
    spec["initContainers"] = init;
    create_pod(&ns, "ordered", spec).await;
    let pod = wait_pod(&ns, "ordered", "the second init container running", |p| {
        init_state(p, 1).is_some_and(|s| s.running.is_some())
    })
    .await;
    let first = init_state(&pod, 0)
        .and_then(|s| s.terminated)
        .ok_or("first not done")?;
    assert_eq!(
        (first.exit_code, first.reason.as_deref()),
        (0, Some("Completed"))
    );
    let app = &pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default()[0];
    assert_eq!(
        app.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("PodInitializing")
    );
    assert_eq!(phase(&pod), "Pending");
    assert_eq!(kubectl_status(&cluster, ns.name(), "ordered"), "Init:1/2");

    std::fs::write(&go, b"")?;
    let pod = wait_pod(&ns, "ordered", "Running and Ready", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    let initialized = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Initialized"))
        .map(|c| c.status.clone());
    assert_eq!(initialized.as_deref(), Some("True"));
    assert_eq!(kubectl_status(&cluster, ns.name(), "ordered"), "Running");

    // A failing init container is restarted with back-off, as kubectl shows.
    let failing =
        json!([{"name": "fails", "image": SERVER_IMAGE, "command": ["/bin/sh", "-c", "exit 1"]}]);
    let mut spec = pod_spec(&node.name, json!([server_container(&[], false)]), "Always");
    spec["initContainers"] = failing.clone();
    create_pod(&ns, "looping", spec).await;
    wait_pod(&ns, "looping", "Init:CrashLoopBackOff", |p| {
        init_state(p, 0)
            .and_then(|s| s.waiting)
            .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
    })
    .await;
    // The state can move on between two reads: wait for kubectl to show it too.
    faas_e2e::wait::until("kubectl shows Init:CrashLoopBackOff", || async {
        let status = kubectl_status(&cluster, ns.name(), "looping");
        Ok(
            if status == "Init:CrashLoopBackOff" || status == "Init:Error" {
                faas_e2e::wait::Poll::Ready(())
            } else {
                faas_e2e::wait::Poll::Pending(status)
            },
        )
    })
    .await?;

    // Under restartPolicy Never the pod fails.
    let mut spec = pod_spec(&node.name, json!([server_container(&[], false)]), "Never");
    spec["initContainers"] = failing;
    create_pod(&ns, "never", spec).await;
    wait_pod(&ns, "never", "Failed", |p| phase(p) == "Failed").await;
    assert_eq!(kubectl_status(&cluster, ns.name(), "never"), "Init:Error");
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_hooks_run_after_start_and_before_stop() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-hooks").await;
    let ns = cluster.namespace("vn-hooks").await?;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("vn-hooks")
        .join(ns.name());
    std::fs::create_dir_all(&dir)?;
    let (started, stopping) = (dir.join("post-start"), dir.join("pre-stop"));
    let mut container = server_container(&[], false);
    container["lifecycle"] = json!({
        "postStart": {"exec": {"command": ["/bin/sh", "-c", format!("touch {}", started.display())]}},
        "preStop": {"exec": {"command": ["/bin/sh", "-c", format!("touch {}", stopping.display())]}},
    });
    create_pod(
        &ns,
        "hooked",
        pod_spec(&node.name, json!([container]), "Always"),
    )
    .await;
    wait_pod(&ns, "hooked", "Running and Ready", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    assert!(
        started.exists(),
        "postStart ran before the container was ready"
    );
    assert!(!stopping.exists());
    ns.api::<Pod>()
        .delete("hooked", &Default::default())
        .await?;
    faas_e2e::wait::for_deletion(&ns.api::<Pod>(), "hooked").await?;
    assert!(
        stopping.exists(),
        "preStop ran before the container was stopped"
    );

    // A failing postStart hook kills the run: the container is restarted and never ready.
    let mut container = server_container(&[], false);
    container["lifecycle"] =
        json!({"postStart": {"exec": {"command": ["/bin/sh", "-c", "exit 1"]}}});
    create_pod(
        &ns,
        "badhook",
        pod_spec(&node.name, json!([container]), "Always"),
    )
    .await;
    let pod = wait_pod(&ns, "badhook", "restarted", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs[0].restart_count >= 1)
    })
    .await;
    assert!(!pod_ready(&pod));
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_appear_at_their_mount_paths() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-vol").await;
    let ns = cluster.namespace("vn-vol").await?;
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings"},
        "data": {"app.conf": "level=debug", "other": "x"},
    }))?;
    ns.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "stringData": {"password": "s3cret"},
    }))?;
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let base = format!("/tmp/faas-e2e-vol-{}", ns.name());
    let check = format!(
        "set -e; \
         test \"$(cat {base}/config/conf/app.conf)\" = level=debug; \
         test ! -e {base}/config/other; \
         test \"$(cat {base}/secret/password)\" = s3cret; \
         test \"$(stat -c %a {base}/secret/password)\" = 400; \
         test \"$(cat {base}/info/name)\" = vols; \
         test \"$(cat {base}/shared/from-init)\" = hello; \
         test \"$(cat {base}/only-sub/inner)\" = deep; \
         if touch {base}/config/new 2>/dev/null; then exit 9; fi; \
         test -s /var/run/secrets/kubernetes.io/serviceaccount/token; \
         test \"$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)\" = \"$NS\""
    );
    let init = format!(
        "echo -n hello > {base}/shared/from-init; mkdir -p {base}/shared/sub; echo -n deep > {base}/shared/sub/inner"
    );
    let spec = json!({
        "nodeSelector": {"kubernetes.io/hostname": node.name},
        "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
        "restartPolicy": "Never",
        "volumes": [
            {"name": "config", "configMap": {"name": "settings", "items": [{"key": "app.conf", "path": "conf/app.conf"}]}},
            {"name": "secret", "secret": {"secretName": "creds", "defaultMode": 0o400}},
            {"name": "info", "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"name": "shared", "emptyDir": {"medium": "Memory"}},
        ],
        "initContainers": [{
            "name": "fill", "image": SERVER_IMAGE, "command": ["/bin/sh", "-c", init],
            "volumeMounts": [{"name": "shared", "mountPath": format!("{base}/shared")}],
        }],
        "containers": [{
            "name": "check", "image": SERVER_IMAGE, "command": ["/bin/sh", "-c", check],
            "env": [{"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
            "volumeMounts": [
                {"name": "config", "mountPath": format!("{base}/config"), "readOnly": true},
                {"name": "secret", "mountPath": format!("{base}/secret")},
                {"name": "info", "mountPath": format!("{base}/info")},
                {"name": "shared", "mountPath": format!("{base}/shared")},
                {"name": "shared", "mountPath": format!("{base}/only-sub"), "subPath": "sub"},
            ],
        }],
    });
    create_pod(&ns, "vols", spec).await;
    let pod = wait_pod(&ns, "vols", "Succeeded or Failed", |p| {
        matches!(phase(p), "Succeeded" | "Failed")
    })
    .await;
    assert_eq!(phase(&pod), "Succeeded", "{:?}", pod.status);
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_volumes_follow_updates() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-volup").await;
    let ns = cluster.namespace("vn-volup").await?;
    let configs = ns.api::<k8s_openapi::api::core::v1::ConfigMap>();
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "live"},
        "data": {"version": "v1"},
    }))?;
    configs.create(&PostParams::default(), &cm).await?;
    let path = format!("/tmp/faas-e2e-volup-{}", ns.name());
    // Runs until it sees the new version of the file.
    let wait = format!("while [ \"$(cat {path}/version)\" != v2 ]; do sleep 0.2; done");
    let spec = json!({
        "nodeSelector": {"kubernetes.io/hostname": node.name},
        "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
        "restartPolicy": "Never",
        "volumes": [{"name": "live", "configMap": {"name": "live"}}],
        "containers": [{
            "name": "watch", "image": SERVER_IMAGE, "command": ["/bin/sh", "-c", wait],
            "volumeMounts": [{"name": "live", "mountPath": path}],
        }],
    });
    create_pod(&ns, "follower", spec).await;
    wait_pod(&ns, "follower", "Running", |p| phase(p) == "Running").await;
    configs
        .patch(
            "live",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"version": "v2"}})),
        )
        .await?;
    let pod = wait_pod(&ns, "follower", "Succeeded", |p| {
        matches!(phase(p), "Succeeded" | "Failed")
    })
    .await;
    assert_eq!(phase(&pod), "Succeeded");
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_api_answers_only_whom_the_api_server_allows() -> TestResult {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-authz").await;
    let ns = cluster.namespace("vn-authz").await?;
    create_pod(
        &ns,
        "web",
        pod_spec(&node.name, json!([server_container(&[], false)]), "Always"),
    )
    .await;
    wait_pod(&ns, "web", "Running", |p| phase(p) == "Running").await;
    let port = cluster
        .client()
        .request::<k8s_openapi::api::core::v1::Node>(
            http::Request::get(format!("/api/v1/nodes/{}", node.name)).body(Vec::new())?,
        )
        .await?
        .status
        .and_then(|s| s.daemon_endpoints)
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port)
        .ok_or("no kubelet port")?;
    let url: http::Uri = format!("https://127.0.0.1:{port}").parse()?;
    let path = format!("/containerLogs/{}/web/server", ns.name());
    let call = |mut config: kube::Config| {
        let (url, path) = (url.clone(), path.clone());
        async move {
            config.cluster_url = url;
            config.accept_invalid_certs = true;
            let client = kube::Client::try_from(config)?;
            client
                .request_text(http::Request::get(path).body(Vec::new())?)
                .await
                .map_err(|e| -> Box<dyn std::error::Error> { Box::new(e) })
        }
    };
    let code = |result: Result<String, Box<dyn std::error::Error>>| match result {
        Ok(_) => 200,
        Err(e) => match e.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) => status.code,
            _ => 0,
        },
    };
    // The admin (system:masters) may.
    assert_eq!(code(call(cluster.config().clone()).await), 200);
    // No credentials at all.
    let anonymous = kube::Config::new(url.clone());
    assert_eq!(code(call(anonymous).await), 401);
    // Authenticated, but granted nothing on nodes.
    let restricted = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&cluster.paths().restricted_kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    assert_eq!(code(call(restricted.clone()).await), 403);
    // Granted nodes/proxy, it may.
    let role_name = format!("{}-kubelet-proxy", ns.name());
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": role_name},
        "rules": [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}],
    }))?;
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": role_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "User", "name": cluster.restricted_user(), "apiGroup": "rbac.authorization.k8s.io"}],
    }))?;
    let roles: kube::Api<ClusterRole> = kube::Api::all(cluster.client());
    let bindings: kube::Api<ClusterRoleBinding> = kube::Api::all(cluster.client());
    roles.create(&PostParams::default(), &role).await?;
    bindings.create(&PostParams::default(), &binding).await?;
    let granted = faas_e2e::wait::until("the granted user is let through", || {
        let restricted = restricted.clone();
        let call = &call;
        async move {
            let got = code(call(restricted).await);
            Ok(if got == 200 {
                faas_e2e::wait::Poll::Ready(())
            } else {
                faas_e2e::wait::Poll::Pending(format!("HTTP {got}"))
            })
        }
    })
    .await;
    let _ = bindings.delete(&role_name, &Default::default()).await;
    let _ = roles.delete(&role_name, &Default::default()).await;
    granted?;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_summary_measures_the_pods_for_authorized_callers() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-stats").await;
    let ns = cluster.namespace("vn-stats").await?;
    create_pod(
        &ns,
        "web",
        pod_spec(&node.name, json!([server_container(&[], false)]), "Always"),
    )
    .await;
    wait_pod(&ns, "web", "Running", |p| phase(p) == "Running").await;
    // As metrics-server reads it: straight from the kubelet port, with credentials the API
    // server authorizes (the API server's own node proxy refuses a loopback node address).
    let port = cluster
        .client()
        .request::<k8s_openapi::api::core::v1::Node>(
            http::Request::get(format!("/api/v1/nodes/{}", node.name)).body(Vec::new())?,
        )
        .await?
        .status
        .and_then(|s| s.daemon_endpoints)
        .and_then(|d| d.kubelet_endpoint)
        .map(|e| e.port)
        .ok_or("no kubelet port")?;
    let mut config = cluster.config().clone();
    config.cluster_url = format!("https://127.0.0.1:{port}").parse()?;
    config.accept_invalid_certs = true;
    let text = kube::Client::try_from(config)?
        .request_text(http::Request::get("/stats/summary").body(Vec::new())?)
        .await?;
    let summary: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(summary["node"]["nodeName"], json!(node.name));
    let pod = summary["pods"]
        .as_array()
        .and_then(|pods| {
            pods.iter().find(|p| {
                p["podRef"]["name"] == "web" && p["podRef"]["namespace"] == json!(ns.name())
            })
        })
        .ok_or("the pod is not in the summary")?;
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "server");
    assert!(
        container["memory"]["rssBytes"].as_u64().unwrap_or(0) > 0,
        "{pod}"
    );
    assert!(container["cpu"]["usageCoreNanoSeconds"].is_u64(), "{pod}");
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_as_user_group_and_fs_group_are_the_processes_identity() -> TestResult {
    let own = std::process::Command::new("id").arg("-u").output()?;
    assert_eq!(
        String::from_utf8_lossy(&own.stdout).trim(),
        "0",
        "the node honours runAsUser as root: run this test as root (`cargo xtask test` does)"
    );
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-runas").await;
    let ns = cluster.namespace("vn-runas").await?;
    let container = |name: &str, user: Option<i64>| {
        let mut c = json!({
            "name": name,
            "image": SERVER_IMAGE,
            "command": ["sh", "-c", "echo \"identity $(id -u):$(id -g) groups $(id -G)\"; \
                echo made > \"/shared/$HOSTNAME-$0\"; exec sleep 3600", name],
            "workingDir": "/tmp",
            "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
        });
        if let Some(user) = user {
            c["securityContext"] = json!({"runAsUser": user});
        }
        c
    };
    let mut spec = pod_spec(
        &node.name,
        json!([container("pod-level", None), container("own", Some(1001))]),
        "Always",
    );
    spec["securityContext"] = json!({
        "runAsUser": 1000,
        "runAsGroup": 3000,
        "fsGroup": 2345,
        "supplementalGroups": [4567],
    });
    spec["volumes"] = json!([{"name": "shared", "emptyDir": {}}]);
    create_pod(&ns, "ids", spec).await;
    wait_pod(&ns, "ids", "Running", |p| phase(p) == "Running").await;
    let pods = ns.api::<Pod>();
    for (name, want) in [
        ("pod-level", "identity 1000:3000 groups 3000 2345 4567"),
        ("own", "identity 1001:3000 groups 3000 2345 4567"),
    ] {
        let params = kube::api::LogParams {
            container: Some(name.to_owned()),
            ..Default::default()
        };
        let log = faas_e2e::wait::until(format!("{name} to print its identity"), || {
            let (pods, params) = (pods.clone(), params.clone());
            async move {
                let log = pods.logs("ids", &params).await?;
                Ok(if log.contains("identity") {
                    faas_e2e::wait::Poll::Ready(log)
                } else {
                    faas_e2e::wait::Poll::Pending(log)
                })
            }
        })
        .await?;
        assert_eq!(log.trim(), want, "container {name}");
    }
    // `kubectl exec` runs as the container's user too.
    let output = faas_e2e::run_kubectl(
        &cluster,
        &[
            "exec",
            "-n",
            ns.name(),
            "ids",
            "-c",
            "own",
            "--",
            "id",
            "-u",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1001");
    // The emptyDir belongs to the fsGroup, and so does what the containers write into it.
    let output = faas_e2e::run_kubectl(
        &cluster,
        &[
            "exec",
            "-n",
            ns.name(),
            "ids",
            "-c",
            "own",
            "--",
            "stat",
            "-c",
            "%n %g",
            "/shared",
            "/shared/ids-own",
            "/shared/ids-pod-level",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "/shared 2345\n/shared/ids-own 2345\n/shared/ids-pod-level 2345\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// The cgroup v1 directory of the pod `uid` in the hierarchy of `controller`, wherever the node
/// put its parent (`faas-vnode/<hash of its state directory>` by default).
fn pod_cgroup(controller: &str, uid: &str) -> Option<std::path::PathBuf> {
    let nodes = std::path::Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("faas-vnode");
    std::fs::read_dir(nodes)
        .ok()?
        .flatten()
        .map(|node| node.path().join(format!("pod{uid}")))
        .find(|dir| dir.exists())
}

fn cgroup_value(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

/// Needs root (the node makes cgroups).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_probes_hooks_and_kubectl_exec_run_in_the_containers_cgroup() -> TestResult {
    let cluster = TestCluster::require().await;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the node makes cgroups only as root (`cargo xtask test` runs as root)");
        return Ok(());
    }
    let node = TestNode::start(&cluster, "vn-incgroup").await;
    let ns = cluster.namespace("vn-incgroup").await?;
    // Succeeds only in this container's own cgroup (`pod<uid>/probed`), not in the node's.
    let in_own_cgroup = [
        "sh",
        "-c",
        "grep -q \"/pod$POD_UID/probed$\" /proc/self/cgroup",
    ];
    let probed = json!({
        "name": "probed", "image": SERVER_IMAGE,
        "command": ["sh", "-c", "exec sleep 3600"],
        "env": [{"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}],
        "resources": {"limits": {"memory": "64Mi"}},
        "readinessProbe": {"exec": {"command": in_own_cgroup}, "periodSeconds": 1},
        "lifecycle": {"postStart": {"exec": {"command": in_own_cgroup}}},
    });
    create_pod(
        &ns,
        "probed",
        pod_spec(&node.name, json!([probed]), "Always"),
    )
    .await;
    // Ready: the probe passed; no restart: the postStart hook passed (a failed one kills the
    // container, as a kubelet does).
    let pod = wait_pod(&ns, "probed", "Ready", pod_ready).await;
    let restarts = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|c| c[0].restart_count);
    assert_eq!(
        restarts,
        Some(0),
        "the postStart hook ran in the container's cgroup"
    );
    let uid = pod.metadata.uid.clone().ok_or("the pod has no uid")?;
    let output = faas_e2e::run_kubectl(
        &cluster,
        &[
            "exec",
            "-n",
            ns.name(),
            "probed",
            "--",
            "cat",
            "/proc/self/cgroup",
        ],
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        shown
            .lines()
            .any(|l| l.ends_with(&format!("/pod{uid}/probed"))),
        "kubectl exec runs in the container's cgroup: {shown}"
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// Needs root (the node makes cgroups) and the cgroup v1 memory and cpu hierarchies this
/// machine mounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_end_a_pod_over_its_memory_as_oomkilled_and_go_with_it() -> TestResult {
    let cluster = TestCluster::require().await;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the node makes cgroups only as root (`cargo xtask test` runs as root)");
        return Ok(());
    }
    let node = TestNode::start(&cluster, "vn-limits").await;
    let ns = cluster.namespace("vn-limits").await?;

    let hog = json!({
        "name": "hog", "image": SERVER_IMAGE,
        "command": ["/usr/bin/python3", "-c", "import time; x = bytearray(256 * 1024 * 1024); time.sleep(60)"],
        "resources": {"limits": {"memory": "64Mi"}},
    });
    create_pod(&ns, "hog", pod_spec(&node.name, json!([hog]), "Never")).await;
    let pod = wait_pod(&ns, "hog", "Failed", |p| phase(p) == "Failed").await;
    let state = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref()?[0].state.clone());
    let ended = state
        .and_then(|s| s.terminated)
        .ok_or("the container has not terminated")?;
    assert_eq!(
        (ended.reason.as_deref(), ended.exit_code),
        (Some("OOMKilled"), 137)
    );
    assert_eq!(kubectl_status(&cluster, ns.name(), "hog"), "OOMKilled");

    // Under restartPolicy Always it runs again, and its last state says why it ended.
    let again = json!({
        "name": "hog", "image": SERVER_IMAGE,
        "command": ["/usr/bin/python3", "-c", "import time; x = bytearray(256 * 1024 * 1024); time.sleep(60)"],
        "resources": {"limits": {"memory": "64Mi"}},
    });
    create_pod(
        &ns,
        "hog-again",
        pod_spec(&node.name, json!([again]), "Always"),
    )
    .await;
    wait_pod(&ns, "hog-again", "restarted after OOMKilled", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|c| {
                c[0].restart_count >= 1
                    && c[0]
                        .last_state
                        .as_ref()
                        .and_then(|l| l.terminated.as_ref())
                        .and_then(|t| t.reason.as_deref())
                        == Some("OOMKilled")
            })
    })
    .await;

    let mut server = server_container(&[], false);
    server["resources"] = json!({
        "limits": {"cpu": "500m", "memory": "128Mi"},
        "requests": {"cpu": "250m", "memory": "128Mi"},
    });
    create_pod(&ns, "cpu", pod_spec(&node.name, json!([server]), "Always")).await;
    let pod = wait_pod(&ns, "cpu", "Running", |p| phase(p) == "Running").await;
    let uid = pod.metadata.uid.clone().ok_or("the pod has no uid")?;
    let cpu = pod_cgroup("cpu", &uid).ok_or("the pod has no cpu cgroup")?;
    assert_eq!(
        cgroup_value(&cpu.join("server"), "cpu.cfs_quota_us"),
        "50000"
    );
    assert_eq!(cgroup_value(&cpu.join("server"), "cpu.shares"), "256");
    assert_eq!(
        cgroup_value(&cpu, "cpu.cfs_quota_us"),
        "50000",
        "the pod's own cgroup"
    );
    let memory = pod_cgroup("memory", &uid).ok_or("the pod has no memory cgroup")?;
    assert_eq!(
        cgroup_value(&memory.join("server"), "memory.limit_in_bytes"),
        "134217728"
    );
    let procs = cgroup_value(&memory.join("server"), "cgroup.procs");
    assert!(
        !procs.is_empty(),
        "the server runs in its container's cgroup"
    );

    let hog_uid = ns
        .api::<Pod>()
        .get("hog")
        .await?
        .metadata
        .uid
        .ok_or("no uid")?;
    for name in ["cpu", "hog", "hog-again"] {
        ns.api::<Pod>().delete(name, &Default::default()).await?;
    }
    for name in ["cpu", "hog", "hog-again"] {
        wait_pod_gone(&ns, name).await;
    }
    for controller in ["memory", "cpu"] {
        assert_eq!(
            pod_cgroup(controller, &uid),
            None,
            "the cgroups go with the pod"
        );
        assert_eq!(pod_cgroup(controller, &hog_uid), None);
    }
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// Waits until the pod `name` is gone from the API server (the node stopped it and removed it).
async fn wait_pod_gone(ns: &faas_e2e::TestNamespace, name: &str) {
    let api = ns.api::<Pod>();
    faas_e2e::wait::until(&format!("pod {name} gone"), || {
        let api = api.clone();
        async move {
            Ok(match api.get_opt(name).await? {
                None => faas_e2e::wait::Poll::Ready(()),
                Some(pod) => faas_e2e::wait::Poll::Pending(format!("phase {}", phase(&pod))),
            })
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecars_start_before_the_next_init_container_and_outlive_the_containers() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-sidecar").await;
    let ns = cluster.namespace("vn-sidecar").await?;
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("vn-sidecar")
        .join(ns.name());
    std::fs::create_dir_all(&dir)?;
    let env = json!([{"name": "DIR", "value": dir.to_string_lossy()}]);
    // Each writes when SIGTERM reaches it; the containers take a second over it.
    // `$$$$`: the kubelet turns `$$` into `$`.
    let sidecar = "echo $$$$ >> \"$DIR/sidecar-pids\"; \
        trap 'date +%s%N > \"$DIR/sidecar-stopped\"; exit 0' TERM; while :; do sleep 0.1; done";
    let app = "trap 'sleep 1; date +%s%N > \"$DIR/app-stopped\"; exit 0' TERM; \
        while :; do sleep 0.1; done";
    let mut spec = pod_spec(
        &node.name,
        json!([{"name": "app", "image": SERVER_IMAGE, "command": ["/bin/sh", "-c", app], "env": env}]),
        "Never",
    );
    spec["initContainers"] = json!([
        {"name": "agent", "image": SERVER_IMAGE, "restartPolicy": "Always",
         "command": ["/bin/sh", "-c", sidecar], "env": env},
        // Runs only once the sidecar runs.
        {"name": "check", "image": SERVER_IMAGE,
         "command": ["/bin/sh", "-c", "test -s \"$DIR/sidecar-pids\""], "env": env},
    ]);
    spec["terminationGracePeriodSeconds"] = json!(20);
    create_pod(&ns, "sidecar", spec).await;
    let pod = wait_pod(&ns, "sidecar", "Running and Ready", |p| {
        phase(p) == "Running" && pod_ready(p)
    })
    .await;
    let inits = pod
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.clone())
        .unwrap_or_default();
    assert!(
        inits[0].state.as_ref().is_some_and(|s| s.running.is_some()),
        "{inits:?}"
    );
    assert_eq!((inits[0].started, inits[0].ready), (Some(true), true));
    let check = inits[1].state.as_ref().and_then(|s| s.terminated.as_ref());
    assert_eq!(
        check.map(|t| (t.exit_code, t.reason.as_deref())),
        Some((0, Some("Completed")))
    );
    let out = faas_e2e::run_kubectl(
        &cluster,
        &["-n", ns.name(), "get", "pod", "sidecar", "--no-headers"],
    );
    let columns: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        (columns[1].as_str(), columns[2].as_str()),
        ("2/2", "Running"),
        "{columns:?}"
    );

    // A sidecar that ends runs again, whatever the pod's restart policy.
    let first: i32 = std::fs::read_to_string(dir.join("sidecar-pids"))?
        .trim()
        .parse()?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let pod = wait_pod(&ns, "sidecar", "the sidecar restarted", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.init_container_statuses.as_ref())
            .is_some_and(|c| {
                c[0].restart_count >= 1 && c[0].state.as_ref().is_some_and(|s| s.running.is_some())
            })
    })
    .await;
    assert_eq!(phase(&pod), "Running");
    let app_restarts = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|c| c[0].restart_count);
    assert_eq!(app_restarts, Some(0));

    // On deletion the containers stop first, the sidecar after them.
    ns.api::<Pod>()
        .delete("sidecar", &Default::default())
        .await?;
    wait_pod_gone(&ns, "sidecar").await;
    let stamp = |file: &str| -> Result<u128, Box<dyn std::error::Error>> {
        Ok(std::fs::read_to_string(dir.join(file))?.trim().parse()?)
    };
    let (app_stopped, sidecar_stopped) = (stamp("app-stopped")?, stamp("sidecar-stopped")?);
    assert!(
        sidecar_stopped >= app_stopped,
        "the sidecar stopped at {sidecar_stopped}, before the app at {app_stopped}"
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

/// A backend that cannot give containers groups (here the function backend: no processes) says
/// so on the pod rather than ignore `fsGroup`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_group_a_backend_cannot_apply_is_said_in_an_event() -> TestResult {
    use faas_k8s::node::function::{FunctionBackend, FunctionBackendConfig, function_image};
    let cluster = TestCluster::require().await;
    let registry =
        faas_core::Registry::from([faas_core::FunctionDefinition::from_handler("hello", hello)]);
    let backend = FunctionBackend::new(
        FunctionBackendConfig::new(registry)
            .with_addresses(faas_k8s::node::AddressPool::new(next_cidr().parse()?))
            .with_capacity(faas_k8s::node::Capacity::new("2", "1Gi", 10)),
    );
    let node = TestNode::start_on(
        &cluster,
        unique("vn-nogroups"),
        std::sync::Arc::new(backend),
    )
    .await;
    let ns = cluster.namespace("vn-nogroups").await?;
    let container = json!({"name": "hello", "image": function_image("hello")});
    let mut spec = pod_spec(&node.name, json!([container]), "Always");
    spec["securityContext"] = json!({"fsGroup": 2000, "supplementalGroups": [3000]});
    create_pod(&ns, "grouped", spec).await;
    wait_pod(&ns, "grouped", "Running", |p| phase(p) == "Running").await;
    let warning = ns.wait_event("GroupsNotApplied", Some("grouped")).await?;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    let note = warning.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("fsGroup") && note.contains("function backend"),
        "{warning:?}"
    );
    ns.delete().await?;
    node.stop().await;
    Ok(())
}
