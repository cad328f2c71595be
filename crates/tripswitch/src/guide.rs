//! # The tripswitch guide
//!
//! 1. [The seed preset](#the-seed-preset)
//! 2. [Safer settings, and why](#safer-settings-and-why)
//! 3. [Recipe: a Resilience4j-style rate breaker](#recipe-a-resilience4j-style-rate-breaker)
//! 4. [Recipe: a gobreaker-style consecutive breaker](#recipe-a-gobreaker-style-consecutive-breaker)
//! 5. [Migrating from another breaker](#migrating-from-another-breaker)
//! 6. [Recipe: an HTTP client that waits out a 503 storm](#recipe-an-http-client-that-waits-out-a-503-storm)
//! 7. [What counts as a failure](#what-counts-as-a-failure)
//! 8. [Manual control, events and metrics](#manual-control-events-and-metrics)
//! 9. [Testing code that uses a breaker](#testing-code-that-uses-a-breaker)
//! 10. [tower and HTTP](#tower-and-http)
//! 11. [Observability](#observability)
//! 12. [Runtimes](#runtimes)
//!
//! ## The seed preset
//!
//! [`CircuitBreaker::new()`](crate::CircuitBreaker::new) and a fresh
//! [`builder`](crate::CircuitBreaker::builder) behave exactly like the
//! Python `CircuitBreaker` this crate started from:
//!
//! - one failure freezes the breaker, for 5 seconds or until the future of
//!   the freeze function completes;
//! - calls made while it is frozen wait, then run;
//! - a failing call waits out the freeze and runs its operation once more;
//! - that retry, and calls released from a freeze, are not counted;
//! - `on_error` sees each counted failure; `is_frozen` tells the state.
//!
//! It improves on the seed where the seed is broken: a freeze function that
//! panics ends the freeze instead of freezing the breaker forever, and a
//! cancelled call never leaves the breaker stuck.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::time::Duration;
//! use tripswitch::CircuitBreaker;
//!
//! let breaker = CircuitBreaker::builder()
//!     .freeze_with(|| tokio::time::sleep(Duration::from_secs(10)))
//!     .on_error(|e| println!("error occurred: {e:?}"))
//!     .build();
//! # let _ = breaker;
//! # }
//! ```
//!
//! ## Safer settings, and why
//!
//! The seed's breaker trips on a single failure and, when the freeze ends,
//! lets every waiting call through at once while counting none of them. If
//! the service is still down, the whole herd hits it and nothing notices.
//! [`CircuitBreaker::standard`](crate::CircuitBreaker::standard) starts from
//! the standard preset instead (fail fast, one probe at a time, every
//! outcome counted; the table is in [`Preset`](crate::Preset)). A preset is
//! only ever chosen that way: each setter changes its own setting and
//! nothing else. These are the settings to reach for:
//!
//! - [`HalfOpen::probes`](crate::HalfOpen::probes): after the open period,
//!   let a few probe calls through; close only when they succeed, open again
//!   as soon as one fails.
//! - [`Backoff`](crate::Backoff): stay open longer each time the probes fail,
//!   with jitter so that a fleet does not probe in lockstep.
//! - [`HalfOpen::max_duration`](crate::HalfOpen::max_duration): a probe that
//!   hangs cannot hold the breaker half-open.
//! - [`FailureRate`](crate::policy::FailureRate) instead of a single failure:
//!   one timeout among thousands of calls should not stop traffic.
//! - [`max_wait`](crate::Builder::max_wait) and
//!   [`max_waiters`](crate::Builder::max_waiters) in wait mode, or
//!   [`fail_fast`](crate::Builder::fail_fast): callers should not pile up
//!   without bound behind a dead dependency.
//!
//! ## Recipe: a Resilience4j-style rate breaker
//!
//! Open when half of the last 100 calls failed (judged from 20 calls on) or
//! when 80% are slower than two seconds; fail fast while open; let 10 calls
//! through half-open and judge them by the same rates, as Resilience4j
//! does. [`Preset::Resilience4j`](crate::Preset::Resilience4j) starts from
//! Resilience4j's own defaults.
//!
//! ```
//! use std::time::Duration;
//! use tripswitch::policy::{FailureRate, SlowCallRate, Window};
//! use tripswitch::{Builder, HalfOpen, Preset};
//!
//! let breaker = Builder::from_preset(Preset::Resilience4j)
//!     .name("inventory")
//!     .failure_rate(FailureRate::new(0.5, Window::last_calls(100)).min_calls(20))
//!     .slow_call_rate(SlowCallRate::new(Duration::from_secs(2), 0.8, Window::last_calls(100)))
//!     .open_for(Duration::from_secs(60))
//!     .half_open(HalfOpen::judged_by_rate(10, 0.5).slow_call_rate(0.8))
//!     .try_build()?;
//! # drop(breaker);
//! # Ok::<(), tripswitch::ConfigError>(())
//! ```
//!
//! ## Recipe: a gobreaker-style consecutive breaker
//!
//! Trip after more than five failures in a row, stay open a minute, then let
//! three requests through in all (`MaxRequests` 3), closing after three
//! successes. `Builder::from_preset(Preset::Gobreaker)` is gobreaker's
//! `Settings{}` as it is.
//!
//! ```
//! use std::time::Duration;
//! use tripswitch::{CircuitBreaker, HalfOpen};
//!
//! let breaker = CircuitBreaker::standard()
//!     .consecutive_failures(6)
//!     .open_for(Duration::from_secs(60))
//!     .half_open(HalfOpen::probes(3).budget(3))
//!     .try_build()?;
//! # drop(breaker);
//! # Ok::<(), tripswitch::ConfigError>(())
//! ```
//!
//! ## Migrating from another breaker
//!
//! Start from the library's preset (one line: `Builder::from_preset(Preset::Gobreaker)`,
//! or `preset = "gobreaker"` in a configuration file, `tripswitch::config`, feature `serde`), then
//! map the settings you had changed. [`Preset`](crate::Preset) has the
//! table of each preset's defaults, with their sources; these tables map
//! each setting. Every preset bounds the half-open state in time (30 s,
//! [`DEFAULT_MAX_HALF_OPEN`](crate::DEFAULT_MAX_HALF_OPEN)), where most of
//! these libraries wait forever for a probe that hangs; remove the bound
//! with [`HalfOpen::without_max_duration`](crate::HalfOpen::without_max_duration).
//!
//! **Resilience4j** (`CircuitBreakerConfig`, preset `Resilience4j`)
//!
//! | Resilience4j | tripswitch |
//! |---|---|
//! | `failureRateThreshold(50)` | [`FailureRate::new(0.5, window)`](crate::policy::FailureRate::new) |
//! | `slidingWindow(100, 100, COUNT_BASED)` (size, minimum calls) | [`Window::last_calls(100)`](crate::policy::Window::last_calls), [`.min_calls(100)`](crate::policy::FailureRate::min_calls) |
//! | `slidingWindow(60, 100, TIME_BASED)` | [`Window::last(60 s)`](crate::policy::Window::last) |
//! | `slowCallRateThreshold(80)`, `slowCallDurationThreshold(2 s)` | [`SlowCallRate::new(2 s, 0.8, window)`](crate::policy::SlowCallRate::new) |
//! | `waitDurationInOpenState(60 s)` | [`open_for(60 s)`](crate::Builder::open_for) |
//! | `waitIntervalFunctionInOpenState` | [`backoff`](crate::Builder::backoff) or [`open_for_fn`](crate::Builder::open_for_fn) |
//! | `permittedNumberOfCallsInHalfOpenState(10)` | [`HalfOpen::judged_by_rate(10, 0.5)`](crate::HalfOpen::judged_by_rate), [`.slow_call_rate(r)`](crate::HalfOpen::slow_call_rate) |
//! | `maxWaitDurationInHalfOpenState` | [`HalfOpen::max_duration`](crate::HalfOpen::max_duration) (default 30 s, not 0 = forever) |
//! | `automaticTransitionFromOpenToHalfOpenEnabled` | [`eager_transitions`](crate::Builder::eager_transitions) |
//! | `recordExceptions` / `ignoreExceptions` / `recordResult` | [`ignore_errors`](crate::Builder::ignore_errors), [`execute_classified`](crate::CircuitBreaker::execute_classified) |
//! | `transitionToForcedOpenState`, `DISABLED`, `METRICS_ONLY`, `reset` | [`force_open`](crate::CircuitBreaker::force_open), [`disable`](crate::CircuitBreaker::disable), [`force_metrics_only`](crate::CircuitBreaker::force_metrics_only), [`reset`](crate::CircuitBreaker::reset) |
//! | `onFailureRateExceeded`, `onSlowCallRateExceeded` | [`EventKind::RateExceeded`](crate::events::EventKind::RateExceeded) |
//! | `getNumberOfBufferedCalls`, `getFailureRate` | [`Metrics::calls_in_window`](crate::Metrics::calls_in_window), [`Metrics::failure_rate`](crate::Metrics::failure_rate) (0 to 1, not percent) |
//!
//! **Polly v8** (`CircuitBreakerStrategyOptions`, preset `Polly`)
//!
//! | Polly | tripswitch |
//! |---|---|
//! | `FailureRatio = 0.1`, `MinimumThroughput = 100`, `SamplingDuration = 30 s` | [`FailureRate::new(0.1, Window::last(30 s)).min_calls(100)`](crate::policy::FailureRate) |
//! | `BreakDuration = 5 s` | [`open_for(5 s)`](crate::Builder::open_for) |
//! | `BreakDurationGenerator` | [`open_for_fn`](crate::Builder::open_for_fn) (sees the [`TripContext`](crate::TripContext)), [`backoff`](crate::Builder::backoff) |
//! | one probe while half-open | [`HalfOpen::probes(1).budget(1)`](crate::HalfOpen::budget) |
//! | `ShouldHandle` | [`ignore_errors`](crate::Builder::ignore_errors), [`execute_classified`](crate::CircuitBreaker::execute_classified) |
//! | `ManualControl.IsolateAsync` / `CloseAsync` | [`force_open`](crate::CircuitBreaker::force_open) / [`resume`](crate::CircuitBreaker::resume) |
//! | `StateProvider.CircuitState` | [`state`](crate::CircuitBreaker::state) |
//! | `BrokenCircuitException.RetryAfter` | [`Rejected::retry_after`](crate::Rejected::retry_after) |
//! | `OnOpened` / `OnClosed` / `OnHalfOpened` | [`on_event`](crate::Builder::on_event) with [`EventKind::Transition`](crate::events::EventKind::Transition) |
//!
//! **gobreaker** (`Settings`, preset `Gobreaker`)
//!
//! | gobreaker | tripswitch |
//! |---|---|
//! | `ReadyToTrip: counts.ConsecutiveFailures > 5` | [`consecutive_failures(6)`](crate::Builder::consecutive_failures) |
//! | `ReadyToTrip` (any other) | [`trip_policy`](crate::Builder::trip_policy) |
//! | `Timeout = 60 s` | [`open_for(60 s)`](crate::Builder::open_for) |
//! | `MaxRequests = 3` | [`HalfOpen::probes(3).budget(3)`](crate::HalfOpen::budget) |
//! | `Interval` (clear counts while closed) | a time window: [`Window::last`](crate::policy::Window::last) |
//! | `BucketPeriod` | [`Window::last_in_buckets`](crate::policy::Window::last_in_buckets) |
//! | `IsSuccessful`, `IsExcluded` | [`execute_classified`](crate::CircuitBreaker::execute_classified), [`ignore_errors`](crate::Builder::ignore_errors) |
//! | `OnStateChange` | [`on_event`](crate::Builder::on_event) |
//! | `Counts` (per generation) | [`Metrics::current`](crate::Metrics::current) (late results excluded), [`Metrics::totals`](crate::Metrics::totals) |
//! | `TwoStepCircuitBreaker.Allow()` | [`try_acquire`](crate::CircuitBreaker::try_acquire) and its [`Permit`](crate::Permit) |
//! | `DistributedCircuitBreaker` (Redis store) | the `tripswitch-redis` crate |
//!
//! **pybreaker** (`CircuitBreaker`, preset `Pybreaker`)
//!
//! | pybreaker | tripswitch |
//! |---|---|
//! | `fail_max = 5` | [`consecutive_failures(5)`](crate::Builder::consecutive_failures) |
//! | `reset_timeout = 60` | [`open_for(60 s)`](crate::Builder::open_for) |
//! | `success_threshold = 3` | [`HalfOpen::probes(1).close_after(3)`](crate::HalfOpen::close_after) |
//! | `exclude = [...]` | [`ignore_errors`](crate::Builder::ignore_errors) |
//! | `listeners` | [`on_event`](crate::Builder::on_event) |
//! | `open()`, `close()`, `half_open()` | [`force_open`](crate::CircuitBreaker::force_open), [`reset`](crate::CircuitBreaker::reset) |
//! | `CircuitRedisStorage` | the `tripswitch-redis` crate |
//!
//! **Hystrix** (`HystrixCommandProperties`, preset `Hystrix`)
//!
//! | Hystrix | tripswitch |
//! |---|---|
//! | `circuitBreaker.errorThresholdPercentage = 50` | [`FailureRate::new(0.5, window)`](crate::policy::FailureRate::new) |
//! | `circuitBreaker.requestVolumeThreshold = 20` | [`.min_calls(20)`](crate::policy::FailureRate::min_calls) |
//! | `metrics.rollingStats.timeInMilliseconds = 10000`, `numBuckets = 10` | [`Window::last_in_buckets(10 s, 10)`](crate::policy::Window::last_in_buckets) |
//! | `circuitBreaker.sleepWindowInMilliseconds = 5000` | [`open_for(5 s)`](crate::Builder::open_for) |
//! | `circuitBreaker.forceOpen`, `forceClosed` | [`force_open`](crate::CircuitBreaker::force_open), [`disable`](crate::CircuitBreaker::disable) |
//! | `execution.isolation.thread.timeoutInMilliseconds` | a [timeout layer](#with-timeout-and-retry-layers); [`slow_call_rate`](crate::Builder::slow_call_rate) to trip on slowness |
//!
//! ## Recipe: an HTTP client that waits out a 503 storm
//!
//! The service says how long to stay away (`Retry-After`); the breaker
//! freezes for exactly that long, callers wait (at most 30 seconds) instead
//! of failing, and one probe at a time tests the service afterwards. The
//! 503 arrives as an `Ok` response, so a classifier marks it a failure.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::time::Duration;
//! use tripswitch::{Backoff, CircuitBreaker, HalfOpen, Outcome};
//!
//! #[derive(Debug)]
//! struct Response { status: u16, retry_after: Option<Duration> }
//!
//! /// The error the client returns for a 503, carrying the server's hint.
//! #[derive(Debug)]
//! struct Unavailable { retry_after: Option<Duration> }
//!
//! let breaker = CircuitBreaker::standard()
//!     .name("api.example.com")
//!     .consecutive_failures(1)
//!     .wait_when_open()
//!     .open_for_fn(|trip| {
//!         trip.error::<Unavailable>()
//!             .and_then(|e| e.retry_after)
//!             .unwrap_or(Duration::from_secs(5))
//!     })
//!     .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(10)))
//!     .max_wait(Duration::from_secs(30))
//!     .try_build()
//!     .unwrap();
//!
//! async fn get(path: &str) -> Result<Response, Unavailable> {
//!     // ... send the request; here, the service is overloaded:
//!     # let _ = path;
//!     Err(Unavailable { retry_after: Some(Duration::from_secs(2)) })
//! }
//!
//! // The first call trips the breaker; calls in the next two seconds wait.
//! let first = breaker.execute(|| get("/orders")).await;
//! assert!(first.is_err());
//! assert_eq!(breaker.metrics().retry_after, Some(Duration::from_secs(2)));
//!
//! // A 503 that comes back as an `Ok` response is a failure too:
//! let classify = |r: &Result<Response, Unavailable>| match r {
//!     Ok(response) if response.status >= 500 => Outcome::Failure,
//!     Ok(_) => Outcome::Success,
//!     Err(_) => Outcome::Failure,
//! };
//! # let _ = classify;
//! # }
//! ```
//!
//! Through the HTTP integrations (the tower layer with `UpstreamErrors`,
//! the reqwest middleware), a failed response is recorded as an
//! `http::FailedResponse` holding its status and `Retry-After`, so the same
//! recipe reads `trip.error::<FailedResponse>()`; `http::client_preset()`
//! does it for you (fail fast, the upstream's `Retry-After` within 1–60 s).
//! `tests/http_preset.rs` and `tests/reqwest_middleware.rs` check it.
//!
//! ## What counts as a failure
//!
//! - Every `Err` is a failure, unless [`ignore_errors`](crate::Builder::ignore_errors)
//!   says it is not (then it is *ignored*: neither success nor failure, and an
//!   ignored probe frees its slot).
//! - [`execute_classified`](crate::CircuitBreaker::execute_classified) lets a
//!   classifier decide per call, e.g. an HTTP 503 returned as `Ok`.
//! - A cancelled call (its future dropped) records nothing and gives back its
//!   half-open slot.
//! - A panicking operation is a failure; the panic still reaches the caller.
//! - Calls that started before a state change do not count in the new state
//!   (a generation number, as in gobreaker); they still count in the totals.
//!
//! ## Manual control, events and metrics
//!
//! From any clone or reference, at any time:
//! [`force_open`](crate::CircuitBreaker::force_open),
//! [`resume`](crate::CircuitBreaker::resume),
//! [`disable`](crate::CircuitBreaker::disable),
//! [`force_metrics_only`](crate::CircuitBreaker::force_metrics_only),
//! [`reset`](crate::CircuitBreaker::reset).
//! Listeners ([`on_event`](crate::Builder::on_event)) see transitions (from,
//! to, why, when), successes, failures, ignored errors, slow calls and
//! rejections; [`metrics`](crate::CircuitBreaker::metrics) is a cheap snapshot.
//!
//! ## Testing code that uses a breaker
//!
//! With tokio, use paused time: the default clock follows it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::time::Duration;
//! use tripswitch::CircuitBreaker;
//!
//! let breaker = CircuitBreaker::builder().freeze_for(Duration::from_secs(30)).build();
//! breaker.force_open();
//! assert!(breaker.is_frozen());
//! breaker.resume();
//! tokio::time::advance(Duration::from_secs(30)).await; // no real waiting
//! # }
//! ```
//!
//! On other executors, give the breaker a [`FakeClock`](crate::clock::FakeClock)
//! and move time with [`advance`](crate::clock::FakeClock::advance).
//!
//! ## tower and HTTP
//!
//! With the `tower` feature, [`CircuitBreakerLayer`]
//! puts a breaker in front of any `tower::Service` (hyper and reqwest-style
//! clients, tonic channels, axum routers). Admission is decided in
//! `poll_ready` and answered in `call`: a refused call is by default an
//! `Err` holding a boxed [`Rejected`](crate::Rejected) you can
//! `downcast_ref`, or, with `reject_with`, a response of your own. With the
//! `http` feature, [`ServerErrors`] counts 5xx responses as failures, and
//! [`KeyedCircuitBreakerLayer::authority`] keys a
//! [`Registry`](crate::Registry) of breakers by host, so that one failing
//! host does not stop calls to the others. With the `axum` feature,
//! `tripswitch::axum::layer(breaker)` goes on an axum route or router
//! (`route_layer`/`layer`) and answers refused calls with
//! `503 Service Unavailable` and a `Retry-After` header.
//!
//! ```ignore
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//! use tripswitch::tower::{CircuitBreakerLayer, ServerErrors};
//!
//! let breaker = tripswitch::CircuitBreaker::standard()
//!     .name("payments-api")
//!     .consecutive_failures(5)
//!     .try_build()?;
//! let client = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new(breaker).classify(ServerErrors))
//!     .timeout(Duration::from_secs(2)) // a hanging server becomes a failure
//!     .service(hyper_client);
//! ```
//!
//! `tests/http_end_to_end.rs` runs exactly this against a real axum server
//! that returns 503s, hangs and refuses connections.
//!
//! ### With timeout and retry layers
//!
//! Order matters. Put the **timeout inside** the breaker, so that a hung
//! call ends as a failure the breaker counts; put the **retry outside**, so
//! that each retry asks the breaker again, and have the retry policy leave
//! rejections alone (`error.downcast_ref::<Rejected>().is_some()`): once the
//! breaker opens, retries stop at it instead of reaching the service.
//!
//! ```text
//! ServiceBuilder::new()
//!     .retry(policy_that_skips_rejections)   // outermost
//!     .layer(CircuitBreakerLayer::new(breaker).classify(UpstreamErrors))
//!     .timeout(Duration::from_secs(2))       // innermost: a timeout is a failure
//!     .service(client)
//! ```
//!
//! What counts, in each order:
//!
//! | layers, outermost first | the breaker sees |
//! |---|---|
//! | retry → breaker → timeout (the above) | each attempt: a timeout (tower's `Elapsed`, an `Err`) is a failure with every classifier, `EveryErr`, `ServerErrors` and `UpstreamErrors` alike; a rejected attempt is not retried |
//! | timeout → breaker | a **cancelled** call when the timeout fires (its future is dropped): it counts as nothing (`metrics().totals.cancelled`), so a hanging service never trips the breaker |
//! | breaker → retry | one call per request, whatever the number of attempts: only the last attempt's result counts, and failed attempts that a retry made good are invisible to the breaker |
//!
//! `tests/tower_composition.rs` checks each row: in the recommended order
//! ten retries are allowed, three calls reach a hanging service, the fourth
//! attempt is refused and not retried (and with `UpstreamErrors`, three
//! timeouts open the breaker); with the timeout outside, ten hung calls
//! leave the breaker closed with ten cancelled calls; with the retry
//! inside, three attempts make one failure.
//!
//! ## Observability
//!
//! - `tracing`: an opening is a `warn` event, every other state change an
//!   `info` event, and every rejection a
//!   `debug` event, both with a `breaker` field holding the breaker's name;
//!   the default `on_error` is a `debug` event with the error (through the
//!   HTTP integrations, a `FailedResponse` naming the status and
//!   `Retry-After`, or the transport error). Listener and freeze-function
//!   panics are `error` events.
//! - `metrics` (feature): [`Builder::export_metrics`]
//!   exports `tripswitch_calls_total{outcome}`, `tripswitch_slow_calls_total`,
//!   `tripswitch_transitions_total{to}`, `tripswitch_state{state}` (1 for
//!   the current state, 0 for the others) and the `tripswitch_wait_seconds`
//!   histogram, each with a description and labelled `breaker` with the
//!   breaker's name (`unnamed-N` for an unnamed one). See
//!   [Metrics, series by series](#metrics-series-by-series).
//!   `examples/axum_gateway.rs` serves them on `/metrics` through
//!   `metrics-exporter-prometheus`.
//! - OpenTelemetry: see [the recipe](#recipe-opentelemetry).
//! - Listeners ([`on_event`](crate::Builder::on_event)) see every event, and
//!   [`metrics()`](crate::CircuitBreaker::metrics) is a snapshot to poll.
//!
//! ### Metrics, series by series
//!
//! A breaker exports the series its configuration can move, each at zero
//! from its first event (so that `increase(..)` sees the first trip), and
//! none that must stay zero:
//!
//! | series | exported |
//! |---|---|
//! | `tripswitch_calls_total{outcome="success"\|"failure"\|"rejected"}` | always |
//! | `tripswitch_calls_total{outcome="ignored"}` | with `ignore_errors`, or once a classifier ignored a call |
//! | `tripswitch_slow_calls_total` | with a slow-call threshold or a slow-call-rate policy |
//! | `tripswitch_transitions_total{to="closed"\|"open"}`, `tripswitch_state{state="closed"\|"open"}` | always |
//! | the same with `half_open` | when the breaker probes (not with the seed's `HalfOpen::release_all`, unless it shares its state with a fleet) |
//! | the same with `forced_open`, `disabled`, `metrics_only` | once the state was entered |
//! | `tripswitch_wait_seconds` | in wait mode |
//!
//! A breaker on the standard preset (`CircuitBreaker::standard()`: fail
//! fast, one probe at a time) has 9 series; in wait mode, the histogram
//! too; on the seed preset (waits, releases everybody at once, never
//! half-open), 8. `tests/metrics_prometheus.rs` scrapes them.
//!
//! **Names.** The `breaker` label is the name the breaker is built with,
//! wherever `.name(..)` is on the builder. A [`Registry`](crate::Registry)
//! names each breaker by its key unless its factory names it, so per-host
//! breakers are labelled `host:port`. **Two live breakers with one name**
//! share its series: the counters add up, and `tripswitch_state` counts
//! the breakers in each state (each breaker adds itself to its state's
//! gauge and takes itself away when it is dropped). That is right for a
//! registry that replaced an evicted breaker some calls still hold, and a
//! mistake anywhere else, so the first time it happens to a name a WARN
//! names it. Merging was chosen over refusing the second breaker's
//! metrics (which would hide the registry's current breaker behind the
//! evicted one) and over a suffixed label (which would change the label of
//! a host each time its breaker is replaced).
//!
//! Rates (`tripswitch_failure_rate`, `tripswitch_slow_call_rate`) change
//! with every call, so they are not pushed: `record_rates` sets them from a
//! snapshot where the metrics are rendered.
//!
//! ### Recipe: OpenTelemetry
//!
//! tripswitch speaks to the `metrics` and `tracing` facades only, so an
//! OpenTelemetry pipeline takes both through their bridges; nothing in
//! tripswitch is specific to it.
//!
//! ```text
//! // Metrics: a `metrics` recorder that writes to an OpenTelemetry meter
//! // (e.g. metrics-exporter-otel 0.3 with opentelemetry_sdk 0.31).
//! let meter = meter_provider.meter("gateway");
//! metrics::set_global_recorder(metrics_exporter_otel::OpenTelemetryRecorder::new(meter))?;
//! // Logs: tripswitch's events (transitions, rejections, failures) with
//! // their `breaker` field, through tracing-opentelemetry.
//! tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer)).init();
//! // Then, as with Prometheus:
//! let breaker = CircuitBreaker::builder().name("payments").export_metrics().build();
//! ```
//!
//! The series reach OpenTelemetry as instruments of the same names:
//! the `_total` counters as monotonic sums, `tripswitch_state` as a gauge,
//! `tripswitch_wait_seconds` as a histogram, the labels as attributes.
//! tripswitch only *sets* its gauges, never increments them, because
//! OpenTelemetry gauges cannot be incremented (some bridges drop such
//! updates silently). Descriptions may be lost on the way: some bridges
//! ignore `describe_*`.
//!
//! `examples/opentelemetry.rs` runs this recipe with stand-ins of the same
//! shape for both bridges (a recorder that accepts only what OpenTelemetry
//! instruments can take, a layer that keeps each log record's `breaker`
//! attribute), so that it compiles without the OpenTelemetry crates; its
//! test checks every series arrives and no gauge is incremented.
//!
//! ## Runtimes
//!
//! The core does not need tokio. What needs a runtime is a *timer*, for
//! timed open periods that callers wait out:
//!
//! | feature / setting | timer | runtime |
//! |---|---|---|
//! | `tokio` (default), default clock | `tokio::time::sleep` | a tokio runtime with time enabled (current-thread or multi-thread) |
//! | `.clock(StdClock::new())` or no `tokio` feature | one process-wide timer thread | any executor |
//! | `.clock(your_clock)` | your `Clock::sleep` (e.g. smol's `Timer`) | yours |
//! | `.freeze_with(f)` | the future `f` returns | whatever `f` needs |
//! | `FakeClock` | moved by hand | any executor, in tests |
//! | `.clock(TscClock::new())` (feature `quanta`) | tokio's, else the timer thread | as above; real time, so not for paused-time tests |
//!
//! Fail-fast breakers arm their open period's timer when they trip, so the
//! timer must be usable where the tripping call runs. The `tower` layer and
//! the `metrics` export are runtime-agnostic.
//!
//! ## Many replicas, one breaker
//!
//! When a service runs as many processes that all call the same dependency,
//! each one learning of an outage on its own multiplies the load on that
//! dependency. The `tripswitch-redis` crate shares a breaker's state across
//! processes through Redis without touching Redis on the call path: counts
//! go out in batches, one Lua script decides atomically, changes are pushed
//! back, and the fleet's half-open probes are leased to one replica at a
//! time. A quorum keeps one bad replica from tripping everybody; a dead or
//! slow Redis leaves every replica on its local breaker. Its crate docs say
//! when to use it and when not. Other stores can plug into the same seam:
//! [`shared`](crate::shared).
//!
// Links to items behind a feature: the item when the feature is on, the
// crate's feature table when it is off (the docs build with any features).
#![cfg_attr(
    feature = "tower",
    doc = "[`CircuitBreakerLayer`]: crate::tower::CircuitBreakerLayer"
)]
#![cfg_attr(
    not(feature = "tower"),
    doc = "[`CircuitBreakerLayer`]: crate#cargo-features"
)]
#![cfg_attr(
    feature = "http",
    doc = "[`ServerErrors`]: crate::tower::ServerErrors\n[`KeyedCircuitBreakerLayer::authority`]: crate::tower::KeyedCircuitBreakerLayer::authority"
)]
#![cfg_attr(
    not(feature = "http"),
    doc = "[`ServerErrors`]: crate#cargo-features\n[`KeyedCircuitBreakerLayer::authority`]: crate#cargo-features"
)]
#![cfg_attr(
    feature = "metrics",
    doc = "[`Builder::export_metrics`]: crate::Builder::export_metrics"
)]
#![cfg_attr(
    not(feature = "metrics"),
    doc = "[`Builder::export_metrics`]: crate#cargo-features"
)]
