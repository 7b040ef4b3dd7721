//! The in-memory queue of asynchronous calls (`POST /async-function/{name}`).

use std::sync::Arc;

use faas_core::{Dispatcher, FunctionError};
use http::HeaderValue;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::callback::{CallbackClient, CallbackResult};
use super::decode::Call;
use super::respond::encode_response;

/// The sending side: the server enqueues accepted calls here.
///
/// Calls travel boxed: the channel sets aside room for a block of entries when it is made, and
/// a block of pointers is a few hundred bytes where a block of calls is over ten kilobytes, paid
/// by every server (every function pod of a virtual node) whether it ever queues a call or not.
#[derive(Debug, Clone)]
pub(crate) struct AsyncQueue {
    sender: mpsc::Sender<Box<Call>>,
    capacity: usize,
}

impl AsyncQueue {
    /// A queue of `capacity` calls, and the worker that runs them
    /// `concurrency` at a time through `dispatcher.deliver` (retries and dead
    /// letter per each function's policy).
    ///
    /// The worker stops taking calls when `stop` is cancelled, runs the calls
    /// already queued, and finishes; `drain` bounds how long it waits for them.
    pub(crate) fn start(
        capacity: usize,
        concurrency: usize,
        callback_attempts: u32,
        dispatcher: Dispatcher,
        stop: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let worker = Worker {
            receiver,
            dispatcher,
            callbacks: CallbackClient::new(callback_attempts),
            limit: Arc::new(Semaphore::new(concurrency.max(1))),
        };
        let handle = tokio::spawn(worker.run(stop));
        (AsyncQueue { sender, capacity }, handle)
    }

    /// Queues `call`.
    ///
    /// # Errors
    ///
    /// `Overloaded` (429) when the queue is full, `Unavailable` (503) once the
    /// server is shutting down.
    pub(crate) fn enqueue(&self, call: Call) -> Result<(), FunctionError> {
        self.sender
            .try_send(Box::new(call))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => FunctionError::overloaded(format!(
                    "the queue of asynchronous calls is full ({} waiting); try again later",
                    self.capacity
                )),
                mpsc::error::TrySendError::Closed(_) => FunctionError::unavailable(
                    "the server is shutting down and accepts no new calls",
                ),
            })
    }
}

struct Worker {
    receiver: mpsc::Receiver<Box<Call>>,
    dispatcher: Dispatcher,
    callbacks: CallbackClient,
    limit: Arc<Semaphore>,
}

impl Worker {
    async fn run(mut self, stop: CancellationToken) {
        let mut running = JoinSet::new();
        loop {
            let call = tokio::select! {
                biased;
                call = self.receiver.recv() => call,
                () = stop.cancelled() => {
                    // No new calls; the ones already queued still run.
                    self.receiver.close();
                    self.receiver.recv().await
                }
            };
            let Some(call) = call else { break };
            let Ok(permit) = Arc::clone(&self.limit).acquire_owned().await else {
                break;
            };
            let dispatcher = self.dispatcher.clone();
            let callbacks = self.callbacks.clone();
            running.spawn(async move {
                run_call(*call, &dispatcher, &callbacks).await;
                drop(permit);
            });
            while running.try_join_next().is_some() {}
        }
        while running.join_next().await.is_some() {}
    }
}

async fn run_call(call: Call, dispatcher: &Dispatcher, callbacks: &CallbackClient) {
    let Call {
        function,
        mut invocation,
        reply,
        callback,
        timeout,
        ..
    } = call;
    if let Some(timeout) = timeout {
        let context = invocation.context().clone().with_timeout(timeout);
        *invocation.context_mut() = context;
    }
    let call_id = invocation.context().call_id().clone();
    let name = function.name();
    let delivery = dispatcher.deliver(name, invocation).await;
    let attempts = delivery.attempts();
    let response = match delivery.into_result() {
        Ok(response) => {
            tracing::debug!(function = name, %call_id, attempts, "asynchronous call succeeded");
            let header =
                HeaderValue::from_str(call_id.as_str()).unwrap_or(HeaderValue::from_static(""));
            encode_response(response, header, reply)
        }
        Err(error) => {
            tracing::warn!(function = name, %call_id, attempts, %error, "asynchronous call failed");
            error.to_response(&call_id)
        }
    };
    if let Some(url) = callback {
        callbacks
            .post(
                &url,
                CallbackResult {
                    function: name,
                    call_id: &call_id,
                    attempts,
                    response,
                },
            )
            .await;
    }
}
