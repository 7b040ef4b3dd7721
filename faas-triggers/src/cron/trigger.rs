//! [`CronTrigger`]: runs functions on their schedules.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use faas_core::{Dispatcher, Registry, Trigger, TriggerSpec};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::clock::{Clock, SystemClock};
use super::job::CronJob;
use super::schedule::Schedule;
use super::stats::CronStats;
use crate::{Error, Result};

/// Calls functions on cron schedules.
///
/// Each tick is delivered as a `POST /` whose headers carry a CloudEvent in
/// binary mode: `ce-type: dev.faas.cron.tick`, `ce-time` = the scheduled time
/// (RFC 3339, UTC), `ce-source: /faas/cron/{function}`, `ce-id` = the
/// scheduled time (so replicas firing the same tick send the same id), and
/// JSON data `{"schedule", "timezone", "scheduled" (local time), "missed"}`.
/// Delivery goes through [`Dispatcher::deliver`]: the function's deadline,
/// retries with backoff and dead letter apply.
///
/// Scheduling policy:
///
/// - Times are matched in the schedule's time zone (see [`Schedule`]); the
///   trigger reads the wall clock through a [`Clock`] and re-reads it at
///   least every [`MAX_SLEEP`](super::MAX_SLEEP).
/// - No overlap: a tick that comes while the job's previous run (retries
///   included) is still going is skipped, counted
///   ([`CronStats::skipped_overlap`]) and logged, unless the job
///   [allows overlap](CronJob::with_overlap).
/// - Missed ticks (the process was paused, the machine suspended, the clock
///   jumped forward): fired at most once, for the most recent one, then the job
///   resumes on schedule; see [`MissedTicks`](super::MissedTicks) for the
///   alternative. A clock that jumps backward fires nothing twice: the job
///   waits until the clock passes the last tick it handled.
/// - Ticks before the trigger started are not fired.
/// - At shutdown no new tick fires; runs in progress finish (the host bounds
///   the wait by its grace period).
///
/// ```no_run
/// use faas_core::{CloudEvent, FunctionDefinition, LocalExecutor, Registry, TriggerSpec};
/// use faas_triggers::cron::{CronJob, CronTrigger, Schedule};
///
/// async fn cleanup(tick: CloudEvent) -> String {
///     format!("cleaned at {}", tick.time.unwrap_or_default())
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::new();
/// registry.register(
///     FunctionDefinition::from_handler("cleanup", cleanup).with_trigger(TriggerSpec::Cron {
///         schedule: "0 */5 * * * *".into(),
///         timezone: Some("Europe/Paris".into()),
///     }),
/// )?;
/// let cron = CronTrigger::from_registry(&registry)?
///     .with_job(CronJob::new("cleanup", Schedule::parse("0 0 3 * * *", None)?));
/// LocalExecutor::builder(registry).trigger(cron).build().shutdown_on_signal().run().await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct CronTrigger {
    jobs: Vec<CronJob>,
    clock: Arc<dyn Clock>,
    stats: CronStats,
}

impl Default for CronTrigger {
    fn default() -> Self {
        CronTrigger::new()
    }
}

impl fmt::Debug for CronTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronTrigger")
            .field("jobs", &self.jobs)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl CronTrigger {
    /// A trigger with no jobs, on the system clock.
    pub fn new() -> Self {
        CronTrigger {
            jobs: Vec::new(),
            clock: Arc::new(SystemClock),
            stats: CronStats::default(),
        }
    }

    /// A trigger with a job for every `TriggerSpec::Cron` of the functions in
    /// `registry` (no overlap, missed ticks fired once).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTrigger`] naming the function whose schedule or time
    /// zone does not parse.
    pub fn from_registry(registry: &Registry) -> Result<Self> {
        let mut trigger = CronTrigger::new();
        for function in registry.iter() {
            for spec in &function.meta().triggers {
                if let TriggerSpec::Cron { schedule, timezone } = spec {
                    let schedule =
                        Schedule::parse(schedule, timezone.as_deref()).map_err(|source| {
                            Error::InvalidTrigger {
                                function: function.name().to_owned(),
                                trigger: "cron",
                                source: Box::new(source),
                            }
                        })?;
                    trigger.jobs.push(CronJob::new(function.name(), schedule));
                }
            }
        }
        Ok(trigger)
    }

    /// Adds a job.
    pub fn with_job(mut self, job: CronJob) -> Self {
        self.jobs.push(job);
        self
    }

    /// Adds a job calling `function` on `schedule` with the default policy.
    pub fn with_schedule(self, function: impl Into<String>, schedule: Schedule) -> Self {
        self.with_job(CronJob::new(function, schedule))
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The jobs.
    pub fn jobs(&self) -> &[CronJob] {
        &self.jobs
    }

    /// A handle on the trigger's counters, readable while it runs.
    pub fn stats(&self) -> CronStats {
        self.stats.clone()
    }

    /// Fires the jobs through `dispatcher` until `shutdown` is cancelled,
    /// then waits for the runs in progress and returns.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownFunction`] when a job names a function the dispatcher's
    /// registry does not hold.
    pub async fn serve(self, dispatcher: Dispatcher, shutdown: CancellationToken) -> Result<()> {
        let registry = dispatcher.registry();
        if let Some(job) = self
            .jobs
            .iter()
            .find(|job| !registry.contains(job.function()))
        {
            return Err(Error::UnknownFunction {
                name: job.function().to_owned(),
                registered: registry.names().join(", "),
            });
        }
        let mut jobs = JoinSet::new();
        for job in self.jobs {
            jobs.spawn(job.run(
                dispatcher.clone(),
                Arc::clone(&self.clock),
                self.stats.clone(),
                shutdown.clone(),
            ));
        }
        while jobs.join_next().await.is_some() {}
        Ok(())
    }
}

#[async_trait]
impl Trigger for CronTrigger {
    fn name(&self) -> &str {
        "cron"
    }

    async fn run(
        self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> faas_core::Result<()> {
        self.serve(dispatcher, shutdown)
            .await
            .map_err(|error| faas_core::Error::trigger("cron", error))
    }
}
