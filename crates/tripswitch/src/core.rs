//! The state machine: admission, recording, transitions and the freeze.
//!
//! This is the one seam behind which the breaker's state lives. `execute`,
//! permits and (later) other front ends only call [`Core::admit_fast`],
//! [`Core::try_admit`], the [`Wait`](crate::wait::Wait) future and
//! [`Core::record`].
//!
//! All hot state is in atomics: one packed [`Word`] (state, probes in
//! flight, generation), the deadlines, and the policies' counters. Locks
//! (the waiter queue, the freeze slot) are short, never held across an
//! `.await` nor while user code runs.

use std::any::{Any, TypeId};
use std::fmt;
use std::num::NonZeroU64;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::clock::{Clock, nanos};
use crate::clock::{ClockAnchor, ClockKind, ClockReader, Reading};
use crate::error::{RejectReason, RejectSource, Rejected, Why};
use crate::events::{
    ErrorCallback, Event, EventKind, Listener, TransitionReason, call_guarded, unless_reentered,
};
use crate::half_open::HalfOpen;
use crate::metrics::{Counts, Metrics, Tally, Totals};
use crate::open_period::{AnyDebug, FreezeFuture, OpenPeriod, PeriodEnd, TripContext};
use crate::policy::{CallRecord, ConsecutiveState, CountRing, Policy, RateState, TimeBuckets};
use crate::shared::SharedState;
use crate::state::{State, Word};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering, Weak, lock};
use crate::waiters::{Grant, Locked, WaitFor, Waiters};

/// "No deadline": the open period ends with a future, or no period is running.
const NO_DEADLINE: u64 = u64::MAX;

/// A predicate over a type-erased error.
pub(crate) type ErasedPredicate = Arc<dyn Fn(&dyn Any) -> bool + Send + Sync>;

/// An error-type rule from [`Builder::ignore_errors`](crate::Builder::ignore_errors).
#[derive(Clone)]
pub(crate) struct ErrorRule {
    pub(crate) type_id: TypeId,
    pub(crate) ignore: ErasedPredicate,
}

/// Everything the builder decided.
pub(crate) struct Settings {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) fail_fast: bool,
    pub(crate) max_wait: Option<Duration>,
    pub(crate) max_waiters: Option<usize>,
    pub(crate) open_period: OpenPeriod,
    /// The longest an async freeze may last before the period ends anyway.
    pub(crate) max_freeze: Duration,
    pub(crate) half_open: HalfOpen,
    pub(crate) retry_after_freeze: bool,
    pub(crate) seed_accounting: bool,
    pub(crate) slow_after: Option<Duration>,
    pub(crate) error_rules: Box<[ErrorRule]>,
    pub(crate) on_error: ErrorCallback,
    pub(crate) listeners: Box<[Listener]>,
    pub(crate) shared: Option<Arc<dyn SharedState>>,
}

/// How a call's run is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TicketKind {
    /// Counted by the policies of its generation.
    Counted,
    /// A half-open probe holding a slot.
    Probe,
    /// Released from a freeze (or a retry) under the seed's accounting: only totals.
    Released,
    /// Let through by a disabled breaker: nothing is recorded.
    PassThrough,
}

/// A call's admission: which generation let it in, and how it counts.
///
/// Sixteen bytes, and `Option<Ticket>` too: it is copied on every call, and
/// two words travel in registers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    /// The generation, shifted left by [`KIND_BITS`], with the kind plus one
    /// in the low bits (so it is never zero).
    tag: NonZeroU64,
    /// When the run started in nanoseconds on the clock, when the breaker
    /// measures runs; [`NOT_TIMED`] otherwise.
    started: u64,
}

/// Low bits of [`Ticket::tag`] holding the kind.
const KIND_BITS: u32 = 3;
const _: () = assert!(std::mem::size_of::<Option<Ticket>>() == 16);

impl Ticket {
    #[inline]
    fn new(generation: u64, kind: TicketKind, started: u64) -> Ticket {
        let tag = generation << KIND_BITS | (kind as u64 + 1);
        Ticket {
            tag: NonZeroU64::new(tag).unwrap_or(NonZeroU64::MIN),
            started,
        }
    }

    /// The generation that admitted the call.
    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.tag.get() >> KIND_BITS
    }

    /// Whether the call counts with the policies of its generation.
    #[inline(always)]
    pub(crate) fn is_counted(self) -> bool {
        // Counted is the only kind whose code (kind + 1) has neither of the
        // two upper kind bits set: one test.
        self.tag.get() & 0b110 == 0
    }

    /// How the call counts.
    #[inline]
    pub(crate) fn kind(self) -> TicketKind {
        match self.tag.get() & ((1 << KIND_BITS) - 1) {
            1 => TicketKind::Counted,
            2 => TicketKind::Probe,
            3 => TicketKind::Released,
            _ => TicketKind::PassThrough,
        }
    }

    /// The same admission, counted another way.
    pub(crate) fn with_kind(self, kind: TicketKind) -> Ticket {
        Ticket::new(self.generation(), kind, self.started)
    }
}

/// How [`Core::record_success`] records a counted success, decided once
/// from the settings. Separate fields rather than one enum: tests of two
/// pointers and a flag cost fewer instructions than the indirect jump a
/// `match` compiles to.
struct SuccessPath {
    /// One count window, in a breaker that neither times runs nor has
    /// listeners: a counter increment and, unless the ring is full and clean,
    /// the ring's short path in the call's generation.
    ring: Option<Arc<CountRing>>,
    /// One consecutive-failures policy (same conditions): with no failure
    /// counted, a success is one counter increment.
    consecutive: Option<Arc<ConsecutiveState>>,
    /// One time window (same conditions): a counter increment, one clock
    /// read and the window's per-thread cell, in the call's generation.
    buckets: Option<Arc<TimeBuckets>>,
    /// A consecutive-failures policy and one window (same conditions), as
    /// in failsafe's default policy: the window's short path above while no
    /// failure is counted.
    paired: Option<(Arc<ConsecutiveState>, Companion)>,
    /// Consecutive counts, count windows and time windows, which a success
    /// can never trip: no event, no rate computed, at most one clock read.
    windows: bool,
}

/// The window paired with a consecutive-failures policy in [`SuccessPath::paired`].
enum Companion {
    Ring(Arc<CountRing>),
    Buckets(Arc<TimeBuckets>),
}

