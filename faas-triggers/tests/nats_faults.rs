//! 10,000 messages through the NATS trigger with the consumer SIGKILLed and
//! nats-server restarted: none lost (see `faults/mod.rs`).

mod events;
mod faults;

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use events::process::ServerProcess;
use events::{free_port, server_env};
use faas_core::LocalExecutor;
use faas_triggers::nats::{NatsTrigger, NatsTriggerConfig};
use faults::{FaultSource, LocalExecutorBuilderHook, with_trigger};

struct Nats;

impl FaultSource for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn start_server(&self, dir: &Path) -> ServerProcess {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        ServerProcess::start(
            server_env("FAAS_NATS_SERVER", "nats-server program"),
            vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-js".into(),
                "-sd".into(),
                dir.display().to_string(),
            ],
            port,
            dir.join("nats.log"),
        )
    }

    fn url(&self, server: &ServerProcess) -> String {
        format!("nats://127.0.0.1:{}", server.port())
    }

    fn fill(&self, url: &str, count: usize) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let js = jetstream::new(async_nats::connect(url).await.unwrap());
            js.create_stream(stream::Config {
                name: "FAULTS".into(),
                subjects: vec!["faults.>".into()],
                ..Default::default()
            })
            .await
            .unwrap();
            let mut acks = Vec::with_capacity(count);
            for n in 0..count {
                acks.push(
                    js.publish("faults.m", format!("m{n}").into())
                        .await
                        .unwrap(),
                );
                if acks.len() == 500 {
                    for ack in acks.drain(..) {
                        ack.await.unwrap();
                    }
                }
            }
            for ack in acks {
                ack.await.unwrap();
            }
        });
    }

    fn trigger(
        &self,
        url: &str,
        _consumer: &str,
    ) -> Box<dyn FnOnce(LocalExecutorBuilderHook) -> LocalExecutor> {
        let config =
            NatsTriggerConfig::new(url, "FAULTS", "recorder").with_ack_wait(Duration::from_secs(2));
        with_trigger(NatsTrigger::new("record", config).unwrap())
    }
}

fn main() {
    faults::main_for(&Nats);
}
