//! axum integration (feature `axum`): refused calls become
//! `503 Service Unavailable` responses.
//!
//! - [`layer`] puts a breaker in front of an axum route or router: 5xx
//!   responses are failures ([`ServerErrors`]), and a call the breaker
//!   refuses is answered with [`rejection_response`] without running the
//!   handler. The layer's error type is the route's, `Infallible`, so it goes
//!   straight into `Router::layer` or `route_layer`, no `HandleErrorLayer`.
//! - [`Rejected`] implements [`IntoResponse`], so a handler that calls a
//!   backend through a breaker (with [`CircuitBreaker::execute`], or through
//!   the `reqwest` middleware, see `reqwest::rejection`) can return the
//!   rejection as it is.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tripswitch::CircuitBreaker;
//!
//! let breaker = CircuitBreaker::standard().name("orders").consecutive_failures(5)
//!     .try_build().expect("valid settings");
//! let app: Router = Router::new()
//!     .route("/orders", get(|| async { "the orders" }))
//!     .route_layer(tripswitch::axum::layer(breaker));
//! # drop(app);
//! ```
//!
//! A response of one's own: `CircuitBreakerLayer::new(breaker).classify(ServerErrors)
//! .reject_with(|rejected| ...)` (see [`CircuitBreakerLayer::reject_with`]).

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::tower::{CircuitBreakerLayer, RespondWith, ServerErrors};
use crate::{CircuitBreaker, Rejected};

/// The layer [`layer`] makes: 5xx responses are failures, refused calls are
/// answered with [`rejection_response`].
pub type RouteLayer = CircuitBreakerLayer<ServerErrors, RespondWith<fn(Rejected) -> Response>>;

/// `breaker` in front of an axum route or router, with 5xx responses as
/// failures and refused calls answered by [`rejection_response`]. The
/// service's error type is the route's (`Infallible`).
///
/// A request never waits without bound: a breaker in wait mode without
/// `max_wait` (the seed preset) fails fast here, and the first rejection
/// logs a WARN saying so (see [`CircuitBreakerLayer::bound_waits`]).
pub fn layer(breaker: CircuitBreaker) -> RouteLayer {
    let respond: fn(Rejected) -> Response = rejection_response;
    CircuitBreakerLayer::new(breaker)
        .classify(ServerErrors)
        .reject_with(respond)
        .bound_waits()
}

/// The HTTP answer to a refused call: `503 Service Unavailable`, a
/// `Retry-After` header in whole seconds rounded up when the breaker knows
/// when it lets calls through again (none when it does not, e.g. forced
/// open), and a one-line `text/plain` body naming the breaker, which is the
/// rejection's message.
pub fn rejection_response(rejected: Rejected) -> Response {
    let mut response = Response::new(Body::from(format!("{rejected}\n")));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(retry_after) = rejected.retry_after() {
        let mut seconds = retry_after.as_secs();
        if retry_after.subsec_nanos() > 0 {
            seconds = seconds.saturating_add(1);
        }
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

impl IntoResponse for Rejected {
    /// See [`rejection_response`].
    fn into_response(self) -> Response {
        rejection_response(self)
    }
}
