//! The HTTP integrations' rule for breakers that would make a request wait
//! without bound while open (wait mode without `max_wait`, as the seed
//! preset): they fail fast instead, and say so once, at WARN.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{AcquireOwned, CircuitBreaker, OwnedPermit, Rejected};

/// How an HTTP integration asks a breaker for admission.
#[derive(Debug, Clone, Default)]
pub(crate) struct BoundedWaits {
    /// Whether the integration already warned about an unbounded breaker.
    warned: Arc<AtomicBool>,
}

/// What to do for one request.
pub(crate) enum Admission {
    /// Decided at once (fail-fast: the breaker would have waited unbounded).
    Now(Result<OwnedPermit, Rejected>),
    /// The breaker fails fast itself or bounds its waits: ask it as usual.
    Ask(AcquireOwned),
}

/// Admission asked the cheapest way that decides alike: a closed breaker
/// admits with one load, as `execute` does, instead of through the
/// waiting future's first poll (about 300 instructions more per request,
/// measured end to end by `benches/callgrind_http.sh`); anything else
/// takes the full path, which reads the clock (so a breaker whose timer
/// never fires still leaves Open at its deadline).
pub(crate) fn ask(breaker: &CircuitBreaker) -> Admission {
    match breaker.admit_if_closed() {
        Some(permit) => Admission::Now(Ok(permit)),
        None => Admission::Ask(breaker.acquire_owned()),
    }
}

impl BoundedWaits {
    pub(crate) fn admit(&self, breaker: &CircuitBreaker, integration: &str) -> Admission {
        if !breaker.waits_without_bound() {
            return ask(breaker);
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            crate::events::trace(|| {
                tracing::warn!(
                    breaker = breaker.name().unwrap_or(""),
                    "circuit breaker {:?} makes calls wait without bound while it is open; \
                 {integration} fails them fast instead, so that no request stalls for a whole \
                 open period. Give the breaker .fail_fast() or .max_wait(..), or use \
                 tripswitch::http::client_preset()",
                    breaker.name().unwrap_or("(unnamed)"),
                )
            });
        }
        Admission::Now(breaker.try_acquire_owned())
    }
}
