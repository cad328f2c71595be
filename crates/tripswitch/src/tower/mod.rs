//! tower middleware (feature `tower`): a breaker in front of any `Service`.
//!
//! - [`CircuitBreakerLayer`] / [`CircuitBreakerService`]: one breaker shared
//!   by every clone of the service. Admission is decided in `poll_ready` and
//!   answered in `call`, as tower's load-shed does: in wait mode `poll_ready`
//!   is pending while the breaker is open and is woken when the breaker lets
//!   the call through (no polling loop, no timer); a refused call (fail-fast,
//!   or a bounded wait that ran out) makes `poll_ready` ready and `call`
//!   answer at once without running the inner service. By default that
//!   answer is an `Err` holding the boxed [`Rejected`]
//!   (tower's [`BoxError`], reach it with `downcast_ref`);
//!   [`CircuitBreakerLayer::reject_with`] answers with a response of one's
//!   own instead, and keeps the inner service's error type. The inner
//!   service's readiness is only polled once the breaker admitted the call.
//! - [`KeyedCircuitBreakerLayer`]: a breaker per key of the request (per host,
//!   say), from a [`Registry`](crate::Registry).
//! - A [`Classify`] decides which results are failures; with the `http`
//!   feature, `ServerErrors` counts HTTP 5xx responses as failures (for a
//!   server's own routes) and `UpstreamErrors` 5xx, 429 and 408 (for a
//!   client of an upstream), and `KeyedCircuitBreakerLayer::per_host` keys
//!   breakers `host:port`.
//!
//! A permit taken in `poll_ready` belongs to that clone of the service: if
//! the clone is dropped before `call`, the permit is dropped and its
//! half-open slot (if any) is freed at once. Calling `call` without a
//! successful `poll_ready` panics, as with tower's own middleware (see
//! [`CircuitBreakerService`]).
//!
//! ```
//! use std::convert::Infallible;
//! use tower::{Layer, Service, ServiceExt, service_fn};
//! use tripswitch::CircuitBreaker;
//! use tripswitch::tower::CircuitBreakerLayer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let layer = CircuitBreakerLayer::new(CircuitBreaker::standard().build());
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
mod reject;

/// The crate's one classifier trait, re-exported here for the layers.
pub use crate::classify::{Classify, EveryErr};
#[cfg(feature = "http")]
pub use classify::{ServerErrors, UpstreamErrors};
pub use future::ResponseFuture;
pub use keyed::{KeyedCircuitBreakerLayer, KeyedCircuitBreakerService, KeyedFuture};
pub use layer::CircuitBreakerLayer;
pub use reject::{BoxRejections, OnRejected, RespondWith};

use std::fmt;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use crate::http_wait::{self, BoundedWaits};
use crate::{AcquireOwned, CircuitBreaker, OwnedPermit, Rejected};

/// The error type of the middleware by default: tower's usual boxed error.
/// A rejection is a boxed [`Rejected`]; the inner
/// service's errors are boxed as they are.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service behind a circuit breaker. See the [module docs](self).
///
/// It is `Send` and `Sync` when the inner service, the classifier and the
/// rejection handler are, so it can go in an axum `Router::layer` or
/// `route_layer`.
///
/// # Panics
///
/// `call` panics ("poll_ready must be called first") when it was not
/// preceded by a `poll_ready` that returned `Ready(Ok(()))` on the same
/// clone, as tower's own middleware does: running the inner service
/// without the breaker's admission would bypass the breaker silently.
/// `ServiceExt::ready` and `oneshot`, and axum's routers, keep this
/// contract.
pub struct CircuitBreakerService<S, C = EveryErr, R = BoxRejections> {
    inner: S,
    breaker: CircuitBreaker,
    classify: C,
    reject: R,
    /// Set when the service never waits without bound (`bound_waits`).
    bounded: Option<BoundedWaits>,
    /// Behind a mutex only so that the service is `Sync` (the acquisition
    /// it may hold is not): it is reached through `get_mut`, never locked.
    admission: Mutex<Admission>,
}

/// The admission behind its mutex, without locking: the service is the
/// mutex's only owner, and a poisoned mutex (impossible, it is never
/// locked) holds a consistent value all the same.
fn unlocked(admission: &mut Mutex<Admission>) -> &mut Admission {
    admission.get_mut().unwrap_or_else(PoisonError::into_inner)
}

