//! The builder: every setting of a breaker, checked once when it is built.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::CircuitBreaker;
use crate::clock::{Clock, ClockReader};
use crate::core::{Core, ErrorRule, Hooks, OptionalU64, Settings};
use crate::error::ConfigError;
use crate::events::{ErrorCallback, Event, Listener};
use crate::half_open::HalfOpen;
use crate::open_period::{Backoff, FreezeFuture, OpenPeriod, TripContext};
use crate::policy::{ConsecutiveFailures, FailureRate, RatePolicy, SlowCallRate, TripPolicy};
use crate::shared::SharedState;

mod preset;

pub use preset::Preset;

/// How long an async freeze may last at most, unless told otherwise.
pub const DEFAULT_MAX_FREEZE: Duration = Duration::from_secs(300);

/// Builds a [`CircuitBreaker`].
///
/// # Presets
///
/// A builder starts from a [`Preset`], chosen when it is made and never
/// inferred afterwards: [`CircuitBreaker::builder`] (and [`Builder::new`])
/// is the seed's breaker, [`CircuitBreaker::standard`] the closed / open /
/// half-open breaker users of Resilience4j, Polly and gobreaker expect, and
/// [`Builder::from_preset`] any preset. [`Preset`] has the table of every
/// default. **Each setter changes only its own setting**: setting the seed's
/// own values, or any other setting, never switches presets.
///
/// The seed preset, exactly:
///
/// ```text
/// trip policy        one failure (ConsecutiveFailures 1), when no policy is set
/// open period        5 seconds (freeze_for / freeze_with)
/// while open         calls wait; no maximum wait, no cap on waiters
/// after the freeze   everybody is let through and the breaker closes (HalfOpen::release_all)
/// failed call        waits out the freeze, then runs once more (retry_after_freeze = true)
/// accounting         the retry and calls released from a freeze are not counted (seed_accounting = true)
/// on_error           a tracing DEBUG event with the error
/// clock              TokioClock (StdClock without the `tokio` feature)
/// ```
///
/// # One open period
///
/// How long the breaker stays open is one setting, with five ways to set
/// it: a fixed duration ([`open_for`](Self::open_for), or the seed's name
/// [`freeze_for`](Self::freeze_for)), an async freeze function
/// ([`freeze_with`](Self::freeze_with), [`freeze_with_context`](Self::freeze_with_context)),
/// a duration computed from the trip ([`open_for_fn`](Self::open_for_fn)),
/// or growing periods ([`backoff`](Self::backoff)). The last one set wins.
///
/// # Checking
///
/// [`try_build`](Self::try_build) checks every setting and returns a
/// [`ConfigError`] naming the first invalid one, the value and what is
/// allowed. Use it whenever a threshold, window, half-open rule or backoff
/// comes from outside the code. [`build`](Self::build) never fails and
/// never panics: settings that cannot be invalid (the seed's) are built as
/// they are; an invalid value is clamped into its range and logged at ERROR
/// with the same message `try_build` would return.
///
/// ```
/// use std::time::Duration;
/// use tripswitch::{CircuitBreaker, HalfOpen};
/// use tripswitch::policy::{FailureRate, Window};
///
/// // The seed's breaker with a 10 second freeze.
/// let seed = CircuitBreaker::builder().freeze_for(Duration::from_secs(10)).build();
///
/// // A Resilience4j-style breaker.
/// let rate = CircuitBreaker::standard()
///     .name("payments")
///     .failure_rate(FailureRate::new(0.5, Window::last_calls(100)).min_calls(20))
///     .half_open(HalfOpen::probes(3))
///     .open_for(Duration::from_secs(30))
///     .try_build()?;
/// # drop((seed, rate));
/// # Ok::<(), tripswitch::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until it is built"]
pub struct Builder {
    preset: Preset,
    name: Option<Arc<str>>,
    clock: Option<Arc<dyn Clock>>,
    /// The one open-period setting (see "One open period" above).
    open_period: OpenPeriod,
    on_error: Option<ErrorCallback>,
    listeners: Vec<Listener>,
    #[cfg(feature = "metrics")]
    export_metrics: bool,
    /// Used when no trip policy is set (the preset's).
    default_policy: preset::DefaultPolicy,
    consecutive: Option<u32>,
    failure_rates: Vec<FailureRate>,
    slow_rates: Vec<SlowCallRate>,
    custom: Vec<Box<dyn TripPolicy>>,
    slow_after: Option<Duration>,
    half_open: HalfOpen,
    fail_fast: bool,
    max_wait: Option<Duration>,
    max_waiters: Option<usize>,
    max_freeze: Duration,
    eager_transitions: bool,
    retry_after_freeze: bool,
    seed_accounting: bool,
    error_rules: Vec<ErrorRule>,
    shared: Option<Arc<dyn SharedState>>,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// The seed preset ([`Preset::Seed`]).
    pub fn new() -> Self {
        Self::from_preset(Preset::Seed)
    }