impl Companion {
    fn of(rate: &RateState) -> Option<Companion> {
        match (rate.ring(), rate.buckets()) {
            (Some(ring), _) => Some(Companion::Ring(Arc::clone(ring))),
            (None, Some(buckets)) => Some(Companion::Buckets(Arc::clone(buckets))),
            (None, None) => None,
        }
    }
}

impl SuccessPath {
    /// `observed`: runs are timed or listeners want events; then every
    /// success goes through [`Core::record`].
    fn for_settings(policies: &[Policy], observed: bool) -> SuccessPath {
        let mut path = SuccessPath {
            ring: None,
            consecutive: None,
            buckets: None,
            paired: None,
            windows: false,
        };
        if observed {
            return path;
        }
        match policies {
            [Policy::Consecutive(consecutive)] => path.consecutive = Some(Arc::clone(consecutive)),
            [Policy::Rate(rate)] if rate.ring().is_some() => path.ring = rate.ring().cloned(),
            [Policy::Rate(rate)] if rate.buckets().is_some() => {
                path.buckets = rate.buckets().cloned();
            }
            [Policy::Consecutive(consecutive), Policy::Rate(rate)]
            | [Policy::Rate(rate), Policy::Consecutive(consecutive)] => {
                // (A rate without a window of its own takes `record`.)
                path.paired = Companion::of(rate).map(|c| (Arc::clone(consecutive), c));
            }
            _ => {
                path.windows = policies.iter().all(|p| match p {
                    Policy::Consecutive(_) => true,
                    Policy::Rate(rate) => rate.ring().is_some() || rate.buckets().is_some(),
                    Policy::Custom(_) => false,
                });
            }
        }
        path
    }
}

/// [`Ticket::started`] of a run that is not timed.
const NOT_TIMED: u64 = u64::MAX;

/// How a run ended.
#[derive(Clone, Copy)]
pub(crate) enum Verdict<'a> {
    Success,
    Failure(&'a dyn AnyDebug),
    Ignored(&'a dyn AnyDebug),
    Cancelled,
}

/// Why a call could not be let through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// Open until this deadline on the clock; `None` when the end is not known in advance.
    Open(Option<u64>),
    HalfOpenFull,
    Forced,
}

/// The answer of one admission check.
enum Check {
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

/// The freeze of the current open (or bounded half-open) period.
struct FreezeSlot {
    generation: u64,
    /// When the period ends on the clock, if known in advance.
    deadline: Option<u64>,
    /// The future that ends the period (a freeze function's, or a sleep to the deadline).
    future: Option<FreezeFuture>,
    /// Some task is polling `future` right now (it is out of the slot).
    polling: bool,
    /// A fail-fast breaker's timer for a timed period: polled once, when
    /// armed, with a waker that sets `Core::period_due`; never polled again,
    /// so no runtime's fate can end the period early. (Waiting calls do not
    /// use it: each has an alarm of its own, see `Wait`.)
    alarm: Option<FreezeFuture>,
}

pub(crate) struct Core {
    pub(crate) settings: Settings,
    policies: Box<[Policy]>,
    word: AtomicU64,
    open_until: AtomicU64,
    half_open_until: AtomicU64,
    half_open_successes: AtomicU32,
    /// Openings since the breaker was last closed (drives backoff).
    openings: AtomicU32,
    /// The open period a shared store asked for (nanoseconds), read when a
    /// transition with [`TransitionReason::Shared`] opens the breaker.
    shared_open_for: AtomicU64,
    /// The half-open lease a shared store granted (nanoseconds), read when
    /// a transition with [`TransitionReason::Shared`] half-opens it.
    shared_half_open_for: AtomicU64,
    /// Read the clock when a run starts (slow-call detection).
    times_calls: bool,
    /// Read the clock when a run ends (time windows, events).
    needs_time: bool,
    /// A slow probe counts as a failed probe.
    slow_probe_fails: bool,
    /// How a counted success is recorded (decided once, from the settings).
    success_path: SuccessPath,
    pub(crate) waiters: Waiters,
    freeze: Mutex<Option<FreezeSlot>>,
    /// When an async freeze must be over at the latest (`max_freeze` after
    /// it started), in nanoseconds on the clock; [`NO_DEADLINE`] when no
    /// async freeze runs. Read by waiting calls to set their alarms (see
    /// [`period_deadline`](Core::period_deadline)); Release/Acquire, a hint
    /// that the freeze slot's lock confirms.
    freeze_bound: AtomicU64,
    freeze_woken: AtomicBool,
    /// Set when the current period's alarm fires: only then (and on one
    /// sampled rejection in 1,024 per thread) do fail-fast rejections read
    /// the clock to see whether the period is over. Release/Acquire: a
    /// rejection that sees it also sees the deadline stored before.
    period_due: AtomicBool,
    freeze_waker: Waker,
    /// The waker of a fail-fast period's alarm (see [`FreezeSlot::alarm`]).
    due_waker: Waker,
    /// How rejections carry the open period's deadline.
    anchor: ClockAnchor,
    /// How the breaker reads its clock.
    reader: ClockReader,
    /// What rejections carry of the breaker (name, custom clock), if anything.
    reject_source: Option<Arc<RejectSource>>,
    pub(crate) totals: Totals,
    state_since: Mutex<Counts>,
}

/// The waker handed to freeze futures: it wakes the oldest waiting call,
/// which polls the freeze on. (If that call is dropped first, its drop
/// wakes the next one: see [`Core::waiter_left`].)
struct FreezeWake {
    core: Weak<Core>,
}

impl Wake for FreezeWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(core) = self.core.upgrade() {
            core.freeze_woken.store(true, Ordering::SeqCst);
            // A freeze that waits on its own breaker (`wait_unfrozen` inside
            // the freeze function) is itself a waiter with this very waker:
            // it is skipped, or waking it would wake it again, without end.
            core.waiters.wake_first_except(&core.freeze_waker);
        }
    }
}

/// The waker of a fail-fast period's alarm: it only says the period is due.
struct PeriodDue {
    core: Weak<Core>,
}

impl Wake for PeriodDue {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(core) = self.core.upgrade() {
            core.period_due.store(true, Ordering::Release);
        }
    }
}

