//! The builder: every setting of a breaker, checked once when it is built.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::CircuitBreaker;
use crate::clock::{Clock, default_clock};
use crate::core::{Core, ErrorRule, Settings};
use crate::error::ConfigError;
use crate::events::{ErrorCallback, Event, Listener, log_error};
use crate::half_open::HalfOpen;
use crate::open_period::{Backoff, FreezeFuture, OpenPeriod, TripContext};
use crate::policy::{
    ConsecutiveFailures, FailureRate, Policy, RateState, SlowCallRate, TripPolicy,
};
use crate::shared::SharedState;

/// The seed's default freeze.
const SEED_FREEZE: Duration = Duration::from_secs(5);

/// How long an async freeze may last at most, unless told otherwise.
pub const DEFAULT_MAX_FREEZE: Duration = Duration::from_secs(300);

/// Marks a [`Builder`] whose settings cannot be invalid: it has [`Builder::build`].
#[derive(Debug, Clone, Copy)]
pub struct Valid;

/// Marks a [`Builder`] holding settings that must be checked: build it with [`Builder::try_build`].
#[derive(Debug, Clone, Copy)]
pub struct Unchecked;

/// Builds a [`CircuitBreaker`].
///
/// # Default
///
/// A new builder is the seed's breaker, exactly:
///
/// ```text
/// trip policy        one failure (ConsecutiveFailures 1)
/// open period        5 seconds (freeze_for / freeze_with)
/// while open         calls wait; no maximum wait, no cap on waiters
/// after the freeze   everybody is let through and the breaker closes (HalfOpen::release_all)
/// failed call        waits out the freeze, then runs once more (retry_after_freeze = true)
/// accounting         the retry and calls released from a freeze are not counted (seed_accounting = true)
/// on_error           a tracing DEBUG event with the error
/// clock              TokioClock (StdClock without the `tokio` feature)
/// ```
///
/// The settings the seed has ([`freeze_for`](Self::freeze_for),
/// [`freeze_with`](Self::freeze_with), [`on_error`](Self::on_error)) and the
/// ones that only observe ([`name`](Self::name), [`clock`](Self::clock),
/// [`on_event`](Self::on_event)) keep that preset. **Any other setting
/// leaves the seed preset**, and then three defaults change to what users of
/// Resilience4j, Polly and gobreaker expect: every outcome is counted
/// (including retries and calls released from a freeze), a failed call is
/// not retried after the freeze, and the half-open state lets one probe
/// through at a time ([`HalfOpen::default`]). Each of the three can still be
/// set explicitly.
///
/// Settings that cannot be invalid return a `Builder<Valid>`, which has an
/// infallible [`build`](Self::build). Settings that can be invalid (a rate
/// outside 0..=1, an empty window, ...) turn it into a `Builder<Unchecked>`,
/// which is built with [`try_build`](Self::try_build): it returns a
/// [`ConfigError`] naming the setting, the value and what is allowed.
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
/// let rate = CircuitBreaker::builder()
///     .name("payments")
///     .failure_rate(FailureRate::new(0.5, Window::last_calls(100)).min_calls(20))
///     .half_open(HalfOpen::probes(3))
///     .freeze_for(Duration::from_secs(30))
///     .fail_fast()
///     .try_build()?;
/// # drop((seed, rate));
/// # Ok::<(), tripswitch::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until it is built"]
pub struct Builder<V = Valid> {
    name: Option<Arc<str>>,
    clock: Option<Arc<dyn Clock>>,
    open_period: Option<OpenPeriod>,
    backoff: Option<Backoff>,
    on_error: Option<ErrorCallback>,
    listeners: Vec<Listener>,
    consecutive: Option<u32>,
    failure_rates: Vec<FailureRate>,
    slow_rates: Vec<SlowCallRate>,
    custom: Vec<Box<dyn TripPolicy>>,
    slow_after: Option<Duration>,
    half_open: Option<HalfOpen>,
    fail_fast: bool,
    max_wait: Option<Duration>,
    max_waiters: Option<usize>,
    max_freeze: Option<Duration>,
    retry_after_freeze: Option<bool>,
    seed_accounting: Option<bool>,
    error_rules: Vec<ErrorRule>,
    shared: Option<Arc<dyn SharedState>>,
    #[cfg(feature = "metrics")]
    export_metrics: bool,
    seed_preset: bool,
    checked: PhantomData<V>,
}

impl Default for Builder<Valid> {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder<Valid> {
    /// The seed preset (see [`Builder`]).
    pub fn new() -> Self {
        Builder {
            name: None,
            clock: None,
            open_period: None,
            backoff: None,
            on_error: None,
            listeners: Vec::new(),
            consecutive: None,
            failure_rates: Vec::new(),
            slow_rates: Vec::new(),
            custom: Vec::new(),
            slow_after: None,
            half_open: None,
            fail_fast: false,
            max_wait: None,
            max_waiters: None,
            max_freeze: None,
            retry_after_freeze: None,
            seed_accounting: None,
            error_rules: Vec::new(),
            shared: None,
            #[cfg(feature = "metrics")]
            export_metrics: false,
            seed_preset: true,
            checked: PhantomData,
        }
    }

