//! The part of a breaker that only a breaker that leaves its first state
//! needs, allocated once, together, on first use (see [`Cold`]).

use super::PeriodWakers;
use super::deadline::AtomicDeadline;
use super::freeze::FreezeSlot;
use super::probe_tally::ProbeTally;
use crate::loom::{AtomicBool, AtomicU32, AtomicU64, Mutex, OnceLock};
use crate::metrics::Counts;
use crate::waiters::Waiters;

/// What a breaker needs only once it has left its first state, queued a
/// call or frozen: one allocation, made by the first transition (or the
/// first call that waits) and kept afterwards. A breaker that stays closed
/// keeps a 16-byte cell for all of it (a [`Lazy`](crate::loom::Lazy)); one
/// cell per value, as before, cost 16 bytes each.
///
/// The trade-off: the first transition allocates all of it at once (the
/// half-open account and the wakers' cells included, whether this breaker
/// uses them or not), and every access to it is one pointer load more than
/// a field of [`Core`](super::Core): all of them are on cold paths
/// (transitions, waiting, freezes, metrics reads), none on the closed path.
#[derive(Default)]
pub(super) struct Cold {
    /// The queue of waiting calls.
    pub(super) waiters: Waiters,
    /// The current period's freeze slot.
    pub(super) freeze: Mutex<Option<FreezeSlot>>,
    /// The totals when the current state was entered. Before this block
    /// exists the state is the first one, and the counts since it are the
    /// totals.
    pub(super) state_since: Mutex<Counts>,
    /// The half-open state's account of its calls, for a budget or a rate
    /// judge (see `probe_tally.rs`); untouched by other breakers. A lock:
    /// the half-open state is the cold path, and the account's fields
    /// change together.
    pub(super) probe_tally: Mutex<ProbeTally>,
    /// The wakers a period hands to its futures (see [`PeriodWakers`]),
    /// made the first time a period needs one.
    pub(super) wakers: OnceLock<PeriodWakers>,
    /// The open period a shared store asked for (nanoseconds), read when a
    /// transition with [`TransitionReason::Shared`](crate::TransitionReason::Shared)
    /// opens the breaker: stored (Release) before that transition is
    /// applied, loaded (Acquire) by the thread that applied it.
    pub(super) shared_open_for: AtomicU64,
    /// The half-open lease a shared store granted (nanoseconds), read when
    /// a transition with `TransitionReason::Shared` half-opens it; same
    /// orderings as `shared_open_for`.
    pub(super) shared_half_open_for: AtomicU64,
    /// The current half-open state is a shared store's lease (entered with
    /// `TransitionReason::Shared`): when its bound passes it ends, idle or
    /// not. Stored (Release) by the transition's thread before the state's
    /// deadline, loaded (Acquire) when the deadline has passed.
    pub(super) half_open_leased: AtomicBool,
    /// When a bounded half-open state gives up (`HalfOpen::max_duration`);
    /// none otherwise. Same orderings as `Core::open_until`.
    pub(super) half_open_until: AtomicDeadline,
    /// Successful probes in the current half-open state. Reset (Release)
    /// when the state is entered; counted (AcqRel) by probes that found
    /// their own generation current, and the close it may lead to is
    /// applied in that generation only (`Core::apply` refuses a stale one).
    pub(super) half_open_successes: AtomicU32,
    /// Openings since the breaker was last closed (drives backoff).
    /// Written only by the thread that performed the transition (the CAS
    /// on `word` makes it the only one), so `Relaxed` suffices.
    pub(super) openings: AtomicU32,
    /// When an async freeze must be over at the latest (`max_freeze` after
    /// it started), in nanoseconds on the clock; none when no
    /// async freeze runs. Read by waiting calls to set their alarms (see
    /// [`period_deadline`](Core::period_deadline)); Release/Acquire, a hint
    /// that the freeze slot's lock confirms.
    pub(super) freeze_bound: AtomicDeadline,
}
