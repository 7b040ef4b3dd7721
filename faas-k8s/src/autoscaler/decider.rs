//! [`Decider`]: from observed load to desired replicas, one function at a time,
//! on a clock the caller supplies.
//!
//! The concurrency half follows Knative's pod autoscaler (KPA): the observed
//! in-flight calls (plus the calls the gateway holds) are averaged over a
//! stable window and over a shorter panic window; each average divided by the
//! target per replica is a replica count. When the panic window asks for at
//! least `panic_threshold` times the ready replicas, the decider panics: it
//! follows the panic window up and never scales in until the panic window has
//! been calm for a whole stable window. The event-source half follows KEDA:
//! each lag source asks for `ceil(pending / target_pending)` replicas and for
//! at least one while it is active. The function gets the larger of the two,
//! within its bounds, and goes to zero only after its grace period with no
//! traffic and no pending work.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use faas_core::trigger::Lag;

use super::policy::ScalingPolicy;

/// What the decider sees at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observation {
    /// Calls running in the function's replicas now.
    pub in_flight: u64,
    /// Calls the gateway holds because no replica is ready.
    pub held: u64,
    /// The lag of each event source of the function.
    pub lags: Vec<Lag>,
    /// Replicas ready to serve now.
    pub ready_replicas: u32,
    /// Replicas the target asks for now (its `spec.replicas`), when known.
    pub desired_replicas: Option<u32>,
}

impl Observation {
    /// An observation of `in_flight` calls on `ready_replicas` replicas, nothing held, no lag.
    pub fn new(in_flight: u64, ready_replicas: u32) -> Self {
        Observation {
            in_flight,
            held: 0,
            lags: Vec::new(),
            ready_replicas,
            desired_replicas: None,
        }
    }

    /// Sets the replicas the target asks for now: a function deployed with
    /// replicas that are not ready yet gets its grace period too.
    #[must_use]
    pub fn with_desired(mut self, desired: u32) -> Self {
        self.desired_replicas = Some(desired);
        self
    }

    /// Sets the held calls.
    #[must_use]
    pub fn with_held(mut self, held: u64) -> Self {
        self.held = held;
        self
    }

    /// Adds the lag of one event source.
    #[must_use]
    pub fn with_lag(mut self, lag: Lag) -> Self {
        self.lags.push(lag);
        self
    }
}

/// Why a [`Decision`] chose its replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecisionReason {
    /// Waking from zero: a call is held or an event source became active.
    Activation,
    /// The stable window's concurrency.
    Stable,
    /// Panic mode: the panic window's concurrency, never scaling in.
    Panic,
    /// The event sources' pending work asks for more than concurrency does.
    Lag,
    /// Idle, but kept at one replica until the grace period ends.
    GracePeriod,
    /// Idle past the grace period: to zero.
    ScaleToZero,
    /// Idle at zero, nothing to wake for.
    Idle,
    /// Raised to the policy's minimum.
    Minimum,
    /// Capped at the policy's maximum.
    Maximum,
}

impl DecisionReason {
    /// The `snake_case` name used in metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionReason::Activation => "activation",
            DecisionReason::Stable => "stable",
            DecisionReason::Panic => "panic",
            DecisionReason::Lag => "lag",
            DecisionReason::GracePeriod => "grace_period",
            DecisionReason::ScaleToZero => "scale_to_zero",
            DecisionReason::Idle => "idle",
            DecisionReason::Minimum => "minimum",
            DecisionReason::Maximum => "maximum",
        }
    }
}

impl fmt::Display for DecisionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The replicas a function should have, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Desired replicas.
    pub replicas: u32,
    /// What decided it.
    pub reason: DecisionReason,
    /// Whether the decider is in panic mode.
    pub panicking: bool,
}

/// The autoscaling decision of one function: pure, with the clock passed in.
///
/// Call [`decide`](Self::decide) at a steady pace (the autoscaler does, every
/// tick, and at once when a call is held at zero); each call records the
/// observation as one sample of the windows and returns the decision.
///
/// ```
/// use std::time::{Duration, Instant};
/// use faas_k8s::autoscaler::{Decider, DecisionReason, Observation, ScalingPolicy};
///
/// let policy = ScalingPolicy::builder().target_concurrency(2.0).build()?;
/// let mut decider = Decider::new(policy);
/// let start = Instant::now();
///
/// // A call held while the function is at zero wakes it at once.
/// let wake = decider.decide(start, &Observation::new(0, 0).with_held(1));
/// assert_eq!((wake.replicas, wake.reason), (1, DecisionReason::Activation));
///
/// // Eight calls in flight on one replica a second later: the panic window
/// // averages 4.5 calls, twice the target or more per ready replica: panic,
/// // three replicas at once.
/// let burst = decider.decide(start + Duration::from_secs(1), &Observation::new(8, 1));
/// assert_eq!((burst.replicas, burst.reason), (3, DecisionReason::Panic));
/// # Ok::<(), faas_k8s::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decider {
    policy: ScalingPolicy,
    /// (when, concurrency) samples within the stable window, oldest first.
    samples: VecDeque<(Instant, f64)>,
    /// The last moment with traffic or pending work (or the first with a ready replica).
    last_active: Option<Instant>,
    /// When panic mode was last entered or extended.
    panic_since: Option<Instant>,
    /// The most replicas decided during the current panic.
    panic_replicas: u32,
}