impl Core {
    pub(crate) fn new(settings: Settings, policies: Vec<Policy>) -> Arc<Core> {
        let times_calls = settings.slow_after.is_some();
        let needs_time = times_calls
            || !settings.listeners.is_empty()
            || policies.iter().any(Policy::needs_time);
        let slow_probe_fails = policies
            .iter()
            .any(|p| matches!(p, Policy::Rate(r) if r.measure == crate::policy::RateMeasure::Slow));
        let reader = ClockReader::of(&settings.clock);
        let anchor = ClockAnchor::of(&reader);
        let custom_clock =
            (anchor.kind() == ClockKind::Custom).then(|| Arc::clone(&settings.clock));
        let reject_source = (settings.name.is_some() || custom_clock.is_some()).then(|| {
            Arc::new(RejectSource {
                name: settings.name.clone(),
                clock: custom_clock,
            })
        });
        let success_path =
            SuccessPath::for_settings(&policies, times_calls || !settings.listeners.is_empty());
        Arc::new_cyclic(|weak: &Weak<Core>| Core {
            settings,
            policies: policies.into(),
            word: AtomicU64::new(Word::INITIAL.0),
            open_until: AtomicU64::new(NO_DEADLINE),
            half_open_until: AtomicU64::new(NO_DEADLINE),
            half_open_successes: AtomicU32::new(0),
            openings: AtomicU32::new(0),
            shared_open_for: AtomicU64::new(0),
            shared_half_open_for: AtomicU64::new(NO_DEADLINE),
            times_calls,
            needs_time,
            slow_probe_fails,
            success_path,
            waiters: Waiters::default(),
            freeze: Mutex::new(None),
            freeze_bound: AtomicU64::new(NO_DEADLINE),
            freeze_woken: AtomicBool::new(false),
            period_due: AtomicBool::new(false),
            anchor,
            reader,
            reject_source,
            freeze_waker: Waker::from(Arc::new(FreezeWake { core: weak.clone() })),
            due_waker: Waker::from(Arc::new(PeriodDue { core: weak.clone() })),
            totals: Totals::default(),
            state_since: Mutex::new(Counts::default()),
        })
    }

