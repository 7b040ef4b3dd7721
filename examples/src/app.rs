//! [`App`]: a local executor whose HTTP trigger is already bound, so the
//! address it serves is known before it runs (port 0 in tests).

use std::net::SocketAddr;

use faas_core::{HostShutdown, LocalExecutor};

use crate::Result;

/// A [`LocalExecutor`] and the address its HTTP trigger listens on.
///
/// The embedding program drives it: [`run`](Self::run) serves until
/// [`HostShutdown::shutdown`] (or Ctrl-C / SIGTERM with
/// [`shutdown_on_signal`](Self::shutdown_on_signal)), then drains the calls
/// in flight and returns.
///
/// ```no_run
/// # async fn start() -> faas_examples::Result<()> {
/// let app = faas_examples::quickstart::app(([127, 0, 0, 1], 0).into()).await?;
/// println!("serving on http://{}", app.local_addr());
/// let stop = app.shutdown_handle();
/// let serving = tokio::spawn(app.run());
/// // ... send requests ...
/// stop.shutdown();
/// serving.await.expect("the app does not panic")?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct App {
    executor: LocalExecutor,
    addr: SocketAddr,
}

impl App {
    /// `executor`, whose HTTP trigger listens on `addr`.
    pub fn new(executor: LocalExecutor, addr: SocketAddr) -> Self {
        App { executor, addr }
    }

    /// The address the HTTP trigger listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The executor.
    pub fn executor(&self) -> &LocalExecutor {
        &self.executor
    }

    /// A handle that shuts the app down, gracefully, from anywhere.
    pub fn shutdown_handle(&self) -> HostShutdown {
        self.executor.shutdown_handle()
    }

    /// Also shuts down on Ctrl-C (SIGINT) or SIGTERM.
    pub fn shutdown_on_signal(self) -> Self {
        App {
            executor: self.executor.shutdown_on_signal(),
            addr: self.addr,
        }
    }

    /// Serves until shut down, then lets the calls in flight finish and returns.
    ///
    /// # Errors
    ///
    /// [`Error::Core`](crate::Error::Core) when a trigger fails or the signal
    /// handlers cannot be installed.
    pub async fn run(self) -> Result<()> {
        Ok(self.executor.run().await?)
    }
}