    /// Starts from `preset`: every setting not set afterwards has the
    /// preset's default (see the table in [`Preset`]).
    pub fn from_preset(preset: Preset) -> Self {
        let defaults = preset.defaults();
        Builder {
            preset,
            name: None,
            clock: None,
            open_period: OpenPeriod::Fixed(defaults.open_for),
            on_error: None,
            listeners: Vec::new(),
            #[cfg(feature = "metrics")]
            export_metrics: false,
            default_policy: defaults.policy,
            consecutive: None,
            failure_rates: Vec::new(),
            slow_rates: Vec::new(),
            custom: Vec::new(),
            slow_after: None,
            half_open: defaults.half_open,
            fail_fast: defaults.fail_fast,
            max_wait: None,
            max_waiters: None,
            max_freeze: DEFAULT_MAX_FREEZE,
            eager_transitions: false,
            retry_after_freeze: defaults.retry_after_freeze,
            seed_accounting: defaults.seed_accounting,
            error_rules: Vec::new(),
            shared: None,
        }
    }

    /// The preset this builder started from.
    pub fn preset(&self) -> Preset {
        self.preset
    }

    /// Builds the breaker. It never fails and never panics: an invalid
    /// setting is clamped into its range and logged at ERROR, with the
    /// message [`try_build`](Self::try_build) would have returned.
    pub fn build(self) -> CircuitBreaker {
        if let Err(error) = self.check() {
            crate::events::trace(|| {
                tracing::error!(
                    breaker = self.name.as_deref().unwrap_or(""),
                    setting = error.setting(),
                    "{error}; built with the value clamped into range (use try_build to refuse it)"
                )
            });
        }
        self.finish()
    }
    /// Names the breaker; the name appears in events, rejections and logs.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The clock the breaker reads and sleeps on (default: `clock::TokioClock` with the `tokio` feature, else [`StdClock`](crate::clock::StdClock)).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Stay open for `duration` after tripping (the open period: see
    /// [One open period](Self#one-open-period)). Every preset's default is 5 seconds.
    pub fn open_for(mut self, duration: Duration) -> Self {
        self.open_period = OpenPeriod::Fixed(duration);
        self
    }

    /// Stay open (frozen) for `duration` after tripping: the seed's name for
    /// [`open_for`](Self::open_for). The seed's default is 5 seconds.
    pub fn freeze_for(self, duration: Duration) -> Self {
        self.open_for(duration)
    }

