//! The runtime: a function's own binary, as it runs in a pod.
//!
//! `main` registers the functions and hands them to `faas_triggers::serve`,
//! which reads its configuration from the environment the pod gives it, serves
//! until SIGTERM, then drains the calls in flight and returns:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PORT` | 8080 | port |
//! | `POD_IP` | `0.0.0.0` | bind address (all interfaces, as a container needs) |
//! | `FAAS_FUNCTION` | the only function | what `POST /` calls |
//! | `FAAS_TIMEOUT`, `FAAS_MAX_BODY`, `FAAS_DRAIN_TIMEOUT`, `FAAS_CRON` | | see `faas_triggers::RuntimeConfig` |
//!
//! On a workstation, keep it on loopback:
//!
//! ```sh
//! POD_IP=127.0.0.1 PORT=8081 cargo run --example runtime
//! curl -s http://127.0.0.1:8081/ -d 'hello'       # POST / calls the function
//! # HELLO
//! curl -s http://127.0.0.1:8081/_/ready            # 200 until it drains, then 503
//! # {"status":"ready"}
//! ```

use std::process::ExitCode;

use faas_core::{Registry, function, functions};
use tracing_subscriber::EnvFilter;

/// Upper-cases the request body.
#[function]
async fn shout(body: String) -> String {
    body.to_uppercase()
}

fn registry() -> faas_core::Result<Registry> {
    Registry::try_from_iter(functions![shout])
}

#[tokio::main]
async fn main() -> ExitCode {
    // A pod's logs are its stdout; the binary, not the library, sets that up.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let served = async { Ok::<_, faas_examples::Error>(faas_triggers::serve(registry()?).await?) };
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{}", faas_examples::report(&error));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use faas_triggers::{Runtime, RuntimeConfig};
    use http::{Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    use super::*;

    /// The registry `main` serves, configured as a pod's environment would
    /// (on loopback and a free port here), answers on `/`.
    #[tokio::test]
    async fn the_pod_contract() {
        let config = RuntimeConfig::from_vars([("POD_IP", "127.0.0.1"), ("PORT", "0")]).unwrap();
        let runtime = Runtime::new(registry().unwrap(), config)
            .bind()
            .await
            .unwrap();
        let addr = runtime.local_addr().unwrap();
        let stop = runtime.shutdown_handle();
        let serving = tokio::spawn(runtime.run());

        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let send = |method: &str, path: &str, body: &'static str| {
            let request = Request::builder()
                .method(method)
                .uri(format!("http://{addr}{path}"))
                .body(Full::from(body))
                .unwrap();
            let response = client.request(request);
            async move {
                let response = response.await.unwrap();
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (status, body)
            }
        };

        assert_eq!(
            send("POST", "/", "hello").await,
            (StatusCode::OK, Bytes::from("HELLO"))
        );
        assert_eq!(send("POST", "/function/shout", "again").await.1, "AGAIN");
        assert_eq!(send("GET", "/_/health", "").await.0, StatusCode::OK);
        assert_eq!(send("GET", "/_/ready", "").await.0, StatusCode::OK);
        let (status, metrics) = send("GET", "/metrics", "").await;
        assert_eq!(status, StatusCode::OK);
        let metrics = String::from_utf8(metrics.to_vec()).unwrap();
        assert!(
            metrics.contains(r#"faas_invocations_total{function="shout",outcome="success"} 2"#),
            "{metrics}"
        );

        stop.shutdown();
        serving.await.unwrap().unwrap();
    }
}
