//! What the local breaker tells the fleet: the `SharedState` side of the seam.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tripswitch::State;
use tripswitch::events::TransitionReason;
use tripswitch::shared::SharedState;

use crate::script::ProbeOutcome;

/// News from one breaker, waiting for the sync task.
#[derive(Debug, Default)]
pub(crate) struct News {
    tripped: AtomicBool,
    /// The breaker moved by itself (not on the fleet's orders) since the
    /// sync task last looked: it no longer holds the fleet's state.
    alone: AtomicBool,
    outcome: Mutex<Option<ProbeOutcome>>,
}

impl News {
    /// Takes the trip vote, if the breaker tripped since the last look.
    pub(crate) fn take_trip(&self) -> bool {
        self.tripped.swap(false, Ordering::AcqRel)
    }

    /// Whether the breaker moved by itself since the last look.
    pub(crate) fn take_alone(&self) -> bool {
        self.alone.swap(false, Ordering::AcqRel)
    }

    /// Whether a trip vote or a probe result waits to be sent.
    pub(crate) fn pending(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
            || self
                .outcome
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
    }

    /// Puts a trip vote back (it could not be published).
    pub(crate) fn put_trip_back(&self) {
        self.tripped.store(true, Ordering::Release);
    }

    pub(crate) fn take_outcome(&self) -> Option<ProbeOutcome> {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn set_outcome(&self, outcome: ProbeOutcome) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    }

    pub(crate) fn put_outcome_back(&self, outcome: ProbeOutcome) {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(outcome);
    }
}

/// Called by the breaker on every transition: records what the fleet must
/// hear and wakes the sync task. Never blocks, never touches the network.
pub(crate) struct Hook {
    pub(crate) news: Arc<News>,
    pub(crate) wake: Arc<Notify>,
}

impl SharedState for Hook {
    fn transitioned(&self, from: State, to: State, reason: TransitionReason) {
        if reason != TransitionReason::Shared {
            self.news.alone.store(true, Ordering::Release);
        }
        match (from, to, reason) {
            (_, State::Open, TransitionReason::Tripped) => {
                self.news.tripped.store(true, Ordering::Release);
            }
            (State::HalfOpen, State::Closed, TransitionReason::ProbesSucceeded) => {
                self.news.set_outcome(ProbeOutcome::Closed);
            }
            (
                State::HalfOpen,
                State::Open,
                TransitionReason::ProbeFailed | TransitionReason::HalfOpenTimedOut,
            ) => {
                self.news.set_outcome(ProbeOutcome::Opened);
            }
            _ => return,
        }
        self.wake.notify_one();
    }
}
