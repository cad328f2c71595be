//! # tripswitch
//!
//! An async circuit breaker. Out of the box it is the *freeze and wait*
//! breaker of the Python library it started from: after an operation fails,
//! the breaker **freezes**, and calls made while it is frozen **wait** until
//! the freeze ends instead of hammering a broken service. The builder turns
//! it into a full closed/open/half-open breaker: failure-rate and slow-call
//! windows, backoff, fail-fast, probes, manual control, events and metrics.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::time::Duration;
//! use tripswitch::CircuitBreaker;
//!
//! let breaker = CircuitBreaker::builder()
//!     .freeze_for(Duration::from_secs(10))
//!     .on_error(|e| eprintln!("error occurred: {e:?}"))
//!     .build();
//!
//! let answer = breaker.execute(|| async { Ok::<_, std::io::Error>(42) }).await;
//! assert_eq!(answer.unwrap(), 42);
//! assert!(!breaker.is_frozen());
//! # }
//! ```
//!
//! The decorator form, on any `async fn` returning a `Result`:
//!
//! ```
//! use std::sync::LazyLock;
//! use tripswitch::CircuitBreaker;
//!
//! static BACKEND: LazyLock<CircuitBreaker> = LazyLock::new(CircuitBreaker::new);
//!
//! #[tripswitch::circuit_breaker(BACKEND)]
//! async fn fetch(id: u32) -> Result<String, std::io::Error> {
//!     Ok(format!("item {id}"))
//! }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // The error type becomes `tripswitch::Error<std::io::Error>`.
//! assert_eq!(fetch(7).await.unwrap(), "item 7");
//! # }
//! ```
//!
//! See the [`guide`] for presets and recipes. To share a breaker's state
//! across the replicas of a service, see the [`shared`] seam and the
//! `tripswitch-redis` crate built on it.
//!
//! ## Vocabulary
//!
//! One word per idea. **Open** is the state in which calls are held
//! (waiting, or refused when failing fast), for an **open period**;
//! **frozen** and **freeze** are the seed's words for the same state and
//! period, kept in the seed's names ([`CircuitBreaker::is_frozen`],
//! [`Builder::freeze_for`], [`Builder::freeze_with`],
//! [`CircuitBreaker::wait_unfrozen`], [`Builder::max_freeze`],
//! [`Builder::retry_after_freeze`]) and nowhere else. An **async freeze** is
//! an open period that ends with a future. **Release** means letting
//! waiting calls through ([`HalfOpen::release_all`]); handing control back
//! from a manual state is [`CircuitBreaker::resume`]. **Metrics** are
//! snapshots ([`CircuitBreaker::metrics`]) or an export
//! ([`Builder::export_metrics`], feature `metrics`); **metrics-only** is a
//! manual state ([`CircuitBreaker::force_metrics_only`]).
//!
//! ## Cargo features
//!
//! | feature  | default | what it adds |
//! |----------|---------|--------------|
//! | `tokio`  | yes     | [`clock::TokioClock`], the default clock: tokio's timer for timed freezes, and paused time in tests. Without it the default clock is [`clock::StdClock`] and the core does not depend on tokio. |
//! | `macros` | yes     | the [`circuit_breaker`] attribute. |
//! | `tower`  | no      | `tower`: a layer, a service and a keyed layer (a breaker per host). Runtime-agnostic. |
//! | `http`   | no      | `http`: which responses fail (5xx, 429, 408), the `FailedResponse` a failure records (status, `Retry-After`), per-host keys, an HTTP-client preset; `tower::ServerErrors`, `tower::UpstreamErrors` and per-host keyed layers. |
//! | `axum`   | no      | `axum::layer`: a breaker in front of axum routes, refused calls answered `503 Service Unavailable` with `Retry-After`; `Rejected` is an `IntoResponse`. |
//! | `reqwest`| no      | `reqwest::CircuitBreakerMiddleware` for `reqwest-middleware`: one line to guard a reqwest client, a breaker per host. |
//! | `quanta` | no      | [`clock::TscClock`]: a time-stamp-counter clock, for time windows and slow-call detection at about half the cost of `Instant::now()`. |
//! | `serde`  | no      | `config`: breakers and registries from configuration files in any serde format (TOML, JSON, YAML...), checked like code. |
//! | `metrics`| no      | counters, a state gauge with a `state` label and a wait-time histogram through the `metrics` crate, each described (see [`Builder::export_metrics`]). |
//!
//! docs.rs documents every feature. In documentation built without a
//! feature, a link to an item that needs it leads to this table.
//!
// Links to items behind a feature resolve to the item when the feature is on
// and to the table above when it is off, so that the docs build (warnings
// denied) with any set of features.
#![cfg_attr(
    feature = "tokio",
    doc = "[`clock::TokioClock`]: crate::clock::TokioClock"
)]
#![cfg_attr(
    not(feature = "tokio"),
    doc = "[`clock::TokioClock`]: crate#cargo-features"
)]
#![cfg_attr(
    feature = "macros",
    doc = "[`circuit_breaker`]: crate::circuit_breaker"
)]
#![cfg_attr(
    not(feature = "macros"),
    doc = "[`circuit_breaker`]: crate#cargo-features"
)]
#![cfg_attr(
    feature = "quanta",
    doc = "[`clock::TscClock`]: crate::clock::TscClock"
)]
#![cfg_attr(
    not(feature = "quanta"),
    doc = "[`clock::TscClock`]: crate#cargo-features"
)]
#![cfg_attr(
    feature = "metrics",
    doc = "[`Builder::export_metrics`]: crate::Builder::export_metrics"
)]
#![cfg_attr(
    not(feature = "metrics"),
    doc = "[`Builder::export_metrics`]: crate#cargo-features"
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
pub mod axum;
mod breaker;
mod builder;
mod classify;
pub mod clock;
#[cfg(feature = "serde")]
pub mod config;
mod core;
mod error;
pub mod events;
mod execute;
#[cfg(feature = "metrics")]
mod export;
pub mod guide;
mod half_open;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "tower")]
mod http_wait;
mod key_name;
mod loom;
mod metrics;
mod open_period;
mod outcome;
mod permit;
pub mod policy;
mod registry;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod shared;
mod state;
mod ticket;
#[cfg(feature = "tower")]
pub mod tower;
mod wait;
mod waiters;

