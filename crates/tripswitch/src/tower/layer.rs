use std::fmt;

use super::{BoxRejections, CircuitBreakerService, EveryErr, RespondWith};
use crate::http_wait::BoundedWaits;
use crate::{CircuitBreaker, Rejected};

/// Puts a [`CircuitBreaker`] in front of a service. Every service the layer
/// makes shares the same breaker.
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = EveryErr, R = BoxRejections> {
    breaker: CircuitBreaker,
    classify: C,
    reject: R,
    bounded: Option<BoundedWaits>,
}

impl CircuitBreakerLayer {
    /// A layer where every `Err` of the inner service is a failure, and a
    /// refused call fails with a boxed [`Rejected`].
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classify: EveryErr,
            reject: BoxRejections,
            bounded: None,
        }
    }
}

impl<C, R> CircuitBreakerLayer<C, R> {
    /// Decide what counts as a failure with `classify` (a closure over
    /// `&Result<Response, Error>` returning an [`Outcome`](crate::Outcome), or any [`Classify`](super::Classify)).
    pub fn classify<C2>(self, classify: C2) -> CircuitBreakerLayer<C2, R> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
            reject: self.reject,
            bounded: self.bounded,
        }
    }

    /// Answer a refused call with the response `respond(rejected)` instead
    /// of an error. The service's error type becomes the inner service's
    /// (its errors are no longer boxed), so a layer over an axum route,
    /// whose error is `Infallible`, can go in `Router::layer` or
    /// `route_layer` directly.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    /// use tripswitch::CircuitBreaker;
    /// use tripswitch::tower::CircuitBreakerLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let breaker = CircuitBreaker::standard().build();
    /// breaker.force_open();
    /// let layer = CircuitBreakerLayer::new(breaker)
    ///     .reject_with(|rejected| format!("busy: {rejected}"));
    /// let mut service = layer.layer(service_fn(|name: &'static str| async move {
    ///     Ok::<_, Infallible>(format!("hello {name}"))
    /// }));
    /// let answer: Result<String, Infallible> = service.ready().await.unwrap().call("x").await;
    /// assert!(answer.unwrap().starts_with("busy: "));
    /// # }
    /// ```
    pub fn reject_with<F, Response>(self, respond: F) -> CircuitBreakerLayer<C, RespondWith<F>>
    where
        F: Fn(Rejected) -> Response,
    {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify: self.classify,
            reject: RespondWith(respond),
            bounded: self.bounded,
        }
    }

    /// Never make a request wait without bound: if the breaker is in wait
    /// mode without `max_wait` (the seed preset, `CircuitBreaker::new()`),
    /// its calls fail fast instead, and the first one logs a WARN saying so.
    /// A breaker that fails fast or bounds its waits is used as it is. The
    /// axum layer and the reqwest middleware always do this.
    pub fn bound_waits(mut self) -> Self {
        self.bounded = Some(BoundedWaits::default());
        self
    }

    /// The breaker the layer puts in front of services.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C: Clone, R: Clone> tower_layer::Layer<S> for CircuitBreakerLayer<C, R> {
    type Service = CircuitBreakerService<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(
            inner,
            self.breaker.clone(),
            self.classify.clone(),
            self.reject.clone(),
        )
        .bounded(self.bounded.clone())
    }
}

impl<C, R> fmt::Debug for CircuitBreakerLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}
