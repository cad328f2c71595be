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
    /// Redis answers again (a whole sync round went through): counts flow
    /// and the fleet's state is applied. A fleet state the server lost is
    /// put back from the state this process last applied (see
    /// [`StateRepaired`](Self::StateRepaired)), never from a local trip.
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
    /// Redis answered this breaker's exchange with an error (a key of the
    /// wrong type, a missing permission, out of memory, a Cluster
    /// redirection...). The connection stays up and the other breakers go
    /// on syncing; this one runs on its local state alone, and is retried at
    /// every sync. Said once per breaker and error code, not at every retry
    /// (the log line is rate-limited to one a minute per code).
    SyncFailed {
        /// The breaker.
        breaker: Arc<str>,
        /// The server's error reply.
        error: String,
        /// What to do about it.
        advice: &'static str,
    },
    /// This breaker's exchanges work again after a [`SyncFailed`](Self::SyncFailed).
    SyncRecovered {
        /// The breaker.
        breaker: Arc<str>,
    },
    /// This breaker's fleet settings here differ from those stored with the
    /// fleet's state (a rollout of new settings, or a misconfigured
    /// replica). **The stored settings win**: those of the replica that
    /// created the state (they stay until the state is gone: a day without
    /// a transition, or lost). This replica's counts, votes and probes are
    /// judged by them, so every replica reads and writes the same buckets.
    /// Said once per breaker and difference. Both are
    /// `probes|lease ms|open ms|max open ms|multiplier|bucket ms|buckets|minimum calls|failure rate|quorum`.
    SettingsDiffer {
        /// The breaker.
        breaker: Arc<str>,
        /// This replica's settings.
        ours: String,
        /// The fleet's (which apply).
        fleet: String,
    },
    /// The server's copy of this breaker's fleet state was lost, stale or
    /// unreadable, and was replaced by the state this process last applied
    /// (or reset to closed if it knew none). A missing state that was
    /// closed is put back without this event: an idle breaker's state
    /// expires after a day, which is routine.
    StateRepaired {
        /// The breaker.
        breaker: Arc<str>,
        /// What was wrong with the server's copy.
        what: &'static str,
    },
}

/// The listener type.
pub(crate) type FleetListener = Arc<dyn Fn(&FleetEvent) + Send + Sync>;
