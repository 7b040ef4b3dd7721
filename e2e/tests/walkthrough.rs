//! The README's walk-through, "From `#[function]` to a Function on the virtual node", run step by
//! step with the real programs, built by cargo for this test: `faas-operator run`, `faas-vnode`
//! with the function binary's image mapped to the `runtime` example, `runtime --manifests` piped
//! into `faasctl deploy -f -`, then `faasctl invoke` and `faasctl logs`.
//!
//! The README's commands are checked to be in README.md word for word, so changing one without the
//! other fails here. The test adds only what keeps it apart from other tests on the same machine:
//! its own namespace (`-n`, and the operator's `--namespace`), node name, kubelet port and state
//! directory, and absolute paths.
//!
//! Needs `cargo xtask cluster up` and root (the pods' network namespace).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use faas_e2e::TestCluster;
use faas_e2e::hosting::{serial, wait_function_pods_gone};
use faas_e2e::wait;
use faas_k8s::faasctl::exit;
use faas_k8s::function::{FUNCTION_LABEL, Function};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The walk-through's commands, as README.md shows them.
const README_STEPS: [&str; 8] = [
    "cargo xtask cluster up && eval \"$(cargo xtask cluster env)\"",
    "cargo build -p faas-k8s --features cli --bins",
    "cargo build -p faas-examples --example runtime",
    "target/debug/faas-operator run --install-crd &",
    "sudo -E target/debug/faas-vnode --node-name vnode-1 --pod-network netns \\\n    \
     --image faas.dev/function/shout=target/debug/examples/runtime \\\n    \
     --kubelet-cert target/cluster/pki/kubelet.crt --kubelet-key target/cluster/pki/kubelet.key \
     \\\n    --client-ca target/cluster/pki/ca.crt &",
    "target/debug/examples/runtime --manifests | target/debug/faasctl deploy -f -",
    "target/debug/faasctl invoke shout hello",
    "target/debug/faasctl logs shout",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives in the workspace")
        .to_path_buf()
}

#[test]
fn the_readme_shows_the_steps_this_test_runs() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    for step in README_STEPS {
        assert!(
            readme.contains(step),
            "README.md no longer shows `{step}`: change the walk-through and this test together"
        );
    }
}

/// Builds with cargo (`args` after `build`) and returns the executables it produced by name.
async fn cargo_build(args: &[&str]) -> Vec<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .arg("build")
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("cargo runs");
    assert!(output.status.success(), "cargo build {args:?} failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .collect()
}

fn named(executables: &[PathBuf], name: &str) -> PathBuf {
    executables
        .iter()
        .find(|path| path.file_name().is_some_and(|file| file == name))
        .unwrap_or_else(|| panic!("cargo built no `{name}` among {executables:?}"))
        .clone()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on loopback")
}

/// A long-running program of the walk-through: stopped with SIGTERM (as Ctrl-C or `kill` would),
/// killed if it does not stop, and killed when the test fails half-way.
struct Background {
    name: &'static str,
    child: Child,
}

impl Background {
    fn start(name: &'static str, command: &mut Command) -> Self {
        let child = command
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Background { name, child }
    }

    /// Fails the test when the program has already ended.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} ended early with {status}", self.name);
        }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(status) => {
                let status = status.expect("waiting for the program");
                assert!(status.success(), "{} stopped with {status}", self.name);
            }
            Err(_) => panic!("{} did not stop within a minute of SIGTERM", self.name),
        }
    }
}

/// Runs `program` to its end with `stdin` as its input.
async fn run(program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("writing stdin");
    drop(input);
    child.wait_with_output().await.expect("the program runs")
}

