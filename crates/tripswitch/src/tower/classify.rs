//! The HTTP classifiers (feature `http`).

#[cfg(feature = "http")]
use crate::{Classify, Outcome, OwnedPermit};

/// HTTP (feature `http`): responses with a 5xx status are failures (a 503
/// storm opens the breaker), other responses succeed, and errors (refused
/// connections, timeouts) are failures.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerErrors;

#[cfg(feature = "http")]
impl<B, Error> Classify<http::Response<B>, Error> for ServerErrors {
    fn classify(&self, result: &Result<http::Response<B>, Error>) -> Outcome {
        match result {
            Ok(response) if response.status().is_server_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }

    fn record(&self, permit: OwnedPermit, result: &Result<http::Response<B>, Error>) {
        record_http(permit, result, |status| status.is_server_error());
    }
}

/// HTTP clients (feature `http`): the responses
/// [`is_failure_status`](crate::http::is_failure_status) names (5xx, 429,
/// 408) and errors (refused connections, timeouts) are failures; a failed
/// response is recorded as a [`FailedResponse`](crate::http::FailedResponse)
/// carrying its `Retry-After`. The reqwest middleware classifies alike.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct UpstreamErrors;

#[cfg(feature = "http")]
impl<B, Error> Classify<http::Response<B>, Error> for UpstreamErrors {
    fn classify(&self, result: &Result<http::Response<B>, Error>) -> Outcome {
        match result {
            Ok(response) if crate::http::is_failure_status(response.status()) => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }

    fn record(&self, permit: OwnedPermit, result: &Result<http::Response<B>, Error>) {
        record_http(permit, result, crate::http::is_failure_status);
    }
}

#[cfg(feature = "http")]
fn record_http<B, Error>(
    permit: OwnedPermit,
    result: &Result<http::Response<B>, Error>,
    fails: impl Fn(http::StatusCode) -> bool,
) {
    match result {
        Ok(response) if fails(response.status()) => permit.failure(
            &crate::http::FailedResponse::new(response.status(), response.headers()),
        ),
        Ok(_) => permit.success(),
        Err(_) => permit.record(Outcome::Failure),
    }
}
