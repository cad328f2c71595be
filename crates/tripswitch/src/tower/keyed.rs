use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{BoxError, Classify, EveryErr};
use crate::Registry;

/// Puts a breaker per key in front of a service: the key is computed from
/// each request (a host, an endpoint), and the breaker comes from a
/// [`Registry`]. With the `http` feature, [`authority`](Self::authority)
/// keys HTTP requests by their `host:port`.
///
/// Because the breaker is only known once the request is, admission happens
/// in the response future, which then drives the inner service to readiness
/// and calls it (on a clone of the inner service, as tower's `Oneshot` does).
pub struct KeyedCircuitBreakerLayer<K, F, C = EveryErr> {
    registry: Registry<K>,
    key: F,
    classify: C,
}

impl<K, F: Clone, C: Clone> Clone for KeyedCircuitBreakerLayer<K, F, C> {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            key: self.key.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<K, F> KeyedCircuitBreakerLayer<K, F> {
    /// Breakers from `registry`, chosen by `key(&request)`.
    pub fn new(registry: Registry<K>, key: F) -> Self {
        Self {
            registry,
            key,
            classify: EveryErr,
        }
    }
}

#[cfg(feature = "http")]
impl KeyedCircuitBreakerLayer<String, fn(&http::Request<()>) -> String> {
    /// The key of an HTTP request: its authority (`host:port`), or its host,
    /// or `""` for a request with neither.
    pub fn authority<B>(request: &http::Request<B>) -> String {
        request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                request
                    .headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    }
}

impl<K, F, C> KeyedCircuitBreakerLayer<K, F, C> {
    /// Decide what counts as a failure with `classify`.
    pub fn classify<C2>(self, classify: C2) -> KeyedCircuitBreakerLayer<K, F, C2> {
        KeyedCircuitBreakerLayer {
            registry: self.registry,
            key: self.key,
            classify,
        }
    }
}

impl<S, K, F: Clone, C: Clone> tower_layer::Layer<S> for KeyedCircuitBreakerLayer<K, F, C> {
    type Service = KeyedCircuitBreakerService<S, K, F, C>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedCircuitBreakerService {
            inner,
            registry: self.registry.clone(),
            key: self.key.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<K, F, C> fmt::Debug for KeyedCircuitBreakerLayer<K, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakerLayer")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// The service of [`KeyedCircuitBreakerLayer`].
pub struct KeyedCircuitBreakerService<S, K, F, C> {
    inner: S,
    registry: Registry<K>,
    key: F,
    classify: C,
}

impl<S: Clone, K, F: Clone, C: Clone> Clone for KeyedCircuitBreakerService<S, K, F, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            registry: self.registry.clone(),
            key: self.key.clone(),
            classify: self.classify.clone(),
        }
    }
}

impl<S: fmt::Debug, K, F, C> fmt::Debug for KeyedCircuitBreakerService<S, K, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakerService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The response future of [`KeyedCircuitBreakerService`].
pub type KeyedFuture<Response> = Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send>>;

impl<S, K, F, C, Request> tower_service::Service<Request> for KeyedCircuitBreakerService<S, K, F, C>
where
    S: tower_service::Service<Request> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Into<BoxError> + Send + 'static,
    K: Eq + Hash + Clone,
    F: Fn(&Request) -> K,
    C: Classify<S::Response, S::Error> + Clone + Send + 'static,
    Request: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = KeyedFuture<S::Response>;

    /// Always ready: readiness (the breaker's, then the inner service's) is
    /// awaited in the response future, once the request's key is known.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let breaker = self.registry.get(&(self.key)(&request));
        let mut inner = self.inner.clone();
        let classify = self.classify.clone();
        Box::pin(async move {
            let permit = breaker.acquire_owned().await?;
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let result = inner.call(request).await;
            permit.record(classify.classify(&result));
            result.map_err(Into::into)
        })
    }
}
