//! `shutdown_on_signal`: SIGTERM stops a running executor gracefully.
#![cfg(unix)]

use faas_core::{LocalExecutor, Registry};

#[tokio::test]
async fn sigterm_shuts_the_executor_down() {
    let executor = LocalExecutor::new(Registry::new()).shutdown_on_signal();
    let dispatcher = executor.dispatcher();
    let running = tokio::spawn(executor.run());
    // On this single-threaded runtime the spawned task runs (and installs its
    // signal handlers, before its first await) as soon as this one yields.
    tokio::task::yield_now().await;
    assert!(!running.is_finished());

    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("the kill command runs");
    assert!(status.success());

    running.await.unwrap().unwrap();
    assert!(!dispatcher.is_accepting());
}
