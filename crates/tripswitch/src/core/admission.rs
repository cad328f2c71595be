//! Admission: whether a call may run now, must wait, or is refused.
//!
//! The happy path is [`Core::admit_fast`] (one atomic load); a fail-fast
//! outage's common case is [`Core::reject_while_open`] (no clock read);
//! everything else goes through [`Core::check`], which performs a
//! transition that is due before deciding.

use super::Moment;
use std::task::Waker;

use super::*;
use crate::error::{RejectReason, Rejected, Why};
use crate::events::EventKind;
use crate::loom::Ordering;
use crate::metrics::Tally;
use crate::state::{State, Word};
use crate::ticket::{Ticket, TicketKind};
use crate::waiters::{Grant, WaitFor};

/// Why a call could not be let through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// Open until this deadline on the clock; `None` when the end is not known in advance.
    Open(Option<Moment>),
    HalfOpenFull,
    Forced,
}

/// The answer of one admission check.
pub(super) enum Check {
    Admit(Ticket),
    Block(Block),
    /// The current period (open, or half-open with a maximum) has run out:
    /// perform the transition, then check again.
    Expired(State, u64),
}

/// What [`Core::admit_or_enqueue`] did.
pub(crate) enum Enqueued {
    Granted(Grant),
    Rejected(Rejected),
    Queued(crate::waiters::Key),
}

/// The most transitions one look at the breaker performs (an admission, a
/// state read). Periods that are over at once (a fake clock moved to the end
/// of time, where every deadline has passed) would otherwise chain
/// Open → HalfOpen → Open without end inside one call.
pub(super) const TRANSITIONS_PER_LOOK: usize = 8;

/// One fail-fast rejection in this many, per breaker and thread, reads the
/// clock although the period's timer has not fired (see
/// [`Core::reject_while_open`]).
const SAMPLE_EVERY: u32 = 1024;

/// Breakers whose rejections a thread counts at once (direct-mapped by the
/// breaker's address).
const SAMPLE_WAYS: usize = 16;

/// Whether the fail-fast rejection that follows `rejected` earlier ones of
/// this breaker on this thread (counted on the breaker's first stripe,
/// which this thread owns) reads the clock: the one that makes the count a
/// multiple of [`SAMPLE_EVERY`] does.
#[inline(always)]
fn sampled_on_own_stripe(rejected: u64) -> bool {
    (rejected + 1).is_multiple_of(u64::from(SAMPLE_EVERY))
}

/// A fail-fast rejection decided by [`Core::reject_while_open`]: the open
/// period's deadline, and whether the thread owns the first stripe, where
/// the rejection is then counted without testing again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenRejection {
    until: Moment,
    on_own_first_stripe: bool,
}