    /// Stay open until the future made by `freeze` completes: the seed's async
    /// freeze function. `freeze` is called once per open period.
    ///
    /// **What drives the future.** `freeze` is called when the breaker trips,
    /// on the thread of the call that tripped it, and its future is polled
    /// at once. After that it is polled by the calls waiting on the breaker
    /// (the oldest first, each on its own task), and by `try_acquire`,
    /// `state()`, `is_frozen()` and `metrics()`; no task is spawned for it.
    /// So the future must not depend on one particular runtime being run: a
    /// `tokio::time::sleep` belongs to the runtime it was made on, and does
    /// not fire while that runtime is idle or gone. For a plain duration
    /// prefer [`freeze_for`](Self::freeze_for), which every waiter times on
    /// its own runtime.
    ///
    /// **Bounded.** Whatever the future does, the open period ends at the
    /// latest [`max_freeze`](Self::max_freeze) after it started
    /// ([`DEFAULT_MAX_FREEZE`], 5 minutes, unless set), with a warning.
    /// If `freeze` or its future panics, the open period ends there (the seed
    /// would stay frozen forever); the panic is logged, not propagated.
    ///
    /// ```
    /// use std::time::Duration;
    /// let breaker = tripswitch::CircuitBreaker::builder()
    ///     .freeze_with(|| tokio::time::sleep(Duration::from_secs(10)))
    ///     .build();
    /// # drop(breaker);
    /// ```
    pub fn freeze_with<F, Fut>(self, freeze: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.set_freeze(move |_: &TripContext<'_>| Box::pin(freeze()) as FreezeFuture)
    }

    /// Like [`freeze_with`](Self::freeze_with), with the context of the trip
    /// (the error that tripped the breaker, the number of consecutive openings).
    pub fn freeze_with_context<F, Fut>(self, freeze: F) -> Self
    where
        F: Fn(&TripContext<'_>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.set_freeze(move |context: &TripContext<'_>| Box::pin(freeze(context)) as FreezeFuture)
    }

    /// Ends timed periods on time: an open period set by
    /// [`open_for`](Self::open_for), [`backoff`](Self::backoff) or
    /// [`open_for_fn`](Self::open_for_fn), and a half-open state's
    /// [maximum duration](HalfOpen::max_duration), move the breaker on (and
    /// raise their transition events) when they end, even if no call or read
    /// comes to look (Resilience4j's
    /// `automaticTransitionFromOpenToHalfOpenEnabled`). Without it, a
    /// transition out of a period is made by the next call or read, and
    /// stamped with the period's end all the same.
    ///
    /// Nothing is spawned: the period's one alarm, a sleep on the breaker's
    /// [clock](Self::clock) (tokio's timer where the transition is made in
    /// a runtime, tripswitch's timer thread otherwise), makes the
    /// transition when it rings, one per period whatever the number of
    /// calls. The transition's listeners then run where the alarm rings (in
    /// tokio's timer, or on that thread): keep them short, as always. An
    /// async freeze function ends when its future does; waiting calls drive
    /// it, as without this setting.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// use std::time::Duration;
    /// use tripswitch::{CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::standard()
    ///     .consecutive_failures(1)
    ///     .open_for(Duration::from_secs(5))
    ///     .eager_transitions()
    ///     .on_event(|event| println!("{:?} at {:?}", event.kind(), event.at()))
    ///     .build();
    /// let _ = breaker.execute(|| async { Err::<(), _>("down") }).await;
    /// tokio::time::sleep(Duration::from_secs(5)).await;
    /// // The listener printed the move to half-open at 5 s, unasked.
    /// # assert_eq!(breaker.state(), State::HalfOpen);
    /// # }
    /// ```
    pub fn eager_transitions(mut self) -> Self {
        self.eager_transitions = true;
        self
    }

    /// The longest an async freeze ([`freeze_with`](Self::freeze_with),
    /// [`freeze_with_context`](Self::freeze_with_context)) may last: past
    /// it the open period ends even if the freeze's future has not finished
    /// (or is never polled again). Default [`DEFAULT_MAX_FREEZE`] (5
    /// minutes). Timed open periods are not affected.
    pub fn max_freeze(mut self, max: Duration) -> Self {
        self.max_freeze = max;
        self
    }

