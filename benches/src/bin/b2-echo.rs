//! The servers of B2's outside-load-generator variant, as a user would write
//! them: an echo function on the local executor with the HTTP trigger, or a
//! bare hyper 1.x echo, each on tokio's default multi-thread runtime.
//!
//! `b2-echo faas|bare` binds `127.0.0.1:0`, prints `LISTENING <addr>` on
//! stdout, and serves `/` until it is killed or its standard input closes.

use std::process::ExitCode;

use bytes::Bytes;
use faas_benches::bare;
use faas_core::{FunctionDefinition, InvocationPolicy, LocalExecutor, Registry};
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

async fn echo(body: Bytes) -> Bytes {
    body
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(kind) = std::env::args().nth(1) else {
        eprintln!("usage: b2-echo faas|bare");
        return ExitCode::FAILURE;
    };
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("b2-echo: cannot bind 127.0.0.1:0: {error}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            eprintln!("b2-echo: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Served until standard input closes (the parent went away) or a kill.
    let stdin_closed = async {
        let mut sink = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
    };
    match kind.as_str() {
        "bare" => {
            let server = bare::spawn_echo(listener);
            println!("LISTENING {addr}");
            stdin_closed.await;
            server.abort();
            ExitCode::SUCCESS
        }
        "faas" => {
            let registry = Registry::from([FunctionDefinition::from_handler("echo", echo)
                .with_policy(InvocationPolicy::default().with_max_in_flight(4096))]);
            let executor = LocalExecutor::builder(registry)
                .trigger(HttpTrigger::from_listener(
                    listener,
                    HttpTriggerConfig::default(),
                ))
                .build();
            let shutdown = executor.shutdown_handle();
            let running = tokio::spawn(executor.run());
            println!("LISTENING {addr}");
            stdin_closed.await;
            shutdown.shutdown();
            match running.await {
                Ok(Ok(())) => ExitCode::SUCCESS,
                Ok(Err(error)) => {
                    eprintln!("b2-echo: {error}");
                    ExitCode::FAILURE
                }
                Err(error) => {
                    eprintln!("b2-echo: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        other => {
            eprintln!("b2-echo: unknown server {other:?}; use faas or bare");
            ExitCode::FAILURE
        }
    }
}
