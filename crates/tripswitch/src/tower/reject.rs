use crate::Rejected;

use super::BoxError;

/// What the tower service answers when its breaker refuses a call, and what
/// its error type is.
///
/// Two implementations ship with the crate: [`BoxRejections`] (the default:
/// the service's error is [`BoxError`], a rejection is a boxed
/// [`Rejected`]) and [`RespondWith`] (a rejection is answered with a
/// response built by a function, and the service keeps the inner service's
/// error type, so an axum route's `Infallible` stays `Infallible`).
pub trait OnRejected<Response, Error> {
    /// The error type of the service.
    type Error;

    /// The answer to a call the breaker refused.
    fn rejected(&self, rejected: Rejected) -> Result<Response, Self::Error>;

    /// The inner service's error, as the service's error.
    fn inner_error(&self, error: Error) -> Self::Error;
}

/// The default [`OnRejected`]: a rejection is an `Err` holding a boxed
/// [`Rejected`] (reach it with `downcast_ref`), and the inner service's errors
/// are boxed as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoxRejections;

impl<Response, Error: Into<BoxError>> OnRejected<Response, Error> for BoxRejections {
    type Error = BoxError;

    fn rejected(&self, rejected: Rejected) -> Result<Response, BoxError> {
        Err(Box::new(rejected))
    }

    fn inner_error(&self, error: Error) -> BoxError {
        error.into()
    }
}

/// An [`OnRejected`] that answers a rejection with the response its
/// function builds; the service's error type is the inner service's. Made by
/// [`CircuitBreakerLayer::reject_with`](super::CircuitBreakerLayer::reject_with).
#[derive(Clone, Copy)]
pub struct RespondWith<F>(pub(crate) F);

impl<F, Response, Error> OnRejected<Response, Error> for RespondWith<F>
where
    F: Fn(Rejected) -> Response,
{
    type Error = Error;

    fn rejected(&self, rejected: Rejected) -> Result<Response, Error> {
        Ok((self.0)(rejected))
    }

    fn inner_error(&self, error: Error) -> Error {
        error
    }
}

impl<F> std::fmt::Debug for RespondWith<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RespondWith").finish_non_exhaustive()
    }
}