    fn set_freeze(
        mut self,
        freeze: impl Fn(&TripContext<'_>) -> FreezeFuture + Send + Sync + 'static,
    ) -> Self {
        self.open_period = OpenPeriod::Freeze(Arc::new(freeze));
        self
    }

    /// Stay open for a duration computed from the trip's context, e.g. from a
    /// `Retry-After` the failing service sent (see [`TripContext::error`]).
    pub fn open_for_fn(
        mut self,
        duration: impl Fn(&TripContext<'_>) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.open_period = OpenPeriod::Computed(Arc::new(duration));
        self
    }

    /// Stay open for exponentially growing periods while probes keep failing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripswitch::{Backoff, CircuitBreaker};
    ///
    /// // 1 s, 2 s, 4 s, ... up to a minute, each spread by up to ±20%.
    /// let breaker = CircuitBreaker::builder()
    ///     .backoff(Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60)).jitter(0.2))
    ///     .try_build()?;
    /// # drop(breaker);
    /// # Ok::<(), tripswitch::ConfigError>(())
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.open_period = OpenPeriod::Backoff(Box::new(backoff));
        self
    }

    /// Called with the error of each failing call: the seed's `on_error`.
    /// Replaces the default, which logs a `tracing` DEBUG event with the error.
    ///
    /// With [`seed_accounting`](Self::seed_accounting) (the seed preset's
    /// default) it is called once per call that fails while counted, and not
    /// for the retry or for calls released from a freeze. A
    /// panic in it is contained and logged.
    ///
    /// ```
    /// let breaker = tripswitch::CircuitBreaker::builder()
    ///     .on_error(|e| eprintln!("{e:?}"))
    ///     .build();
    /// # drop(breaker);
    /// ```
    pub fn on_error(mut self, callback: impl Fn(&dyn fmt::Debug) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(callback));
        self
    }

    /// Adds a listener for every [`Event`] (transitions, successes, failures,
    /// ignored errors, slow calls, rejections).
    ///
    /// ```
    /// use tripswitch::CircuitBreaker;
    /// use tripswitch::events::EventKind;
    ///
    /// let breaker = CircuitBreaker::builder()
    ///     .name("inventory")
    ///     .on_event(|event| {
    ///         if let EventKind::Transition { from, to, reason } = event.kind() {
    ///             println!("{:?}: {from} -> {to} ({reason:?})", event.breaker());
    ///         }
    ///     })
    ///     .build();
    /// # drop(breaker);
    /// ```
    pub fn on_event(mut self, listener: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Plugs the breaker into a store that shares its state with other
    /// processes (a fleet of replicas): the store is told of every
    /// transition, and steers the breaker through a
    /// [`SharedControl`](crate::shared::SharedControl). Calls never wait on
    /// the store; see the [`shared`](crate::shared) module. Stores such as
    /// `tripswitch-redis` set this for you.
    ///
    pub fn shared_state(mut self, store: Arc<dyn SharedState>) -> Self {
        self.shared = Some(store);
        self
    }

    /// Export the breaker's activity through the [`metrics`](https://docs.rs/metrics)
    /// crate (feature `metrics`), labelled `breaker = <name>`:
    ///
    /// | name | kind | labels | what |
    /// |---|---|---|---|
    /// | `tripswitch_calls_total` | counter | `outcome` = `success`, `failure`, `ignored`, `rejected` | calls by outcome |
    /// | `tripswitch_slow_calls_total` | counter | | calls slower than the slow-call threshold |
    /// | `tripswitch_transitions_total` | counter | `to` = the state entered | state changes |
    /// | `tripswitch_state` | gauge | `state` = `closed`, `open`, `half_open`, `forced_open`, `disabled`, `metrics_only` | 1 for the current state, 0 for the others |
    /// | `tripswitch_wait_seconds` | histogram | | how long calls waited for the breaker (wait mode only) |
    ///
    /// Every series is labelled `breaker` with the breaker's name as it is
    /// built (wherever `name` is called on the builder; in a
    /// [`Registry`](crate::Registry), its key unless the factory names it);
    /// an unnamed breaker is `unnamed-N`. Only the series the breaker's
    /// configuration can move are exported: `outcome="ignored"` with
    /// [`ignore_errors`](Self::ignore_errors), the slow-call counter with a
    /// slow-call threshold, `half_open` when it probes, the histogram in
    /// wait mode; manual states when first entered. Two live breakers with
    /// one name share its series, with a WARN (see
    /// [the guide](crate::guide#metrics-series-by-series)).
    ///
    /// The metric handles are made on the first event, from the recorder
    /// installed then: install the recorder before traffic starts.
    #[cfg(feature = "metrics")]
    pub fn export_metrics(mut self) -> Self {
        self.export_metrics = true;
        self
    }

    /// Trip after `n` failures in a row (n = 1 is the seed); `n` must be at
    /// least 1.
    ///
    /// ```
    /// let breaker = tripswitch::CircuitBreaker::builder()
    ///     .consecutive_failures(5)
    ///     .try_build()?;
    /// # drop(breaker);
    /// # Ok::<(), tripswitch::ConfigError>(())
    /// ```
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive = Some(n);
        self
    }

