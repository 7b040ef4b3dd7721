//! POSTing the result of an asynchronous call to its `x-callback-url`.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use bytes::Bytes;
use faas_core::{CallId, Response};
use http::header::{self, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::headers::{X_CALL_ID, X_FUNCTION_ATTEMPTS, X_FUNCTION_NAME, X_FUNCTION_STATUS};

/// How long one callback attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The first pause between callback attempts (doubled after each).
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// An HTTP/1.1 client that POSTs results to callback URLs.
#[derive(Clone, Debug)]
pub(crate) struct CallbackClient {
    client: Client<HttpConnector, Full<Bytes>>,
    attempts: u32,
}

/// What a callback carries.
pub(crate) struct CallbackResult<'a> {
    pub(crate) function: &'a str,
    pub(crate) call_id: &'a CallId,
    pub(crate) attempts: u32,
    /// The function's answer, or its error as JSON, with the status either way.
    pub(crate) response: Response,
}

impl CallbackClient {
    pub(crate) fn new(attempts: u32) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(ATTEMPT_TIMEOUT));
        CallbackClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            attempts: attempts.max(1),
        }
    }

    /// POSTs `result` to `url`, retrying connection errors, 429 and 5xx with
    /// exponential backoff (backon). Returns whether the receiver took it
    /// (any status below 500 other than 429 counts: the receiver answered).
    pub(crate) async fn post(&self, url: &Uri, result: CallbackResult<'_>) -> bool {
        let CallbackResult {
            function,
            call_id,
            attempts,
            response,
        } = result;
        let (parts, body) = response.into_parts();
        let attempt = std::sync::atomic::AtomicU32::new(0);
        let send = || async {
            let attempt = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let request = callback_request(url, &parts, &body, (function, call_id, attempts));
            let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                // Read the answer so the connection can be reused.
                let _ = response.into_body().collect().await;
                Ok::<_, String>(status)
            })
            .await
            .unwrap_or_else(|_| Err("timed out".to_owned()));
            match outcome {
                Ok(status) if !(status.is_server_error() || status.as_u16() == 429) => {
                    tracing::debug!(call_id = %call_id, %url, %status, "callback delivered");
                    Ok(())
                }
                Ok(status) => {
                    tracing::warn!(
                        call_id = %call_id, %url, %status, attempt,
                        "callback receiver refused the result"
                    );
                    Err(status.to_string())
                }
                Err(error) => {
                    tracing::warn!(
                        call_id = %call_id, %url, %error, attempt,
                        "could not deliver the result to the callback URL"
                    );
                    Err(error)
                }
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(FIRST_BACKOFF)
            .with_factor(2.0)
            .with_max_times(self.attempts.saturating_sub(1) as usize);
        let delivered = send.retry(backoff).await.is_ok();
        if !delivered {
            tracing::error!(
                call_id = %call_id,
                %url,
                attempts = self.attempts,
                "gave up delivering the result to the callback URL"
            );
        }
        delivered
    }
}

/// The POST of one callback attempt.
fn callback_request(
    url: &Uri,
    parts: &http::response::Parts,
    body: &Bytes,
    (function, call_id, attempts): (&str, &CallId, u32),
) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body.clone()));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = url.clone();
    let headers = request.headers_mut();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
        {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(X_FUNCTION_STATUS, HeaderValue::from(parts.status.as_u16()));
    headers.insert(X_FUNCTION_ATTEMPTS, HeaderValue::from(attempts));
    if let Ok(value) = HeaderValue::from_str(function) {
        headers.insert(X_FUNCTION_NAME, value);
    }
    if let Ok(value) = HeaderValue::from_str(call_id.as_str()) {
        headers.insert(X_CALL_ID, value);
    }
    request
}