/// Where this clone of the service stands with the breaker.
enum Admission {
    Idle,
    Waiting(AcquireOwned),
    Admitted(OwnedPermit),
    /// Refused: `poll_ready` said ready, and `call` answers with the rejection.
    Rejected(Rejected),
}

impl<S, C, R> CircuitBreakerService<S, C, R> {
    /// `inner` behind `breaker`, with `classify` deciding what fails and
    /// `reject` answering the calls the breaker refuses.
    pub fn new(inner: S, breaker: CircuitBreaker, classify: C, reject: R) -> Self {
        Self {
            inner,
            breaker,
            classify,
            reject,
            bounded: None,
            admission: Mutex::new(Admission::Idle),
        }
    }

    pub(crate) fn bounded(mut self, bounded: Option<BoundedWaits>) -> Self {
        self.bounded = bounded;
        self
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

impl<S: Clone, C: Clone, R: Clone> Clone for CircuitBreakerService<S, C, R> {
    /// A clone shares the breaker but not this clone's admission: it starts
    /// without a permit.
    fn clone(&self) -> Self {
        Self::new(
            self.inner.clone(),
            self.breaker.clone(),
            self.classify.clone(),
            self.reject.clone(),
        )
        .bounded(self.bounded.clone())
    }
}

impl<S: fmt::Debug, C, R> fmt::Debug for CircuitBreakerService<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let admitted = self
            .admission
            .try_lock()
            .is_ok_and(|admission| matches!(*admission, Admission::Admitted(_)));
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker)
            .field("admitted", &admitted)
            .finish_non_exhaustive()
    }
}

impl<S, C, R, Request> tower_service::Service<Request> for CircuitBreakerService<S, C, R>
where
    S: tower_service::Service<Request>,
    C: Classify<S::Response, S::Error> + Clone,
    R: OnRejected<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = ResponseFuture<S::Future, C, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        loop {
            let admission = unlocked(&mut self.admission);
            match admission {
                // The first poll of the acquisition admits at once, rejects
                // (fail-fast) or queues (wait mode).
                Admission::Idle => {
                    let asked = match &self.bounded {
                        None => http_wait::ask(&self.breaker),
                        Some(bounded) => bounded.admit(&self.breaker, "the tower layer"),
                    };
                    match asked {
                        http_wait::Admission::Ask(acquire) => {
                            *admission = Admission::Waiting(acquire)
                        }
                        http_wait::Admission::Now(Ok(permit)) => {
                            *admission = Admission::Admitted(permit)
                        }
                        http_wait::Admission::Now(Err(rejected)) => {
                            *admission = Admission::Rejected(rejected);
                            return Poll::Ready(Ok(()));
                        }
                    }
                }
                Admission::Waiting(acquire) => match ready!(Pin::new(acquire).poll(cx)) {
                    Ok(permit) => *admission = Admission::Admitted(permit),
                    // Ready: `call` answers with the rejection, as tower's
                    // load-shed does (an error from `poll_ready` would mean
                    // the service is broken for good, and a `Buffer` or a
                    // balancer would drop it).
                    Err(rejected) => {
                        *admission = Admission::Rejected(rejected);
                        return Poll::Ready(Ok(()));
                    }
                },
                Admission::Rejected(_) => return Poll::Ready(Ok(())),
                // Only now is the inner service asked whether it is ready.
                Admission::Admitted(_) => {
                    let inner_ready = ready!(self.inner.poll_ready(cx));
                    let admission = unlocked(&mut self.admission);
                    return match inner_ready {
                        Ok(()) => Poll::Ready(Ok(())),
                        Err(error) => {
                            // The inner service failed: give the permit back
                            // unused rather than hold it.
                            *admission = Admission::Idle;
                            Poll::Ready(Err(self.reject.inner_error(error)))
                        }
                    };
                }
            }
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match std::mem::replace(unlocked(&mut self.admission), Admission::Idle) {
            Admission::Admitted(permit) => ResponseFuture::called(
                self.inner.call(request),
                permit,
                self.classify.clone(),
                self.reject.clone(),
            ),
            Admission::Rejected(rejected) => {
                ResponseFuture::rejected(rejected, self.classify.clone(), self.reject.clone())
            }
            Admission::Idle | Admission::Waiting(_) => {
                panic!("CircuitBreakerService::call: poll_ready must be called first")
            }
        }
    }
}