pub use breaker::CircuitBreaker;
pub use builder::{Builder, DEFAULT_MAX_FREEZE, Preset};
pub use classify::{Classify, EveryErr};
pub use error::{ConfigError, Error, RejectReason, Rejected};
#[cfg(feature = "metrics")]
pub use export::record_rates;
pub use half_open::{DEFAULT_MAX_HALF_OPEN, HalfOpen};
pub use metrics::{Counts, Metrics};
pub use open_period::{Backoff, TripContext};
pub use outcome::Outcome;
pub use permit::{Acquire, AcquireOwned, OwnedPermit, Permit};
pub use registry::{BreakerSnapshot, Registry, RegistryBuilder};
pub use state::State;

/// Wraps an `async fn` returning `Result<T, E>` in a breaker: the seed's
/// `with_circuit_breaker` decorator.
///
/// `#[circuit_breaker(EXPR)]` takes any expression that gives a
/// `&CircuitBreaker` or something that dereferences to one (a `static`
/// `LazyLock<CircuitBreaker>`, an `Arc<CircuitBreaker>`, `self.breaker`).
/// The expression may use `self` and anything in scope where the function
/// is defined, but not the function's other arguments.
/// The function keeps its name, arguments and `T`; its error type becomes
/// [`Error<E>`](Error), which is `Debug` when `E` is.
///
/// Because the seed retries a failed call once after the freeze, the body
/// may run twice: each run gets its own clone of every argument (so
/// arguments must be `Clone`; references are). `&self` methods are
/// supported; `self` by value, `&mut self` and `&mut` arguments are refused
/// at compile time.
///
/// ```
/// use std::sync::LazyLock;
/// use tripswitch::CircuitBreaker;
///
/// static BREAKER: LazyLock<CircuitBreaker> = LazyLock::new(CircuitBreaker::new);
///
/// struct Client { breaker: CircuitBreaker }
///
/// impl Client {
///     #[tripswitch::circuit_breaker(self.breaker)]
///     async fn get(&self, path: String) -> Result<usize, std::io::Error> {
///         Ok(path.len())
///     }
/// }
///
/// #[tripswitch::circuit_breaker(BREAKER)]
/// async fn ping() -> Result<(), String> {
///     Ok(())
/// }
/// ```
#[cfg(feature = "macros")]
pub use tripswitch_macros::circuit_breaker;

/// Not public API: what the attribute macro's expansion refers to.
#[doc(hidden)]
pub mod __private {
    /// The `Ok` and `Err` types of a function's declared return type.
    #[diagnostic::on_unimplemented(
        message = "`#[circuit_breaker]` needs a function returning `Result<T, E>`, not `{Self}`",
        label = "this must be a `Result<T, E>`"
    )]
    pub trait IsResult {
        /// `T`.
        type Ok;
        /// `E`.
        type Err;
        /// The value as a `Result`.
        fn into_result(self) -> Result<Self::Ok, Self::Err>;
    }

    impl<T, E> IsResult for Result<T, E> {
        type Ok = T;
        type Err = E;
        fn into_result(self) -> Self {
            self
        }
    }
}

/// Not public API: internals the loom models check directly (only under
/// `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    /// A time window's per-thread success cells, with explicit rows.
    #[derive(Debug)]
    pub struct StripedSuccesses(crate::policy::StripedSuccesses);

    impl StripedSuccesses {
        /// Cells for `buckets` buckets and `rows` threads.
        pub fn new(buckets: usize, rows: usize) -> Option<Self> {
            crate::policy::StripedSuccesses::new(buckets, rows).map(Self)
        }

        /// Counts a success in `row` (which only the caller writes).
        pub fn add(&self, row: usize, slice: u64, index: usize) -> bool {
            self.0.add(row, slice, index)
        }

        /// Successes counted for `slice`, every row.
        pub fn count(&self, slice: u64, index: usize) -> u64 {
            self.0.count(slice, index)
        }
    }
}

/// The README's examples, compiled and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
