//! Health probes of the components over HTTP(S), trusting only the cluster CA.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// An HTTP client for the cluster's endpoints.
pub(crate) struct Prober {
    agent: Agent,
    token: String,
}

/// What an endpoint answered.
#[derive(Debug)]
pub(crate) struct Answer {
    /// HTTP status.
    pub(crate) status: u16,
    /// Body text (truncated to what the probes need).
    pub(crate) body: String,
}

impl Answer {
    /// A 200 whose body is `ok`, as `/healthz` and `/readyz` answer.
    pub(crate) fn is_ok(&self) -> bool {
        self.status == 200 && self.body.trim() == "ok"
    }
}

impl Prober {
    /// A client that trusts `ca` and sends `token` as bearer token.
    pub(crate) fn new(ca: &Path, token: &str) -> Result<Self> {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        let cert = Certificate::from_pem(&pem)
            .with_context(|| format!("{} holds no certificate", ca.display()))?;
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(vec![cert])))
            .build();
        let agent = Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            agent,
            token: token.to_owned(),
        })
    }

    /// `GET url` with the bearer token.
    pub(crate) fn get(&self, url: &str) -> Result<Answer> {
        self.request(url, true)
    }

    fn request(&self, url: &str, authenticated: bool) -> Result<Answer> {
        let mut request = self.agent.get(url);
        if authenticated {
            request = request.header("Authorization", &format!("Bearer {}", self.token));
        }
        let response = request.call().with_context(|| format!("GET {url}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        Ok(Answer { status, body })
    }

    /// `GET url` with the bearer token must answer 200 `ok`.
    pub(crate) fn expect_ok(&self, url: &str) -> Result<()> {
        self.expect_ok_as(url, true)
    }

    /// `GET url` without credentials must answer 200 `ok`: the health
    /// endpoints of the controller-manager and the scheduler, which would
    /// refuse a token they cannot check while the API server is down.
    pub(crate) fn expect_ok_anonymous(&self, url: &str) -> Result<()> {
        self.expect_ok_as(url, false)
    }

    fn expect_ok_as(&self, url: &str, authenticated: bool) -> Result<()> {
        let answer = self.request(url, authenticated)?;
        if answer.is_ok() {
            Ok(())
        } else {
            bail!(
                "GET {url}: {} {}",
                answer.status,
                answer.body.lines().take(20).collect::<Vec<_>>().join(" | ")
            )
        }
    }
}

/// Whether etcd's `/health` says it is healthy.
pub(crate) fn etcd_healthy(prober: &Prober, port: u16) -> Result<()> {
    let url = format!("http://127.0.0.1:{port}/health");
    let answer = prober.request(&url, false)?;
    if answer.status == 200 && answer.body.replace(' ', "").contains("\"health\":\"true\"") {
        Ok(())
    } else {
        bail!("GET {url}: {} {}", answer.status, answer.body.trim())
    }
}
