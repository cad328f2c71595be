//! What the HTTP integrations share (feature `http`): which responses are
//! failures, the failure value they record, how they key breakers by host,
//! and a preset for HTTP clients.
//!
//! - A response is a failure when its status is 5xx, `429 Too Many
//!   Requests` or `408 Request Timeout` ([`is_failure_status`]); the tower
//!   classifier [`UpstreamErrors`](crate::tower::UpstreamErrors) and the
//!   reqwest middleware count those and transport errors.
//! - Such a response is recorded as a [`FailedResponse`]: its status and its
//!   `Retry-After`, which an open period can follow
//!   (`trip.error::<FailedResponse>()` in
//!   [`open_for_fn`](crate::Builder::open_for_fn)), and which logs and
//!   listeners print.
//! - [`client_preset`]: fail fast, trip on 5 consecutive failures, stay open
//!   as long as the upstream's `Retry-After` says (else 5 s, doubling while
//!   probes fail, at most 60 s), one probe at a time.
//! - Per-host breakers use the key [`host_key`] gives: `host:port`, with
//!   the scheme's default port, alike in the tower and reqwest integrations.

use std::time::Duration;

use http::{HeaderMap, StatusCode, Uri, header};

use crate::{Builder, CircuitBreaker, HalfOpen};

/// Whether a response with this status counts as a failure: 5xx, `429 Too
/// Many Requests` and `408 Request Timeout` (the upstream is failing or
/// shedding load; other 4xx are the caller's mistakes).
pub fn is_failure_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// A response the HTTP integrations counted as a failure, as the breaker
/// records it: listeners, `on_error` and [`TripContext::error`](crate::TripContext::error)
/// see this value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedResponse {
    /// The response's status.
    pub status: StatusCode,
    /// Its `Retry-After`, when it gave one in seconds.
    pub retry_after: Option<Duration>,
}

impl FailedResponse {
    /// The failure a response with `status` and `headers` makes.
    pub fn new(status: StatusCode, headers: &HeaderMap) -> Self {
        Self {
            status,
            retry_after: retry_after(headers),
        }
    }
}

impl std::fmt::Display for FailedResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the upstream answered {}", self.status)?;
        if let Some(retry_after) = self.retry_after {
            write!(f, " (Retry-After: {}s)", retry_after.as_secs())?;
        }
        Ok(())
    }
}

impl std::error::Error for FailedResponse {}

/// A `Retry-After` header in seconds (`Retry-After: 120`). An HTTP date or
/// a malformed value gives `None`.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The key of a per-host breaker: `host:port`, the port being the scheme's
/// default when the URI has none (`http://a.example/` and
/// `http://a.example:80/` share a breaker), or `None` for a URI without a
/// host (a relative one; the tower integration then uses the `Host` header).
pub fn host_key(uri: &Uri) -> Option<String> {
    let host = uri.host()?;
    let port = uri.port_u16().or(match uri.scheme_str() {
        Some("https") | Some("wss") => Some(443),
        Some("http") | Some("ws") => Some(80),
        _ => None,
    });
    Some(match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The HTTP-client preset: fail fast (a caller is never held while the
/// upstream is down), trip after 5 consecutive failures, stay open for the
/// upstream's `Retry-After` when a [`FailedResponse`] gave one (between 1 s
/// and 60 s) or else 5 s, doubling each time a probe fails, at most 60 s;
/// then one probe at a time, which has 10 s to finish.
///
/// Name it and build it (`client_preset().name(host).try_build()`), or
/// change any setting first.
///
/// ```
/// use tripswitch::{CircuitBreaker, Registry};
///
/// let registry = Registry::new(256, |host: &String| {
///     tripswitch::http::client_preset().name(host.as_str()).try_build().expect("valid settings")
/// });
/// # drop(registry);
/// ```
pub fn client_preset() -> Builder {
    CircuitBreaker::standard()
        .consecutive_failures(5)
        .open_for_fn(open_period)
        .half_open(HalfOpen::probes(1).max_duration(Duration::from_secs(10)))
}

/// The preset's open period for a trip.
fn open_period(trip: &crate::TripContext<'_>) -> Duration {
    const MAX: Duration = Duration::from_secs(60);
    if let Some(hint) = trip.error::<FailedResponse>().and_then(|f| f.retry_after) {
        return hint.clamp(Duration::from_secs(1), MAX);
    }
    let doublings = trip.consecutive_openings().min(4);
    (Duration::from_secs(5) * 2u32.pow(doublings)).min(MAX)
}
