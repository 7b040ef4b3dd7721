//! The cron trigger under tokio's paused clock: simulated seconds and days,
//! deterministic, with no real waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use faas_core::{CloudEvent, FunctionDefinition, LocalExecutor, Registry, TriggerSpec};
use faas_triggers::cron::{
    Clock, CronJob, CronStats, CronTrigger, MissedTicks, Schedule, TokioClock,
};

/// The tick events a function received.
#[derive(Clone, Default)]
struct Ticks {
    events: Arc<Mutex<Vec<CloudEvent>>>,
    running: Arc<AtomicUsize>,
    max_running: Arc<AtomicUsize>,
}

impl Ticks {
    /// A function that records its tick and then works for `work` (simulated).
    fn function(&self, name: &str, work: Duration) -> FunctionDefinition {
        let ticks = self.clone();
        FunctionDefinition::from_handler(name, move |event: CloudEvent| {
            let ticks = ticks.clone();
            async move {
                let now = ticks.running.fetch_add(1, Ordering::SeqCst) + 1;
                ticks.max_running.fetch_max(now, Ordering::SeqCst);
                ticks.events.lock().unwrap().push(event);
                tokio::time::sleep(work).await;
                ticks.running.fetch_sub(1, Ordering::SeqCst);
            }
        })
    }

    fn times(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.time.clone().unwrap_or_default())
            .collect()
    }

    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// Waits for the executor to return. Under the paused clock a wait that
/// never ends turns into a failure instead of a hung test.
async fn finish(running: tokio::task::JoinHandle<faas_core::Result<()>>) {
    tokio::time::timeout(Duration::from_secs(86_400 * 30), running)
        .await
        .expect("the executor stops")
        .expect("the executor did not panic")
        .expect("the executor stopped cleanly");
}

/// Runs `trigger` under an executor for `simulated` time, then shuts down.
async fn run_for(registry: Registry, trigger: CronTrigger, simulated: Duration) -> CronStats {
    let stats = trigger.stats();
    let executor = LocalExecutor::builder(registry).trigger(trigger).build();
    let shutdown = executor.shutdown_handle();
    let running = tokio::spawn(executor.run());
    tokio::time::sleep(simulated).await;
    shutdown.shutdown();
    finish(running).await;
    stats
}

