//! A function binary as a pod runs it: the function runtime (`faas_triggers::serve`) serving
//! `echo` (the body back) and `slow` (sleeps the body's number of milliseconds), on
//! `$POD_IP:$PORT`, draining calls in flight on SIGTERM. Arguments are ignored (tests tag
//! processes with them).

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{FunctionDefinition, Registry};

async fn echo(body: Bytes) -> Bytes {
    body
}

async fn slow(ms: String) -> String {
    let ms: u64 = ms.trim().parse().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

#[tokio::main]
async fn main() -> ExitCode {
    let registry = Registry::from([
        FunctionDefinition::from_handler("echo", echo),
        FunctionDefinition::from_handler("slow", slow),
    ]);
    match faas_triggers::serve(registry).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("faas-test-function: {error}");
            ExitCode::FAILURE
        }
    }
}