impl Decider {
    /// A decider with no history.
    pub fn new(policy: ScalingPolicy) -> Self {
        Decider {
            policy,
            samples: VecDeque::new(),
            last_active: None,
            panic_since: None,
            panic_replicas: 0,
        }
    }

    /// The policy it decides by.
    pub fn policy(&self) -> &ScalingPolicy {
        &self.policy
    }

    /// Replaces the policy, keeping the history (a Function's scaling was edited).
    pub fn set_policy(&mut self, policy: ScalingPolicy) {
        self.policy = policy;
    }

    /// Whether the decider is in panic mode.
    pub fn is_panicking(&self) -> bool {
        self.panic_since.is_some()
    }

    /// Records `observation` as the sample at `now` and decides.
    ///
    /// `now` must not go backwards between calls; a sample older than the
    /// last one is taken as happening at the last one's time.
    pub fn decide(&mut self, now: Instant, observation: &Observation) -> Decision {
        let now = self
            .samples
            .back()
            .map_or(now, |(last, _)| (*last).max(now));
        let concurrency = (observation.in_flight + observation.held) as f64;
        self.samples.push_back((now, concurrency));
        let stable_window = self.policy.stable_window();
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= stable_window)
        {
            self.samples.pop_front();
        }

        let lag_active = observation.lags.iter().any(|lag| lag.active);
        // Replicas asked for and not ready yet are starting: the grace period
        // counts from when they are ready, not from when they were asked for.
        let starting =
            observation.ready_replicas == 0 && observation.desired_replicas.unwrap_or(0) > 0;
        if concurrency > 0.0 || lag_active || starting {
            self.last_active = Some(now);
        } else if self.last_active.is_none()
            && (observation.ready_replicas > 0 || observation.desired_replicas.unwrap_or(0) > 0)
        {
            // Replicas that were there (or asked for) before any traffic get a full grace period.
            self.last_active = Some(now);
        }

        let target = self.policy.target_concurrency();
        let ready = observation.ready_replicas;
        let stable = replicas_for(self.average(now, stable_window), target);
        let panic_wanted = replicas_for(self.average(now, self.policy.panic_window()), target);

        // Panic: enter (or extend) when the panic window wants far more than is ready.
        if ready > 0 && f64::from(panic_wanted) >= self.policy.panic_threshold() * f64::from(ready)
        {
            if self.panic_since.is_none() {
                self.panic_replicas = ready;
            }
            self.panic_since = Some(now);
        } else if self
            .panic_since
            .is_some_and(|since| now.saturating_duration_since(since) >= stable_window)
        {
            self.panic_since = None;
            self.panic_replicas = 0;
        }

        let idle_for = self.last_active.map(|at| now.saturating_duration_since(at));
        let (mut replicas, mut reason) = if concurrency == 0.0
            && !lag_active
            && idle_for.is_none_or(|idle| idle >= self.policy.scale_to_zero_grace())
        {
            // No traffic and no pending work for the whole grace period.
            self.samples.clear();
            self.panic_since = None;
            self.panic_replicas = 0;
            let reason = if ready > 0 {
                DecisionReason::ScaleToZero
            } else {
                DecisionReason::Idle
            };
            (0, reason)
        } else {
            let (mut replicas, mut reason) = if self.panic_since.is_some() {
                self.panic_replicas = self.panic_replicas.max(panic_wanted);
                (self.panic_replicas, DecisionReason::Panic)
            } else {
                // Scale in by at most `max_scale_down_rate` per decision.
                let floor = (f64::from(ready) / self.policy.max_scale_down_rate()).floor() as u32;
                (stable.max(floor), DecisionReason::Stable)
            };
            let lag_wanted = observation
                .lags
                .iter()
                .map(|lag| {
                    let wanted = replicas_for(lag.pending as f64, self.policy.target_pending());
                    if lag.active { wanted.max(1) } else { wanted }
                })
                .max()
                .unwrap_or(0);
            if lag_wanted > replicas {
                replicas = lag_wanted;
                reason = DecisionReason::Lag;
            }
            if replicas == 0 {
                // Idle, but within the grace period: keep one replica warm.
                (1, DecisionReason::GracePeriod)
            } else if ready == 0 {
                (replicas, DecisionReason::Activation)
            } else {
                (replicas, reason)
            }
        };