    /// Trip when the failure rate over a sliding window reaches a threshold.
    pub fn failure_rate(mut self, policy: FailureRate) -> Self {
        self.failure_rates.push(policy);
        self
    }

    /// Trip when the slow-call rate over a sliding window reaches a threshold.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripswitch::policy::{SlowCallRate, Window};
    ///
    /// // Open when 80% of the last 50 calls took longer than 200 ms.
    /// let breaker = tripswitch::CircuitBreaker::builder()
    ///     .slow_call_rate(SlowCallRate::new(Duration::from_millis(200), 0.8, Window::last_calls(50)))
    ///     .try_build()?;
    /// # drop(breaker);
    /// # Ok::<(), tripswitch::ConfigError>(())
    /// ```
    pub fn slow_call_rate(mut self, policy: SlowCallRate) -> Self {
        self.slow_rates.push(policy);
        self
    }

    /// Trip when your own policy says so.
    pub fn trip_policy(mut self, policy: impl TripPolicy) -> Self {
        self.custom.push(Box::new(policy));
        self
    }

    /// Measure calls and report those slower than `threshold` as slow calls
    /// (events and metrics), without a slow-call trip policy.
    pub fn slow_call_threshold(mut self, threshold: Duration) -> Self {
        self.slow_after = Some(threshold);
        self
    }

    /// How the breaker tests the service after an open period.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripswitch::HalfOpen;
    ///
    /// // Three probes at a time; close after five successes; reopen if
    /// // probing takes longer than ten seconds.
    /// let breaker = tripswitch::CircuitBreaker::builder()
    ///     .half_open(HalfOpen::probes(3).close_after(5).max_duration(Duration::from_secs(10)))
    ///     .try_build()?;
    /// # drop(breaker);
    /// # Ok::<(), tripswitch::ConfigError>(())
    /// ```
    pub fn half_open(mut self, half_open: HalfOpen) -> Self {
        self.half_open = half_open;
        self
    }

    /// Reject calls at once while open or while every probe slot is taken,
    /// with [`Error::Rejected`](crate::Error::Rejected), instead of waiting.
    pub fn fail_fast(mut self) -> Self {
        self.fail_fast = true;
        self
    }

    /// Make calls wait while the breaker is open (the default, and the seed's way).
    pub fn wait_when_open(mut self) -> Self {
        self.fail_fast = false;
        self
    }

