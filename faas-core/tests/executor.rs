//! The local executor's policies, end to end through `LocalExecutor` and its
//! `Dispatcher`: panic isolation, deadlines, in-flight limits, retries, dead
//! letters, graceful shutdown, triggers and metrics.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use faas_core::{
    Context, Dispatcher, Error, ErrorKind, FunctionDefinition, FunctionError, InMemoryDeadLetter,
    Invocation, InvocationPolicy, LocalExecutor, Registry, RetryPolicy, Trigger,
};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Waits until `condition` holds, checking every millisecond, for at most a minute.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "gave up waiting until {what}");
}

/// A function that waits for a permit of `gate` and then answers "done".
fn gated(name: &str, gate: &Arc<Semaphore>, policy: InvocationPolicy) -> FunctionDefinition {
    let gate = Arc::clone(gate);
    FunctionDefinition::from_handler(name, move || {
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.expect("gate open").forget();
            "done"
        }
    })
    .with_policy(policy)
}

#[tokio::test]
async fn a_panic_is_isolated_and_the_next_call_succeeds() {
    async fn fragile(body: String) -> String {
        if body == "boom" {
            panic!("fragile broke on {body}");
        }
        format!("ok {body}")
    }
    let executor = LocalExecutor::new(Registry::from([FunctionDefinition::from_handler(
        "fragile", fragile,
    )]));

    let err = executor
        .invoke("fragile", Invocation::new("boom"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert_eq!(err.status(), 500);
    assert!(
        err.message().contains("fragile broke on boom"),
        "{}",
        err.message()
    );

    let response = executor
        .invoke("fragile", Invocation::new("again"))
        .await
        .unwrap();
    assert_eq!(response.body(), "ok again");

    let registered = executor.registry().get("fragile").unwrap();
    assert_eq!(registered.invocation_count(), 2);
    assert_eq!(registered.failure_count(), 1);
    assert_eq!(registered.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_call_over_its_deadline_times_out_and_is_cancelled() {
    let (tx, mut rx) = mpsc::unbounded_channel::<CancellationToken>();
    let slow = FunctionDefinition::from_handler("slow", move |ctx: Context| {
        let tx = tx.clone();
        async move {
            tx.send(ctx.cancellation().clone()).unwrap();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        }
    })
    .with_policy(InvocationPolicy::default().with_timeout(Duration::from_secs(2)));
    let executor = LocalExecutor::new(Registry::from([slow]));

    let caller = CancellationToken::new();
    let call =
        Invocation::new("").with_context(Context::default().with_cancellation(caller.clone()));
    let err = executor.invoke("slow", call).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.status(), 504);
    assert!(err.message().contains("2s"), "{}", err.message());
    let token = rx.recv().await.unwrap();
    assert!(
        token.is_cancelled(),
        "the handler's token is cancelled on timeout"
    );
    assert!(
        !caller.is_cancelled(),
        "the caller's own token is left alone"
    );

    // A deadline in the context that comes first wins over the policy's.
    let call = Invocation::new("")
        .with_context(Context::default().with_timeout(Duration::from_millis(500)));
    let err = executor.invoke("slow", call).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("500ms"), "{}", err.message());
    assert!(rx.recv().await.unwrap().is_cancelled());
    assert_eq!(executor.registry().get("slow").unwrap().in_flight(), 0);
}

#[tokio::test]
async fn a_flood_over_the_limit_is_refused_and_nothing_queues() {
    let gate = Arc::new(Semaphore::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let limited = {
        let gate = Arc::clone(&gate);
        let running = Arc::clone(&running);
        let peak = Arc::clone(&peak);
        FunctionDefinition::from_handler("limited", move || {
            let gate = Arc::clone(&gate);
            let running = Arc::clone(&running);
            let peak = Arc::clone(&peak);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                running.fetch_sub(1, Ordering::SeqCst);
                "done"
            }
        })
        .with_policy(InvocationPolicy::default().with_max_in_flight(3))
    };
    let executor = LocalExecutor::new(Registry::from([limited]));
    let dispatcher = executor.dispatcher();

    let mut admitted = Vec::new();
    for _ in 0..3 {
        let dispatcher = dispatcher.clone();
        admitted.push(tokio::spawn(async move {
            dispatcher.dispatch("limited", Invocation::new("")).await
        }));
    }
    eventually("three calls run", || running.load(Ordering::SeqCst) == 3).await;

    // The gate is still closed: each extra call must come back on its own, refused.
    for _ in 0..20 {
        let err = dispatcher
            .dispatch("limited", Invocation::new(""))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        assert_eq!(err.status(), 429);
    }
    assert_eq!(running.load(Ordering::SeqCst), 3);

    gate.add_permits(3);
    for call in admitted {
        assert_eq!(call.await.unwrap().unwrap().body(), "done");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    let text = executor.metrics().encode();
    assert!(
        text.contains(r#"faas_errors_total{function="limited",kind="overloaded"} 20"#),
        "{text}"
    );

    // Capacity is back once the calls finished.
    gate.add_permits(1);
    dispatcher
        .dispatch("limited", Invocation::new(""))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn retries_reach_success_on_attempt_n() {
    let attempts_seen = Arc::new(Mutex::new(Vec::new()));
    let flaky = {
        let seen = Arc::clone(&attempts_seen);
        FunctionDefinition::from_handler("flaky", move |ctx: Context| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(ctx.attempt());
                if ctx.attempt() < 4 {
                    Err(FunctionError::internal(format!(
                        "not yet ({})",
                        ctx.attempt()
                    )))
                } else {
                    Ok(format!("made it on attempt {}", ctx.attempt()))
                }
            }
        })
        .with_policy(InvocationPolicy::default().with_retry(RetryPolicy::new(5)))
    };
    let executor = LocalExecutor::new(Registry::from([flaky]));
    let call = Invocation::new("event");
    let call_id = call.context().call_id().clone();

    let delivery = executor.dispatcher().deliver("flaky", call).await;
    assert!(delivery.is_success());
    assert!(delivery.should_ack());
    assert!(!delivery.is_dead_lettered());
    assert_eq!(delivery.attempts(), 4);
    assert_eq!(delivery.call_id(), &call_id);
    assert_eq!(delivery.response().unwrap().body(), "made it on attempt 4");
    assert_eq!(*attempts_seen.lock().unwrap(), [1, 2, 3, 4]);
    assert_eq!(
        executor.registry().get("flaky").unwrap().invocation_count(),
        4
    );

    // A synchronous dispatch makes one attempt only.
    attempts_seen.lock().unwrap().clear();
    let err = executor
        .invoke("flaky", Invocation::new(""))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert_eq!(*attempts_seen.lock().unwrap(), [1]);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_land_in_the_dead_letter() {
    let dead = InMemoryDeadLetter::new();
    let calls = Arc::new(AtomicU32::new(0));
    let broken = {
        let calls = Arc::clone(&calls);
        FunctionDefinition::from_handler("broken", move |_: String| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(FunctionError::user("the database is down")) }
        })
        .with_policy(
            InvocationPolicy::default()
                .with_retry(RetryPolicy::new(3))
                .with_dead_letter(Arc::new(dead.clone())),
        )
    };
    let executor = LocalExecutor::new(Registry::from([broken]));
    let call = Invocation::new("order 7").with_header("x-order", "7");
    let call_id = call.context().call_id().clone();

    let delivery = executor.dispatcher().deliver("broken", call).await;
    assert!(!delivery.is_success());
    assert!(delivery.is_dead_lettered());
    assert!(
        delivery.should_ack(),
        "safe in the dead letter, so the source may drop it"
    );
    assert_eq!(delivery.attempts(), 3);
    assert_eq!(delivery.error().unwrap().message(), "the database is down");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let entries = dead.entries();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.function, "broken");
    assert_eq!(entry.call_id, call_id);
    assert_eq!(entry.attempts, 3);
    assert_eq!(entry.error.kind(), ErrorKind::User);
    assert_eq!(entry.request.body(), "order 7");
    assert_eq!(entry.request.headers()["x-order"], "7");
}

#[tokio::test(start_paused = true)]
async fn a_failed_delivery_without_dead_letter_is_not_acknowledged() {
    let executor = LocalExecutor::new(Registry::from([FunctionDefinition::from_handler(
        "bad",
        || async { Err::<(), _>(FunctionError::panicked("simulated")) },
    )]));
    let delivery = executor
        .dispatcher()
        .deliver("bad", Invocation::new(""))
        .await;
    assert!(!delivery.should_ack());
    assert_eq!(delivery.attempts(), 1, "panics are not retried by default");

    let unknown = executor
        .dispatcher()
        .deliver("nobody", Invocation::new(""))
        .await;
    assert_eq!(unknown.error().unwrap().kind(), ErrorKind::NotFound);
    assert_eq!(unknown.attempts(), 0);
    assert!(!unknown.should_ack());
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let dead = InMemoryDeadLetter::new();
    let small = FunctionDefinition::from_handler("small", |body: bytes::Bytes| async move { body })
        .with_policy(
            InvocationPolicy::default()
                .with_max_body_bytes(4)
                .with_dead_letter(Arc::new(dead.clone())),
        );
    let executor = LocalExecutor::new(Registry::from([small]));
    let err = executor
        .invoke("small", Invocation::new("12345"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PayloadTooLarge);
    assert_eq!(err.status(), 413);
    executor
        .invoke("small", Invocation::new("1234"))
        .await
        .unwrap();

    let delivery = executor
        .dispatcher()
        .deliver("small", Invocation::new("12345"))
        .await;
    assert!(
        delivery.is_dead_lettered(),
        "a body that can never fit goes straight to the dead letter"
    );
    assert_eq!(dead.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_waits_for_an_in_flight_call() {
    let gate = Arc::new(Semaphore::new(0));
    let executor = LocalExecutor::builder(Registry::from([gated(
        "work",
        &gate,
        InvocationPolicy::default(),
    )]))
    .shutdown_grace(Duration::from_secs(20))
    .build();
    let dispatcher = executor.dispatcher();
    let shutdown = executor.shutdown_handle();
    let running = tokio::spawn(executor.run());

    let call = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { dispatcher.dispatch("work", Invocation::new("")).await }
    });
    eventually("the call is in flight", || dispatcher.in_flight() == 1).await;

    shutdown.shutdown();
    eventually("new calls are refused", || !dispatcher.is_accepting()).await;
    let refused = dispatcher
        .dispatch("work", Invocation::new(""))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unavailable);

    // Well inside the grace period the executor is still waiting for the call.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!running.is_finished());
    assert!(!call.is_finished());

    gate.add_permits(1);
    assert_eq!(call.await.unwrap().unwrap().body(), "done");
    running.await.unwrap().unwrap();
    assert_eq!(dispatcher.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn calls_still_running_after_the_grace_period_are_cancelled() {
    let (tx, mut rx) = mpsc::unbounded_channel::<CancellationToken>();
    let stuck = FunctionDefinition::from_handler("stuck", move |ctx: Context| {
        let tx = tx.clone();
        async move {
            tx.send(ctx.cancellation().clone()).unwrap();
            std::future::pending::<()>().await;
        }
    })
    .with_policy(InvocationPolicy::default().without_timeout());
    let executor = LocalExecutor::builder(Registry::from([stuck]))
        .shutdown_grace(Duration::from_secs(5))
        .build();
    let dispatcher = executor.dispatcher();
    let shutdown = executor.shutdown_handle();
    let running = tokio::spawn(executor.run());

    let call = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { dispatcher.dispatch("stuck", Invocation::new("")).await }
    });
    let token = rx.recv().await.unwrap();
    shutdown.shutdown();
    running.await.unwrap().unwrap();

    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message().contains("shut down"), "{}", err.message());
    assert!(token.is_cancelled());
    assert_eq!(dispatcher.in_flight(), 0);
}

