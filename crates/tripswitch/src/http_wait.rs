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

impl BoundedWaits {
    pub(crate) fn admit(&self, breaker: &CircuitBreaker, integration: &str) -> Admission {
        if !breaker.waits_without_bound() {
            return Admission::Ask(breaker.acquire_owned());
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                breaker = breaker.name().unwrap_or(""),
                "circuit breaker {:?} makes calls wait without bound while it is open; \
                 {integration} fails them fast instead, so that no request stalls for a whole \
                 open period. Give the breaker .fail_fast() or .max_wait(..), or use \
                 tripswitch::http::client_preset()",
                breaker.name().unwrap_or("(unnamed)"),
            );
        }
        Admission::Now(breaker.try_acquire_owned())
    }
}