#[track_caller]
fn expect_success(what: &str, output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(i32::from(exit::OK)),
        "{what}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_runs_a_function_on_the_virtual_node() -> TestResult {
    let _serial = serial().await;
    // Step 1: the control plane (`cargo xtask cluster up`), and its KUBECONFIG.
    let cluster = TestCluster::require().await;
    let kubeconfig = cluster.paths().kubeconfig.clone();
    let pki = cluster.paths().pki.clone();

    // Steps 2 and 3: the programs and the function binary.
    let programs = cargo_build(&["-p", "faas-k8s", "--features", "cli", "--bins"]).await;
    let operator_bin = named(&programs, "faas-operator");
    let vnode_bin = named(&programs, "faas-vnode");
    let faasctl = named(&programs, "faasctl");
    let runtime = named(
        &cargo_build(&["-p", "faas-examples", "--example", "runtime"]).await,
        "runtime",
    );

    let ns = cluster.namespace("walk").await?;
    let namespace = ns.name().to_owned();
    let node_name = format!("vnode-walk-{}", std::process::id());
    let state_dir = std::env::temp_dir().join(format!("faas-walk-{}", std::process::id()));

    // Step 4: the operator.
    let mut operator = Background::start(
        "faas-operator",
        Command::new(&operator_bin)
            .args(["run", "--install-crd", "--namespace", &namespace])
            .env("KUBECONFIG", &kubeconfig),
    );

    // Step 5: the virtual node, with the function's image mapped to the function binary.
    let image = format!("faas.dev/function/shout={}", runtime.display());
    let kubelet_port = free_port().to_string();
    let state = state_dir.display().to_string();
    let mut vnode = Background::start(
        "faas-vnode",
        Command::new(&vnode_bin)
            .args(["--node-name", &node_name, "--pod-network", "netns"])
            .args(["--image", &image])
            .arg("--kubelet-cert")
            .arg(&pki.kubelet_cert)
            .arg("--kubelet-key")
            .arg(&pki.kubelet_key)
            .arg("--client-ca")
            .arg(&pki.ca_cert)
            .args(["--kubelet-port", &kubelet_port, "--state-dir", &state])
            .env("KUBECONFIG", &kubeconfig),
    );

    // Step 6: the binary's manifests, deployed; faasctl waits until the Function is Ready.
    let manifests = run(&runtime, &["--manifests"], b"").await;
    let manifests = expect_success("runtime --manifests", &manifests);
    assert!(
        manifests.contains("\"kind\": \"Function\"") && manifests.contains("\"name\": \"shout\""),
        "{manifests}"
    );
    let kubeconfig_arg = kubeconfig.display().to_string();
    let faasctl_args = |args: &[&'static str]| {
        let mut all = vec![
            "--kubeconfig",
            kubeconfig_arg.as_str(),
            "-n",
            namespace.as_str(),
        ];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let call = |args: Vec<String>, stdin: Vec<u8>| {
        let faasctl = faasctl.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&faasctl, &args, &stdin).await
        }
    };
    let deployed = call(faasctl_args(&["deploy", "-f", "-"]), manifests.into_bytes()).await;
    let said = expect_success("faasctl deploy -f -", &deployed);
    assert!(
        said.contains(&format!("{namespace}/shout is ready")),
        "{said}"
    );
    operator.assert_running();
    vnode.assert_running();
    let pods = ns
        .api::<Pod>()
        .list(&ListParams::default().labels(&format!("{FUNCTION_LABEL}=shout")))
        .await?;
    assert!(
        pods.items.iter().all(|pod| {
            pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref()) == Some(&node_name)
        }) && !pods.items.is_empty(),
        "the function's pods run on the virtual node"
    );

    // Step 7: a call, through the API server from outside the cluster.
    let answer = call(
        faasctl_args(&[
            "invoke",
            "shout",
            "hello",
            "-H",
            "x-call-id: walk-call-0001",
        ]),
        vec![],
    )
    .await;
    assert_eq!(expect_success("faasctl invoke", &answer), "HELLO");

    // Step 8: the pod's output, through the virtual node's kubelet API.
    let logs = call(faasctl_args(&["logs", "shout"]), vec![]).await;
    let logs = expect_success("faasctl logs", &logs);
    assert!(!logs.trim().is_empty(), "the pod's output is shown");

    // Clean up: remove the Function; nothing is left on the node; the programs stop on SIGTERM.
    let removed = call(faasctl_args(&["remove", "shout"]), vec![]).await;
    expect_success("faasctl remove", &removed);
    wait::for_deletion(&ns.api::<Function>(), "shout").await?;
    wait_function_pods_gone(&ns, "shout").await?;
    operator.stop().await;
    vnode.stop().await;
    let _ = Api::<Node>::all(cluster.client())
        .delete(&node_name, &DeleteParams::default())
        .await;
    let _ = std::fs::remove_dir_all(&state_dir);
    ns.delete().await?;
    Ok(())
}