/// Delivers each message of a channel and reports each delivery's acknowledgement.
struct ChannelTrigger {
    function: String,
    messages: mpsc::UnboundedReceiver<String>,
    acks: mpsc::UnboundedSender<(String, bool)>,
    stopped: Option<oneshot::Sender<()>>,
}

#[async_trait]
impl Trigger for ChannelTrigger {
    fn name(&self) -> &str {
        "channel"
    }

    async fn run(
        mut self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                message = self.messages.recv() => match message {
                    Some(message) => message,
                    None => break,
                },
            };
            let delivery = dispatcher
                .deliver(&self.function, Invocation::new(message.clone()))
                .await;
            self.acks
                .send((message, delivery.should_ack()))
                .map_err(|error| Error::trigger("channel", error))?;
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.send(());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn triggers_deliver_until_shutdown() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let seen = Arc::clone(&seen);
        FunctionDefinition::from_handler("sink", move |body: String| {
            let seen = Arc::clone(&seen);
            async move {
                if body == "poison" {
                    return Err(FunctionError::bad_input("cannot read poison"));
                }
                seen.lock().unwrap().push(body);
                Ok(())
            }
        })
    };
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let (acks, mut acks_rx) = mpsc::unbounded_channel();
    let (stopped_tx, stopped) = oneshot::channel();
    let executor = LocalExecutor::builder(Registry::from([sink]))
        .trigger(ChannelTrigger {
            function: "sink".into(),
            messages,
            acks,
            stopped: Some(stopped_tx),
        })
        .build();
    let shutdown = executor.shutdown_handle();
    let running = tokio::spawn(executor.run());

    for message in ["a", "poison", "b"] {
        messages_tx.send(message.to_owned()).unwrap();
    }
    let mut results = Vec::new();
    for _ in 0..3 {
        results.push(acks_rx.recv().await.unwrap());
    }
    assert_eq!(
        results,
        [
            ("a".to_owned(), true),
            ("poison".to_owned(), false),
            ("b".to_owned(), true)
        ]
    );
    assert_eq!(*seen.lock().unwrap(), ["a", "b"]);

    shutdown.shutdown();
    stopped.await.unwrap();
    running.await.unwrap().unwrap();
}