/// The clock sample of [`Core::reject_while_open`] on a thread that does not own the breaker's
/// first counter stripe: a count per breaker in a small table of the
/// thread's (direct-mapped by the breaker's address). A breaker whose way
/// another breaker holds takes the way over and reads the clock at once,
/// so two breakers that share a way and are called in turn read it on
/// every rejection: slower, never stuck. An address reused by a new
/// breaker inherits a count below the bound, which keeps the bound.
#[cold]
#[inline(never)]
fn sample_the_clock_elsewhere(breaker: usize) -> bool {
    thread_local! {
        static REJECTIONS: [std::cell::Cell<(usize, u32)>; SAMPLE_WAYS] =
            const { [const { std::cell::Cell::new((0, 0)) }; SAMPLE_WAYS] };
    }
    // The address's bits, mixed, pick the way (the top four of the product).
    let way = ((breaker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize;
    REJECTIONS.with(|ways| {
        let Some(slot) = ways.get(way) else {
            return true;
        };
        let (owner, count) = slot.get();
        let next = if owner == breaker {
            count + 1
        } else {
            SAMPLE_EVERY
        };
        if next >= SAMPLE_EVERY {
            slot.set((breaker, 0));
            true
        } else {
            slot.set((breaker, next));
            false
        }
    })
}

fn grant_of(ticket: Ticket) -> Grant {
    match ticket.kind() {
        TicketKind::Probe => Grant::Probe {
            generation: ticket.generation(),
        },
        kind => Grant::Admit {
            generation: ticket.generation(),
            kind,
        },
    }
}

impl Core {
    /// The happy path: a closed breaker lets the call in with one atomic load.
    /// Always inlined: it is most of a call's admission.
    #[inline(always)]
    pub(crate) fn admit_fast(&self) -> Option<Ticket> {
        self.admit_fast_or_word().ok()
    }

    /// [`admit_fast`](Self::admit_fast), returning the state word that
    /// refused the call, so that the next check need not load it again.
    #[inline(always)]
    pub(crate) fn admit_fast_or_word(&self) -> Result<Ticket, Word> {
        let word = self.load();
        if word.is(State::Closed) {
            Ok(if self.times_calls {
                self.timed_ticket(word.generation(), TicketKind::Counted)
            } else {
                Ticket::counted_in_closed(word)
            })
        } else {
            Err(word)
        }
    }

    pub(super) fn check(&self) -> Check {
        loop {
            let word = self.load();
            let generation = word.generation();
            return match word.state() {
                State::Closed | State::MetricsOnly => {
                    Check::Admit(self.ticket(generation, TicketKind::Counted))
                }
                State::Disabled => Check::Admit(self.ticket(generation, TicketKind::PassThrough)),
                State::ForcedOpen => Check::Block(Block::Forced),
                State::Open => {
                    // The full path always reads the clock: the shortcut
                    // that trusts the period's timer is `reject_while_open`,
                    // taken (and sampled) once per call before this.
                    match self.open_until.load(Ordering::Acquire) {
                        None => Check::Block(Block::Open(None)),
                        Some(until) if until.has_come(self.now()) => {
                            Check::Expired(State::Open, generation)
                        }
                        until => Check::Block(Block::Open(until)),
                    }
                }
                State::HalfOpen => {
                    let until = self.cold.half_open_until.load(Ordering::Acquire);
                    if until.is_some_and(|until| until.has_come(self.now())) {
                        return Check::Expired(State::HalfOpen, generation);
                    }
                    let limit = self.settings.half_open.probes.unwrap_or(u32::MAX);
                    // Calls already queued go first: a newcomer does not take
                    // a slot from under them.
                    if word.probes() >= limit || self.waiting() > 0 {
                        return Check::Block(Block::HalfOpenFull);
                    }
                    if self
                        .word
                        .compare_exchange_weak(
                            word.0,
                            word.with_probes(word.probes() + 1).0,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_err()
                    {
                        continue;
                    }
                    if !self.spend_budget(generation) {
                        self.give_back_slot(generation);
                        return Check::Block(Block::HalfOpenFull);
                    }
                    Check::Admit(self.ticket(generation, TicketKind::Probe))
                }
            };
        }
    }

    /// Whether a fail-fast call is refused because the breaker is open and
    /// its timer has not fired: the common case of an outage, kept short (no
    /// clock read, no admission loop). Returns the open period's deadline
    /// and where the rejection is counted; `None` means: take the full path.
    ///
    /// `word`: the state word, as the admission just loaded it.
    #[inline]
    pub(crate) fn reject_while_open(&self, word: Word) -> Option<OpenRejection> {
        if !word.is(State::Open) {
            return None;
        }
        let until = self.open_until.load(Ordering::Acquire)?;
        if self.period_due.load(Ordering::Acquire) {
            return None;
        }
        // The clock sample: at least every `SAMPLE_EVERY`th rejection of
        // this breaker on this thread takes the full path, which reads the
        // clock, so that a timer that never fires (its runtime shut down)
        // cannot keep the breaker open. The count is per breaker and
        // thread; it was once per thread only, and a thread that called two
        // open breakers in turn drew every 1,024th sample on the same one:
        // the other never read the clock (found by an adversarial review).
        // On the thread that owns the breaker's first counter stripe, the
        // count is that stripe's rejection count, which the rejection then
        // increments (`rejected_while_open`, without testing the owner
        // again). Rejections counted elsewhere while the breaker is open
        // (by the full path, which reads the clock itself) only move the
        // count along, so the bound holds.
        let on_own_first_stripe = match self.totals.own_first_count(Tally::Rejected) {
            Some(rejected) => {
                if sampled_on_own_stripe(rejected) {
                    return None;
                }
                true
            }
            None => {
                if sample_the_clock_elsewhere(self.id()) {
                    return None;
                }
                false
            }
        };
        Some(OpenRejection {
            until,
            on_own_first_stripe,
        })
    }

    /// The rejection [`reject_while_open`](Self::reject_while_open) decided
    /// on, built where the caller's result goes.
    #[inline]
    pub(crate) fn rejected_while_open(&self, open: OpenRejection) -> Rejected {
        if open.on_own_first_stripe {
            // The owner test was made a moment ago, on this thread: the
            // first stripe is still this thread's (an owner keeps it for life).
            self.totals.add_to_own_first(Tally::Rejected);
        } else {
            self.totals.add(Tally::Rejected);
        }
        self.rejected_counted(State::Open, RejectReason::Open, Some(open.until))
    }

    /// Admission for a caller that will not wait (`try_acquire`), with the
    /// async closed path's shortcuts: a closed breaker admits with one
    /// load ([`admit_fast`](Self::admit_fast)), inlined into the caller;
    /// anything else is [`try_admit_not_closed`](Self::try_admit_not_closed),
    /// out of line, so that the permit path costs no more than `execute`'s.
    #[inline(always)]
    pub(crate) fn try_admit_now(&self) -> Result<Ticket, Rejected> {
        match self.admit_fast_or_word() {
            Ok(ticket) => Ok(ticket),
            Err(word) => {
                if self.settings.fail_fast
                    && let Some(open) = self.reject_while_open(word)
                {
                    return Err(self.rejected_while_open(open));
                }
                self.try_admit_not_closed()
            }
        }
    }

    /// [`try_admit_now`](Self::try_admit_now) when neither the closed
    /// admission nor the short path of a fail-fast outage answered: the
    /// full admission. It must not ask the short path again: that would
    /// draw another clock sample, and a sampled rejection (the one that
    /// lets a breaker whose timer never fires notice the end of its period)
    /// would be refused by the second draw.
    #[inline(never)]
    fn try_admit_not_closed(&self) -> Result<Ticket, Rejected> {
        self.try_admit().map_err(|block| self.reject(block))
    }

    /// Admission without waiting: performs any transition that is due
    /// (an open period that ran out) and drives an async freeze once.
    pub(crate) fn try_admit(&self) -> Result<Ticket, Block> {
        for _ in 0..TRANSITIONS_PER_LOOK {
            match self.check() {
                Check::Admit(ticket) => return Ok(ticket),
                Check::Expired(state, generation) => self.period_elapsed(state, generation),
                Check::Block(Block::Open(None)) => {
                    if !self.drive_freeze() {
                        return Err(Block::Open(None));
                    }
                }
                Check::Block(block) => return Err(block),
            }
        }
        Err(self.block_as_is())
    }

    /// Why a call is blocked in the current state, without performing any
    /// transition (see [`TRANSITIONS_PER_LOOK`]).
    pub(super) fn block_as_is(&self) -> Block {
        match self.load().state() {
            State::ForcedOpen => Block::Forced,
            State::HalfOpen => Block::HalfOpenFull,
            _ => Block::Open(self.open_until.load(Ordering::Acquire)),
        }
    }

    /// Admission for a call that is willing to wait: admitted now, rejected
    /// now, or queued. The queue lock is held while the state is checked, so
    /// a transition that releases waiters cannot slip between the check and
    /// the queueing.
    pub(crate) fn admit_or_enqueue(&self, wait_for: WaitFor, waker: &Waker) -> Enqueued {
        for look in 1..=TRANSITIONS_PER_LOOK {
            match wait_for {
                WaitFor::Call => match self.try_admit() {
                    Ok(ticket) => return Enqueued::Granted(grant_of(ticket)),
                    Err(block) if self.settings.fail_fast => {
                        return Enqueued::Rejected(self.reject(block));
                    }
                    Err(_) => {}
                },
                WaitFor::Unfrozen => {
                    self.refresh(true);
                    if !self.load().state().is_open() {
                        return Enqueued::Granted(Grant::Unfrozen);
                    }
                }
            }
            let mut queue = self.waiters().lock();
            let check = match wait_for {
                WaitFor::Call => self.check(),
                WaitFor::Unfrozen => match self.load() {
                    w if !w.state().is_open() => return Enqueued::Granted(Grant::Unfrozen),
                    _ => Check::Block(Block::Forced),
                },
            };
            let check = match check {
                // The last look queues the call as the state is (its alarm
                // performs the transition on its next poll).
                Check::Expired(..) if look == TRANSITIONS_PER_LOOK => {
                    Check::Block(self.block_as_is())
                }
                check => check,
            };
            match check {
                Check::Admit(ticket) => return Enqueued::Granted(grant_of(ticket)),
                Check::Expired(..) => continue,
                Check::Block(block) => {
                    if wait_for == WaitFor::Call
                        && self
                            .settings
                            .max_waiters()
                            .is_some_and(|max| queue.calls() >= max)
                    {
                        drop(queue);
                        let _ = block;
                        return Enqueued::Rejected(self.reject_with(RejectReason::TooManyWaiters));
                    }
                    let key = queue.push(wait_for, waker);
                    // A probe slot freed while this call queued: hand it
                    // out now (see `release_probe`).
                    let word = self.load();
                    if wait_for == WaitFor::Call && word.state() == State::HalfOpen {
                        let wakers = self.grant_probes_locked(&mut queue, word.generation());
                        drop(queue);
                        wakers.into_iter().for_each(Waker::wake);
                    }
                    return Enqueued::Queued(key);
                }
            }
        }
        // Not reached: the last look always queues or decides. Refusing is
        // the safe answer all the same.
        Enqueued::Rejected(self.reject(self.block_as_is()))
    }

    /// The ticket a waiter holds once granted.
    pub(crate) fn ticket_for(&self, grant: Grant) -> Ticket {
        match grant {
            Grant::Admit { generation, kind } => self.ticket(generation, kind),
            Grant::Probe { generation } => self.ticket(generation, TicketKind::Probe),
            Grant::Unfrozen => self.ticket(self.load().generation(), TicketKind::Released),
        }
    }

    /// A waiter left the queue without its grant (dropped, or timed out). If
    /// it may have been the one woken to poll the freeze, wake the next.
    pub(crate) fn waiter_left(&self) {
        if self.freeze_woken.load(Ordering::SeqCst) {
            self.waiters().wake_first_except(&self.wakers().freeze);
        }
    }

    /// Gives back what a waiter was granted but will not use.
    pub(crate) fn give_back(&self, grant: Grant) {
        if let Grant::Probe { generation } = grant {
            self.return_probe(generation);
        }
    }

    /// Refuses a call: counts it, tells listeners, and says why.
    pub(crate) fn reject(&self, block: Block) -> Rejected {
        let (state, reason, deadline) = match block {
            Block::Open(deadline) => (State::Open, RejectReason::Open, deadline),
            // The best bound known: when the half-open state decides at the
            // latest (its maximum duration), if it has one.
            Block::HalfOpenFull => (
                State::HalfOpen,
                RejectReason::HalfOpenFull,
                self.cold.half_open_until.load(Ordering::Acquire),
            ),
            Block::Forced => (State::ForcedOpen, RejectReason::ForcedOpen, None),
        };
        self.rejected(state, reason, deadline)
    }

    /// Refuses a call for a reason of its own (a wait that ran out, a full queue).
    pub(crate) fn reject_with(&self, reason: RejectReason) -> Rejected {
        let state = self.load().state();
        let deadline = self
            .open_until
            .load(Ordering::Acquire)
            .filter(|_| state == State::Open);
        self.rejected(state, reason, deadline)
    }

    #[inline(always)]
    pub(super) fn rejected(
        &self,
        state: State,
        reason: RejectReason,
        deadline: Option<Moment>,
    ) -> Rejected {
        self.totals.add(Tally::Rejected);
        self.rejected_counted(state, reason, deadline)
    }

    /// [`rejected`](Self::rejected), the rejection counted already.
    #[inline(always)]
    fn rejected_counted(
        &self,
        state: State,
        reason: RejectReason,
        deadline: Option<Moment>,
    ) -> Rejected {
        // The level is asked first, and the line written out of line: the
        // guard against a panicking subscriber costs a call, which a
        // rejection pays only when DEBUG lines are wanted.
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            self.trace_rejection(state, reason);
        }
        if self.has_listeners {
            self.emit_rejection(reason);
        }
        Rejected {
            deadline: deadline.map_or(0, |until| self.anchor.anchor(until.nanos())),
            source: self.reject_source.clone(),
            why: Why::new(state, reason),
            clock: match deadline {
                Some(_) => self.anchor.kind(),
                None => ClockKind::Unknown,
            },
        }
    }

    /// The rejection's event, out of line: the event is built only when
    /// someone listens.
    #[inline(never)]
    fn emit_rejection(&self, reason: RejectReason) {
        self.emit_to_listeners(EventKind::Rejected { reason }, None);
    }

    #[cold]
    #[inline(never)]
    fn trace_rejection(&self, state: State, reason: RejectReason) {
        crate::events::trace(
            || tracing::debug!(breaker = self.name().unwrap_or(""), %state, %reason, "tripswitch: call rejected"),
        );
    }
}
