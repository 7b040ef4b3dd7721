//! The function binary of B4: the function runtime serving `echo` on `$POD_IP:$PORT`, as a pod
//! of the process backend runs it, and as the bare process B4's baseline spawns.

use bytes::Bytes;
use faas_core::{FunctionDefinition, Registry};

async fn echo(body: Bytes) -> Bytes {
    body
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let registry = Registry::from([FunctionDefinition::from_handler("echo", echo)]);
    match faas_triggers::serve(registry).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("b4-function: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
