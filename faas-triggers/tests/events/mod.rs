//! Helpers shared by the event source tests: the servers xtask runs, a
//! function that records what reaches it, and a host around a trigger.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faas_core::trigger::LagSource;
use faas_core::{
    CloudEvent, Context, Dispatcher, FunctionDefinition, FunctionError, HostShutdown,
    InvocationPolicy, LocalExecutor, Registry, RetryPolicy, Trigger,
};
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An upper bound for anything a test waits for; never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The value of `variable`, set by `cargo xtask test` or `cargo xtask
/// services env`; a clear failure without it, never a silent pass.
pub fn server_env(variable: &str, what: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: these tests need a real {what}. Run them with \
             `cargo xtask test`, or start the servers with `cargo xtask services up` and \
             `eval \"$(cargo xtask services env)\"` first"
        )
    })
}

/// A name no other test uses (streams, groups, tables, directories).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        uuid::Uuid::new_v4().simple().to_string()[..12].to_uppercase()
    )
}

/// One call as the function saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub id: String,
    pub attempt: u32,
    pub subject: Option<String>,
    pub source: String,
    pub ty: String,
    pub data: Vec<u8>,
    pub content_type: Option<String>,
}

/// How the recording function answers a call: `Ok` or an error.
pub type Verdict = Arc<dyn Fn(&Seen) -> Result<(), FunctionError> + Send + Sync>;

/// The calls a function saw, in order.
#[derive(Clone, Default)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Recorder {
    pub fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Calls per event id.
    pub fn by_id(&self) -> BTreeMap<String, Vec<Seen>> {
        let mut map: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
        for seen in self.all() {
            map.entry(seen.id.clone()).or_default().push(seen);
        }
        map
    }

    /// Waits until `done` holds for the calls seen.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Seen]) -> bool) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if done(&self.all()) {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
            }
        };
        if tokio::time::timeout(PATIENCE, wait).await.is_err() {
            panic!("gave up waiting for {what}; seen: {:?}", self.all().len());
        }
    }

    /// A function named `name` that records each call and answers per `verdict`.
    pub fn function(
        &self,
        name: &str,
        verdict: Verdict,
        policy: InvocationPolicy,
    ) -> FunctionDefinition {
        let recorder = self.clone();
        FunctionDefinition::from_handler(name, move |event: CloudEvent, context: Context| {
            let recorder = recorder.clone();
            let verdict = Arc::clone(&verdict);
            async move {
                let seen = Seen {
                    id: event.id.clone(),
                    attempt: context.attempt(),
                    subject: event.subject.clone(),
                    source: event.source.clone(),
                    ty: event.ty.clone(),
                    data: event.data.clone().map(|d| d.to_vec()).unwrap_or_default(),
                    content_type: event.datacontenttype.clone(),
                };
                let verdict = verdict(&seen);
                recorder.seen.lock().unwrap().push(seen);
                recorder.changed.notify_waiters();
                verdict.map(|()| "ok")
            }
        })
        .with_policy(policy)
    }
}

/// A retry policy of `attempts` with short, fixed back-offs (50 ms doubling
/// to 200 ms, no jitter), so redeliveries come quickly.
pub fn quick_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_millis(200))
        .with_jitter(0.0)
}

/// Waits until `lag` reports nothing pending: every message settled.
pub async fn wait_lag_zero(lag: &impl LagSource) {
    let wait = async {
        loop {
            if lag.lag().await.unwrap().pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the source's lag comes down to zero: everything settled");
}

/// Fails (retryably) every attempt before `attempt`, then succeeds.
pub fn fails_before(attempt: u32) -> Verdict {
    Arc::new(move |seen| {
        if seen.attempt < attempt {
            Err(FunctionError::internal("not yet"))
        } else {
            Ok(())
        }
    })
}

/// Always succeeds.
pub fn accept() -> Verdict {
    Arc::new(|_| Ok(()))
}

/// A host running `trigger` (and the HTTP trigger, for `/_/ready`) over `registry`.
pub struct Host {
    pub http: std::net::SocketAddr,
    pub dispatcher: Dispatcher,
    pub shutdown: HostShutdown,
    pub task: JoinHandle<faas_core::Result<()>>,
}

impl Host {
    pub async fn start(registry: Registry, trigger: impl Trigger) -> Host {
        Self::start_with(registry, Some(trigger)).await
    }

    /// The function runtime alone: `registry` behind the HTTP trigger, as
    /// a function's pod serves it to the gateway.
    pub async fn runtime(registry: Registry) -> Host {
        Self::start_with(registry, None::<HttpTrigger>).await
    }

    async fn start_with(registry: Registry, trigger: Option<impl Trigger>) -> Host {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap();
        let mut builder = LocalExecutor::builder(registry).trigger(HttpTrigger::from_listener(
            listener,
            HttpTriggerConfig::default(),
        ));
        if let Some(trigger) = trigger {
            builder = builder.trigger(trigger);
        }
        let executor = builder.shutdown_grace(Duration::from_secs(10)).build();
        let dispatcher = executor.dispatcher();
        let shutdown = executor.shutdown_handle();
        let task = tokio::spawn(executor.run());
        Host {
            http,
            dispatcher,
            shutdown,
            task,
        }
    }

    /// The status of `GET /_/ready`.
    pub async fn ready_status(&self) -> u16 {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(self.http).await.unwrap();
        stream
            .write_all(b"GET /_/ready HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `/_/ready` answers `status`.
    pub async fn wait_ready_status(&self, status: u16) {
        let wait = async {
            while self.ready_status().await != status {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("/_/ready never answered {status}"));
    }

    pub async fn stop(self) -> faas_core::Result<()> {
        self.shutdown.shutdown();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the host stops")
            .expect("the host task does not panic")
    }
}

pub mod process;

/// A free loopback port (for a server that is not there yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
