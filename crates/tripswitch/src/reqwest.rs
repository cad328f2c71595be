//! reqwest integration (feature `reqwest`): a
//! [`reqwest_middleware::Middleware`] that puts a breaker (or a breaker per
//! host) in front of a reqwest client. `reqwest_middleware` is re-exported,
//! so the versions match.
//!
//! ```no_run
//! use tripswitch::reqwest::reqwest_middleware::{ClientBuilder, reqwest};
//! use tripswitch::Registry;
//! use tripswitch::reqwest::CircuitBreakerMiddleware;
//!
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     // A breaker per host, named by it (the registry names breakers by key).
//!     .with(CircuitBreakerMiddleware::per_host(Registry::new(256, |_: &String| {
//!         tripswitch::http::client_preset().try_build().expect("valid settings")
//!     })))
//!     .build();
//! # drop(client);
//! ```
//!
//! Responses with a 5xx, 429 or 408 status and transport errors are failures
//! (see [`http::is_failure_status`](crate::http::is_failure_status); change
//! it with [`classify`](CircuitBreakerMiddleware::classify)). A failed
//! response is recorded as a [`FailedResponse`],
//! so its `Retry-After` can set the open period (as
//! [`http::client_preset`](crate::http::client_preset) does), and a
//! transport error as itself. A call the breaker refuses fails with
//! [`reqwest_middleware::Error::Middleware`] wrapping a
//! [`Rejected`]: [`rejection`] finds it.
//!
//! A request never waits without bound: a breaker in wait mode without
//! `max_wait` (the seed preset, `CircuitBreaker::new()`) is used fail-fast
//! by the middleware, which says so once at WARN. A breaker with `max_wait`
//! makes requests wait up to that long.

use std::fmt;
use std::sync::Arc;

use http::Extensions;
pub use reqwest_middleware;
use reqwest_middleware::reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};

use crate::http::{FailedResponse, is_failure_status};
use crate::http_wait::{Admission, BoundedWaits};
use crate::{CircuitBreaker, Outcome, Registry, Rejected};

type Classifier = dyn crate::Classify<Response, reqwest_middleware::Error> + Send + Sync;

/// Guards a reqwest client with one breaker, or one per host.
#[derive(Clone)]
pub struct CircuitBreakerMiddleware {
    breakers: Breakers,
    classify: Option<Arc<Classifier>>,
    waits: BoundedWaits,
}

#[derive(Debug, Clone)]
enum Breakers {
    One(CircuitBreaker),
    PerHost(Registry<String>),
}

impl CircuitBreakerMiddleware {
    /// Every request goes through `breaker`.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breakers: Breakers::One(breaker),
            classify: None,
            waits: BoundedWaits::default(),
        }
    }

    /// Each request goes through the breaker of its `host:port` (the
    /// scheme's default port when the URL has none), from `registry`: the
    /// same key as [`http::host_key`](crate::http::host_key) and the tower
    /// layer's `per_host`.
    pub fn per_host(registry: Registry<String>) -> Self {
        Self {
            breakers: Breakers::PerHost(registry),
            classify: None,
            waits: BoundedWaits::default(),
        }
    }

    /// Decide what counts as a failure with `classify` instead of the
    /// default (5xx, 429, 408 and transport errors). The closure is a
    /// [`Classify`](crate::Classify), the crate's one classifier trait; it
    /// is taken as a closure so that its argument's type need not be
    /// written.
    pub fn classify(
        mut self,
        classify: impl Fn(&Result<Response>) -> Outcome + Send + Sync + 'static,
    ) -> Self {
        self.classify = Some(Arc::new(classify));
        self
    }

    fn breaker_for(&self, request: &Request) -> CircuitBreaker {
        match &self.breakers {
            Breakers::One(breaker) => breaker.clone(),
            Breakers::PerHost(registry) => registry.get(&host_key(request.url())),
        }
    }

    fn outcome(&self, result: &Result<Response>) -> Outcome {
        match (&self.classify, result) {
            (Some(classify), _) => classify.classify(result),
            (None, Ok(response)) if is_failure_status(response.status()) => Outcome::Failure,
            (None, Ok(_)) => Outcome::Success,
            (None, Err(_)) => Outcome::Failure,
        }
    }
}

/// `host:port` of a URL, as [`http::host_key`](crate::http::host_key) gives it.
fn host_key(url: &reqwest_middleware::reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::new(),
    }
}

impl fmt::Debug for CircuitBreakerMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerMiddleware")
            .field("breakers", &self.breakers)
            .field("custom_classify", &self.classify.is_some())
            .finish()
    }
}

/// The rejection inside a reqwest-middleware error, if the breaker refused
/// the call (with the `axum` feature it is an `IntoResponse`: a 503 with
/// `Retry-After`).
pub fn rejection(error: &reqwest_middleware::Error) -> Option<&Rejected> {
    match error {
        reqwest_middleware::Error::Middleware(error) => error.downcast_ref::<Rejected>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

#[async_trait::async_trait]
impl Middleware for CircuitBreakerMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let breaker = self.breaker_for(&request);
        let admitted = match self.waits.admit(&breaker, "the reqwest middleware") {
            Admission::Now(admitted) => admitted,
            Admission::Ask(acquire) => acquire.await,
        };
        let permit = admitted.map_err(reqwest_middleware::Error::middleware)?;
        let result = next.run(request, extensions).await;
        match (self.outcome(&result), &result) {
            (Outcome::Failure, Ok(response)) => {
                permit.failure(&FailedResponse::new(response.status(), response.headers()))
            }
            (Outcome::Failure, Err(error)) => permit.failure(error),
            (outcome, _) => permit.record(outcome),
        }
        result
    }
}