    /// Reject a waiting call once it has waited `max` (wait mode): it
    /// returns [`Error::Rejected`](crate::Error::Rejected) with
    /// [`RejectReason::WaitTimedOut`](crate::RejectReason::WaitTimedOut).
    ///
    /// ```
    /// use std::time::Duration;
    /// let breaker = tripswitch::CircuitBreaker::builder()
    ///     .max_wait(Duration::from_millis(500))
    ///     .max_waiters(1_000)
    ///     .build();
    /// # drop(breaker);
    /// ```
    pub fn max_wait(mut self, max: Duration) -> Self {
        self.max_wait = Some(max);
        self
    }

    /// Reject new calls at once when `max` calls are already waiting (wait mode).
    pub fn max_waiters(mut self, max: usize) -> Self {
        self.max_waiters = Some(max);
        self
    }

    /// Whether a call that fails and finds the breaker open afterwards waits
    /// out the freeze and runs its operation once more, as the seed does (on
    /// on in the seed preset, off in the standard one; wait mode only).
    pub fn retry_after_freeze(mut self, retry: bool) -> Self {
        self.retry_after_freeze = retry;
        self
    }

    /// Whether the seed's accounting applies: the retry and the calls released
    /// from a freeze are not counted, so they neither trip the breaker nor
    /// reach `on_error` (on in the seed preset, off in the standard one).
    pub fn seed_accounting(mut self, seed: bool) -> Self {
        self.seed_accounting = seed;
        self
    }