struct FailingTrigger;

#[async_trait]
impl Trigger for FailingTrigger {
    fn name(&self) -> &str {
        "failing"
    }

    async fn run(self: Box<Self>, _: Dispatcher, _: CancellationToken) -> Result<(), Error> {
        Err(Error::trigger(
            "failing",
            std::io::Error::other("the broker went away"),
        ))
    }
}

#[tokio::test]
async fn a_failing_trigger_stops_the_executor_with_its_error() {
    let executor = LocalExecutor::builder(Registry::new())
        .trigger(FailingTrigger)
        .build();
    let dispatcher = executor.dispatcher();
    let err = executor.run().await.unwrap_err();
    assert!(
        matches!(&err, Error::Trigger { trigger, .. } if trigger == "failing"),
        "{err:?}"
    );
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "the broker went away");
    assert!(!dispatcher.is_accepting());
}

#[tokio::test]
async fn metrics_count_calls_by_outcome_and_kind() {
    let registry = Registry::from([
        FunctionDefinition::from_handler("ok", || async { "fine" }),
        FunctionDefinition::from_handler("json", |_: faas_core::Json<u32>| async {}),
    ]);
    let executor = LocalExecutor::new(registry);
    executor.invoke("ok", Invocation::new("")).await.unwrap();
    executor.invoke("ok", Invocation::new("")).await.unwrap();
    executor
        .invoke("json", Invocation::new("{not json"))
        .await
        .unwrap_err();
    executor
        .invoke("unknown", Invocation::new(""))
        .await
        .unwrap_err();

    let text = executor.metrics().encode();
    for expected in [
        r#"faas_invocations_total{function="ok",outcome="success"} 2"#,
        r#"faas_invocations_total{function="json",outcome="error"} 1"#,
        r#"faas_errors_total{function="json",kind="bad_input"} 1"#,
        r#"faas_invocation_duration_seconds_count{function="ok"} 2"#,
        r#"faas_in_flight{function="ok"} 0"#,
        "# TYPE faas_invocation_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(
        !text.contains("unknown"),
        "unknown names are not recorded:\n{text}"
    );
}