        if replicas < self.policy.min_replicas() {
            replicas = self.policy.min_replicas();
            reason = DecisionReason::Minimum;
        } else if replicas > self.policy.max_replicas() {
            replicas = self.policy.max_replicas();
            reason = DecisionReason::Maximum;
        }
        Decision {
            replicas,
            reason,
            panicking: self.panic_since.is_some(),
        }
    }

    /// The mean concurrency of the samples within `window` before `now`.
    fn average(&self, now: Instant, window: Duration) -> f64 {
        let (sum, count) = self
            .samples
            .iter()
            .rev()
            .take_while(|(at, _)| now.saturating_duration_since(*at) < window)
            .fold((0.0, 0u32), |(sum, count), (_, value)| {
                (sum + value, count + 1)
            });
        if count == 0 {
            0.0
        } else {
            sum / f64::from(count)
        }
    }
}

/// `ceil(load / target)`, saturating.
fn replicas_for(load: f64, target: f64) -> u32 {
    let wanted = (load / target).ceil();
    if wanted >= f64::from(u32::MAX) {
        u32::MAX
    } else if wanted > 0.0 {
        wanted as u32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn policy() -> ScalingPolicy {
        ScalingPolicy::builder()
            .target_concurrency(10.0)
            .max_replicas(20)
            .scale_to_zero_grace(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// Drives a decider one virtual second per observation.
    struct Run {
        decider: Decider,
        now: Instant,
        ready: u32,
    }

    impl Run {
        fn new(policy: ScalingPolicy, ready: u32) -> Self {
            Run {
                decider: Decider::new(policy),
                now: Instant::now(),
                ready,
            }
        }

        /// One tick with `in_flight` calls; the replicas follow the decision at once.
        fn tick(&mut self, observation: Observation) -> Decision {
            self.now += SECOND;
            let observation = Observation {
                ready_replicas: self.ready,
                ..observation
            };
            let decision = self.decider.decide(self.now, &observation);
            self.ready = decision.replicas;
            decision
        }

        fn ticks(&mut self, seconds: u32, in_flight: u64) -> Decision {
            let mut last = None;
            for _ in 0..seconds {
                last = Some(self.tick(Observation::new(in_flight, 0)));
            }
            last.expect("at least one tick")
        }
    }

    #[test]
    fn steady_load_settles_on_load_over_target() {
        let mut run = Run::new(policy(), 1);
        let decision = run.ticks(120, 35);
        assert_eq!(decision.replicas, 4);
        assert_eq!(decision.reason, DecisionReason::Stable);
    }

    #[test]
    fn a_burst_panics_and_scales_out_within_one_tick() {
        let mut run = Run::new(policy(), 1);
        run.ticks(60, 5);
        assert_eq!(run.ready, 1);
        // Five times the target arrives: the panic window sees it on the next tick.
        let decision = run.tick(Observation::new(50, 0));
        assert!(decision.panicking);
        assert_eq!(decision.reason, DecisionReason::Panic);
        assert!(decision.replicas >= 2, "{decision:?}");
        let decision = run.ticks(6, 50);
        assert_eq!(decision.replicas, 5);
    }

    #[test]
    fn panic_never_scales_in_until_calm_for_a_stable_window() {
        let patient = ScalingPolicy::builder()
            .target_concurrency(10.0)
            .scale_to_zero_grace(Duration::from_secs(300))
            .build()
            .unwrap();
        let mut run = Run::new(patient, 1);
        run.ticks(10, 80);
        assert_eq!(run.ready, 8);
        assert!(run.decider.is_panicking());
        // The load falls away; panic holds the replicas.
        let held = run.ticks(30, 0);
        assert_eq!(held.replicas, 8);
        assert_eq!(held.reason, DecisionReason::Panic);
        // A stable window after the last panic sample, the decider scales in again,
        // at most halving per decision.
        let mut seen = vec![];
        for _ in 0..40 {
            let d = run.tick(Observation::new(0, 0));
            if seen.last() != Some(&d.replicas) {
                seen.push(d.replicas);
            }
        }
        assert!(!run.decider.is_panicking());
        assert_eq!(seen.first(), Some(&8));
        for pair in seen.windows(2) {
            assert!(pair[1] * 2 >= pair[0], "halves at most: {seen:?}");
        }
        assert_eq!(run.ready, 1, "kept at one replica during the grace period");
        assert_eq!(
            run.tick(Observation::new(0, 0)).reason,
            DecisionReason::GracePeriod
        );
    }

    #[test]
    fn idle_function_scales_to_zero_only_after_the_grace_period() {
        let mut run = Run::new(policy(), 1);
        run.ticks(5, 3);
        let during = run.ticks(29, 0);
        assert_eq!(during.replicas, 1);
        let after = run.ticks(1, 0);
        assert_eq!(
            (after.replicas, after.reason),
            (0, DecisionReason::ScaleToZero)
        );
        let idle = run.ticks(5, 0);
        assert_eq!((idle.replicas, idle.reason), (0, DecisionReason::Idle));
    }

    #[test]
    fn a_fresh_replica_gets_a_full_grace_period() {
        let mut run = Run::new(policy(), 1);
        assert_eq!(run.ticks(29, 0).replicas, 1);
        assert_eq!(run.ticks(2, 0).replicas, 0);
    }

    #[test]
    fn a_new_deployment_not_ready_yet_is_not_scaled_to_zero() {
        let mut decider = Decider::new(policy());
        let start = Instant::now();
        let starting = Observation::new(0, 0).with_desired(1);
        let first = decider.decide(start, &starting);
        assert_eq!(
            (first.replicas, first.reason),
            (1, DecisionReason::GracePeriod)
        );
        // Slow to start: kept while its replica is not ready.
        let slow = decider.decide(start + Duration::from_secs(100), &starting);
        assert_eq!(slow.replicas, 1);
        // Ready at last: the grace period starts now.
        let ready = Observation::new(0, 1).with_desired(1);
        let at = start + Duration::from_secs(100);
        assert_eq!(
            decider
                .decide(at + Duration::from_secs(29), &ready)
                .replicas,
            1
        );
        assert_eq!(
            decider
                .decide(at + Duration::from_secs(30), &ready)
                .replicas,
            0
        );
    }

    #[test]
    fn a_held_call_wakes_from_zero_on_the_first_observation() {
        let mut run = Run::new(policy(), 0);
        assert_eq!(run.ticks(3, 0).reason, DecisionReason::Idle);
        let wake = run.tick(Observation::new(0, 0).with_held(1));
        assert_eq!(
            (wake.replicas, wake.reason),
            (1, DecisionReason::Activation)
        );
        // Many held calls ask for their share at once.
        let mut run = Run::new(policy(), 0);
        let wake = run.tick(Observation::new(0, 0).with_held(45));
        assert_eq!(wake.replicas, 5);
        assert_eq!(wake.reason, DecisionReason::Activation);
    }

    #[test]
    fn pending_messages_wake_and_scale_by_lag() {
        let mut run = Run::new(policy(), 0);
        let wake = run.tick(Observation::new(0, 0).with_lag(Lag::pending(1)));
        assert_eq!(
            (wake.replicas, wake.reason),
            (1, DecisionReason::Activation)
        );
        let lagging = run.tick(
            Observation::new(0, 0)
                .with_lag(Lag::pending(15))
                .with_lag(Lag::pending(62)),
        );
        assert_eq!((lagging.replicas, lagging.reason), (7, DecisionReason::Lag));
        // Active with an unknown count still keeps one replica, past the grace period.
        let mut estimate = Lag::IDLE;
        estimate.active = true;
        let mut run = Run::new(policy(), 1);
        for _ in 0..100 {
            assert_eq!(
                run.tick(Observation::new(0, 0).with_lag(estimate)).replicas,
                1
            );
        }
        // Lag gone: the grace period starts from the last pending message.
        assert_eq!(run.ticks(29, 0).replicas, 1);
        assert_eq!(run.ticks(2, 0).replicas, 0);
    }

    #[test]
    fn bounds_clamp_with_their_reason() {
        let bounded = ScalingPolicy::builder()
            .target_concurrency(1.0)
            .min_replicas(2)
            .max_replicas(3)
            .build()
            .unwrap();
        let mut run = Run::new(bounded, 2);
        let idle = run.ticks(100, 0);
        assert_eq!((idle.replicas, idle.reason), (2, DecisionReason::Minimum));
        let busy = run.ticks(10, 50);
        assert_eq!((busy.replicas, busy.reason), (3, DecisionReason::Maximum));
    }

    #[test]
    fn time_going_backwards_counts_as_no_time() {
        let mut decider = Decider::new(policy());
        let now = Instant::now() + Duration::from_secs(100);
        decider.decide(now, &Observation::new(10, 1));
        let earlier = decider.decide(now - Duration::from_secs(50), &Observation::new(10, 1));
        assert_eq!(earlier.replicas, 1);
    }

    #[test]
    fn replicas_for_rounds_up_and_saturates() {
        assert_eq!(replicas_for(0.0, 10.0), 0);
        assert_eq!(replicas_for(0.1, 10.0), 1);
        assert_eq!(replicas_for(20.0, 10.0), 2);
        assert_eq!(replicas_for(f64::MAX, 0.5), u32::MAX);
    }
}
