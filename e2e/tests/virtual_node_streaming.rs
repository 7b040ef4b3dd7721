//! `kubectl exec`, `kubectl attach` and `kubectl port-forward` to pods on the virtual node, as a
//! person runs them: kubectl talks to the API server, which opens streams to the node's kubelet
//! API; and what happens to someone without the rights.
//!
//! Needs `cargo xtask cluster up` and `kubectl`; without the cluster every test fails saying so.

#[path = "support/vnode.rs"]
mod vnode;

use std::io::Write as _;
use std::process::{Output, Stdio};

use faas_e2e::wait;
use faas_e2e::{TestCluster, TestNamespace, kubectl, run_kubectl};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use vnode::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe_output(output: &Output) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Starts the test server pod `web` on `node` and waits until it answers.
async fn running_web_pod(ns: &TestNamespace, node: &TestNode) -> String {
    create_pod(
        ns,
        "web",
        pod_spec(&node.name, json!([server_container(&[], false)]), "Always"),
    )
    .await;
    let pod = wait_pod(ns, "web", "Running", |p| phase(p) == "Running").await;
    let ip = pod_ip(&pod);
    wait_listening(&ip).await;
    ip
}

/// Runs `kubectl exec` with `args` after `--`, feeding `stdin` when given.
fn kubectl_exec(
    cluster: &TestCluster,
    ns: &TestNamespace,
    flags: &[&str],
    command: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = kubectl(cluster);
    cmd.args(["exec", "-n", ns.name(), "web", "-c", "server"])
        .args(flags)
        .arg("--")
        .args(command)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("kubectl starts (apt-get install kubectl)");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        pipe.write_all(input.as_bytes())
            .expect("kubectl reads its input");
        drop(pipe);
    }
    child.wait_with_output().expect("kubectl ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_runs_in_the_container_with_input_output_and_exit_code() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-exec").await;
    let ns = cluster.namespace("vn-exec").await?;
    running_web_pod(&ns, &node).await;

    // Output and error output apart, in the container's environment.
    let output = tokio::task::block_in_place(|| {
        kubectl_exec(
            &cluster,
            &ns,
            &[],
            &["sh", "-c", "echo hello from $POD_NAME; echo oops >&2"],
            None,
        )
    });
    assert!(output.status.success(), "{}", describe_output(&output));
    assert_eq!(text(&output.stdout), "hello from web\n");
    assert_eq!(text(&output.stderr), "oops\n");

    // The command's exit code is kubectl's.
    let output = tokio::task::block_in_place(|| {
        kubectl_exec(&cluster, &ns, &[], &["sh", "-c", "exit 3"], None)
    });
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        describe_output(&output)
    );

    // Input piped through `-i`, to its end.
    let input = "first line\nsecond line\n";
    let output =
        tokio::task::block_in_place(|| kubectl_exec(&cluster, &ns, &["-i"], &["cat"], Some(input)));
    assert!(output.status.success(), "{}", describe_output(&output));
    assert_eq!(text(&output.stdout), input);
    let output = tokio::task::block_in_place(|| {
        kubectl_exec(&cluster, &ns, &["-i"], &["wc", "-l"], Some(input))
    });
    assert_eq!(
        text(&output.stdout).trim(),
        "2",
        "{}",
        describe_output(&output)
    );

    // A command that does not exist: kubectl fails and says why.
    let output = tokio::task::block_in_place(|| {
        kubectl_exec(&cluster, &ns, &[], &["/no/such/program"], None)
    });
    assert!(!output.status.success(), "{}", describe_output(&output));
    assert!(
        text(&output.stderr).contains("could not be started"),
        "{}",
        describe_output(&output)
    );

    // With a terminal (kubectl itself on a terminal, as a person runs `-it`): the command sees
    // one, of the size kubectl sends.
    let script = format!(
        "stty cols 91 rows 33; kubectl --kubeconfig {} exec -it -n {} web -c server -- sh -c 'test -t 0 && test -t 1 && echo ON-A-TTY; stty size; exit 4'",
        cluster.paths().kubeconfig.display(),
        ns.name()
    );
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new("script")
            .args(["-qec", &script, "/dev/null"])
            .stdin(Stdio::null())
            .output()
    })?;
    let shown = text(&output.stdout);
    assert!(shown.contains("ON-A-TTY"), "{}", describe_output(&output));
    assert!(
        shown.contains("33 91"),
        "the terminal size follows kubectl's: {shown:?}"
    );
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        describe_output(&output)
    );

    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_attach_streams_what_the_container_prints() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-attach").await;
    let ns = cluster.namespace("vn-attach").await?;
    let ip = running_web_pod(&ns, &node).await;

    let mut attach = tokio::process::Command::from(kubectl(&cluster));
    attach
        .args(["attach", "-n", ns.name(), "web", "-c", "server"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut attach = attach.spawn()?;
    let mut lines = BufReader::new(attach.stdout.take().ok_or("no stdout")?).lines();
    let seen = tokio::time::timeout(wait::timeout(), async {
        let mut n = 0;
        loop {
            // Requests until one shows up on the attached output (the first may come before
            // the session is open).
            n += 1;
            let path = format!("/env/ATTACHED_{n}");
            let _ = http_get(&ip, 8080, &path).await;
            let line =
                tokio::time::timeout(std::time::Duration::from_secs(2), lines.next_line()).await;
            match line {
                Ok(Ok(Some(line))) if line.contains("/env/ATTACHED_") => return Ok(line),
                Ok(Ok(Some(_))) | Err(_) => {}
                Ok(Ok(None)) => return Err("kubectl attach ended"),
                Ok(Err(_)) => return Err("reading kubectl attach failed"),
            }
        }
    })
    .await
    .map_err(|_| "kubectl attach never showed the container's output")??;
    assert!(seen.contains("-> 404"), "{seen}");
    attach.kill().await?;

    ns.delete().await?;
    node.stop().await;
    Ok(())
}

/// Runs `kubectl` with `args`, `input` as its stdin, and waits for it (bounded, so a session
/// that never ends fails the test rather than hangs it).
async fn kubectl_with_input(cluster: &TestCluster, args: &[&str], input: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::from(kubectl(cluster));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .expect("kubectl starts (apt-get install kubectl)");
    let mut stdin = child.stdin.take().expect("a stdin pipe");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("kubectl reads its input");
    drop(stdin);
    tokio::time::timeout(wait::timeout(), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} never ended"))
        .expect("kubectl ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_attach_i_feeds_the_input_of_a_container_started_with_stdin() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-attach-i").await;
    let ns = cluster.namespace("vn-attach-i").await?;
    let echo = json!({
        "name": "echo",
        "image": SERVER_IMAGE,
        "command": ["sh", "-c", "while read -r line; do echo \"got $line\"; done; echo 'input closed'"],
        "stdin": true,
        "stdinOnce": true,
    });
    create_pod(&ns, "echo", pod_spec(&node.name, json!([echo]), "Never")).await;
    wait_pod(&ns, "echo", "Running", |p| phase(p) == "Running").await;

    // The line reaches the container; the end of kubectl's input closes it (stdinOnce), and the
    // session shows the output until the container ends.
    let attach = ["attach", "-i", "-n", ns.name(), "echo", "-c", "echo"];
    let output = kubectl_with_input(&cluster, &attach, "hello through attach\n").await;
    let shown = text(&output.stdout);
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(
        shown.contains("got hello through attach") && shown.contains("input closed"),
        "{}",
        describe_output(&output)
    );
    let pod = wait_pod(&ns, "echo", "Succeeded", |p| phase(p) == "Succeeded").await;
    assert_eq!(phase(&pod), "Succeeded");
    let logs = run_kubectl(&cluster, &["logs", "-n", ns.name(), "echo"]);
    assert_eq!(
        text(&logs.stdout),
        "got hello through attach\ninput closed\n"
    );

    // A container without stdin: true has no input to attach to: kubectl says so.
    running_web_pod(&ns, &node).await;
    let refused = kubectl_with_input(
        &cluster,
        &["attach", "-i", "-n", ns.name(), "web", "-c", "server"],
        "ignored\n",
    )
    .await;
    assert!(!refused.status.success(), "{}", describe_output(&refused));
    assert!(
        text(&refused.stderr).contains("stdin: true"),
        "{}",
        describe_output(&refused)
    );

    // `kubectl run -i --rm`: a one-off pod that reads a line, deleted once it ended.
    let overrides = json!({
        "apiVersion": "v1",
        "spec": pod_spec(&node.name, json!([]), "Never"),
    });
    let mut overrides = overrides;
    overrides["spec"]
        .as_object_mut()
        .ok_or("spec")?
        .remove("containers");
    let overrides = overrides.to_string();
    let run = [
        "run",
        "-n",
        ns.name(),
        "once",
        "-i",
        "--rm",
        "--restart=Never",
        "--image",
        SERVER_IMAGE,
        "--overrides",
        &overrides,
        "--command",
        "--",
        "sh",
        "-c",
        "read -r line; echo \"once: $line\"",
    ];
    let output = kubectl_with_input(&cluster, &run, "from kubectl run\n").await;
    assert!(output.status.success(), "{}", describe_output(&output));
    assert!(
        text(&output.stdout).contains("once: from kubectl run"),
        "{}",
        describe_output(&output)
    );
    assert!(
        ns.api::<k8s_openapi::api::core::v1::Pod>()
            .get_opt("once")
            .await?
            .is_none(),
        "--rm deleted the pod"
    );

    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_attach_it_reaches_the_terminal_of_a_tty_container() -> TestResult {
    use tokio::io::AsyncWriteExt;
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-attach-t").await;
    let ns = cluster.namespace("vn-attach-t").await?;
    let shell = json!({
        "name": "shell", "image": SERVER_IMAGE, "command": ["sh"],
        "stdin": true, "tty": true,
    });
    create_pod(&ns, "tty", pod_spec(&node.name, json!([shell]), "Never")).await;
    wait_pod(&ns, "tty", "Running", |p| phase(p) == "Running").await;

    // kubectl on a terminal of its own, as a person runs `attach -it`: what is typed reaches the
    // shell's terminal, whose size is kubectl's, and what the terminal shows comes back. The
    // answers are computed, so that the echo of what was typed does not count.
    let script = format!(
        "stty cols 91 rows 33; exec kubectl --kubeconfig {} attach -it -n {} tty -c shell",
        cluster.paths().kubeconfig.display(),
        ns.name()
    );
    let mut attach = tokio::process::Command::new("script")
        .args(["-qec", &script, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut typed = attach.stdin.take().ok_or("no stdin")?;
    typed
        .write_all(
            b"test -t 0 && test -t 1 && echo TTY-$((1+1)); stty size; echo BYE-$((3*3)); exit 5\n",
        )
        .await?;
    typed.flush().await?;
    let output = tokio::time::timeout(wait::timeout(), attach.wait_with_output())
        .await
        .map_err(|_| "kubectl attach -it never ended")??;
    drop(typed);
    let shown = text(&output.stdout);
    assert!(
        shown.contains("TTY-2") && shown.contains("33 91") && shown.contains("BYE-9"),
        "{}",
        describe_output(&output)
    );

    // The shell's end ends the container with its exit code; the terminal's output is its log.
    let pod = wait_pod(&ns, "tty", "Failed", |p| phase(p) == "Failed").await;
    let code = pod
        .status
        .as_ref()
        .and_then(|s| {
            s.container_statuses
                .as_ref()?
                .first()?
                .state
                .as_ref()?
                .terminated
                .as_ref()
        })
        .map(|t| t.exit_code);
    assert_eq!(code, Some(5));
    let logs = text(&run_kubectl(&cluster, &["logs", "-n", ns.name(), "tty"]).stdout);
    assert!(
        logs.contains("TTY-2\r\n") && logs.contains("33 91\r\n") && logs.contains("BYE-9\r\n"),
        "{logs:?}"
    );

    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_reaches_the_pods_server() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-pfwd").await;
    let ns = cluster.namespace("vn-pfwd").await?;
    running_web_pod(&ns, &node).await;

    let mut forward = tokio::process::Command::from(kubectl(&cluster));
    forward
        .args([
            "port-forward",
            "-n",
            ns.name(),
            "pod/web",
            ":8080",
            "--address",
            "127.0.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut forward = forward.spawn()?;
    let mut lines = BufReader::new(forward.stdout.take().ok_or("no stdout")?).lines();
    // "Forwarding from 127.0.0.1:PORT -> 8080"
    let port: u16 = tokio::time::timeout(wait::timeout(), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:")
                && let Some((port, _)) = rest.split_once(' ')
            {
                return port.parse().ok();
            }
        }
        None
    })
    .await
    .map_err(|_| "kubectl port-forward never listened")?
    .ok_or("kubectl port-forward ended without listening")?;

    // Several connections, one after the other and at once, each to the pod's own server.
    for _ in 0..3 {
        let (status, body) = http_get("127.0.0.1", port, "/").await?;
        assert_eq!((status, body.as_str()), (200, "web\n"));
    }
    let calls =
        (0..4).map(|i| async move { http_get("127.0.0.1", port, &format!("/env/NOPE_{i}")).await });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result?.0, 404);
    }
    // A bigger answer, in many frames.
    let (status, body) = http_get("127.0.0.1", port, "/env/POD_NAME").await?;
    assert_eq!((status, body.trim()), (200, "web"));
    forward.kill().await?;

    ns.delete().await?;
    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_is_refused_to_whom_the_api_server_does_not_allow() -> TestResult {
    let cluster = TestCluster::require().await;
    let node = TestNode::start(&cluster, "vn-execz").await;
    let ns = cluster.namespace("vn-execz").await?;
    running_web_pod(&ns, &node).await;

    // Through the API server: an identity without `pods/exec` is refused there.
    let restricted = cluster.paths().restricted_kubeconfig.display().to_string();
    let output = tokio::task::block_in_place(|| {
        run_kubectl(
            &cluster,
            &[
                "--kubeconfig",
                &restricted,
                "exec",
                "-n",
                ns.name(),
                "web",
                "--",
                "true",
            ],
        )
    });
    assert!(!output.status.success(), "{}", describe_output(&output));
    assert!(
        text(&output.stderr).contains("Forbidden") || text(&output.stderr).contains("forbidden"),
        "{}",
        describe_output(&output)
    );

    // Straight to the node's kubelet API: its own check refuses the same identity (403) and
    // anyone without credentials (401), before any stream is opened.
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
    let path = format!("/exec/{}/web/server?command=true&output=1", ns.name());
    let call = |mut config: kube::Config| {
        let (url, path) = (url.clone(), path.clone());
        async move {
            config.cluster_url = url;
            config.accept_invalid_certs = true;
            let client = kube::Client::try_from(config)?;
            let answer = client
                .request_text(http::Request::post(path).body(Vec::new())?)
                .await;
            Ok::<_, Box<dyn std::error::Error>>(match answer {
                Ok(_) => 200,
                Err(kube::Error::Api(status)) => status.code,
                Err(e) => return Err(e.into()),
            })
        }
    };
    let restricted = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&cluster.paths().restricted_kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    assert_eq!(call(restricted).await?, 403);
    assert_eq!(call(kube::Config::new(url.clone())).await?, 401);
    // The admin gets through the check; a plain request is then told to upgrade.
    assert_eq!(call(cluster.config().clone()).await?, 400);

    ns.delete().await?;
    node.stop().await;
    Ok(())
}