#[tokio::test]
async fn error_answers_carry_the_call_id() {
    let executor = LocalExecutor::new(Registry::from([FunctionDefinition::from_handler(
        "text",
        |body: String| async move { body },
    )]));
    let call = Invocation::new(vec![0xc3, 0x28]);
    let call_id = call.context().call_id().clone();
    let response = executor
        .dispatcher()
        .dispatch_to_response("text", call)
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-call-id"], call_id.as_str());
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"]["kind"], "bad_input");
    assert_eq!(body["error"]["call_id"], call_id.as_str());

    let ok = executor
        .dispatcher()
        .dispatch_to_response("text", Invocation::new("hi"))
        .await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().contains_key("x-call-id"));
}

#[tokio::test(start_paused = true)]
async fn a_delivery_retries_an_attempt_that_timed_out_with_a_fresh_token() {
    let (tx, mut rx) = mpsc::unbounded_channel::<CancellationToken>();
    let slow_once = FunctionDefinition::from_handler("slow-once", move |ctx: Context| {
        let tx = tx.clone();
        async move {
            tx.send(ctx.cancellation().clone()).unwrap();
            if ctx.attempt() == 1 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            format!("attempt {}", ctx.attempt())
        }
    })
    .with_policy(
        InvocationPolicy::default()
            .with_timeout(Duration::from_secs(1))
            .with_retry(RetryPolicy::new(3)),
    );
    let executor = LocalExecutor::new(Registry::from([slow_once]));

    let delivery = executor
        .dispatcher()
        .deliver("slow-once", Invocation::new(""))
        .await;
    assert!(delivery.is_success(), "{:?}", delivery.error());
    assert_eq!(delivery.attempts(), 2);
    assert_eq!(delivery.response().unwrap().body(), "attempt 2");
    let first = rx.recv().await.unwrap();
    let second = rx.recv().await.unwrap();
    assert!(first.is_cancelled(), "the timed-out attempt is cancelled");
    assert!(!second.is_cancelled(), "the next attempt starts afresh");
    let registered = executor.registry().get("slow-once").unwrap();
    assert_eq!(registered.invocation_count(), 2);
    assert_eq!(registered.failure_count(), 1);
    assert_eq!(registered.in_flight(), 0);
}