    /// Treat errors of type `E` for which `ignore` returns true as neither
    /// success nor failure: they are returned to the caller, reported as
    /// [`Ignored`](crate::events::EventKind::Ignored), and free a half-open slot.
    ///
    /// ```
    /// #[derive(Debug)]
    /// enum DbError { NotFound, Timeout }
    ///
    /// let breaker = tripswitch::CircuitBreaker::builder()
    ///     .ignore_errors(|e: &DbError| matches!(e, DbError::NotFound))
    ///     .build();
    /// # drop(breaker);
    /// ```
    pub fn ignore_errors<E: 'static>(
        mut self,
        ignore: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.error_rules.push(ErrorRule {
            type_id: TypeId::of::<E>(),
            ignore: Arc::new(move |error: &dyn Any| error.downcast_ref::<E>().is_some_and(&ignore)),
        });
        self
    }

    /// Checks every setting and builds the breaker.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first invalid setting.
    ///
    /// ```
    /// use tripswitch::policy::{FailureRate, Window};
    ///
    /// let error = tripswitch::CircuitBreaker::builder()
    ///     .failure_rate(FailureRate::new(1.5, Window::last_calls(100)))
    ///     .try_build()
    ///     .unwrap_err();
    /// assert_eq!(error.setting(), "failure_rate.threshold");
    /// println!("{error}"); // invalid failure_rate.threshold: 1.5 (must be between 0 and 1)
    /// ```
    pub fn try_build(self) -> Result<CircuitBreaker, ConfigError> {
        self.check()?;
        Ok(self.finish())
    }

    /// The first invalid setting, if any.
    fn check(&self) -> Result<(), ConfigError> {
        if let Some(n) = self.consecutive {
            ConsecutiveFailures::new(n)?;
        }
        for policy in &self.failure_rates {
            policy.validate()?;
        }
        for policy in &self.slow_rates {
            policy.validate()?;
        }
        if let OpenPeriod::Backoff(backoff) = &self.open_period {
            backoff.validate()?;
        }
        self.half_open.validate()?;
        if self.half_open.judges_slow_rate()
            && self.slow_after.is_none()
            && self.slow_rates.is_empty()
        {
            return Err(ConfigError::new(
                "half_open.slow_call_rate",
                "set",
                "a slow-call threshold to judge by: set slow_call_threshold or a slow_call_rate policy",
            ));
        }
        Ok(())
    }

    /// Assembles the breaker. Values are clamped into range here (the
    /// windows, probes and thresholds clamp their own): `try_build` refused
    /// invalid ones, and `build` logged them.
    fn finish(mut self) -> CircuitBreaker {
        // In a registry's factory, an unnamed breaker is named by its key.
        self.name = self.name.or_else(crate::key_name::take);
        let mut policies: Vec<Box<dyn TripPolicy>> = Vec::new();
        let no_policy_set = self.consecutive.is_none()
            && self.failure_rates.is_empty()
            && self.slow_rates.is_empty()
            && self.custom.is_empty();
        let consecutive = match (no_policy_set, self.default_policy) {
            (true, preset::DefaultPolicy::Consecutive(n)) => Some(n),
            (true, preset::DefaultPolicy::FailureRate(rate)) => {
                self.failure_rates.push(rate);
                None
            }
            (false, _) => self.consecutive,
        };
        if let Some(n) = consecutive {
            policies.push(Box::new(ConsecutiveFailures::clamped(n)));
        }
        policies.extend(
            self.failure_rates
                .into_iter()
                .map(|p| Box::new(RatePolicy::failures(p)) as Box<dyn TripPolicy>),
        );
        // The breaker's threshold for slow-call events and metrics: the
        // lowest of all; each slow-call rate judges by its own.
        let slow_after = self
            .slow_rates
            .iter()
            .map(|p| p.slow_after)
            .chain(self.slow_after)
            .min();
        policies.extend(
            self.slow_rates
                .into_iter()
                .map(|p| Box::new(RatePolicy::slow(p)) as Box<dyn TripPolicy>),
        );
        policies.extend(self.custom);

        #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
        let mut listeners = self.listeners;
        #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
        let mut own_listeners = 0;
        #[cfg(feature = "metrics")]
        if self.export_metrics {
            // Installed here, once the name and the settings are final,
            // whatever the order of the chain: the exporter makes the series
            // these settings can move.
            let shape = crate::export::Shape {
                name: self.name.clone(),
                waits: !self.fail_fast,
                slow: slow_after.is_some(),
                ignores: !self.error_rules.is_empty(),
                probes: self.half_open.probe_limit().is_some() || self.shared.is_some(),
            };
            // First, and delivered even to events raised inside the
            // breaker's own callbacks: the exported state must follow a
            // `force_open()` from a listener.
            listeners.insert(0, Arc::new(crate::export::listener(shape)));
            own_listeners = 1;
        }
        let settings = Settings {
            clock: self
                .clock
                .map_or_else(ClockReader::of_default, ClockReader::of),
            fail_fast: self.fail_fast,
            max_wait: OptionalU64::of_duration(self.max_wait),
            max_waiters: OptionalU64::of_count(self.max_waiters),
            max_freeze: OptionalU64::of_duration(Some(self.max_freeze)),
            open_period: match self.open_period {
                OpenPeriod::Backoff(backoff) => OpenPeriod::Backoff(Box::new(backoff.clamped())),
                other => other,
            },
            half_open: self.half_open.clamped(),
            retry_after_freeze: self.retry_after_freeze && !self.fail_fast,
            seed_accounting: self.seed_accounting,
            slow_after: OptionalU64::of_duration(slow_after),
            hooks: Hooks {
                error_rules: self.error_rules.into(),
                on_error: self.on_error,
                listeners: listeners.into(),
                own_listeners,
                shared: self.shared,
            }
            .boxed(),
            eager_transitions: self.eager_transitions,
        };
        CircuitBreaker::from_core(Core::new(settings, self.name, policies))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("preset", &self.preset)
            .field("name", &self.name)
            .field("open_period", &self.open_period)
            .field("consecutive_failures", &self.consecutive)
            .field("failure_rates", &self.failure_rates)
            .field("slow_call_rates", &self.slow_rates)
            .field("custom_policies", &self.custom)
            .field("half_open", &self.half_open)
            .field("fail_fast", &self.fail_fast)
            .field("max_wait", &self.max_wait)
            .field("max_waiters", &self.max_waiters)
            .field("retry_after_freeze", &self.retry_after_freeze)
            .field("seed_accounting", &self.seed_accounting)
            .finish_non_exhaustive()
    }
}
