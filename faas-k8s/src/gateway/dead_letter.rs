//! The dead letters of asynchronous calls: the gateway's own, or the one a
//! function's policy names ([`DeadLetterTarget`]), an `http://` URL or a NATS
//! subject.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::{DeadLetter, DeadLetterEntry, Error as CoreError};
use http::header::{self, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::policy::{AsyncCallPolicy, DeadLetterTarget};

/// POSTs each letter to a URL: the original body and content type, and the
/// letter's facts as `Faas-*` headers (the same names a NATS dead letter
/// uses). Stored once the server answers 2xx.
pub(crate) struct HttpDeadLetter {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
}

#[async_trait]
impl DeadLetter for HttpDeadLetter {
    async fn dead_letter(&self, letter: DeadLetterEntry) -> Result<(), CoreError> {
        let (parts, body) = letter.request.into_parts();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
            headers.insert(header::CONTENT_TYPE, content_type.clone());
        }
        let facts = [
            ("faas-function", letter.function.clone()),
            ("faas-call-id", letter.call_id.to_string()),
            (
                "faas-error",
                letter.error.to_string().replace(['\r', '\n'], " "),
            ),
            ("faas-error-kind", letter.error.kind().as_str().to_owned()),
            ("faas-attempts", letter.attempts.to_string()),
            (
                "faas-failed-at",
                humantime::format_rfc3339_millis(letter.failed_at).to_string(),
            ),
            ("faas-method", parts.method.to_string()),
            ("faas-path", parts.uri.to_string()),
        ];
        for (name, value) in facts {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        let failed =
            |why: String| CoreError::trigger("http dead letter", std::io::Error::other(why));
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| failed(format!("{} did not answer within 10 s", self.url)))?
            .map_err(|e| failed(format!("posting to {}: {e}", self.url)))?;
        if !response.status().is_success() {
            return Err(failed(format!(
                "{} answered {}",
                self.url,
                response.status()
            )));
        }
        Ok(())
    }
}

/// Finds the dead letter of each call: the one its function's policy names, else the
/// gateway's.
pub(crate) struct DeadLetters {
    default: Arc<dyn DeadLetter>,
    client: Client<HttpConnector, Full<Bytes>>,
    #[cfg(feature = "nats")]
    jetstream: Option<async_nats::jetstream::Context>,
}

impl DeadLetters {
    pub(crate) fn new(default: Arc<dyn DeadLetter>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        DeadLetters {
            default,
            client: Client::builder(TokioExecutor::new()).build(connector),
            #[cfg(feature = "nats")]
            jetstream: None,
        }
    }

    /// Publishes to the subjects functions name through `context`.
    #[cfg(feature = "nats")]
    pub(crate) fn with_jetstream(mut self, context: async_nats::jetstream::Context) -> Self {
        self.jetstream = Some(context);
        self
    }

    /// The gateway's own dead letter.
    pub(crate) fn default_dead_letter(&self) -> Arc<dyn DeadLetter> {
        self.default.clone()
    }

    /// The dead letter of a call of `function` under `policy`.
    pub(crate) fn for_policy(
        &self,
        function: &str,
        policy: &AsyncCallPolicy,
    ) -> Arc<dyn DeadLetter> {
        match policy.dead_letter() {
            None => self.default.clone(),
            Some(DeadLetterTarget::Url(url)) => Arc::new(HttpDeadLetter {
                client: self.client.clone(),
                url: url.clone(),
            }),
            Some(DeadLetterTarget::Subject(subject)) => {
                #[cfg(feature = "nats")]
                if let Some(context) = &self.jetstream {
                    return Arc::new(faas_triggers::nats::NatsDeadLetter::new(
                        context.clone(),
                        subject.clone(),
                    ));
                }
                tracing::warn!(%function, %subject, "the function's dead letter is a NATS subject, but the gateway has no NATS connection; using the gateway's dead letter");
                self.default.clone()
            }
        }
    }
}