    /// Builds the breaker. Available while every setting is valid by construction.
    pub fn build(self) -> CircuitBreaker {
        self.finish()
    }
}

impl<V> Builder<V> {
    fn unchecked(self) -> Builder<Unchecked> {
        Builder {
            name: self.name,
            clock: self.clock,
            open_period: self.open_period,
            backoff: self.backoff,
            on_error: self.on_error,
            listeners: self.listeners,
            consecutive: self.consecutive,
            failure_rates: self.failure_rates,
            slow_rates: self.slow_rates,
            custom: self.custom,
            slow_after: self.slow_after,
            half_open: self.half_open,
            fail_fast: self.fail_fast,
            max_wait: self.max_wait,
            max_waiters: self.max_waiters,
            max_freeze: self.max_freeze,
            retry_after_freeze: self.retry_after_freeze,
            seed_accounting: self.seed_accounting,
            error_rules: self.error_rules,
            shared: self.shared,
            #[cfg(feature = "metrics")]
            export_metrics: self.export_metrics,
            seed_preset: false,
            checked: PhantomData,
        }
    }

    fn leave_seed(mut self) -> Self {
        self.seed_preset = false;
        self
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

    /// Stay open (frozen) for `duration` after tripping. The seed's default is 5 seconds.
    pub fn freeze_for(mut self, duration: Duration) -> Self {
        self.open_period = Some(OpenPeriod::Fixed(duration));
        self.backoff = None;
        self
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
            .leave_seed()
    }

    /// The longest an async freeze ([`freeze_with`](Self::freeze_with),
    /// [`freeze_with_context`](Self::freeze_with_context)) may last: past
    /// it the open period ends even if the freeze's future has not finished
    /// (or is never polled again). Default [`DEFAULT_MAX_FREEZE`] (5
    /// minutes). Timed open periods are not affected. Keeps the seed preset.
    pub fn max_freeze(mut self, max: Duration) -> Self {
        self.max_freeze = Some(max);
        self
    }

    fn set_freeze(
        mut self,
        freeze: impl Fn(&TripContext<'_>) -> FreezeFuture + Send + Sync + 'static,
    ) -> Self {
        self.open_period = Some(OpenPeriod::Freeze(Arc::new(freeze)));
        self.backoff = None;
        self
    }

    /// Stay open for a duration computed from the trip's context, e.g. from a
    /// `Retry-After` the failing service sent (see [`TripContext::error`]).
    pub fn open_for_fn(
        mut self,
        duration: impl Fn(&TripContext<'_>) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.open_period = Some(OpenPeriod::Computed(Arc::new(duration)));
        self.backoff = None;
        self.leave_seed()
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
    pub fn backoff(mut self, backoff: Backoff) -> Builder<Unchecked> {
        self.backoff = Some(backoff);
        self.open_period = None;
        self.unchecked()
    }

    /// Called with the error of each failing call: the seed's `on_error`.
    /// Replaces the default, which logs a `tracing` DEBUG event with the error.
    ///
    /// Under the seed preset it is called once per call that fails while
    /// counted, and not for the retry or for calls released from a freeze. A
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
    /// It does not change any other setting (the seed preset stays the seed preset).
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
    pub fn consecutive_failures(mut self, n: u32) -> Builder<Unchecked> {
        self.consecutive = Some(n);
        self.unchecked()
    }

    /// Trip when the failure rate over a sliding window reaches a threshold.
    pub fn failure_rate(mut self, policy: FailureRate) -> Builder<Unchecked> {
        self.failure_rates.push(policy);
        self.unchecked()
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
    pub fn slow_call_rate(mut self, policy: SlowCallRate) -> Builder<Unchecked> {
        self.slow_rates.push(policy);
        self.unchecked()
    }

    /// Trip when your own policy says so.
    pub fn trip_policy(mut self, policy: impl TripPolicy) -> Self {
        self.custom.push(Box::new(policy));
        self.leave_seed()
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
    pub fn half_open(mut self, half_open: HalfOpen) -> Builder<Unchecked> {
        self.half_open = Some(half_open);
        self.unchecked()
    }

    /// Reject calls at once while open or while every probe slot is taken,
    /// with [`Error::Rejected`](crate::Error::Rejected), instead of waiting.
    pub fn fail_fast(mut self) -> Self {
        self.fail_fast = true;
        self.leave_seed()
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
        self.leave_seed()
    }

    /// Reject new calls at once when `max` calls are already waiting (wait mode).
    pub fn max_waiters(mut self, max: usize) -> Self {
        self.max_waiters = Some(max);
        self.leave_seed()
    }

    /// Whether a call that fails and finds the breaker open afterwards waits
    /// out the freeze and runs its operation once more, as the seed does (on
    /// under the seed preset, off otherwise; wait mode only).
    pub fn retry_after_freeze(mut self, retry: bool) -> Self {
        self.retry_after_freeze = Some(retry);
        self
    }

    /// Whether the seed's accounting applies: the retry and the calls released
    /// from a freeze are not counted, so they neither trip the breaker nor
    /// reach `on_error` (on under the seed preset, off otherwise).
    pub fn seed_accounting(mut self, seed: bool) -> Self {
        self.seed_accounting = Some(seed);
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
        self.leave_seed()
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
        if let Some(n) = self.consecutive {
            ConsecutiveFailures::new(n)?;
        }
        for policy in &self.failure_rates {
            policy.validate()?;
        }
        for policy in &self.slow_rates {
            policy.validate()?;
        }
        if let Some(backoff) = &self.backoff {
            backoff.validate()?;
        }
        if let Some(half_open) = &self.half_open {
            half_open.validate()?;
        }
        Ok(self.finish())
    }

    /// Assembles the breaker. Values are clamped into range here rather than
    /// checked: `try_build` checked them, and `build` cannot hold invalid ones.
    fn finish(mut self) -> CircuitBreaker {
        // In a registry's factory, an unnamed breaker is named by its key.
        self.name = self.name.or_else(crate::key_name::take);
        let seed = self.seed_preset;
        let mut policies = Vec::new();
        let consecutive = self.consecutive.or(
            if self.failure_rates.is_empty() && self.slow_rates.is_empty() && self.custom.is_empty()
            {
                Some(1)
            } else {
                None
            },
        );
        if let Some(n) = consecutive {
            policies.push(Policy::Consecutive(crate::policy::consecutive_state(n)));
        }
        policies.extend(
            self.failure_rates
                .into_iter()
                .map(|p| Policy::Rate(RateState::failures(p))),
        );
        let slow_after = self
            .slow_rates
            .first()
            .map(|p| p.slow_after)
            .or(self.slow_after);
        policies.extend(
            self.slow_rates
                .into_iter()
                .map(|p| Policy::Rate(RateState::slow(p))),
        );
        policies.extend(self.custom.into_iter().map(Policy::Custom));

        let open_period = match (self.backoff, self.open_period) {
            (Some(backoff), _) => OpenPeriod::Backoff(backoff),
            (None, Some(period)) => period,
            (None, None) => OpenPeriod::Fixed(SEED_FREEZE),
        };
        let half_open = self.half_open.unwrap_or(if seed {
            HalfOpen::release_all()
        } else {
            HalfOpen::default()
        });
        let on_error = self
            .on_error
            .unwrap_or_else(|| Arc::new(log_error(self.name.as_deref())));
        #[cfg(feature = "metrics")]
        if self.export_metrics {
            let shape = crate::export::Shape {
                name: self.name.clone(),
                waits: !self.fail_fast,
                slow: slow_after.is_some(),
                ignores: !self.error_rules.is_empty(),
                probes: half_open.probe_limit().is_some() || self.shared.is_some(),
            };
            self.listeners
                .push(Arc::new(crate::export::listener(shape)));
        }
        let settings = Settings {
            name: self.name,
            clock: self.clock.unwrap_or_else(default_clock),
            fail_fast: self.fail_fast,
            max_wait: self.max_wait,
            max_waiters: self.max_waiters,
            max_freeze: self.max_freeze.unwrap_or(DEFAULT_MAX_FREEZE),
            open_period,
            half_open,
            retry_after_freeze: self.retry_after_freeze.unwrap_or(seed) && !self.fail_fast,
            seed_accounting: self.seed_accounting.unwrap_or(seed),
            slow_after,
            error_rules: self.error_rules.into(),
            on_error,
            listeners: self.listeners.into(),
            shared: self.shared,
        };
        CircuitBreaker::from_core(Core::new(settings, policies))
    }
}

impl<V> fmt::Debug for Builder<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("open_period", &self.open_period)
            .field("backoff", &self.backoff)
            .field("consecutive_failures", &self.consecutive)
            .field("failure_rates", &self.failure_rates)
            .field("slow_call_rates", &self.slow_rates)
            .field("custom_policies", &self.custom)
            .field("half_open", &self.half_open)
            .field("fail_fast", &self.fail_fast)
            .field("max_wait", &self.max_wait)
            .field("max_waiters", &self.max_waiters)
            .field("seed_preset", &self.seed_preset)
            .finish_non_exhaustive()
    }
}

// For `config` (feature `serde`), which applies settings in any order.
#[cfg(feature = "serde")]
impl<V> Builder<V> {
    /// The same settings (the seed preset included, unlike `unchecked`),
    /// to be checked by `try_build`.
    pub(crate) fn into_unchecked(self) -> Builder<Unchecked> {
        let seed_preset = self.seed_preset;
        let mut unchecked = self.unchecked();
        unchecked.seed_preset = seed_preset;
        unchecked
    }
}
