//! What a fleet tells its listener.

use std::sync::Arc;
use std::time::Duration;

/// Something that happened between this process and the fleet. Every event
/// is also logged through `tracing` (warnings for [`Unreachable`](Self::Unreachable)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FleetEvent {
    /// Redis could not be reached (or did not answer within the command
    /// timeout): every breaker of this process runs on its local state
    /// alone until it comes back.
    Unreachable {
        /// What failed.
        error: String,
    },
    /// Redis answers again: state is synced both ways (a lost open period
    /// is restored from this process's local state).
    Reconnected,
    /// The fleet opened this breaker (a trip here or on another replica).
    Opened {
        /// The breaker.
        breaker: Arc<str>,
        /// The rest of the fleet's open period.
        remaining: Duration,
    },
    /// This process won the fleet's half-open probes for a breaker.
    ProbesGranted {
        /// The breaker.
        breaker: Arc<str>,
    },
    /// The fleet closed this breaker again.
    Closed {
        /// The breaker.
        breaker: Arc<str>,
    },
}

/// The listener type.
pub(crate) type FleetListener = Arc<dyn Fn(&FleetEvent) + Send + Sync>;