    /// The breaker's identity for the re-entrancy guard of its callbacks.
    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.settings.name.as_deref()
    }

    #[inline]
    pub(crate) fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn now(&self) -> Duration {
        self.reader.now(&self.settings.clock)
    }

    #[inline]
    fn ticket(&self, generation: u64, kind: TicketKind) -> Ticket {
        let started = if self.times_calls {
            nanos(self.now())
        } else {
            NOT_TIMED
        };
        Ticket::new(generation, kind, started)
    }

    // ----- admission -------------------------------------------------------

    /// The happy path: a closed breaker lets the call in with one atomic load.
    #[inline]
    pub(crate) fn admit_fast(&self) -> Option<Ticket> {
        let word = self.load();
        if word.is(State::Closed) {
            Some(self.ticket(word.generation(), TicketKind::Counted))
        } else {
            None
        }
    }

    fn check(&self) -> Check {
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
                    let until = self.open_until.load(Ordering::Acquire);
                    // The full path always reads the clock: the shortcut
                    // that trusts the period's timer is `reject_while_open`,
                    // taken (and sampled) once per call before this.
                    if until == NO_DEADLINE {
                        Check::Block(Block::Open(None))
                    } else if nanos(self.now()) >= until {
                        Check::Expired(State::Open, generation)
                    } else {
                        Check::Block(Block::Open(Some(until)))
                    }
                }
                State::HalfOpen => {
                    let until = self.half_open_until.load(Ordering::Acquire);
                    if until != NO_DEADLINE && nanos(self.now()) >= until {
                        return Check::Expired(State::HalfOpen, generation);
                    }
                    let limit = self.settings.half_open.probes.unwrap_or(u32::MAX);
                    // Calls already queued go first: a newcomer does not take
                    // a slot from under them.
                    if word.probes() >= limit || self.waiters.len() > 0 {
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
                    Check::Admit(self.ticket(generation, TicketKind::Probe))
                }
            };
        }
    }

    /// Whether a fail-fast call is refused because the breaker is open and
    /// its timer has not fired: the common case of an outage, kept short (no
    /// clock read, no admission loop). Returns the open period's deadline;
    /// `None` means: take the full path.
    #[inline]
    pub(crate) fn reject_while_open(&self) -> Option<u64> {
        if !self.load().is(State::Open) {
            return None;
        }
        let until = self.open_until.load(Ordering::Acquire);
        if until == NO_DEADLINE || self.period_due.load(Ordering::Acquire) || sample_the_clock() {
            return None;
        }
        Some(until)
    }

    /// The rejection [`reject_while_open`](Self::reject_while_open) decided
    /// on, built where the caller's result goes.
    #[inline]
    pub(crate) fn rejected_while_open(&self, until: u64) -> Rejected {
        self.rejected(State::Open, RejectReason::Open, Some(until))
    }

    /// Admission for a caller that will not wait (`try_acquire`): a
    /// fail-fast breaker's outage is refused by the short path (no clock
    /// read unless its timer fired or the sample says so), anything else
    /// takes [`try_admit`](Self::try_admit).
    #[inline]
    pub(crate) fn try_admit_now(&self) -> Result<Ticket, Block> {
        if self.settings.fail_fast
            && let Some(until) = self.reject_while_open()
        {
            return Err(Block::Open(Some(until)));
        }
        self.try_admit()
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
    fn block_as_is(&self) -> Block {
        match self.load().state() {
            State::ForcedOpen => Block::Forced,
            State::HalfOpen => Block::HalfOpenFull,
            _ => match self.open_until.load(Ordering::Acquire) {
                NO_DEADLINE => Block::Open(None),
                until => Block::Open(Some(until)),
            },
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
            let mut queue = self.waiters.lock();
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
                            .max_waiters
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
            self.waiters.wake_first_except(&self.freeze_waker);
        }
    }

    /// Gives back what a waiter was granted but will not use.
    pub(crate) fn give_back(&self, grant: Grant) {
        if let Grant::Probe { generation } = grant {
            self.release_probe(generation);
        }
    }

    /// Refuses a call: counts it, tells listeners, and says why.
    pub(crate) fn reject(&self, block: Block) -> Rejected {
        let (state, reason, deadline) = match block {
            Block::Open(deadline) => (State::Open, RejectReason::Open, deadline),
            Block::HalfOpenFull => (State::HalfOpen, RejectReason::HalfOpenFull, None),
            Block::Forced => (State::ForcedOpen, RejectReason::ForcedOpen, None),
        };
        self.rejected(state, reason, deadline)
    }

    /// Refuses a call for a reason of its own (a wait that ran out, a full queue).
    pub(crate) fn reject_with(&self, reason: RejectReason) -> Rejected {
        let state = self.load().state();
        let until = self.open_until.load(Ordering::Acquire);
        let deadline = (state == State::Open && until != NO_DEADLINE).then_some(until);
        self.rejected(state, reason, deadline)
    }

    #[inline(always)]
    fn rejected(&self, state: State, reason: RejectReason, deadline: Option<u64>) -> Rejected {
        self.totals.add(Tally::Rejected);
        tracing::debug!(breaker = self.name().unwrap_or(""), %state, %reason, "tripswitch: call rejected");
        self.emit(EventKind::Rejected { reason }, None);
        Rejected {
            deadline: deadline.map_or(0, |nanos| self.anchor.anchor(nanos)),
            source: self.reject_source.clone(),
            why: Why::new(state, reason),
            clock: match deadline {
                Some(_) => self.anchor.kind(),
                None => ClockKind::Unknown,
            },
        }
    }

    // ----- recording -------------------------------------------------------

    /// Records a success, by the path chosen when the breaker was built (see
    /// [`SuccessPath`]). On the happiest one (a counted call, no listeners,
    /// no timing, a consecutive-failures policy with nothing counted) this is
    /// one counter increment and one relaxed load; a success cannot change
    /// such a policy, so not even the generation is read.
    #[inline(always)]
    pub(crate) fn record_success(&self, ticket: Ticket) {
        if !ticket.is_counted() {
            self.record(ticket, Verdict::Success);
        } else if let Some(ring) = &self.success_path.ring {
            self.totals.add(Tally::Success);
            self.success_to_own_ring(ring, ticket);
        } else if let Some(consecutive) = &self.success_path.consecutive {
            self.totals.add(Tally::Success);
            if consecutive.current() != 0 {
                // A success that resets the count (in its generation).
                self.success_to_windows(ticket);
            }
        } else if let Some(buckets) = &self.success_path.buckets {
            self.totals.add(Tally::Success);
            self.success_to_own_buckets(buckets, ticket);
        } else if let Some((consecutive, companion)) = &self.success_path.paired {
            self.totals.add(Tally::Success);
            if consecutive.current() != 0 {
                // The success resets the count: the general path.
                self.success_to_windows(ticket);
            } else {
                match companion {
                    Companion::Ring(ring) => self.success_to_own_ring(ring, ticket),
                    Companion::Buckets(buckets) => self.success_to_own_buckets(buckets, ticket),
                }
            }
        } else if self.success_path.windows {
            self.totals.add(Tally::Success);
            self.success_to_windows(ticket);
        } else {
            self.record(ticket, Verdict::Success);
        }
    }

    /// A success for policies that a success can never trip: consecutive
    /// counts and count and time windows, in the call's generation only.
    #[inline]
    fn success_to_windows(&self, ticket: Ticket) {
        // A counted call was admitted closed or metrics-only; while the
        // generation is the same, the breaker is still in that state.
        if self.load().generation() != ticket.generation() {
            return;
        }
        let mut now = None;
        for policy in self.policies.iter() {
            match policy {
                Policy::Consecutive(consecutive) => {
                    consecutive.record(false);
                }
                Policy::Rate(rate) => {
                    if let Some(ring) = rate.ring() {
                        ring.record_success();
                    } else if let Some(buckets) = rate.buckets() {
                        buckets.record_success(*now.get_or_insert_with(|| self.now()));
                    }
                }
                Policy::Custom(_) => {}
            }
        }
    }

    /// A success in a breaker's only count window (beside a consecutive
    /// count, if any). A full ring without failures needs nothing, in any
    /// generation; otherwise only in the call's own generation (the breaker
    /// is still in the state that admitted the call).
    #[inline(always)]
    fn success_to_own_ring(&self, ring: &CountRing, ticket: Ticket) {
        if !ring.success_is_a_no_op() && self.load().generation() == ticket.generation() {
            ring.record_untimed_success();
        }
    }

    /// A success in a breaker's only time window (beside a consecutive
    /// count, if any), in the call's generation.
    #[inline(always)]
    fn success_to_own_buckets(&self, buckets: &TimeBuckets, ticket: Ticket) {
        if self.load().generation() != ticket.generation() {
            return;
        }
        if self.reader.is_built_in() {
            self.success_to_buckets_on_built_in_clock(buckets);
        } else {
            self.success_to_buckets(buckets);
        }
    }

    /// [`success_to_own_buckets`](Self::success_to_own_buckets) on a custom
    /// clock. Kept out of line (as is the next one) so that the count-only paths
    /// above stay small enough to inline.
    #[inline(never)]
    fn success_to_buckets(&self, buckets: &TimeBuckets) {
        buckets.record_success(self.now());
    }

    /// [`success_to_buckets`](Self::success_to_buckets) on a built-in
    /// clock, whose readings let the thread's last slice be reused.
    #[inline(never)]
    fn success_to_buckets_on_built_in_clock(&self, buckets: &TimeBuckets) {
        match self.reader.reading() {
            Some(Reading::Instant { now, origin }) => buckets.record_success_at(now, origin),
            #[cfg(feature = "quanta")]
            Some(Reading::Nanos(now)) => buckets.record_success_at(now, 0),
            None => buckets.record_success(self.now()),
        }
    }

    /// Records how a run ended. Returns whether the breaker is open after it
    /// (because this run tripped it, or because it already was).
    pub(crate) fn record(&self, ticket: Ticket, verdict: Verdict<'_>) -> bool {
        if ticket.kind() == TicketKind::PassThrough {
            return false;
        }
        let (elapsed, at) = match ticket.started {
            NOT_TIMED if self.needs_time => (None, Some(self.now())),
            NOT_TIMED => (None, None),
            started => {
                let now = self.now();
                (
                    Some(now.saturating_sub(Duration::from_nanos(started))),
                    Some(now),
                )
            }
        };
        let measured = !matches!(verdict, Verdict::Cancelled | Verdict::Ignored(_));
        let slow =
            measured && matches!((elapsed, self.settings.slow_after), (Some(e), Some(t)) if e > t);

        self.totals.add(match verdict {
            Verdict::Success => Tally::Success,
            Verdict::Failure(_) => Tally::Failure,
            Verdict::Ignored(_) => Tally::Ignored,
            Verdict::Cancelled => Tally::Cancelled,
        });
        if slow {
            self.totals.add(Tally::Slow);
        }

        if ticket.kind() == TicketKind::Released {
            return self.load().state().is_open();
        }
        self.report(verdict, elapsed, slow, at);

        let word = self.load();
        if word.generation() != ticket.generation() {
            // A transition happened while the call ran: it counts in the
            // totals, not in the new state.
            return word.state().is_open();
        }
        let error = match verdict {
            Verdict::Failure(error) => Some(error),
            _ => None,
        };
        match (ticket.kind(), word.state()) {
            (TicketKind::Counted, State::Closed | State::MetricsOnly) => {
                let failed = match verdict {
                    Verdict::Success => false,
                    Verdict::Failure(_) => true,
                    Verdict::Ignored(_) | Verdict::Cancelled => return false,
                };
                let call = CallRecord {
                    failed,
                    slow,
                    elapsed,
                    at,
                };
                let mut trip = false;
                for policy in self.policies.iter() {
                    // Every policy sees every call, even once one has tripped.
                    trip |= policy.record(&call);
                }
                if trip && word.state() == State::Closed {
                    let tripped = self.transition(
                        word.generation(),
                        State::Closed,
                        State::Open,
                        TransitionReason::Tripped,
                        error,
                    );
                    return tripped || self.load().state().is_open();
                }
                false
            }
            (TicketKind::Probe, State::HalfOpen) => {
                match verdict {
                    Verdict::Success if !(slow && self.slow_probe_fails) => {
                        self.probe_succeeded(ticket.generation());
                    }
                    Verdict::Success | Verdict::Failure(_) => {
                        self.transition(
                            ticket.generation(),
                            State::HalfOpen,
                            State::Open,
                            TransitionReason::ProbeFailed,
                            error,
                        );
                    }
                    Verdict::Ignored(_) | Verdict::Cancelled => {
                        self.release_probe(ticket.generation())
                    }
                }
                self.load().state().is_open()
            }
            _ => word.state().is_open(),
        }
    }

    /// Tells `on_error` and the listeners about a counted run.
    fn report(
        &self,
        verdict: Verdict<'_>,
        elapsed: Option<Duration>,
        slow: bool,
        at: Option<Duration>,
    ) {
        if let Verdict::Failure(error) = verdict {
            let on_error = &self.settings.on_error;
            unless_reentered(self.id(), || {
                call_guarded("the on_error callback", self.name(), || {
                    on_error(error as &dyn fmt::Debug)
                });
            });
        }
        if self.settings.listeners.is_empty() {
            return;
        }
        let kind = match verdict {
            Verdict::Success => EventKind::Success { elapsed },
            Verdict::Failure(error) => EventKind::Failure {
                error: error as &dyn fmt::Debug,
                elapsed,
            },
            Verdict::Ignored(error) => EventKind::Ignored {
                error: error as &dyn fmt::Debug,
            },
            Verdict::Cancelled => return,
        };
        self.emit(kind, at);
        if slow && let (Some(elapsed), Some(threshold)) = (elapsed, self.settings.slow_after) {
            self.emit(EventKind::Slow { elapsed, threshold }, at);
        }
    }

    /// Whether an error of type `E` is one the breaker was told to ignore.
    pub(crate) fn is_ignored<E: 'static>(&self, error: &E) -> bool {
        let rules = &self.settings.error_rules;
        !rules.is_empty()
            && rules
                .iter()
                .any(|rule| rule.type_id == TypeId::of::<E>() && (rule.ignore)(error))
    }

    /// Whether anybody listens to events.
    pub(crate) fn listening(&self) -> bool {
        !self.settings.listeners.is_empty()
    }

    /// A waiting call was let through after `waited`.
    pub(crate) fn waited(&self, waited: Duration) {
        self.emit(EventKind::Waited { waited }, None);
    }

    #[inline]
    fn emit(&self, kind: EventKind<'_>, at: Option<Duration>) {
        if !self.settings.listeners.is_empty() {
            self.emit_to_listeners(kind, at);
        }
    }

    #[inline(never)]
    fn emit_to_listeners(&self, kind: EventKind<'_>, at: Option<Duration>) {
        let event = Event {
            breaker: self.name(),
            at: at.unwrap_or_else(|| self.now()),
            kind,
        };
        unless_reentered(self.id(), || {
            for listener in self.settings.listeners.iter() {
                call_guarded("an event listener", self.name(), || listener(&event));
            }
        });
    }

    // ----- transitions -----------------------------------------------------

    /// Moves from `from` (in `generation`) to `to`. Returns false, doing
    /// nothing, if the breaker is no longer in that state and generation.
    fn transition(
        &self,
        generation: u64,
        from: State,
        to: State,
        reason: TransitionReason,
        error: Option<&dyn AnyDebug>,
    ) -> bool {
        let mut current = self.load();
        let next = loop {
            if current.generation() != generation || current.state() != from {
                return false;
            }
            let next = current.next(to);
            match self.word.compare_exchange_weak(
                current.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break next,
                Err(actual) => current = Word(actual),
            }
        };
        self.entered(from, next, reason, error);
        true
    }

    /// Moves to `to` from whatever state the breaker is in (manual control).
    /// Returns false if it already was in `to`.
    pub(crate) fn force(
        &self,
        to: State,
        reason: TransitionReason,
        only_from: impl Fn(State) -> bool,
    ) -> bool {
        self.switch(to, reason, |state| state != to && only_from(state))
    }

    /// Moves to `to` (a new generation, even if the breaker already is in
    /// `to`) from any state that `allowed` accepts. Returns whether it moved.
    pub(crate) fn switch(
        &self,
        to: State,
        reason: TransitionReason,
        allowed: impl Fn(State) -> bool,
    ) -> bool {
        let mut current = self.load();
        let (from, next) = loop {
            if !allowed(current.state()) {
                return false;
            }
            let next = current.next(to);
            match self.word.compare_exchange_weak(
                current.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break (current.state(), next),
                Err(actual) => current = Word(actual),
            }
        };
        self.entered(from, next, reason, None);
        true
    }

    /// A shared store's order to be open for `remaining` (from closed,
    /// half-open, or open with another deadline).
    pub(crate) fn shared_open(&self, remaining: Duration) -> bool {
        self.shared_open_for
            .store(nanos(remaining), Ordering::Release);
        self.switch(State::Open, TransitionReason::Shared, |state| {
            matches!(state, State::Closed | State::Open | State::HalfOpen)
        })
    }

    /// A shared store's grant of the fleet's probes to this breaker, for at most `lease`.
    pub(crate) fn shared_half_open(&self, lease: Duration) -> bool {
        self.shared_half_open_for
            .store(nanos(lease), Ordering::Release);
        self.switch(State::HalfOpen, TransitionReason::Shared, |state| {
            state == State::Open
        })
    }

    /// A shared store's order to close (the fleet closed).
    pub(crate) fn shared_close(&self) -> bool {
        self.switch(State::Closed, TransitionReason::Shared, |state| {
            matches!(state, State::Open | State::HalfOpen)
        })
    }

    /// Clears the counts of the trip policies and the backoff.
    pub(crate) fn clear_counts(&self) {
        for policy in self.policies.iter() {
            policy.reset();
        }
        self.openings.store(0, Ordering::Relaxed);
        *lock(&self.state_since) = self.totals.snapshot();
    }

    /// Everything that follows a transition that this thread won.
    fn entered(
        &self,
        from: State,
        word: Word,
        reason: TransitionReason,
        error: Option<&dyn AnyDebug>,
    ) {
        let to = word.state();
        let generation = word.generation();
        let now = self.now();
        if from == State::Open {
            self.open_until.store(NO_DEADLINE, Ordering::Release);
            self.freeze_bound.store(NO_DEADLINE, Ordering::Release);
        }
        if from == State::HalfOpen {
            self.half_open_until.store(NO_DEADLINE, Ordering::Release);
        }
        self.clear_freeze(|slot| slot < generation);
        *lock(&self.state_since) = self.totals.snapshot();
        tracing::info!(
            breaker = self.name().unwrap_or(""),
            %from,
            %to,
            %reason,
            "tripswitch: state changed"
        );
        if let Some(shared) = &self.settings.shared {
            call_guarded("the shared state's transition hook", self.name(), || {
                shared.transitioned(from, to, reason)
            });
        }

        match to {
            State::Open => self.opened(from, word, reason, error, now),
            State::HalfOpen => {
                self.half_open_successes.store(0, Ordering::Release);
                let max = match reason {
                    TransitionReason::Shared => {
                        let lease = self.shared_half_open_for.load(Ordering::Acquire);
                        let lease = Duration::from_nanos(lease);
                        Some(
                            self.settings
                                .half_open
                                .max_duration
                                .map_or(lease, |m| m.min(lease)),
                        )
                    }
                    _ => self.settings.half_open.max_duration,
                };
                if let Some(max) = max {
                    let until = deadline_after(now, max);
                    self.half_open_until.store(until, Ordering::Release);
                    if !self.settings.fail_fast {
                        self.install_freeze(generation, Some(until), None);
                    }
                }
                self.emit_transition(from, to, reason, now);
                let observers = self.waiters.lock().release_observers();
                observers.into_iter().for_each(Waker::wake);
                self.grant_probes(generation);
            }
            State::Closed | State::MetricsOnly | State::Disabled => {
                if to != State::Disabled {
                    for policy in self.policies.iter() {
                        policy.reset();
                    }
                }
                if to == State::Closed {
                    self.openings.store(0, Ordering::Relaxed);
                }
                self.emit_transition(from, to, reason, now);
                let kind = match to {
                    State::Disabled => TicketKind::PassThrough,
                    State::Closed if self.settings.seed_accounting => TicketKind::Released,
                    _ => TicketKind::Counted,
                };
                // Waiters are let in only if this state still holds: a
                // listener (or another thread) that moved the breaker on
                // meanwhile (`force_open` from the transition's event) keeps
                // them waiting for the state it chose.
                let wakers = {
                    let mut queue = self.waiters.lock();
                    if self.load().generation() == generation {
                        queue.grant_all(Grant::Admit { generation, kind })
                    } else {
                        Vec::new()
                    }
                };
                wakers.into_iter().for_each(Waker::wake);
            }
            State::ForcedOpen => self.emit_transition(from, to, reason, now),
        }
    }

    fn opened(
        &self,
        from: State,
        word: Word,
        reason: TransitionReason,
        error: Option<&dyn AnyDebug>,
        now: Duration,
    ) {
        let generation = word.generation();
        let openings = match from {
            State::HalfOpen => self.openings.fetch_add(1, Ordering::Relaxed),
            // A shared store moved the deadline: the same opening.
            State::Open => self.openings.load(Ordering::Relaxed).saturating_sub(1),
            _ => {
                self.openings.store(1, Ordering::Relaxed);
                0
            }
        };
        let context = TripContext {
            error,
            reason,
            consecutive_openings: openings,
            consecutive_failures: self.policies.iter().find_map(Policy::consecutive_failures),
            failure_rate: self.rate(crate::policy::RateMeasure::Failures, now),
            failures_in_window: self.policies.iter().find_map(|p| match p {
                Policy::Rate(r) if r.measure == crate::policy::RateMeasure::Failures => {
                    Some(r.failures_at(now))
                }
                _ => None,
            }),
            slow_call_rate: self.rate(crate::policy::RateMeasure::Slow, now),
        };
        let period = &self.settings.open_period;
        let end = if reason == TransitionReason::Shared {
            let remaining = self.shared_open_for.load(Ordering::Acquire);
            Ok(PeriodEnd::After(Duration::from_nanos(remaining)))
        } else {
            catch_unwind(AssertUnwindSafe(|| period.start(&context)))
        };
        match end {
            Ok(PeriodEnd::After(duration)) => {
                let until = deadline_after(now, duration);
                self.period_due.store(false, Ordering::Release);
                self.freeze_bound.store(NO_DEADLINE, Ordering::Release);
                self.open_until.store(until, Ordering::Release);
                self.install_freeze(generation, Some(until), None);
                if self.settings.fail_fast {
                    // Rejections do not read the clock: an alarm tells them
                    // when the period is over.
                    self.arm_alarm(generation, duration);
                }
                self.emit_transition(from, State::Open, reason, now);
            }
            Ok(PeriodEnd::Future(future)) => {
                // The freeze ends when its future does, and at the latest
                // `max_freeze` from now, whoever polls it (or nobody).
                let bound = deadline_after(now, self.settings.max_freeze);
                self.freeze_bound.store(bound, Ordering::Release);
                self.install_freeze(generation, Some(bound), Some(future));
                self.emit_transition(from, State::Open, reason, now);
                // Start the freeze at once, so that a freeze function's side
                // effects happen when the breaker trips, as in the seed.
                self.drive_freeze();
            }
            Err(_) => {
                tracing::error!(
                    breaker = self.name().unwrap_or(""),
                    "tripswitch: the freeze function panicked; the open period ends at once"
                );
                self.emit_transition(from, State::Open, reason, now);
                self.end_open(generation);
                return;
            }
        }
        // Calls that were already queued (for a probe slot, or the seed's
        // retry) have a new deadline to set their alarms by, and maybe a
        // freeze to drive: all are woken (each on its own runtime), so that
        // none depends on another's task being run.
        self.freeze_woken.store(true, Ordering::SeqCst);
        self.waiters.wake_all();
    }

    fn emit_transition(&self, from: State, to: State, reason: TransitionReason, now: Duration) {
        self.emit(EventKind::Transition { from, to, reason }, Some(now));
    }

    fn rate(&self, measure: crate::policy::RateMeasure, at: Duration) -> Option<f64> {
        self.policies.iter().find_map(|p| match p {
            Policy::Rate(r) if r.measure == measure => r.rate(at),
            _ => None,
        })
    }

    /// The open (or bounded half-open) period of `generation` is over.
    fn period_elapsed(&self, state: State, generation: u64) {
        match state {
            State::Open => self.end_open(generation),
            State::HalfOpen => {
                self.transition(
                    generation,
                    State::HalfOpen,
                    State::Open,
                    TransitionReason::HalfOpenTimedOut,
                    None,
                );
            }
            _ => {}
        }
    }

    fn end_open(&self, generation: u64) {
        let to = if self.settings.half_open.probes.is_some() {
            State::HalfOpen
        } else {
            State::Closed
        };
        self.transition(
            generation,
            State::Open,
            to,
            TransitionReason::OpenPeriodEnded,
            None,
        );
    }

    fn probe_succeeded(&self, generation: u64) {
        let successes = self
            .half_open_successes
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if successes >= self.settings.half_open.close_after
            && self.transition(
                generation,
                State::HalfOpen,
                State::Closed,
                TransitionReason::ProbesSucceeded,
                None,
            )
        {
            return;
        }
        self.release_probe(generation);
    }

    /// Frees a probe slot of `generation` and hands it to the next waiter.
    ///
    /// The queue is only locked when somebody waits. A call that queues while
    /// the slot is being freed cannot be missed: this side frees the slot,
    /// then reads the queue length with a read-modify-write; the queuing side
    /// updates the length with a read-modify-write, then looks for a free
    /// slot itself. The two read-modify-writes on the length are ordered, so
    /// either this side sees the waiter or the waiter sees the free slot.
    pub(crate) fn release_probe(&self, generation: u64) {
        self.give_back_slot(generation);
        if self.waiters.len_synced() > 0 {
            self.grant_probes(generation);
        }
    }

    fn give_back_slot(&self, generation: u64) {
        let mut current = self.load();
        while current.generation() == generation
            && current.state() == State::HalfOpen
            && current.probes() > 0
        {
            match self.word.compare_exchange_weak(
                current.0,
                current.with_probes(current.probes() - 1).0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = Word(actual),
            }
        }
    }

    fn take_slot(&self, generation: u64) -> bool {
        let limit = self.settings.half_open.probes.unwrap_or(u32::MAX);
        let mut current = self.load();
        while current.generation() == generation
            && current.state() == State::HalfOpen
            && current.probes() < limit
        {
            match self.word.compare_exchange_weak(
                current.0,
                current.with_probes(current.probes() + 1).0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = Word(actual),
            }
        }
        false
    }

    /// Hands free probe slots of `generation` to waiting calls, oldest first.
    fn grant_probes(&self, generation: u64) {
        let wakers = {
            let mut queue = self.waiters.lock();
            self.grant_probes_locked(&mut queue, generation)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// [`grant_probes`](Self::grant_probes) with the queue already locked;
    /// returns the wakers to wake once it is unlocked.
    fn grant_probes_locked(&self, queue: &mut Locked<'_>, generation: u64) -> Vec<Waker> {
        let mut wakers = Vec::new();
        while queue.len() > 0 && self.take_slot(generation) {
            match queue.grant_next(Grant::Probe { generation }) {
                Some(waker) => wakers.push(waker),
                None => {
                    self.give_back_slot(generation);
                    break;
                }
            }
        }
        wakers
    }

    // ----- the freeze ------------------------------------------------------

    fn install_freeze(&self, generation: u64, deadline: Option<u64>, future: Option<FreezeFuture>) {
        let previous = lock(&self.freeze).replace(FreezeSlot {
            generation,
            deadline,
            future,
            polling: false,
            alarm: None,
        });
        // Dropped outside the lock: a future's destructor is user code.
        drop(previous);
    }

    /// Arms a fail-fast period's alarm, `after` from now (see
    /// [`FreezeSlot::alarm`]). If the clock cannot make or poll a sleep
    /// here, there is no alarm: the sampled clock reads of rejections, state
    /// reads and waiting calls' own alarms still end the period.
    fn arm_alarm(&self, generation: u64, after: Duration) {
        let mut alarm = self.sleep(after);
        let mut cx = Context::from_waker(&self.due_waker);
        match catch_unwind(AssertUnwindSafe(|| alarm.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => {
                let stale = {
                    let mut slot = lock(&self.freeze);
                    match slot.as_mut() {
                        Some(freeze) if freeze.generation == generation => {
                            freeze.alarm.replace(alarm)
                        }
                        _ => Some(alarm),
                    }
                };
                drop(stale);
            }
            Ok(Poll::Ready(())) => self.period_due.store(true, Ordering::Release),
            Err(_) => {}
        }
    }

    fn clear_freeze(&self, stale: impl Fn(u64) -> bool) {
        let previous = {
            let mut slot = lock(&self.freeze);
            if slot.as_ref().is_some_and(|s| stale(s.generation)) {
                slot.take()
            } else {
                None
            }
        };
        drop(previous);
    }

    /// Polls the current period's async freeze once, from whichever task
    /// gets here first, and ends the period if it is over: its future
    /// finished (or panicked), or its deadline passed (a timed period's end,
    /// or an async freeze's `max_freeze` bound). A timed period has no
    /// shared sleep to poll: the clock alone tells. Returns whether a
    /// period ended.
    pub(crate) fn drive_freeze(&self) -> bool {
        let word = self.load();
        let state = word.state();
        if !matches!(state, State::Open | State::HalfOpen) {
            return false;
        }
        let generation = word.generation();
        let (deadline, future) = {
            let mut slot = lock(&self.freeze);
            let Some(freeze) = slot.as_mut() else {
                return false;
            };
            if freeze.generation != generation || freeze.polling {
                return false;
            }
            if freeze.future.is_none() {
                let ended = freeze.deadline.is_some_and(|d| nanos(self.now()) >= d);
                drop(slot);
                if ended {
                    self.period_elapsed(state, generation);
                }
                return ended;
            }
            freeze.polling = true;
            (freeze.deadline, freeze.future.take())
        };
        let Some(mut future) = future else {
            return false;
        };

        if deadline.is_some_and(|d| nanos(self.now()) >= d) {
            tracing::warn!(
                breaker = self.name().unwrap_or(""),
                max_freeze = ?self.settings.max_freeze,
                "tripswitch: the freeze function's future did not finish within max_freeze; the open period ends"
            );
            self.clear_freeze(|g| g == generation);
            drop(future);
            self.period_elapsed(state, generation);
            return true;
        }
        self.freeze_woken.store(false, Ordering::SeqCst);
        let mut cx = Context::from_waker(&self.freeze_waker);
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
            Ok(Poll::Pending) => {
                let stale = {
                    let mut slot = lock(&self.freeze);
                    match slot.as_mut() {
                        Some(freeze) if freeze.generation == generation => {
                            freeze.future = Some(future);
                            freeze.polling = false;
                            None
                        }
                        _ => Some(future),
                    }
                };
                drop(stale);
                if self.freeze_woken.load(Ordering::SeqCst) {
                    // It woke while out of the slot, when nobody could poll it.
                    self.waiters.wake_first_except(&self.freeze_waker);
                }
                false
            }
            Ok(Poll::Ready(())) => {
                self.clear_freeze(|g| g == generation);
                drop(future);
                self.period_elapsed(state, generation);
                true
            }
            Err(_) => {
                tracing::error!(
                    breaker = self.name().unwrap_or(""),
                    "tripswitch: the freeze future panicked; the open period ends here"
                );
                self.clear_freeze(|g| g == generation);
                self.period_elapsed(state, generation);
                true
            }
        }
    }

    /// When the current period must be over at the latest, in nanoseconds
    /// on the clock: a timed open period's end, an async freeze's bound, or
    /// a bounded half-open state's end. Waiting calls set their own alarms
    /// by it. `None` while closed, forced open, or half-open without a
    /// maximum.
    pub(crate) fn period_deadline(&self) -> Option<u64> {
        let deadline = match self.load().state() {
            State::Open => match self.open_until.load(Ordering::Acquire) {
                NO_DEADLINE => self.freeze_bound.load(Ordering::Acquire),
                until => until,
            },
            State::HalfOpen => self.half_open_until.load(Ordering::Acquire),
            _ => NO_DEADLINE,
        };
        (deadline != NO_DEADLINE).then_some(deadline)
    }

    /// A sleep on the breaker's clock; if the clock cannot sleep here (tokio's
    /// timer outside a runtime), the process-wide timer thread stands in.
    pub(crate) fn sleep(&self, duration: Duration) -> FreezeFuture {
        let clock = &self.settings.clock;
        match catch_unwind(AssertUnwindSafe(|| clock.sleep(duration))) {
            Ok(sleep) => sleep,
            Err(_) => crate::clock::thread_sleep(duration),
        }
    }

    /// A sleep until `deadline` (nanoseconds on the clock), as [`sleep`](Self::sleep).
    pub(crate) fn sleep_until(&self, deadline: u64) -> FreezeFuture {
        let now = nanos(self.now());
        self.sleep(Duration::from_nanos(deadline.saturating_sub(now)))
    }

    /// Performs a transition that is due (an open period that has run out)
    /// without waiting for a call to notice it. With `poll_freeze`, an async
    /// freeze is polled once to learn whether it is over (that takes the
    /// freeze slot's lock briefly); without, only atomics and the clock are read.
    pub(crate) fn refresh(&self, poll_freeze: bool) {
        for _ in 0..TRANSITIONS_PER_LOOK {
            let word = self.load();
            match word.state() {
                State::Open => {
                    let until = self.open_until.load(Ordering::Acquire);
                    if until == NO_DEADLINE {
                        if !poll_freeze || !self.drive_freeze() {
                            return;
                        }
                    } else if nanos(self.now()) >= until {
                        self.end_open(word.generation());
                    } else {
                        return;
                    }
                }
                State::HalfOpen => {
                    let until = self.half_open_until.load(Ordering::Acquire);
                    if until != NO_DEADLINE && nanos(self.now()) >= until {
                        self.period_elapsed(State::HalfOpen, word.generation());
                    } else {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// How long until calls are let through (see [`Metrics::retry_after`]).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self.load().state() {
            State::Closed | State::Disabled | State::MetricsOnly => Some(Duration::ZERO),
            State::Open => {
                let until = self.open_until.load(Ordering::Acquire);
                (until != NO_DEADLINE)
                    .then(|| Duration::from_nanos(until.saturating_sub(nanos(self.now()))))
            }
            State::HalfOpen | State::ForcedOpen => None,
        }
    }

    pub(crate) fn metrics(&self) -> Metrics {
        self.refresh(true);
        let word = self.load();
        let now = self.now();
        let since = *lock(&self.state_since);
        Metrics {
            state: word.state(),
            failure_rate: self.rate(crate::policy::RateMeasure::Failures, now),
            slow_call_rate: self.rate(crate::policy::RateMeasure::Slow, now),
            consecutive_failures: self.policies.iter().find_map(Policy::consecutive_failures),
            current: self.totals.since(since),
            totals: self.totals.snapshot(),
            probes_in_flight: if word.state() == State::HalfOpen {
                word.probes()
            } else {
                0
            },
            waiting: self.waiters.len(),
            retry_after: self.retry_after(),
        }
    }
}

/// The deadline `after` from `now`, in nanoseconds on the clock. Saturates
/// one short of [`NO_DEADLINE`], so that an open period of `Duration::MAX`
/// is a period that ends (in 584 years), not one without a deadline.
fn deadline_after(now: Duration, after: Duration) -> u64 {
    nanos(now.saturating_add(after)).min(NO_DEADLINE - 1)
}

/// The most transitions one look at the breaker performs (an admission, a
/// state read). Periods that are over at once (a fake clock moved to the end
/// of time, where every deadline has passed) would otherwise chain
/// Open → HalfOpen → Open without end inside one call.
const TRANSITIONS_PER_LOOK: usize = 8;

/// Whether this fail-fast rejection should read the clock although the
/// period's timer has not fired: one in 1024 per thread does, so that a timer
/// that never fires (its runtime shut down) cannot keep the breaker open.
#[inline]
fn sample_the_clock() -> bool {
    thread_local! {
        static REJECTIONS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    REJECTIONS.with(|count| {
        let next = count.get().wrapping_add(1);
        count.set(next);
        next.is_multiple_of(1024)
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

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.settings.name)
            .field("state", &self.load().state())
            .field("waiting", &self.waiters.len())
            .finish_non_exhaustive()
    }
}
