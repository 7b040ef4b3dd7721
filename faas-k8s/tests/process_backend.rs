//! The process backend against real processes on loopback addresses.
//!
//! Every test uses its own address range and state directory, so the tests run in parallel.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use faas_k8s::node::process::{ImageMap, ProcessBackend, ProcessBackendConfig};
use faas_k8s::node::{
    AddressPool, BackendError, ContainerLaunch, ContainerState, LogOptions, PodBackend, PodKey,
    PodLaunch, PodRuntimeStatus,
};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "support/root.rs"]
mod root;

/// Generous: the machine is shared. Only ever a bound on waiting for an event, never asserted.
const PATIENCE: Duration = Duration::from_secs(60);

fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("process-backend")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(name: &str, range: u8) -> ProcessBackendConfig {
    ProcessBackendConfig::new(test_dir(name).join("state"))
        .with_images(
            ImageMap::new()
                .with_image("shell", "/bin/sh")
                .with_image("python", "/usr/bin/python3"),
        )
        .with_addresses(AddressPool::new(
            format!("127.77.{range}.0/24").parse().unwrap(),
        ))
}

fn key(name: &str) -> PodKey {
    PodKey::new("default", name, format!("uid-{name}"))
}

/// A pod with one `/bin/sh -c <script>` container named `main`.
fn shell_pod(name: &str, script: &str, env: &[(&str, &str)]) -> PodLaunch {
    PodLaunch::new(key(name), vec![shell("main", script, env)])
}

