//! 10,000 entries through the Redis Streams trigger with the consumer
//! SIGKILLed and redis-server restarted: none lost (see `faults/mod.rs`).

mod events;
mod faults;

use std::path::Path;
use std::time::Duration;

use events::process::ServerProcess;
use events::{free_port, server_env};
use faas_core::LocalExecutor;
use faas_triggers::redis::{RedisStreamTrigger, RedisStreamTriggerConfig};
use faults::{FaultSource, LocalExecutorBuilderHook, with_trigger};

struct Redis;

impl FaultSource for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn start_server(&self, dir: &Path) -> ServerProcess {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        ServerProcess::start(
            server_env("FAAS_REDIS_SERVER", "redis-server program"),
            vec![
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--dir".into(),
                dir.display().to_string(),
                "--appendonly".into(),
                "yes".into(),
                "--save".into(),
                String::new(),
            ],
            port,
            dir.join("redis.log"),
        )
    }

    fn url(&self, server: &ServerProcess) -> String {
        format!("redis://127.0.0.1:{}/", server.port())
    }

    fn fill(&self, url: &str, count: usize) {
        let client = redis::Client::open(url).unwrap();
        let mut connection = client.get_connection().unwrap();
        for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
            let mut pipe = redis::pipe();
            for n in chunk {
                pipe.cmd("XADD")
                    .arg("faults")
                    .arg("*")
                    .arg("data")
                    .arg(format!("m{n}"));
            }
            let _: Vec<String> = pipe.query(&mut connection).unwrap();
        }
    }

    fn trigger(
        &self,
        url: &str,
        consumer: &str,
    ) -> Box<dyn FnOnce(LocalExecutorBuilderHook) -> LocalExecutor> {
        let config = RedisStreamTriggerConfig::new(url, "faults", "recorders")
            .with_consumer(consumer)
            .with_claim_idle(Duration::from_secs(2));
        with_trigger(RedisStreamTrigger::new("record", config).unwrap())
    }
}

fn main() {
    faults::main_for(&Redis);
}
