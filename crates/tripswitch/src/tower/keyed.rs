use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{BoxError, BoxRejections, Classify, EveryErr, OnRejected, RespondWith};
use crate::http_wait::{Admission, BoundedWaits};
use crate::{Registry, Rejected};

/// Puts a breaker per key in front of a service: the key is computed from
/// each request (a host, an endpoint), and the breaker comes from a
/// [`Registry`]. With the `http` feature, `per_host` makes a layer with a
/// breaker per upstream `host:port`, and `authority` is a key function.
///
/// Because the breaker is only known once the request is, admission happens
/// in the response future, which then drives the inner service to readiness
/// and calls it (on a clone of the inner service, as tower's `Oneshot` does).
/// A refused call is answered as with
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer): a boxed
/// [`Rejected`] by default, or the response of
/// [`reject_with`](Self::reject_with).
pub struct KeyedCircuitBreakerLayer<K, F, C = EveryErr, R = BoxRejections> {
    registry: Registry<K>,
    key: F,
    classify: C,
    reject: R,
    bounded: Option<BoundedWaits>,
}

impl<K, F: Clone, C: Clone, R: Clone> Clone for KeyedCircuitBreakerLayer<K, F, C, R> {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            key: self.key.clone(),
            classify: self.classify.clone(),
            reject: self.reject.clone(),
            bounded: self.bounded.clone(),
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
            reject: BoxRejections,
            bounded: None,
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

#[cfg(feature = "http")]
impl<B> KeyedCircuitBreakerLayer<String, fn(&http::Request<B>) -> String> {
    /// A breaker per upstream host, from `registry`, keyed `host:port` as
    /// [`http::host_key`](crate::http::host_key) says (the `Host` header for
    /// a request whose URI has no host), like the reqwest middleware's
    /// `per_host`.
    ///
    /// Like [`bound_waits`](KeyedCircuitBreakerLayer::bound_waits), it never
    /// makes a request wait without bound.
    pub fn per_host(registry: Registry<String>) -> Self {
        Self::new(registry, host_of::<B>).bound_waits()
    }
}

#[cfg(feature = "http")]
fn host_of<B>(request: &http::Request<B>) -> String {
    crate::http::host_key(request.uri())
        .or_else(|| {
            let host = request.headers().get(http::header::HOST)?.to_str().ok()?;
            Some(host.to_owned())
        })
        .unwrap_or_default()
}

impl<K, F, C, R> KeyedCircuitBreakerLayer<K, F, C, R> {
    /// Decide what counts as a failure with `classify`.
    pub fn classify<C2>(self, classify: C2) -> KeyedCircuitBreakerLayer<K, F, C2, R> {
        KeyedCircuitBreakerLayer {
            registry: self.registry,
            key: self.key,
            classify,
            reject: self.reject,
            bounded: self.bounded,
        }
    }

    /// Never make a request wait without bound: a breaker in wait mode
    /// without `max_wait` fails fast instead (the first time logs a WARN).
    /// See [`CircuitBreakerLayer::bound_waits`](super::CircuitBreakerLayer::bound_waits).
    pub fn bound_waits(mut self) -> Self {
        self.bounded = Some(BoundedWaits::default());
        self
    }

    /// Answer a refused call with the response `respond(rejected)` instead
    /// of an error; the service's error type becomes the inner service's.
    pub fn reject_with<G, Response>(
        self,
        respond: G,
    ) -> KeyedCircuitBreakerLayer<K, F, C, RespondWith<G>>
    where
        G: Fn(Rejected) -> Response,
    {
        KeyedCircuitBreakerLayer {
            registry: self.registry,
            key: self.key,
            classify: self.classify,
            reject: RespondWith(respond),
            bounded: self.bounded,
        }
    }
}

impl<S, K, F: Clone, C: Clone, R: Clone> tower_layer::Layer<S>
    for KeyedCircuitBreakerLayer<K, F, C, R>
{
    type Service = KeyedCircuitBreakerService<S, K, F, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedCircuitBreakerService {
            inner,
            registry: self.registry.clone(),
            key: self.key.clone(),
            classify: self.classify.clone(),
            reject: self.reject.clone(),
            bounded: self.bounded.clone(),
        }
    }
}

impl<K, F, C, R> fmt::Debug for KeyedCircuitBreakerLayer<K, F, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakerLayer")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// The service of [`KeyedCircuitBreakerLayer`].
pub struct KeyedCircuitBreakerService<S, K, F, C = EveryErr, R = BoxRejections> {
    inner: S,
    registry: Registry<K>,
    key: F,
    classify: C,
    reject: R,
    bounded: Option<BoundedWaits>,
}

impl<S: Clone, K, F: Clone, C: Clone, R: Clone> Clone
    for KeyedCircuitBreakerService<S, K, F, C, R>
{
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            registry: self.registry.clone(),
            key: self.key.clone(),
            classify: self.classify.clone(),
            reject: self.reject.clone(),
            bounded: self.bounded.clone(),
        }
    }
}

impl<S: fmt::Debug, K, F, C, R> fmt::Debug for KeyedCircuitBreakerService<S, K, F, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakerService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The response future of [`KeyedCircuitBreakerService`].
pub type KeyedFuture<Response, Error = BoxError> =
    Pin<Box<dyn Future<Output = Result<Response, Error>> + Send>>;

impl<S, K, F, C, R, Request> tower_service::Service<Request>
    for KeyedCircuitBreakerService<S, K, F, C, R>
where
    S: tower_service::Service<Request> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    K: Eq + Hash + Clone,
    F: Fn(&Request) -> K,
    C: Classify<S::Response, S::Error> + Clone + Send + 'static,
    R: OnRejected<S::Response, S::Error> + Clone + Send + 'static,
    R::Error: Send + 'static,
    Request: Send + 'static,
{
    type Response = S::Response;
    type Error = R::Error;
    type Future = KeyedFuture<S::Response, R::Error>;

    /// Always ready: readiness (the breaker's, then the inner service's) is
    /// awaited in the response future, once the request's key is known.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let breaker = self.registry.get(&(self.key)(&request));
        let mut inner = self.inner.clone();
        let classify = self.classify.clone();
        let reject = self.reject.clone();
        let admission = match &self.bounded {
            Some(bounded) => bounded.admit(&breaker, "the keyed tower layer"),
            None => crate::http_wait::ask(&breaker),
        };
        Box::pin(async move {
            let admitted = match admission {
                Admission::Now(admitted) => admitted,
                Admission::Ask(acquire) => acquire.await,
            };
            let permit = match admitted {
                Ok(permit) => permit,
                Err(rejected) => return reject.rejected(rejected),
            };
            if let Err(error) = std::future::poll_fn(|cx| inner.poll_ready(cx)).await {
                return Err(reject.inner_error(error));
            }
            let result = inner.call(request).await;
            classify.record(permit, &result);
            result.map_err(|error| reject.inner_error(error))
        })
    }
}