#[tokio::test(start_paused = true)]
async fn every_second_fires_n_times_in_n_seconds() {
    let ticks = Ticks::default();
    let registry = Registry::from([ticks.function("tick", Duration::ZERO)]);
    let start = at(2025, 1, 1, 0, 0, 0);
    let trigger = CronTrigger::new()
        .with_clock(TokioClock::starting_at(start))
        .with_schedule("tick", "*/1 * * * * *".parse().unwrap());
    let stats = run_for(registry, trigger, Duration::from_millis(10_500)).await;

    assert_eq!(ticks.len(), 10);
    let expected: Vec<String> = (1..=10)
        .map(|s| format!("2025-01-01T00:00:{s:02}.000Z"))
        .collect();
    assert_eq!(ticks.times(), expected);
    assert_eq!(stats.fired(), 10);
    assert_eq!(stats.succeeded(), 10);
    assert_eq!(stats.missed(), 0);
    assert_eq!(stats.skipped_overlap(), 0);

    let first = &ticks.events.lock().unwrap()[0];
    assert_eq!(first.ty, "dev.faas.cron.tick");
    assert_eq!(first.source, "/faas/cron/tick");
    assert_eq!(first.id, "2025-01-01T00:00:01.000Z");
    assert_eq!(first.subject.as_deref(), Some("tick"));
    let data: serde_json::Value = first.data_json().unwrap();
    assert_eq!(data["schedule"], "*/1 * * * * *");
    assert_eq!(data["timezone"], "UTC");
    assert_eq!(data["missed"], 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_run_is_not_overlapped() {
    let ticks = Ticks::default();
    let registry = Registry::from([ticks.function("slow", Duration::from_millis(2_500))]);
    let trigger = CronTrigger::new()
        .with_clock(TokioClock::starting_at(at(2025, 1, 1, 0, 0, 0)))
        .with_schedule("slow", "* * * * * *".parse().unwrap());
    let stats = run_for(registry, trigger, Duration::from_millis(10_500)).await;

    // Runs start at 1, 4, 7 and 10 s; each lasts 2.5 s, so the ticks at
    // 2, 3, 5, 6, 8 and 9 s find the previous run still going.
    assert_eq!(ticks.max_running.load(Ordering::SeqCst), 1);
    assert_eq!(
        ticks.times(),
        ["01", "04", "07", "10"].map(|s| format!("2025-01-01T00:00:{s}.000Z"))
    );
    assert_eq!(stats.fired(), 4);
    assert_eq!(stats.skipped_overlap(), 6);
    // The run started at 10 s finished during shutdown's drain.
    assert_eq!(stats.succeeded(), 4);
}

#[tokio::test(start_paused = true)]
async fn overlap_when_allowed() {
    let ticks = Ticks::default();
    let registry = Registry::from([ticks.function("slow", Duration::from_millis(2_500))]);
    let job = CronJob::new("slow", "* * * * * *".parse().unwrap()).with_overlap(true);
    let trigger = CronTrigger::new()
        .with_clock(TokioClock::starting_at(at(2025, 1, 1, 0, 0, 0)))
        .with_job(job);
    let stats = run_for(registry, trigger, Duration::from_millis(10_500)).await;
    assert_eq!(stats.fired(), 10);
    assert_eq!(stats.skipped_overlap(), 0);
    assert_eq!(ticks.max_running.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_time_zone_is_respected_across_daylight_saving() {
    let ticks = Ticks::default();
    // Registered through the function's own TriggerSpec.
    let registry = Registry::from([ticks.function("morning", Duration::ZERO).with_trigger(
        TriggerSpec::Cron {
            schedule: "0 0 9 * * *".into(),
            timezone: Some("America/New_York".into()),
        },
    )]);
    // US daylight saving starts on 2025-03-09: 09:00 is 14:00Z before, 13:00Z after.
    let trigger = CronTrigger::from_registry(&registry)
        .unwrap()
        .with_clock(TokioClock::starting_at(at(2025, 3, 8, 0, 0, 0)));
    assert_eq!(trigger.jobs().len(), 1);
    run_for(registry, trigger, Duration::from_secs(3 * 86_400)).await;
    assert_eq!(
        ticks.times(),
        [
            "2025-03-08T14:00:00.000Z",
            "2025-03-09T13:00:00.000Z",
            "2025-03-10T13:00:00.000Z"
        ]
    );
    let data: serde_json::Value = ticks.events.lock().unwrap()[1].data_json().unwrap();
    assert_eq!(data["timezone"], "America/New_York");
    assert_eq!(data["scheduled"], "2025-03-09T09:00:00.000-04:00");
}

/// Drives a trigger through a pause: a normal tick, then 10 s that the
/// trigger does not see one by one (the whole runtime jumps), then normal again.
async fn through_a_pause(policy: MissedTicks) -> (Ticks, CronStats) {
    let ticks = Ticks::default();
    let registry = Registry::from([ticks.function("tick", Duration::ZERO)]);
    let job = CronJob::new("tick", "* * * * * *".parse().unwrap()).with_missed_ticks(policy);
    let trigger = CronTrigger::new()
        .with_clock(TokioClock::starting_at(at(2025, 1, 1, 0, 0, 0)))
        .with_job(job);
    let stats = trigger.stats();
    let executor = LocalExecutor::builder(registry).trigger(trigger).build();
    let shutdown = executor.shutdown_handle();
    let running = tokio::spawn(executor.run());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(ticks.len(), 1);
    // The process is frozen for 10 s: every timer comes due at once.
    tokio::time::advance(Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    shutdown.shutdown();
    finish(running).await;
    (ticks, stats)
}

#[tokio::test(start_paused = true)]
async fn missed_ticks_fire_once_then_resume() {
    let (ticks, stats) = through_a_pause(MissedTicks::FireOnce).await;
    // 1 s on time; at 11.5 s the ticks 2..=11 are due: one run, for 11 s; then 12 s.
    assert_eq!(
        ticks.times(),
        ["01", "11", "12"].map(|s| format!("2025-01-01T00:00:{s}.000Z"))
    );
    assert_eq!(stats.missed(), 9);
    let data: serde_json::Value = ticks.events.lock().unwrap()[1].data_json().unwrap();
    assert_eq!(data["missed"], 9);
}

#[tokio::test(start_paused = true)]
async fn missed_ticks_can_be_skipped() {
    let (ticks, stats) = through_a_pause(MissedTicks::Skip).await;
    assert_eq!(
        ticks.times(),
        ["01", "12"].map(|s| format!("2025-01-01T00:00:{s}.000Z"))
    );
    assert_eq!(stats.missed(), 10);
}

/// A wall clock that can be set back, on top of tokio's paused clock.
#[derive(Clone)]
struct JumpingClock {
    base: TokioClock,
    offset_secs: Arc<std::sync::atomic::AtomicI64>,
}

impl Clock for JumpingClock {
    fn now(&self) -> DateTime<Utc> {
        self.base.now() + chrono::TimeDelta::seconds(self.offset_secs.load(Ordering::SeqCst))
    }
}

#[tokio::test(start_paused = true)]
async fn a_clock_set_back_fires_no_tick_twice() {
    let ticks = Ticks::default();
    let registry = Registry::from([ticks.function("tick", Duration::ZERO)]);
    let clock = JumpingClock {
        base: TokioClock::starting_at(at(2025, 1, 1, 0, 0, 0)),
        offset_secs: Arc::default(),
    };
    let trigger = CronTrigger::new()
        .with_clock(clock.clone())
        .with_schedule("tick", "*/10 * * * * *".parse().unwrap());
    let executor = LocalExecutor::builder(registry).trigger(trigger).build();
    let shutdown = executor.shutdown_handle();
    let running = tokio::spawn(executor.run());
    tokio::time::sleep(Duration::from_secs(25)).await; // ticks at 10 and 20
    clock.offset_secs.store(-60, Ordering::SeqCst); // the clock reads 23:59:25 again
    tokio::time::sleep(Duration::from_secs(90)).await; // reads 00:00:55
    shutdown.shutdown();
    finish(running).await;
    assert_eq!(
        ticks.times(),
        ["10", "20", "30", "40", "50"].map(|s| format!("2025-01-01T00:00:{s}.000Z"))
    );
}

#[tokio::test]
async fn bad_schedules_are_refused_with_the_function_named() {
    async fn noop() {}
    let registry = Registry::from([FunctionDefinition::from_handler("nightly", noop)
        .with_trigger(TriggerSpec::Cron {
            schedule: "0 0 25 * * *".into(),
            timezone: None,
        })]);
    let error = CronTrigger::from_registry(&registry).unwrap_err();
    assert!(error.to_string().contains("nightly"), "{error}");

    let registry = Registry::from([FunctionDefinition::from_handler("nightly", noop)
        .with_trigger(TriggerSpec::Cron {
            schedule: "0 0 1 * * *".into(),
            timezone: Some("Europe/Atlantis".into()),
        })]);
    assert!(CronTrigger::from_registry(&registry).is_err());

    // A job for a function that is not registered fails the trigger at start.
    let trigger =
        CronTrigger::new().with_schedule("ghost", Schedule::parse("* * * * *", None).unwrap());
    let error = trigger
        .serve(
            faas_core::Dispatcher::new(Registry::new()),
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("ghost"), "{error}");
}
