//! [`CronJob`]: one function on one schedule, and the loop that fires it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use faas_core::{CloudEvent, Context, Dispatcher, Invocation};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::clock::Clock;
use super::schedule::Schedule;
use super::stats::CronStats;

/// The CloudEvents `type` of a tick.
pub const TICK_EVENT_TYPE: &str = "dev.faas.cron.tick";

/// The longest the trigger sleeps before it reads the wall clock again, so a
/// clock that jumps is noticed within this bound.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// How many missed ticks are counted one by one before the count saturates
/// (a pause of a day on a per-second schedule is 86 400 ticks).
const MISSED_COUNT_LIMIT: u64 = 10_000;

/// What a job does with ticks it missed.
///
/// A job normally wakes at each scheduled time and fires it. When it wakes
/// and finds that more than one scheduled time has passed since the last one
/// it handled (the process was paused or suspended, the wall clock jumped
/// forward, the runtime was starved), the extra ones are *missed*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MissedTicks {
    /// Fire once for all of them, for the most recent one (`ce-time` is that
    /// scheduled time; the event's data says how many were missed); count the
    /// others as missed. Then resume on schedule. The default.
    #[default]
    FireOnce,
    /// Fire none of them, count them all as missed, and wait for the next
    /// scheduled time.
    Skip,
}

/// One function on one schedule.
///
/// ```
/// use faas_triggers::cron::{CronJob, MissedTicks, Schedule};
///
/// let job = CronJob::new("report", Schedule::parse("0 0 9 * * MON-FRI", Some("Europe/Paris"))?)
///     .with_overlap(false)
///     .with_missed_ticks(MissedTicks::Skip);
/// assert_eq!(job.function(), "report");
/// # Ok::<(), faas_triggers::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CronJob {
    function: String,
    schedule: Schedule,
    allow_overlap: bool,
    missed_ticks: MissedTicks,
    source: Option<String>,
}

impl CronJob {
    /// Calls `function` on `schedule`; no overlapping runs, missed ticks fired once.
    pub fn new(function: impl Into<String>, schedule: Schedule) -> Self {
        CronJob {
            function: function.into(),
            schedule,
            allow_overlap: false,
            missed_ticks: MissedTicks::default(),
            source: None,
        }
    }

    /// Whether a tick fires while the previous run is still going (default:
    /// no; the tick is skipped, counted and logged).
    pub fn with_overlap(mut self, allow: bool) -> Self {
        self.allow_overlap = allow;
        self
    }

    /// What to do with missed ticks.
    pub fn with_missed_ticks(mut self, policy: MissedTicks) -> Self {
        self.missed_ticks = policy;
        self
    }

    /// The `ce-source` of the tick events (default `/faas/cron/{function}`).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The function called.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Whether runs may overlap.
    pub fn allows_overlap(&self) -> bool {
        self.allow_overlap
    }

    /// The missed-tick policy.
    pub fn missed_ticks(&self) -> MissedTicks {
        self.missed_ticks
    }

    /// The `ce-source` of its events.
    pub fn source(&self) -> String {
        self.source
            .clone()
            .unwrap_or_else(|| format!("/faas/cron/{}", self.function))
    }

    /// Fires the job until `shutdown`, then waits for its runs to finish.
    pub(crate) async fn run(
        self,
        dispatcher: Dispatcher,
        clock: Arc<dyn Clock>,
        stats: CronStats,
        shutdown: CancellationToken,
    ) {
        let source = self.source();
        let running = Arc::new(AtomicBool::new(false));
        let mut runs = JoinSet::new();
        let mut last = clock.now();
        tracing::info!(function = %self.function, schedule = %self.schedule, "cron job started");
        loop {
            let Some(next) = self.schedule.next_after(last) else {
                tracing::info!(function = %self.function, schedule = %self.schedule, "the schedule has no more ticks");
                break;
            };
            if !sleep_until(&*clock, next, &shutdown).await {
                break;
            }
            while runs.try_join_next().is_some() {}
            let now = clock.now();
            let (latest, due) = self
                .schedule
                .latest_due(last, now, MISSED_COUNT_LIMIT)
                .unwrap_or((next, 1));
            last = latest;
            let missed = due.saturating_sub(1);
            let fire = match self.missed_ticks {
                MissedTicks::FireOnce => true,
                MissedTicks::Skip => missed == 0,
            };
            let missed = if fire { missed } else { due };
            if missed > 0 {
                stats.record_missed(missed);
                tracing::warn!(
                    function = %self.function,
                    schedule = %self.schedule,
                    missed,
                    policy = ?self.missed_ticks,
                    "missed cron ticks (the process was paused or the clock jumped)"
                );
            }
            if !fire {
                continue;
            }
            if !self.allow_overlap && running.swap(true, Ordering::AcqRel) {
                stats.record_skipped_overlap();
                tracing::warn!(
                    function = %self.function,
                    scheduled = %latest,
                    "cron tick skipped: the previous run is still going"
                );
                continue;
            }
            let invocation = tick_invocation(&self, &source, latest, missed);
            let dispatcher = dispatcher.clone();
            let stats = stats.clone();
            let running = Arc::clone(&running);
            let function = self.function.clone();
            let allow_overlap = self.allow_overlap;
            stats.record_fired();
            runs.spawn(async move {
                let delivery = dispatcher.deliver(&function, invocation).await;
                if let Some(error) = delivery.error() {
                    tracing::error!(
                        function = %function,
                        scheduled = %latest,
                        attempts = delivery.attempts(),
                        %error,
                        "cron run failed"
                    );
                }
                stats.record_finished(delivery.is_success());
                if !allow_overlap {
                    running.store(false, Ordering::Release);
                }
            });
        }
        while runs.join_next().await.is_some() {}
        tracing::info!(function = %self.function, "cron job stopped");
    }
}

/// Sleeps until the clock reads `at`; false when `shutdown` came first.
async fn sleep_until(clock: &dyn Clock, at: DateTime<Utc>, shutdown: &CancellationToken) -> bool {
    loop {
        let now = clock.now();
        if now >= at {
            return true;
        }
        let wait = (at - now).to_std().unwrap_or_default().min(MAX_SLEEP);
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// A `POST /` carrying the tick as a binary-mode CloudEvent.
fn tick_invocation(
    job: &CronJob,
    source: &str,
    scheduled: DateTime<Utc>,
    missed: u64,
) -> Invocation {
    let time = scheduled.to_rfc3339_opts(SecondsFormat::Millis, true);
    let local = scheduled
        .with_timezone(&job.schedule.timezone())
        .to_rfc3339_opts(SecondsFormat::Millis, false);
    let data = serde_json::json!({
        "schedule": job.schedule.expression(),
        "timezone": job.schedule.timezone().name(),
        "scheduled": local,
        "missed": missed,
    });
    let event = CloudEvent::new(time.clone(), source, TICK_EVENT_TYPE)
        .with_time(time)
        .with_subject(job.function.clone())
        .with_data("application/json", data.to_string());
    Invocation::from_event(event).with_context(Context::new(job.function.clone()))
}
