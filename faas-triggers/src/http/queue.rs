//! The in-memory queue of asynchronous calls (`POST /async-function/{name}`).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

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
/// a block of pointers is a few hundred bytes where a block of calls is over ten kilobytes.
/// The channel, the worker and its callback client are made on the first call queued: a server
/// that never queues one (most function pods of a virtual node) pays for none of them.
#[derive(Debug)]
pub(crate) struct AsyncQueue {
    sender: OnceLock<mpsc::Sender<Box<Call>>>,
    /// The worker once started; taken by [`finish`](Self::finish).
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    capacity: usize,
    concurrency: usize,
    callback_attempts: u32,
    dispatcher: Dispatcher,
    stop: CancellationToken,
}

impl AsyncQueue {
    /// A queue of `capacity` calls, whose worker (started with the first call) runs them
    /// `concurrency` at a time through `dispatcher.deliver` (retries and dead letter per each
    /// function's policy).
    pub(crate) fn new(
        capacity: usize,
        concurrency: usize,
        callback_attempts: u32,
        dispatcher: Dispatcher,
    ) -> Self {
        AsyncQueue {
            sender: OnceLock::new(),
            worker: Mutex::new(None),
            capacity: capacity.max(1),
            concurrency: concurrency.max(1),
            callback_attempts,
            dispatcher,
            stop: CancellationToken::new(),
        }
    }

    /// Queues `call`.
    ///
    /// # Errors
    ///
    /// `Overloaded` (429) when the queue is full, `Unavailable` (503) once the
    /// server is shutting down.
    pub(crate) fn enqueue(&self, call: Call) -> Result<(), FunctionError> {
        let closed =
            || FunctionError::unavailable("the server is shutting down and accepts no new calls");
        let sender = match self.sender.get() {
            Some(sender) => sender,
            None => self.start().ok_or_else(closed)?,
        };
        sender
            .try_send(Box::new(call))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => FunctionError::overloaded(format!(
                    "the queue of asynchronous calls is full ({} waiting); try again later",
                    self.capacity
                )),
                mpsc::error::TrySendError::Closed(_) => closed(),
            })
    }

    /// Starts the worker, unless it runs already or the queue is finishing (`None`).
    fn start(&self) -> Option<&mpsc::Sender<Box<Call>>> {
        let mut worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        if self.stop.is_cancelled() {
            return None;
        }
        Some(self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(self.capacity);
            let run = Worker {
                receiver,
                dispatcher: self.dispatcher.clone(),
                callbacks: CallbackClient::new(self.callback_attempts),
                limit: Arc::new(Semaphore::new(self.concurrency)),
            };
            *worker = Some(tokio::spawn(run.run(self.stop.clone())));
            sender
        }))
    }

    /// Takes no more calls, and returns once the calls already queued have run.
    pub(crate) async fn finish(&self) {
        let worker = {
            let mut worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
            self.stop.cancel();
            worker.take()
        };
        if let Some(worker) = worker {
            let _ = worker.await;
        }
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
