//! `faasctl` against the real control plane and a virtual node: deploy from flags and from a
//! manifest, list, describe, invoke with the body from an argument and from stdin, logs that show
//! the call, scale, remove, and the exit codes a script relies on.
//!
//! Needs `cargo xtask cluster up` (and root for the pods' network namespace).

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use faas_core::{FunctionDefinition, Registry};
use faas_e2e::TestCluster;
use faas_e2e::hosting::{
    FunctionNode, TestOperator, install_function_crd, operator_client, serial,
};
use faas_k8s::faasctl::exit;
use faas_k8s::node::function::function_image;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn hello(name: String) -> String {
    format!("hello, {name}")
}

/// Runs faasctl in `namespace` with the admin kubeconfig, `stdin` as its input.
fn faasctl(kubeconfig: &str, namespace: &str, args: &[String], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faas-test-faasctl"))
        .args(["--kubeconfig", kubeconfig, "-n", namespace])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("faasctl starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("writing faasctl's stdin");
    child.wait_with_output().expect("faasctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn expect(output: &Output, code: u8) -> String {
    assert_eq!(
        output.status.code(),
        Some(i32::from(code)),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faasctl_deploys_calls_tails_scales_and_removes() -> TestResult {
    let _serial = serial().await;
    let cluster = TestCluster::require().await;
    install_function_crd(&cluster).await?;
    let registry = Registry::from([FunctionDefinition::from_handler("hello", hello)]);
    let node = FunctionNode::start(&cluster, registry).await?;
    let ns = cluster.namespace("faasctl").await?;
    let operator =
        TestOperator::for_namespace(operator_client(&cluster, &ns, "operator").await?, &ns);
    let kubeconfig = std::env::var("KUBECONFIG")
        .unwrap_or_else(|_| cluster.paths().kubeconfig.display().to_string());
    // faasctl runs off the runtime's threads: it blocks until the function is ready.
    let namespace = ns.name().to_owned();
    let run = |args: Vec<String>, stdin: Vec<u8>| {
        let kubeconfig = kubeconfig.clone();
        let namespace = namespace.clone();
        async move {
            tokio::task::spawn_blocking(move || faasctl(&kubeconfig, &namespace, &args, &stdin))
                .await
                .expect("faasctl runs")
        }
    };
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let image = function_image("hello");
    let deployed = run(
        args(&["deploy", "greeter", "--image", &image, "-e", "MODE=test"]),
        vec![],
    )
    .await;
    let said = expect(&deployed, exit::OK);
    assert!(said.contains("is ready"), "{said}");

    let answer = expect(
        &run(args(&["invoke", "greeter", "ada"]), vec![]).await,
        exit::OK,
    );
    assert_eq!(answer, "hello, ada");
    let answer = expect(
        &run(
            args(&["invoke", "greeter", "-", "-H", "x-call-id: e2e-call-0001"]),
            b"bob".to_vec(),
        )
        .await,
        exit::OK,
    );
    assert_eq!(answer, "hello, bob");

    let logs = expect(&run(args(&["logs", "greeter"]), vec![]).await, exit::OK);
    assert!(
        logs.contains("e2e-call-0001"),
        "the log shows the call: {logs}"
    );

    let listed = expect(&run(args(&["list", "-o", "json"]), vec![]).await, exit::OK);
    let listed: serde_json::Value = serde_json::from_str(&listed)?;
    assert_eq!(listed[0]["name"], "greeter");
    assert_eq!(listed[0]["ready"], true);
    // The two calls above, as the function's pod counted them, in the list as in describe.
    assert_eq!(listed[0]["invocation_count"], 2, "{listed}");
    let table = expect(&run(args(&["list"]), vec![]).await, exit::OK);
    assert!(
        table.starts_with("NAME") && table.contains("greeter"),
        "{table}"
    );
    let described = expect(
        &run(args(&["describe", "greeter", "-o", "yaml"]), vec![]).await,
        exit::OK,
    );
    assert!(described.contains("name: greeter"), "{described}");
    // The two calls above, as the function's pod counted them.
    assert!(described.contains("invocation_count: 2"), "{described}");
    let described = expect(&run(args(&["describe", "greeter"]), vec![]).await, exit::OK);
    assert!(described.contains("Invocations: 2 "), "{described}");

    let scaled = run(args(&["scale", "greeter", "2", "--wait"]), vec![]).await;
    expect(&scaled, exit::OK);
    let described = expect(
        &run(args(&["describe", "greeter", "-o", "json"]), vec![]).await,
        exit::OK,
    );
    let described: serde_json::Value = serde_json::from_str(&described)?;
    assert_eq!(described["available_replicas"], 2);

    // A manifest: a second function, applied server-side.
    let manifest = format!(
        "apiVersion: faas.rs/v1alpha1\nkind: Function\nmetadata:\n  name: from-file\nspec:\n  image: {image}\n  replicas: 1\n"
    );
    let applied = run(args(&["deploy", "-f", "-"]), manifest.into_bytes()).await;
    expect(&applied, exit::OK);
    let answer = expect(
        &run(args(&["invoke", "from-file", "cy"]), vec![]).await,
        exit::OK,
    );
    assert_eq!(answer, "hello, cy");

    // Exit codes a script relies on.
    let missing = run(args(&["invoke", "nobody", "x"]), vec![]).await;
    expect(&missing, exit::NOT_FOUND);
    assert!(
        text(&missing.stderr).contains("nobody"),
        "{}",
        text(&missing.stderr)
    );
    let bad = run(
        args(&["deploy", "-f", "-"]),
        b"kind: Function\nspec: 12\n".to_vec(),
    )
    .await;
    expect(&bad, exit::INVALID);
    let secretive = run(
        args(&[
            "deploy",
            "secretive",
            "--image",
            &image,
            "--secret",
            "absent",
            "--timeout",
            "60s",
        ]),
        vec![],
    )
    .await;
    expect(&secretive, exit::NOT_READY);
    assert!(
        text(&secretive.stderr).contains("SecretMissing"),
        "the failure names the reason: {}",
        text(&secretive.stderr)
    );

    for name in ["greeter", "from-file", "secretive"] {
        expect(&run(args(&["remove", name]), vec![]).await, exit::OK);
    }
    expect(
        &run(args(&["describe", "greeter"]), vec![]).await,
        exit::NOT_FOUND,
    );
    operator.stop().await;
    ns.delete().await?;
    node.stop().await;
    Ok(())
}
