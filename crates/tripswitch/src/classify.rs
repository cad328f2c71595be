//! How a result counts for the breaker: one trait for
//! [`execute_classified`](crate::CircuitBreaker::execute_classified), the
//! tower layers and the reqwest middleware.

use crate::{Outcome, OwnedPermit};

/// Decides how a result (a response or an error) counts for the breaker:
/// the one classifier trait, taken by
/// [`CircuitBreaker::execute_classified`](crate::CircuitBreaker::execute_classified),
/// the tower layers (`tower::CircuitBreakerLayer::classify`) and the
/// reqwest middleware (`reqwest::CircuitBreakerMiddleware::classify`).
///
/// Implemented by closures `Fn(&Result<Response, Error>) -> Outcome` (write
/// the argument's type, `|result: &Result<u16, MyError>| ...`, so that Rust
/// sees the closure take any borrow), by
/// [`EveryErr`] (the default), and with the `http` feature by
/// `tower::ServerErrors` and `tower::UpstreamErrors`.
///
/// ```
/// use tripswitch::{Classify, Outcome};
///
/// /// A 404 is the caller's mistake, not the service's failure.
/// struct NotFoundIsFine;
///
/// impl Classify<u16, std::io::Error> for NotFoundIsFine {
///     fn classify(&self, result: &Result<u16, std::io::Error>) -> Outcome {
///         match result {
///             Ok(status) if *status >= 500 => Outcome::Failure,
///             Ok(_) => Outcome::Success,
///             Err(_) => Outcome::Failure,
///         }
///     }
/// }
/// # let _ = NotFoundIsFine;
/// ```
pub trait Classify<Response, Error> {
    /// How this result counts for the breaker.
    fn classify(&self, result: &Result<Response, Error>) -> Outcome;

    /// Records the result on the call's permit. By default the outcome of
    /// [`classify`](Self::classify), without a failure value; the HTTP
    /// classifiers record a failed response as a
    /// `http::FailedResponse` (its status and `Retry-After`), which
    /// listeners, logs and an open period computed from the trip see.
    ///
    /// Used where calls go through permits: the tower layers and the
    /// reqwest middleware. [`CircuitBreaker::execute_classified`](crate::CircuitBreaker::execute_classified)
    /// uses [`classify`](Self::classify) only: a failed `Err` is recorded
    /// with its error, a failed `Ok` as "a result classified as a failure"
    /// (so an open period computed from a `FailedResponse` falls back to
    /// its default there).
    fn record(&self, permit: OwnedPermit, result: &Result<Response, Error>) {
        permit.record(self.classify(result));
    }
}

impl<F, Response, Error> Classify<Response, Error> for F
where
    F: Fn(&Result<Response, Error>) -> Outcome,
{
    fn classify(&self, result: &Result<Response, Error>) -> Outcome {
        self(result)
    }
}

/// The default: every `Ok` is a success, every `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct EveryErr;

impl<Response, Error> Classify<Response, Error> for EveryErr {
    fn classify(&self, result: &Result<Response, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}
