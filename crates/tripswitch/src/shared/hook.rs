//! What a shared store is told: the seam the state machine calls, kept apart
//! from [`SharedControl`](super::SharedControl) (which calls the state
//! machine) so that the two do not import each other.

use crate::State;
use crate::events::TransitionReason;

/// A store that shares a breaker's state with other processes. See the
/// [module documentation](crate::shared).
pub trait SharedState: Send + Sync + 'static {
    /// The breaker moved from `from` to `to`. Called on the thread that made
    /// the transition, after the state changed and before waiting calls are
    /// released: keep it short and never block (hand the news to a
    /// background task). A panic in it is contained and logged.
    fn transitioned(&self, from: State, to: State, reason: TransitionReason);
}
