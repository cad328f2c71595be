//! tower middleware (feature `tower`): a breaker in front of any `Service`.
//!
//! - [`CircuitBreakerLayer`] / [`CircuitBreakerService`]: one breaker shared
//!   by every clone of the service. Admission happens in `poll_ready`: in
//!   wait mode it is pending while the breaker is open and is woken when the
//!   breaker lets the call through (no polling loop, no timer); in fail-fast
//!   mode it returns the [`Rejected`](crate::Rejected) error, boxed (tower's
//!   `BoxError`), which callers can `downcast_ref`. The inner service's
//!   readiness is only polled once the breaker admitted the call.
//! - [`KeyedCircuitBreakerLayer`]: a breaker per key of the request (per host,
//!   say), from a [`Registry`](crate::Registry).
//! - A [`Classify`] decides which results are failures; with the `http`
//!   feature, [`ServerErrors`] counts HTTP 5xx responses as failures.
//!
//! A permit taken in `poll_ready` belongs to that clone of the service: if
//! the clone is dropped before `call`, the permit is dropped and its
//! half-open slot (if any) is freed at once.
//!
//! ```
//! use std::convert::Infallible;
//! use tower::{Layer, Service, ServiceExt, service_fn};
//! use tripswitch::CircuitBreaker;
//! use tripswitch::tower::CircuitBreakerLayer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let layer = CircuitBreakerLayer::new(CircuitBreaker::builder().fail_fast().build());
//! let mut service = layer.layer(service_fn(|name: &'static str| async move {
//!     Ok::<_, Infallible>(format!("hello {name}"))
//! }));
//! let answer = service.ready().await?.call("tower").await?;
//! assert_eq!(answer, "hello tower");
//! # Ok(()) }
//! ```

mod classify;
mod future;
mod keyed;
mod layer;

#[cfg(feature = "http")]
pub use classify::ServerErrors;
pub use classify::{Classify, EveryErr};
pub use future::ResponseFuture;
pub use keyed::{KeyedCircuitBreakerLayer, KeyedCircuitBreakerService, KeyedFuture};
pub use layer::CircuitBreakerLayer;

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::{AcquireOwned, CircuitBreaker, OwnedPermit};

/// The error type of the middleware: tower's usual boxed error. A rejection
/// is a boxed [`Rejected`](crate::Rejected); the inner service's errors are
/// boxed as they are.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service behind a circuit breaker. See the [module docs](self).
pub struct CircuitBreakerService<S, C = EveryErr> {
    inner: S,
    breaker: CircuitBreaker,
    classify: C,
    admission: Admission,
}

/// Where this clone of the service stands with the breaker.
enum Admission {
    Idle,
    Waiting(AcquireOwned),
    Admitted(OwnedPermit),
}

impl<S, C> CircuitBreakerService<S, C> {
    /// `inner` behind `breaker`, with `classify` deciding what fails.
    pub fn new(inner: S, breaker: CircuitBreaker, classify: C) -> Self {
        Self {
            inner,
            breaker,
            classify,
            admission: Admission::Idle,
        }
    }

    /// The breaker in front of the service.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone, C: Clone> Clone for CircuitBreakerService<S, C> {
    /// A clone shares the breaker but not this clone's admission: it starts
    /// without a permit.
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
            admission: Admission::Idle,
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .field(
                "admitted",
                &matches!(self.admission, Admission::Admitted(_)),
            )
            .finish_non_exhaustive()
    }
}

impl<S, C, Request> tower_service::Service<Request> for CircuitBreakerService<S, C>
where
    S: tower_service::Service<Request>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            match &mut self.admission {
                // The first poll of the acquisition admits at once, rejects
                // (fail-fast) or queues (wait mode).
                Admission::Idle => {
                    self.admission = Admission::Waiting(self.breaker.acquire_owned())
                }
                Admission::Waiting(acquire) => {
                    let admitted = ready!(Pin::new(acquire).poll(cx));
                    match admitted {
                        Ok(permit) => self.admission = Admission::Admitted(permit),
                        Err(rejected) => {
                            self.admission = Admission::Idle;
                            return Poll::Ready(Err(Box::new(rejected)));
                        }
                    }
                }
                // Only now is the inner service asked whether it is ready.
                Admission::Admitted(_) => return self.inner.poll_ready(cx).map_err(Into::into),
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let permit = match std::mem::replace(&mut self.admission, Admission::Idle) {
            Admission::Admitted(permit) => Some(permit),
            other => {
                self.admission = other;
                None
            }
        };
        ResponseFuture::new(self.inner.call(request), permit, self.classify.clone())
    }
}
