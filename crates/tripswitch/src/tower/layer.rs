use std::fmt;

use super::{CircuitBreakerService, EveryErr};
use crate::CircuitBreaker;

/// Puts a [`CircuitBreaker`] in front of a service. Every service the layer
/// makes shares the same breaker.
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = EveryErr> {
    breaker: CircuitBreaker,
    classify: C,
}

impl CircuitBreakerLayer {
    /// A layer where every `Err` of the inner service is a failure.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breaker,
            classify: EveryErr,
        }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Decide what counts as a failure with `classify` (a closure over
    /// `&Result<Response, Error>` returning an [`Outcome`](crate::Outcome), or any [`Classify`](super::Classify)).
    pub fn classify<C2>(self, classify: C2) -> CircuitBreakerLayer<C2> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classify,
        }
    }

    /// The breaker the layer puts in front of services.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, C: Clone> tower_layer::Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::new(inner, self.breaker.clone(), self.classify.clone())
    }
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}