fn shell(container: &str, script: &str, env: &[(&str, &str)]) -> ContainerLaunch {
    ContainerLaunch::new(container, "shell")
        .with_args(vec!["-c".into(), script.into()])
        .with_env(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
}

/// Waits (on the backend's events) until the pod's status satisfies `done`.
async fn wait_for(
    backend: &ProcessBackend,
    key: &PodKey,
    what: &str,
    done: impl Fn(&PodRuntimeStatus) -> bool,
) -> PodRuntimeStatus {
    let mut events = backend.events();
    let wait = async {
        loop {
            if let Some(status) = backend.status(key).await.unwrap()
                && done(&status)
            {
                return status;
            }
            events.next().await.expect("the event stream ended");
        }
    };
    match tokio::time::timeout(PATIENCE, wait).await {
        Ok(status) => status,
        Err(_) => panic!(
            "{key}: never {what}; last status: {:?}",
            backend.status(key).await
        ),
    }
}

/// Retries `attempt` until it gives `Some`.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, attempt: impl Fn() -> F) -> T {
    let wait = async {
        loop {
            if let Some(value) = attempt().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("never {what}"))
}

fn terminated(status: &PodRuntimeStatus, container: &str) -> Option<faas_k8s::node::Terminated> {
    match &status.container(container)?.state {
        ContainerState::Terminated(t) => Some(t.clone()),
        _ => None,
    }
}

fn running(status: &PodRuntimeStatus) -> bool {
    status
        .containers
        .iter()
        .all(|c| matches!(c.state, ContainerState::Running { .. }))
}

async fn http_get(ip: IpAddr, port: u16) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect((ip, port)).await?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

async fn read_logs(backend: &ProcessBackend, key: &PodKey, opts: LogOptions) -> String {
    let stream = backend.logs(key, "main", opts).await.unwrap();
    let chunks: Vec<_> = stream.map(|c| c.unwrap()).collect().await;
    String::from_utf8(chunks.concat()).unwrap()
}

/// Live (not zombie) processes of a process group, read from /proc.
fn group_members(pgid: i32) -> Vec<i32> {
    procfs::process::all_processes()
        .unwrap()
        .flatten()
        .filter_map(|process| process.stat().ok())
        .filter(|stat| stat.pgrp == pgid && !matches!(stat.state, 'Z' | 'X'))
        .map(|stat| stat.pid)
        .collect()
}

async fn read_pid(path: &Path) -> i32 {
    eventually("wrote its pid", || async {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines().next()?.trim().parse().ok()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_listen_on_the_same_port_on_their_own_addresses() {
    let backend = ProcessBackend::new(config("same-port", 1)).await.unwrap();
    let server = "exec /usr/bin/python3 -m http.server --bind \"$POD_IP\" 8080";
    let a = backend.create(shell_pod("a", server, &[])).await.unwrap();
    let b = backend.create(shell_pod("b", server, &[])).await.unwrap();
    let (ip_a, ip_b) = (a.pod_ip.unwrap(), b.pod_ip.unwrap());
    assert_ne!(ip_a, ip_b);
    assert!(ip_a.to_string().starts_with("127.77.1."), "{ip_a}");
    for ip in [ip_a, ip_b] {
        let response = eventually(
            "answered HTTP",
            || async move { http_get(ip, 8080).await.ok() },
        )
        .await;
        assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    }
    assert!(running(&backend.status(&key("a")).await.unwrap().unwrap()));

    backend
        .delete(&key("a"), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(backend.status(&key("a")).await.unwrap().is_none());
    assert!(
        http_get(ip_a, 8080).await.is_err(),
        "a deleted pod stops serving"
    );
    assert!(
        http_get(ip_b, 8080)
            .await
            .unwrap()
            .starts_with("HTTP/1.0 200")
    );
    backend
        .delete(&key("b"), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(backend.config().addresses.in_use(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_signals_become_terminated_states() {
    let backend = ProcessBackend::new(config("exit-codes", 2)).await.unwrap();
    let pod = PodLaunch::new(
        key("exits"),
        vec![
            shell("ok", "exit 0", &[]),
            shell("fails", "exit 3", &[]),
            shell("killed", "kill -KILL $$", &[]),
        ],
    );
    backend.create(pod).await.unwrap();
    let status = wait_for(&backend, &key("exits"), "all exited", |s| {
        ["ok", "fails", "killed"]
            .iter()
            .all(|c| terminated(s, c).is_some())
    })
    .await;
    let ok = terminated(&status, "ok").unwrap();
    assert_eq!(
        (ok.exit_code, ok.signal, ok.reason.as_str()),
        (0, None, "Completed")
    );
    let fails = terminated(&status, "fails").unwrap();
    assert_eq!(
        (fails.exit_code, fails.signal, fails.reason.as_str()),
        (3, None, "Error")
    );
    let killed = terminated(&status, "killed").unwrap();
    assert_eq!(
        (killed.exit_code, killed.signal, killed.reason.as_str()),
        (137, Some(9), "Error")
    );
    assert!(killed.finished_at >= killed.started_at);

    backend
        .restart_container(&key("exits"), "fails")
        .await
        .unwrap();
    let status = wait_for(&backend, &key("exits"), "failed again", |s| {
        s.container("fails").unwrap().restart_count == 1 && terminated(s, "fails").is_some()
    })
    .await;
    let fails = status.container("fails").unwrap();
    assert_eq!(fails.last_termination.as_ref().unwrap().exit_code, 3);
    backend
        .delete(&key("exits"), Duration::from_secs(5))
        .await
        .unwrap();
}

/// Waits until the polite container has installed its SIGTERM trap (it creates `trapped` right
/// after), then removes the file for its next run to create again.
async fn wait_trap(trapped: &Path) {
    eventually(
        "the polite container installed its SIGTERM trap",
        || async { std::fs::remove_file(trapped).ok() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_honours_sigterm_and_kills_after_the_grace() {
    let dir = test_dir("grace-files");
    let marker = dir.join("polite-got-term");
    let backend =
        ProcessBackend::new(config("grace", 3).with_restart_grace(Duration::from_millis(500)))
            .await
            .unwrap();
    // The polite container says when its trap is in place: a SIGTERM that came before would end
    // it by the signal instead of through the trap.
    let trapped = dir.join("polite-trapped");
    let polite = "trap 'touch \"$MARKER\"; exit 0' TERM; touch \"$TRAPPED\"; \
                  while :; do sleep 1 & wait $!; done";
    let stubborn = "trap '' TERM; echo $$ > \"$PIDFILE\"; while :; do sleep 1; done";
    let pidfile = dir.join("stubborn.pid");
    let pod = PodLaunch::new(
        key("grace"),
        vec![
            shell(
                "polite",
                polite,
                &[
                    ("MARKER", marker.to_str().unwrap()),
                    ("TRAPPED", trapped.to_str().unwrap()),
                ],
            ),
            shell(
                "stubborn",
                stubborn,
                &[("PIDFILE", pidfile.to_str().unwrap())],
            ),
        ],
    );
    backend.create(pod).await.unwrap();
    let stubborn_pid = read_pid(&pidfile).await;
    wait_trap(&trapped).await;

    // A restart of a running container stops it first: its previous run shows how it ended.
    backend
        .restart_container(&key("grace"), "polite")
        .await
        .unwrap();
    backend
        .restart_container(&key("grace"), "stubborn")
        .await
        .unwrap();
    let status = backend.status(&key("grace")).await.unwrap().unwrap();
    let polite_end = status
        .container("polite")
        .unwrap()
        .last_termination
        .clone()
        .unwrap();
    assert_eq!((polite_end.exit_code, polite_end.signal), (0, None));
    assert!(marker.exists(), "the polite container ran its SIGTERM trap");
    let stubborn_end = status
        .container("stubborn")
        .unwrap()
        .last_termination
        .clone()
        .unwrap();
    assert_eq!(
        (stubborn_end.exit_code, stubborn_end.signal),
        (137, Some(9))
    );
    assert!(group_members(stubborn_pid).is_empty());
    assert!(running(&status));

    std::fs::remove_file(&marker).unwrap();
    let second_pid = eventually("restarted stubborn wrote its pid", || async {
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (pid != stubborn_pid).then_some(pid)
    })
    .await;
    wait_trap(&trapped).await;
    backend
        .delete(&key("grace"), Duration::from_millis(500))
        .await
        .unwrap();
    assert!(marker.exists(), "delete sent SIGTERM first");
    assert!(
        group_members(second_pid).is_empty(),
        "the stubborn one was killed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outlives_its_container() {
    let dir = test_dir("orphans-files");
    let backend = ProcessBackend::new(config("orphans", 4)).await.unwrap();
    // Background children that would outlive a naive kill of the main process.
    let forks = "sleep 1000 & sleep 1000 & (sleep 1000 &); echo $$ > \"$PIDFILE\"; wait";
    let pidfile = dir.join("forks.pid");
    backend
        .create(shell_pod(
            "forks",
            forks,
            &[("PIDFILE", pidfile.to_str().unwrap())],
        ))
        .await
        .unwrap();
    let pgid = read_pid(&pidfile).await;
    eventually("all children started", || async {
        (group_members(pgid).len() >= 4).then_some(())
    })
    .await;
    backend
        .delete(&key("forks"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(group_members(pgid), Vec::<i32>::new());

    // A main process that exits on its own takes its leftovers with it.
    let leaves = "(sleep 1000 &); sleep 1000 & echo $$ > \"$PIDFILE\"; exit 0";
    let pidfile = dir.join("leaves.pid");
    backend
        .create(shell_pod(
            "leaves",
            leaves,
            &[("PIDFILE", pidfile.to_str().unwrap())],
        ))
        .await
        .unwrap();
    let pgid = read_pid(&pidfile).await;
    wait_for(&backend, &key("leaves"), "exited", |s| {
        terminated(s, "main").is_some()
    })
    .await;
    assert_eq!(group_members(pgid), Vec::<i32>::new());
    backend
        .delete(&key("leaves"), Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_honour_tail_since_timestamps_limit_and_follow() {
    let dir = test_dir("logs-files");
    let go = dir.join("go");
    let backend = ProcessBackend::new(config("logs", 5)).await.unwrap();
    let script = "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; \
                  while [ ! -e \"$GO\" ]; do sleep 0.05; done; echo last; exit 0";
    backend
        .create(shell_pod("logs", script, &[("GO", go.to_str().unwrap())]))
        .await
        .unwrap();
    let k = key("logs");
    let all = eventually("logged six lines", || async {
        let text = read_logs(&backend, &k, LogOptions::default()).await;
        text.contains("oops").then_some(text)
    })
    .await;
    assert_eq!(all, "line 1\nline 2\nline 3\nline 4\nline 5\noops\n");

    let mut tail = LogOptions::default();
    tail.tail_lines = Some(2);
    assert_eq!(read_logs(&backend, &k, tail).await, "line 5\noops\n");

    let mut stamped = LogOptions::default();
    stamped.timestamps = true;
    let text = read_logs(&backend, &k, stamped).await;
    for line in text.lines() {
        let (ts, _) = line.split_once(' ').unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        assert!(SystemTime::from(parsed) <= SystemTime::now());
    }

    let mut future = LogOptions::default();
    future.since = Some(SystemTime::now() + Duration::from_secs(3600));
    assert_eq!(read_logs(&backend, &k, future).await, "");
    let mut past = LogOptions::default();
    past.since = Some(SystemTime::UNIX_EPOCH);
    assert_eq!(read_logs(&backend, &k, past).await, all);

    let mut limited = LogOptions::default();
    limited.limit_bytes = Some(9);
    assert_eq!(read_logs(&backend, &k, limited).await, "line 1\nli");

    let mut follow = LogOptions::default();
    follow.follow = true;
    follow.tail_lines = Some(1);
    let mut stream = backend.logs(&k, "main", follow).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first, "oops\n");
    std::fs::write(&go, "").unwrap();
    // The stream ends by itself once the container has exited.
    let rest: Vec<_> = stream.map(|c| c.unwrap()).collect().await;
    assert_eq!(rest.concat(), b"last\n");
    backend.delete(&k, Duration::from_secs(5)).await.unwrap();
    assert!(matches!(
        backend.logs(&k, "main", LogOptions::default()).await,
        Err(BackendError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_backend_adopts_running_processes_without_duplicates() {
    let dir = test_dir("adopt-files");
    let starts = dir.join("starts");
    let tick = dir.join("tick");
    let config = config("adopt", 6).with_adopted_poll_interval(Duration::from_millis(50));
    let script = "echo $$ >> \"$STARTS\"; echo started; \
                  while [ ! -e \"$TICK\" ]; do sleep 0.05; done; echo ticked; \
                  exec /usr/bin/python3 -m http.server --bind \"$POD_IP\" 8080";
    let launch = shell_pod(
        "adopt",
        script,
        &[
            ("STARTS", starts.to_str().unwrap()),
            ("TICK", tick.to_str().unwrap()),
        ],
    );
    let first = ProcessBackend::new(config.clone()).await.unwrap();
    let created = first.create(launch.clone()).await.unwrap();
    let pid = read_pid(&starts).await;
    drop(first);

    // The same node, restarted.
    let config = config.with_addresses(AddressPool::new("127.77.6.0/24".parse().unwrap()));
    let second = ProcessBackend::new(config).await.unwrap();
    let listed = second.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key("adopt"));
    assert_eq!(listed[0].pod_ip, created.pod_ip);
    assert!(running(&listed[0]), "{listed:?}");
    let again = second.create(launch).await.unwrap();
    assert_eq!(again.pod_ip, created.pod_ip);
    assert!(
        second
            .config()
            .addresses
            .is_in_use(match created.pod_ip.unwrap() {
                IpAddr::V4(ip) => ip,
                IpAddr::V6(_) => unreachable!(),
            }),
        "the adopted address is not handed out again"
    );

    // Output written after the restart reaches the log.
    std::fs::write(&tick, "").unwrap();
    let ip = created.pod_ip.unwrap();
    eventually(
        "answered HTTP",
        || async move { http_get(ip, 8080).await.ok() },
    )
    .await;
    let logs = eventually("logged the tick", || async {
        let text = read_logs(&second, &key("adopt"), LogOptions::default()).await;
        text.contains("ticked").then_some(text)
    })
    .await;
    assert!(logs.starts_with("started\nticked\n"), "{logs}");
    assert_eq!(
        std::fs::read_to_string(&starts).unwrap().lines().count(),
        1,
        "started once"
    );

    // The adopted process is watched: its end is noticed.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = wait_for(&second, &key("adopt"), "noticed the exit", |s| {
        terminated(s, "main").is_some()
    })
    .await;
    assert_eq!(terminated(&status, "main").unwrap().exit_code, 137);
    second
        .delete(&key("adopt"), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(second.list().await.unwrap().is_empty());
    let third = ProcessBackend::new(config_for_reopen(&second))
        .await
        .unwrap();
    assert!(
        third.list().await.unwrap().is_empty(),
        "a deleted pod leaves no record"
    );
}

fn config_for_reopen(backend: &ProcessBackend) -> ProcessBackendConfig {
    backend
        .config()
        .clone()
        .with_addresses(AddressPool::new("127.77.6.0/24".parse().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_images_are_refused_and_exec_runs_in_the_container() {
    let backend = ProcessBackend::new(config("images", 7)).await.unwrap();
    let err = backend
        .create(PodLaunch::new(
            key("nginx"),
            vec![ContainerLaunch::new("web", "nginx:1.27")],
        ))
        .await
        .unwrap_err();
    match err {
        BackendError::InvalidImage { image, reason } => {
            assert_eq!(image, "nginx:1.27");
            assert!(
                reason.contains("shell"),
                "the message lists the known images: {reason}"
            );
        }
        other => panic!("expected InvalidImage, got {other:?}"),
    }
    assert_eq!(backend.config().addresses.in_use(), 0);
    assert!(backend.list().await.unwrap().is_empty());

    let missing = backend
        .create(PodLaunch::new(
            key("typo"),
            vec![
                ContainerLaunch::new("main", "shell").with_command(vec!["/no/such/binary".into()]),
            ],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, BackendError::Start { ref container, .. } if container == "main"),
        "{missing:?}"
    );
    assert_eq!(backend.config().addresses.in_use(), 0);

    // An address reserved before create is the pod's, and survives a failed create.
    let reserved = backend.reserve_ip(&key("typo")).await.unwrap().unwrap();
    assert_eq!(
        backend.reserve_ip(&key("typo")).await.unwrap(),
        Some(reserved)
    );
    let typo = PodLaunch::new(
        key("typo"),
        vec![ContainerLaunch::new("main", "shell").with_command(vec!["/no/such/binary".into()])],
    );
    backend.create(typo).await.unwrap_err();
    assert_eq!(
        backend.reserve_ip(&key("typo")).await.unwrap(),
        Some(reserved)
    );
    backend.delete(&key("typo"), Duration::ZERO).await.unwrap();
    assert_eq!(
        backend.config().addresses.in_use(),
        0,
        "delete releases a reservation"
    );

    let reserved = backend.reserve_ip(&key("exec")).await.unwrap().unwrap();
    let pod = shell_pod("exec", "while :; do sleep 1; done", &[("GREETING", "hi")]);
    let status = backend.create(pod).await.unwrap();
    assert_eq!(status.pod_ip, Some(reserved));
    let ip = status.pod_ip.unwrap().to_string();
    let k = key("exec");
    let check =
        format!("test \"$POD_IP\" = {ip} && test \"$GREETING\" = hi && test \"$HOSTNAME\" = exec");
    let sh = |script: &str| vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()];
    assert_eq!(backend.exec(&k, "main", sh(&check)).await.unwrap(), 0);
    assert_eq!(backend.exec(&k, "main", sh("exit 4")).await.unwrap(), 4);
    assert!(backend.exec(&k, "nope", sh("true")).await.is_err());
    backend.delete(&k, Duration::from_secs(5)).await.unwrap();
}

/// Needs root (see `support/root.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_can_live_in_a_network_namespace() {
    if !root::may_run("pods_can_live_in_a_network_namespace") {
        return;
    }
    use faas_k8s::node::network::PodNetwork;
    let network = PodNetwork::namespace("faasprocns", "10.247.0.0/16");
    let config = config("netns", 8)
        .with_addresses(AddressPool::new("10.247.1.0/24".parse().unwrap()))
        .with_network(network.clone());
    let backend = match ProcessBackend::new(config).await {
        Ok(backend) => backend,
        Err(e) => panic!("a pod network namespace needs root: {e:?}"),
    };
    let server = "exec /usr/bin/python3 -m http.server --bind \"$POD_IP\" 8080";
    let status = backend.create(shell_pod("ns", server, &[])).await.unwrap();
    let ip = status.pod_ip.unwrap();
    assert!(ip.to_string().starts_with("10.247.1."), "{ip}");
    let response = eventually("answered HTTP from the namespace", || async move {
        http_get(ip, 8080).await.ok()
    })
    .await;
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    let k = key("ns");
    // The kernel's own list of local addresses, as the process sees it.
    let inside = "grep -q \"$POD_IP\" /proc/net/fib_trie";
    let sh = vec!["/bin/sh".to_owned(), "-c".to_owned(), inside.to_owned()];
    assert_eq!(
        backend.exec(&k, "main", sh).await.unwrap(),
        0,
        "exec runs inside"
    );
    backend.delete(&k, Duration::from_secs(5)).await.unwrap();
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
    let mut cat = tokio::process::Command::new("/bin/cat");
    cat.arg("/proc/net/fib_trie");
    let listing = network.output(cat).await.unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(!listing.contains(&format!("|-- {ip}\n")), "{listing}");

    // The namespace lost its last pod address but keeps its routes: the next pod answers.
    let next = backend.create(shell_pod("ns2", server, &[])).await.unwrap();
    let ip = next.pod_ip.unwrap();
    eventually("the next pod answered HTTP", || async move {
        tokio::time::timeout(Duration::from_secs(2), http_get(ip, 8080))
            .await
            .ok()?
            .ok()
    })
    .await;
    backend
        .delete(&key("ns2"), Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pod_that_was_never_created_releases_its_reserved_address() {
    let backend = ProcessBackend::new(config("reserved-only", 9))
        .await
        .unwrap();
    // The node reserves the address, then cannot resolve the pod's environment (a missing
    // ConfigMap, say), so it never calls create before the pod is deleted.
    let reserved = backend.reserve_ip(&key("stuck")).await.unwrap().unwrap();
    let other = backend.reserve_ip(&key("other")).await.unwrap().unwrap();
    assert_ne!(reserved, other);
    assert_eq!(backend.config().addresses.in_use(), 2);

    backend.delete(&key("stuck"), Duration::ZERO).await.unwrap();
    let IpAddr::V4(reserved) = reserved else {
        panic!("IPv4 pod addresses expected");
    };
    assert!(!backend.config().addresses.is_in_use(reserved));
    assert_eq!(
        backend.config().addresses.in_use(),
        1,
        "only the other pod's"
    );
    assert!(backend.status(&key("stuck")).await.unwrap().is_none());
    // Deleting it again is fine, and a pod of the same name gets a fresh reservation.
    backend.delete(&key("stuck"), Duration::ZERO).await.unwrap();
    assert!(backend.reserve_ip(&key("stuck")).await.unwrap().is_some());
    assert_eq!(backend.config().addresses.in_use(), 2);
}

/// Where a cgroup file of the node's parent `parent` is: in the unified hierarchy when it holds
/// the node's cgroups, else in the v1 hierarchy of `controller`.
fn cgroup_dir(controller: &str, relative: &Path) -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let mut v1 = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (point, kind, options) = (fields[1], fields[2], fields[3]);
        let candidate = Path::new(point).join(relative);
        if kind == "cgroup2" && candidate.join("memory.max").exists() {
            return candidate;
        }
        if kind == "cgroup" && options.split(',').any(|o| o == controller) && v1.is_none() {
            v1 = Some(candidate);
        }
    }
    v1.unwrap_or_else(|| panic!("no cgroup hierarchy holds {}", relative.display()))
}

/// The value of `file` in the cgroup at `dir`, trimmed.
fn cgroup_value(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

/// Needs root (see `support/root.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_enforced_through_cgroups_that_go_with_the_pod() {
    use faas_k8s::node::ContainerResources;
    if !root::may_run("limits_are_enforced_through_cgroups_that_go_with_the_pod") {
        return;
    }
    let parent = PathBuf::from(format!("faas-test/limits-{}", std::process::id()));
    let backend = ProcessBackend::new(config("limits", 20).with_cgroup_parent(&parent))
        .await
        .unwrap();
    assert_eq!(backend.unenforced_limits(), None, "this node runs as root");
    const MI: u64 = 1024 * 1024;

    // Over its memory limit: the kernel ends it, and the run says why.
    let hog = ContainerLaunch::new("main", "python")
        .with_args(vec![
            "-c".into(),
            "import time; x = bytearray(256 * 1024 * 1024); time.sleep(60)".into(),
        ])
        .with_resources(ContainerResources::default().with_memory_limit(Some(64 * MI)));
    backend
        .create(PodLaunch::new(key("hog"), vec![hog]))
        .await
        .unwrap();
    let status = wait_for(&backend, &key("hog"), "OOMKilled", |s| {
        terminated(s, "main").is_some()
    })
    .await;
    let ended = terminated(&status, "main").unwrap();
    assert_eq!(
        (ended.reason.as_str(), ended.exit_code),
        ("OOMKilled", 137),
        "{ended:?}"
    );
    let hog_dir = |controller: &str| cgroup_dir(controller, &parent.join("poduid-hog"));
    assert_eq!(
        cgroup_value(&hog_dir("memory").join("main"), memory_file()),
        (64 * MI).to_string()
    );
    // A restart runs in the same cgroup; a run that ends by itself is no OOM.
    backend
        .restart_container(&key("hog"), "main")
        .await
        .unwrap();
    wait_for(&backend, &key("hog"), "OOMKilled again", |s| {
        terminated(s, "main").is_some_and(|t| t.reason == "OOMKilled")
            && s.containers[0].restart_count == 1
    })
    .await;

    // CPU: the quota from the limit, the weight from the request, the process inside.
    let cpu = shell("main", "exec sleep 300", &[])
        .with_resources(ContainerResources::default().with_cpu(Some(250), Some(500)));
    let calm = shell("side", "exec sleep 300", &[]);
    backend
        .create(PodLaunch::new(key("cpu"), vec![cpu, calm]))
        .await
        .unwrap();
    wait_for(&backend, &key("cpu"), "running", running).await;
    let cpu_dir = cgroup_dir("cpu", &parent.join("poduid-cpu"));
    if cpu_dir.join("cpu.max").exists() {
        assert_eq!(
            cgroup_value(&cpu_dir.join("main"), "cpu.max"),
            "50000 100000"
        );
        assert_eq!(cgroup_value(&cpu_dir.join("side"), "cpu.max"), "max 100000");
        assert_eq!(
            cgroup_value(&cpu_dir, "cpu.max"),
            "max 100000",
            "not every container is limited"
        );
    } else {
        assert_eq!(
            cgroup_value(&cpu_dir.join("main"), "cpu.cfs_quota_us"),
            "50000"
        );
        assert_eq!(
            cgroup_value(&cpu_dir.join("main"), "cpu.cfs_period_us"),
            "100000"
        );
        assert_eq!(cgroup_value(&cpu_dir.join("main"), "cpu.shares"), "256");
        assert_eq!(
            cgroup_value(&cpu_dir.join("side"), "cpu.cfs_quota_us"),
            "-1"
        );
        assert_eq!(
            cgroup_value(&cpu_dir, "cpu.cfs_quota_us"),
            "-1",
            "not every container is limited"
        );
    }
    let procs = cgroup_value(
        &cgroup_dir("memory", &parent.join("poduid-cpu/main")),
        "cgroup.procs",
    );
    assert_eq!(
        procs.lines().count(),
        1,
        "the container's one process: {procs:?}"
    );
    let pid: i32 = procs.parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    // A command run in a container (exec probe, hook, kubectl exec) runs in its cgroup.
    let in_main = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        "grep -q '/poduid-cpu/main$' /proc/self/cgroup".to_owned(),
    ];
    assert_eq!(
        backend
            .exec(&key("cpu"), "main", in_main.clone())
            .await
            .unwrap(),
        0,
        "exec in main runs in main's cgroup"
    );
    assert_eq!(
        backend.exec(&key("cpu"), "side", in_main).await.unwrap(),
        1,
        "exec in side does not"
    );
    let mut session = backend
        .exec_session(
            &key("cpu"),
            "main",
            faas_k8s::node::exec::ExecRequest::new(vec!["cat".into(), "/proc/self/cgroup".into()]),
        )
        .await
        .unwrap();
    let mut shown = String::new();
    session.stdout.read_to_string(&mut shown).await.unwrap();
    assert_eq!(session.exit.await.unwrap(), 0);
    assert!(
        shown.lines().any(|l| l.ends_with("/poduid-cpu/main")),
        "{shown}"
    );

    // Deleting the pods removes their cgroups.
    for name in ["hog", "cpu"] {
        backend
            .delete(&key(name), Duration::from_secs(5))
            .await
            .unwrap();
    }
    for controller in ["memory", "cpu"] {
        assert!(!cgroup_dir(controller, &parent.join("poduid-hog")).exists());
        assert!(!cgroup_dir(controller, &parent.join("poduid-cpu")).exists());
    }

    // A pod cgroup no record speaks of (its node stopped half-way) is removed, with what runs in
    // it, when a backend starts over the same parent.
    backend
        .shutdown(faas_k8s::node::process::ShutdownPolicy::LeaveRunning)
        .await
        .unwrap();
    let stale = cgroup_dir("memory", &parent.join("podstale"));
    std::fs::create_dir_all(&stale).unwrap();
    let mut sleeper = std::process::Command::new("/bin/sleep")
        .arg("600")
        .spawn()
        .unwrap();
    std::fs::write(stale.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
    let again = ProcessBackend::new(config("limits-again", 21).with_cgroup_parent(&parent))
        .await
        .unwrap();
    assert!(!stale.exists(), "the orphaned cgroup is gone");
    let status = sleeper.wait().unwrap();
    assert!(!status.success(), "what ran in it was killed: {status:?}");
    again
        .shutdown(faas_k8s::node::process::ShutdownPolicy::LeaveRunning)
        .await
        .unwrap();
    for controller in ["memory", "cpu"] {
        let _ = std::fs::remove_dir(cgroup_dir(controller, &parent));
    }
}

/// The memory limit's file in the hierarchy the node uses.
fn memory_file() -> &'static str {
    let unified = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers"))
        .unwrap_or_default();
    if unified.split_whitespace().any(|c| c == "memory") {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    }
}

/// Writes `line` into the container's input through one attach session, then detaches.
async fn attach_and_send(backend: &ProcessBackend, key: &PodKey, line: &str) {
    let input = backend.attach_input(key, "main").await.unwrap();
    let mut stdin = input.stdin.expect("the container's input is open");
    stdin.write_all(line.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_sessions_write_to_the_input_of_containers_started_with_stdin() {
    let backend = ProcessBackend::new(config("stdin", 22)).await.unwrap();
    let all_logs = LogOptions::default();

    // stdinOnce: the first session's end is the end of the container's input.
    let once = PodLaunch::new(
        key("once"),
        vec![
            ContainerLaunch::new("main", "shell")
                .with_command(vec!["/bin/cat".into()])
                .with_stdin(true, true),
        ],
    );
    backend.create(once).await.unwrap();
    wait_for(&backend, &key("once"), "running", running).await;
    attach_and_send(&backend, &key("once"), "hello from attach\n").await;
    let status = wait_for(
        &backend,
        &key("once"),
        "ended by the end of its input",
        |s| terminated(s, "main").is_some(),
    )
    .await;
    assert_eq!(terminated(&status, "main").unwrap().exit_code, 0);
    assert_eq!(
        read_logs(&backend, &key("once"), all_logs.clone()).await,
        "hello from attach\n"
    );

    // Without stdinOnce the input stays open across sessions, and the container reads on.
    let open = shell_pod(
        "open",
        "while read -r line; do echo \"got $line\"; done; echo 'input ended'",
        &[],
    );
    let open = PodLaunch::new(
        key("open"),
        vec![open.containers[0].clone().with_stdin(true, false)],
    );
    backend.create(open).await.unwrap();
    wait_for(&backend, &key("open"), "running", running).await;
    attach_and_send(&backend, &key("open"), "one\n").await;
    attach_and_send(&backend, &key("open"), "two\n").await;
    eventually("both lines echoed", || async {
        let logs = read_logs(&backend, &key("open"), all_logs.clone()).await;
        (logs == "got one\ngot two\n").then_some(())
    })
    .await;
    let status = backend.status(&key("open")).await.unwrap().unwrap();
    assert!(running(&status), "still reading: {status:?}");

    // The container holds that input open itself: a restarted node's sessions still reach it.
    backend
        .shutdown(faas_k8s::node::process::ShutdownPolicy::LeaveRunning)
        .await
        .unwrap();
    let reopened = backend
        .config()
        .clone()
        .with_addresses(AddressPool::new("127.77.22.0/24".parse().unwrap()));
    drop(backend);
    let backend = ProcessBackend::new(reopened).await.unwrap();
    attach_and_send(&backend, &key("open"), "three\n").await;
    eventually("the line sent after the restart echoed", || async {
        let logs = read_logs(&backend, &key("open"), all_logs.clone()).await;
        (logs == "got one\ngot two\ngot three\n").then_some(())
    })
    .await;

    // A container without stdin: true refuses input; one asking for a terminal is not started
    // on a node that has no program to hold its terminal.
    backend
        .create(shell_pod("plain", "exec sleep 300", &[]))
        .await
        .unwrap();
    wait_for(&backend, &key("plain"), "running", running).await;
    let refused = backend
        .attach_input(&key("plain"), "main")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("stdin: true"),
        "the error names the fix: {refused}"
    );
    let tty = PodLaunch::new(
        key("tty"),
        vec![shell("main", "exec sleep 300", &[]).with_tty(true)],
    );
    let refused = backend.create(tty).await.unwrap_err();
    assert!(refused.to_string().contains("tty"), "{refused}");
    assert!(backend.status(&key("tty")).await.unwrap().is_none());

    backend
        .shutdown(faas_k8s::node::process::ShutdownPolicy::StopAll {
            grace: Duration::from_secs(5),
        })
        .await
        .unwrap();
}

/// The live processes holding the terminal of `container` of the pod `name` (`default`
/// namespace), found by their command line.
fn terminal_holders(name: &str, container: &str) -> Vec<i32> {
    let label = format!("default/{name}/{container}");
    procfs::process::all_processes()
        .unwrap()
        .flatten()
        .filter(|process| {
            process.cmdline().is_ok_and(|args| {
                args.iter().any(|a| a == "terminal-holder") && args.contains(&label)
            })
        })
        .filter(|process| {
            process
                .stat()
                .is_ok_and(|stat| !matches!(stat.state, 'Z' | 'X'))
        })
        .map(|process| process.pid)
        .collect()
}

/// Sends `line` to a terminal container through one attach session, after setting the
/// terminal's size to `rows` x `columns` as a client does; then detaches.
async fn attach_terminal(
    backend: &ProcessBackend,
    key: &PodKey,
    rows: u16,
    columns: u16,
    line: &str,
) {
    let input = backend.attach_input(key, "main").await.unwrap();
    let resize = input
        .resize
        .expect("the container has a terminal to resize");
    resize(faas_k8s::node::exec::TerminalSize {
        width: columns,
        height: rows,
    })
    .unwrap();
    let mut stdin = input.stdin.expect("the container's input is open");
    stdin.write_all(line.as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
}

#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_containers_keep_their_terminal_across_a_restart_of_the_node() {
    let config = config("tty", 24).with_terminal_holder(env!("CARGO_BIN_EXE_faas-vnode"));
    let backend = ProcessBackend::new(config).await.unwrap();
    let all_logs = LogOptions::default();

    // A command on a terminal: it sees one; what it shows is its log; its exit code is reported.
    let quick = PodLaunch::new(
        key("tty-quick"),
        vec![
            shell(
                "main",
                "test -t 0 && test -t 1 && echo ON-A-TTY; exit 3",
                &[],
            )
            .with_tty(true),
        ],
    );
    backend.create(quick).await.unwrap();
    let status = wait_for(&backend, &key("tty-quick"), "ended", |s| {
        terminated(s, "main").is_some()
    })
    .await;
    assert_eq!(terminated(&status, "main").unwrap().exit_code, 3);
    eventually("its output logged", || async {
        let logs = read_logs(&backend, &key("tty-quick"), all_logs.clone()).await;
        (logs == "ON-A-TTY\r\n").then_some(())
    })
    .await;
    eventually("the terminal's holder gone with the container", || async {
        terminal_holders("tty-quick", "main")
            .is_empty()
            .then_some(())
    })
    .await;

    // stdinOnce: the end of the first session is the end of the terminal's input (Ctrl-D).
    let once = PodLaunch::new(
        key("tty-once"),
        vec![
            shell("main", "cat; echo INPUT-$((0+1)) closed", &[])
                .with_stdin(true, true)
                .with_tty(true),
        ],
    );
    backend.create(once).await.unwrap();
    wait_for(&backend, &key("tty-once"), "running", running).await;
    attach_and_send(&backend, &key("tty-once"), "only\n").await;
    let status = wait_for(
        &backend,
        &key("tty-once"),
        "ended by the end of its input",
        |s| terminated(s, "main").is_some(),
    )
    .await;
    assert_eq!(terminated(&status, "main").unwrap().exit_code, 0);
    eventually("its output logged", || async {
        let logs = read_logs(&backend, &key("tty-once"), all_logs.clone()).await;
        logs.contains("INPUT-1 closed\r\n").then_some(())
    })
    .await;

    // An interactive shell: input reaches it through attach sessions, sizes through their resizes.
    let shell_pod = PodLaunch::new(
        key("tty-shell"),
        vec![
            ContainerLaunch::new("main", "shell")
                .with_stdin(true, false)
                .with_tty(true),
        ],
    );
    backend.create(shell_pod).await.unwrap();
    wait_for(&backend, &key("tty-shell"), "running", running).await;
    // The holder starts with the container; its command line shows once it has run.
    let holders = eventually("the terminal's holder running", || async {
        let holders = terminal_holders("tty-shell", "main");
        (!holders.is_empty()).then_some(holders)
    })
    .await;
    assert_eq!(holders.len(), 1, "one holder: {holders:?}");
    attach_terminal(
        &backend,
        &key("tty-shell"),
        33,
        91,
        "test -t 0 && echo TTY-$((1+1)); stty size\n",
    )
    .await;
    eventually("the shell answered on its terminal", || async {
        let logs = read_logs(&backend, &key("tty-shell"), all_logs.clone()).await;
        (logs.contains("TTY-2\r\n") && logs.contains("33 91\r\n")).then_some(())
    })
    .await;

    // The node goes and comes back: the shell keeps its terminal and its holder.
    backend
        .shutdown(faas_k8s::node::process::ShutdownPolicy::LeaveRunning)
        .await
        .unwrap();
    let reopened = backend.config().clone();
    drop(backend);
    let backend = ProcessBackend::new(reopened).await.unwrap();
    let status = backend.status(&key("tty-shell")).await.unwrap().unwrap();
    assert!(running(&status), "adopted, still running: {status:?}");
    assert_eq!(terminal_holders("tty-shell", "main"), holders);
    attach_terminal(
        &backend,
        &key("tty-shell"),
        40,
        100,
        "echo AFTER-$((2+3)); stty size\n",
    )
    .await;
    eventually("the shell answered after the restart", || async {
        let logs = read_logs(&backend, &key("tty-shell"), all_logs.clone()).await;
        (logs.contains("AFTER-5\r\n") && logs.contains("40 100\r\n")).then_some(())
    })
    .await;

    // A session sees what the terminal shows as it comes: output without a newline too.
    let input = backend
        .attach_input(&key("tty-shell"), "main")
        .await
        .unwrap();
    let mut shown = input.output.expect("the terminal's output");
    let mut stdin = input.stdin.expect("the container's input is open");
    stdin
        .write_all(b"printf 'PARTIAL-%s' $((3+4))\n")
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while !String::from_utf8_lossy(&seen).contains("PARTIAL-7") {
            let chunk = shown.next().await.expect("the output goes on").unwrap();
            seen.extend_from_slice(&chunk);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never shown: {:?}", String::from_utf8_lossy(&seen)));
    drop((stdin, shown));

    // Stopping the pod stops the shell and its holder.
    backend
        .delete(&key("tty-shell"), Duration::from_secs(5))
        .await
        .unwrap();
    eventually("the holder gone with the pod", || async {
        terminal_holders("tty-shell", "main")
            .is_empty()
            .then_some(())
    })
    .await;
    backend
        .shutdown(faas_k8s::node::process::ShutdownPolicy::StopAll {
            grace: Duration::from_secs(5),
        })
        .await
        .unwrap();
}

/// Needs root (see `support/root.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_group_owns_the_volumes_and_the_processes_get_their_groups() {
    use faas_k8s::node::{MountLaunch, VolumeFile, VolumeLaunch};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !root::may_run("fs_group_owns_the_volumes_and_the_processes_get_their_groups") {
        return;
    }
    let backend = ProcessBackend::new(config("fsgroup", 23)).await.unwrap();
    assert_eq!(backend.unapplied_groups(), None, "this node runs as root");
    let mounts = test_dir("fsgroup-mounts");
    let (data, conf) = (mounts.join("data"), mounts.join("conf"));
    let script = "id -G; echo written > \"$DATA/out\"; mkdir \"$DATA/sub\"; \
                  stat -c 'out %g' \"$DATA/out\"; stat -c 'sub %g' \"$DATA/sub\"; \
                  cat \"$CONF/key\"; exec sleep 300";
    let container = shell(
        "main",
        script,
        &[
            ("DATA", data.to_str().unwrap()),
            ("CONF", conf.to_str().unwrap()),
        ],
    )
    .with_working_dir(Some("/tmp".into()))
    .with_identity(Some(1000), Some(3000))
    .with_supplemental_groups(vec![2345, 3456])
    .with_mounts(vec![
        MountLaunch::new("data", data.to_str().unwrap()),
        MountLaunch::new("conf", conf.to_str().unwrap()).read_only(true),
    ]);
    let pod = PodLaunch::new(key("grouped"), vec![container])
        .with_fs_group(Some(2345))
        .with_volumes(vec![
            VolumeLaunch::empty_dir("data", false),
            VolumeLaunch::files(
                "conf",
                vec![
                    // Readable by the owner only, as a Secret's defaultMode 0400 gives it.
                    VolumeFile::new("key", b"secret value\n".to_vec(), 0o400),
                    VolumeFile::new("nested/item", b"x".to_vec(), 0o644),
                ],
            ),
        ]);
    backend.create(pod).await.unwrap();
    let logs = eventually("the container reports its groups and files", || async {
        let logs = read_logs(&backend, &key("grouped"), LogOptions::default()).await;
        logs.contains("secret value").then_some(logs)
    })
    .await;
    // The primary group, then fsGroup and supplementalGroups; the file it made belongs to the
    // fsGroup through the set-group-ID directory; the group may read the 0400 file.
    assert_eq!(
        logs, "3000 2345 3456\nout 2345\nsub 2345\nsecret value\n",
        "{logs}"
    );

    // On the node: the volumes belong to the group as a kubelet leaves them.
    let volumes = backend
        .config()
        .state_dir
        .join("run/default_grouped_uid-grouped/.volumes");
    let meta = |path: &Path| std::fs::metadata(path).unwrap();
    let data_dir = meta(&volumes.join("data"));
    assert_eq!(data_dir.gid(), 2345);
    assert_eq!(data_dir.permissions().mode() & 0o7777, 0o2777);
    let key_file = meta(&volumes.join("conf/key"));
    assert_eq!(
        (key_file.gid(), key_file.permissions().mode() & 0o777),
        (2345, 0o440)
    );
    let nested = meta(&volumes.join("conf/nested"));
    assert_eq!(nested.gid(), 2345);
    assert_eq!(nested.permissions().mode() & 0o2000, 0o2000, "set-group-ID");
    assert_eq!(meta(&volumes.join("data/out")).gid(), 2345);

    // What runs inside the container (exec probes, hooks, kubectl exec) has its identity too.
    let code = backend
        .exec(
            &key("grouped"),
            "main",
            vec![
                "/bin/sh".into(),
                "-c".into(),
                "test \"$(id -u) $(id -G)\" = '1000 3000 2345 3456'".into(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(code, 0, "exec runs as the container's user with its groups");

    backend
        .shutdown(faas_k8s::node::process::ShutdownPolicy::StopAll {
            grace: Duration::from_secs(5),
        })
        .await
        .unwrap();
}
