//! 10,000 rows through the PostgreSQL trigger with the consumer SIGKILLed
//! and PostgreSQL restarted: none lost (see `faults/mod.rs`).

mod events;
mod faults;

use std::path::Path;

use events::free_port;
use events::process::{ServerProcess, postgres_server};
use faas_core::LocalExecutor;
use faas_triggers::postgres::{PostgresTrigger, PostgresTriggerConfig};
use faults::{FaultSource, LocalExecutorBuilderHook, with_trigger};
use tokio_postgres::NoTls;

struct Postgres;

fn config(url: &str) -> PostgresTriggerConfig {
    PostgresTriggerConfig::new(url, "faults")
        .with_subscriber("recorder")
        .with_lease(std::time::Duration::from_secs(2))
}

impl FaultSource for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn start_server(&self, dir: &Path) -> ServerProcess {
        postgres_server(dir, free_port())
    }

    fn url(&self, server: &ServerProcess) -> String {
        format!("postgres://faas@127.0.0.1:{}/postgres", server.port())
    }

    fn fill(&self, url: &str, count: usize) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
            tokio::spawn(connection);
            client
                .batch_execute("CREATE TABLE faults (id serial PRIMARY KEY, payload text NOT NULL)")
                .await
                .unwrap();
            PostgresTrigger::new("record", config(url)).unwrap().install().await.unwrap();
            let count = i32::try_from(count).unwrap();
            client
                .execute(
                    "INSERT INTO faults (payload) SELECT 'm' || g FROM generate_series(0, $1 - 1) g",
                    &[&count],
                )
                .await
                .unwrap();
        });
    }

    fn trigger(
        &self,
        url: &str,
        _consumer: &str,
    ) -> Box<dyn FnOnce(LocalExecutorBuilderHook) -> LocalExecutor> {
        with_trigger(PostgresTrigger::new("record", config(url)).unwrap())
    }
}

fn main() {
    faults::main_for(&Postgres);
}