#[tokio::test]
async fn cancelling_the_callers_token_reaches_the_running_call() {
    let started = Arc::new(Semaphore::new(0));
    let waits = {
        let started = Arc::clone(&started);
        FunctionDefinition::from_handler("waits", move |ctx: Context| {
            let started = Arc::clone(&started);
            async move {
                started.add_permits(1);
                ctx.cancellation().cancelled().await;
                "stopped"
            }
        })
    };
    let executor = LocalExecutor::new(Registry::from([waits]));
    let caller = CancellationToken::new();
    let call = tokio::spawn({
        let dispatcher = executor.dispatcher();
        let invocation =
            Invocation::new("").with_context(Context::default().with_cancellation(caller.clone()));
        async move { dispatcher.dispatch("waits", invocation).await }
    });
    started.acquire().await.unwrap().forget();
    caller.cancel();
    assert_eq!(call.await.unwrap().unwrap().body(), "stopped");
}

#[tokio::test]
async fn a_panic_while_the_function_makes_its_future_is_isolated() {
    struct Eager;
    impl faas_core::Function for Eager {
        fn call<'a, 'b>(
            &'a self,
            invocation: Invocation,
        ) -> futures::future::BoxFuture<'b, Result<faas_core::Response, FunctionError>>
        where
            'a: 'b,
            Self: 'b,
        {
            if invocation.body() == "boom" {
                panic!("eager failure");
            }
            Box::pin(async { Ok(faas_core::Response::new("fine".into())) })
        }
    }
    let executor = LocalExecutor::new(Registry::from([FunctionDefinition::new("eager", Eager)]));
    let err = executor
        .invoke("eager", Invocation::new("boom"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panicked);
    assert!(err.message().contains("eager failure"), "{}", err.message());
    let ok = executor
        .invoke("eager", Invocation::new("calm"))
        .await
        .unwrap();
    assert_eq!(ok.body(), "fine");
    let registered = executor.registry().get("eager").unwrap();
    assert_eq!(registered.invocation_count(), 2);
    assert_eq!(registered.in_flight(), 0);
    assert_eq!(
        registered.limiter().available(),
        faas_core::policy::DEFAULT_MAX_IN_FLIGHT
    );
}

#[tokio::test(start_paused = true)]
async fn a_delivery_interrupted_by_shutdown_is_neither_acknowledged_nor_dead_lettered() {
    let dead = InMemoryDeadLetter::new();
    let failing = FunctionDefinition::from_handler("failing", || async {
        Err::<(), _>(FunctionError::internal("not now"))
    })
    .with_policy(
        InvocationPolicy::default()
            .with_retry(
                RetryPolicy::new(10)
                    .with_initial_backoff(Duration::from_secs(3600))
                    .with_jitter(0.0),
            )
            .with_dead_letter(Arc::new(dead.clone())),
    );
    let executor = LocalExecutor::builder(Registry::from([failing]))
        .shutdown_grace(Duration::from_secs(1))
        .build();
    let dispatcher = executor.dispatcher();
    let shutdown = executor.shutdown_handle();
    let running = tokio::spawn(executor.run());

    let delivery = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { dispatcher.deliver("failing", Invocation::new("")).await }
    });
    eventually("the first attempt failed", || {
        dispatcher
            .registry()
            .get("failing")
            .is_some_and(|f| f.failure_count() == 1)
    })
    .await;
    shutdown.shutdown();
    running.await.unwrap().unwrap();

    let delivery = delivery.await.unwrap();
    assert!(!delivery.is_success());
    assert!(!delivery.is_dead_lettered());
    assert!(!delivery.should_ack());
    assert_eq!(delivery.error().unwrap().kind(), ErrorKind::Unavailable);
    assert!(dead.is_empty());
    assert_eq!(dispatcher.in_flight(), 0);
}

#[tokio::test]
async fn hosts_sharing_a_registry_count_and_log_in_their_own_metrics() {
    let registry = Registry::from([FunctionDefinition::from_handler("ping", || async {
        "pong"
    })]);
    let first = LocalExecutor::new(registry.clone());
    let second = LocalExecutor::new(registry);
    for executor in [&first, &second, &second, &first, &second] {
        executor.invoke("ping", Invocation::new("")).await.unwrap();
    }
    for (executor, calls) in [(&first, 2), (&second, 3)] {
        let text = executor.metrics().encode();
        let expected =
            format!(r#"faas_invocations_total{{function="ping",outcome="success"}} {calls}"#);
        assert!(text.contains(&expected), "missing {expected} in\n{text}");
        let lines = executor
            .dispatcher()
            .invocation_log()
            .lines("ping", &faas_core::LogQuery::new());
        assert_eq!(lines.len(), calls);
    }
}
