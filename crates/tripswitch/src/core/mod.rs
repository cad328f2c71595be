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

mod admission;
mod cold;
mod deadline;
mod entering;
mod freeze;
mod probe_tally;
mod probes;
mod reads;
mod recording;
mod rules;
mod settings;
mod success_path;
mod transitions;

use std::fmt;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use crate::clock::{ClockAnchor, ClockKind, nanos};
use crate::error::RejectSource;
use crate::loom::{AtomicBool, AtomicU64, Lazy, Ordering, Weak};
use crate::metrics::Totals;
use crate::policy::TripPolicy;
use crate::state::Word;
use crate::ticket::{NOT_TIMED, Ticket, TicketKind};
use crate::waiters::Waiters;

pub(crate) use admission::Enqueued;
use cold::Cold;
use deadline::AtomicDeadline;
pub(crate) use deadline::Moment;
use freeze::{FreezeWake, PeriodDue, PeriodOver};
pub(crate) use recording::Verdict;
pub(crate) use rules::Move;
pub(crate) use settings::{ErrorRule, Hooks, OptionalU64, Settings};
use success_path::SuccessPath;

pub(crate) struct Core {
    settings: Settings,
    policies: Box<[Box<dyn TripPolicy>]>,
    /// The packed state word ([`Word`]: state, probes in flight,
    /// generation). Invariant: the generation grows by one with every
    /// transition, and a state changes only through `Core::apply`'s
    /// compare-and-swap, with `AcqRel` on success, so that what the
    /// transition's thread stored before it (counts reset, deadlines
    /// cleared) is seen by the thread that next sees the word (`Acquire`
    /// loads). Probe slots are taken and given back by CAS on the same word.
    word: AtomicU64,
    /// When the current open period ends; none while closed, half-open,
    /// forced open, or open on an async freeze. Set (Release) by the thread
    /// that opened the breaker, right after its transition, and cleared when
    /// the period ends, so a call that sees the new state word before the
    /// deadline sees none: it is held (waits, or is refused without a retry
    /// time), never let through early. Loaded with Acquire, pairing with
    /// the store.
    open_until: AtomicDeadline,
    /// Read the clock when a run starts (slow-call detection).
    times_calls: bool,
    /// Read the clock when a run ends (time windows, events).
    needs_time: bool,
    /// A slow probe counts as a failed probe.
    slow_probe_fails: bool,
    /// The half-open state keeps its account (`HalfOpen::keeps_tally`).
    keeps_probe_tally: bool,
    /// Listeners are set (a copy of the settings' answer, read on every
    /// event without going through the boxed hooks).
    has_listeners: bool,
    /// How a counted success is recorded (decided once, from the settings).
    success_path: SuccessPath,
    /// The queue of waiting calls, the freeze slot, the counts at the last
    /// transition, the half-open account, the period's wakers and the
    /// shared store's periods: allocated together on first use (see
    /// [`Cold`]).
    cold: Lazy<Cold>,
    /// Set when the async freeze's waker fired: a waiting call must poll
    /// the freeze. `SeqCst`, for a store-then-load pair on each side: the
    /// call that polled the freeze puts the future back in its slot, then
    /// loads this flag; the waker stores the flag, then wakes a waiting
    /// call, which takes the slot to poll it. With `SeqCst` at least one of
    /// the two sees the other's write (the future in the slot, or the flag),
    /// so a wake-up during a poll is never lost; `Release`/`Acquire` would
    /// allow both to miss.
    freeze_woken: AtomicBool,
    /// Set when the current period's alarm fires: only then (and on one
    /// sampled rejection in 1,024 per thread) do fail-fast rejections read
    /// the clock to see whether the period is over. Release/Acquire: a
    /// rejection that sees it also sees the deadline stored before.
    period_due: AtomicBool,
    /// This breaker, weakly: what the wakers hold.
    me: Weak<Core>,
    /// How rejections carry the open period's deadline.
    anchor: ClockAnchor,
    /// What rejections carry of the breaker (name, custom clock), if
    /// anything; the breaker's name is kept here only.
    reject_source: Option<Arc<RejectSource>>,
    totals: Totals,
}

impl Core {
    /// `name` is kept once, in what rejections carry (see
    /// [`name`](Core::name)).
    pub(crate) fn new(
        settings: Settings,
        name: Option<Arc<str>>,
        policies: Vec<Box<dyn TripPolicy>>,
    ) -> Arc<Core> {
        let times_calls = settings.slow_after().is_some();
        let needs_time = times_calls
            || !settings.listeners().is_empty()
            || policies.iter().any(|policy| policy.needs_time());
        let slow_probe_fails = policies.iter().any(|policy| policy.judges_slow_calls());
        let keeps_probe_tally = settings.half_open.keeps_tally();
        let has_listeners = !settings.listeners().is_empty();
        let anchor = ClockAnchor::of(&settings.clock);
        let custom_clock = if anchor.kind() == ClockKind::Custom {
            settings.clock.as_custom()
        } else {
            None
        };
        let reject_source = (name.is_some() || custom_clock.is_some()).then(|| {
            Arc::new(RejectSource {
                name,
                clock: custom_clock,
            })
        });
        let success_path =
            SuccessPath::for_settings(&policies, times_calls || !settings.listeners().is_empty());
        Arc::new_cyclic(|weak: &Weak<Core>| Core {
            settings,
            policies: policies.into(),
            word: AtomicU64::new(Word::INITIAL.0),
            open_until: AtomicDeadline::none(),
            times_calls,
            needs_time,
            slow_probe_fails,
            keeps_probe_tally,
            has_listeners,
            success_path,
            cold: Lazy::new(),
            freeze_woken: AtomicBool::new(false),
            period_due: AtomicBool::new(false),
            anchor,
            reject_source,
            me: weak.clone(),
            totals: Totals::default(),
        })
    }

    /// The wakers of this breaker's periods, made on first use.
    pub(super) fn wakers(&self) -> &PeriodWakers {
        self.cold.wakers.get_or_init(|| PeriodWakers {
            freeze: Waker::from(Arc::new(FreezeWake {
                core: self.me.clone(),
            })),
            due: Waker::from(Arc::new(PeriodDue {
                core: self.me.clone(),
            })),
            over: Waker::from(Arc::new(PeriodOver {
                core: self.me.clone(),
            })),
        })
    }

    /// The breaker's identity for the re-entrancy guard of its callbacks.
    #[inline]
    pub(super) fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Whether a call that cannot be let through now is rejected at once.
    #[inline(always)]
    /// Whether each run's start time is taken (slow-call detection).
    pub(crate) fn times_calls(&self) -> bool {
        self.times_calls
    }

    pub(crate) fn fails_fast(&self) -> bool {
        self.settings.fail_fast
    }

    /// Whether the seed's accounting applies (retries and released calls uncounted).
    #[inline]
    pub(crate) fn seed_accounting(&self) -> bool {
        self.settings.seed_accounting
    }

    /// Whether a failed call waits out the freeze and runs once more (the seed's retry).
    #[inline]
    pub(crate) fn retries_after_freeze(&self) -> bool {
        self.settings.retry_after_freeze
    }

    /// How long a call waits at most before it is rejected.
    pub(crate) fn max_wait(&self) -> Option<Duration> {
        self.settings.max_wait()
    }

    /// The probe limit of the half-open state (`None`: everybody is let through).
    pub(crate) fn probe_limit(&self) -> Option<u32> {
        self.settings.half_open.probes
    }

    /// Every outcome counted since the breaker was built.
    pub(crate) fn totals(&self) -> crate::metrics::Counts {
        self.totals.snapshot()
    }

    /// How many calls are waiting now (a snapshot; allocates nothing).
    pub(crate) fn waiting(&self) -> usize {
        self.cold.get().map_or(0, |cold| cold.waiters.len())
    }

    /// The queue of waiting calls (allocated on first use).
    pub(crate) fn waiters(&self) -> &Waiters {
        &self.cold.waiters
    }

    pub(crate) fn name(&self) -> Option<&str> {
        self.reject_source
            .as_ref()
            .and_then(|source| source.name.as_deref())
    }

    #[inline]
    pub(crate) fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn now(&self) -> Duration {
        self.settings.clock.now()
    }

    /// A run's ticket. Always inlined (it is on every admission); the
    /// clock read of a breaker that times its runs is kept out of line, so
    /// that the admission inlined into every caller stays small.
    #[inline(always)]
    pub(super) fn ticket(&self, generation: u64, kind: TicketKind) -> Ticket {
        if self.times_calls {
            self.timed_ticket(generation, kind)
        } else {
            Ticket::new(generation, kind, NOT_TIMED)
        }
    }

    /// [`ticket`](Self::ticket) for a run that is timed: reads the clock.
    #[inline(never)]
    pub(super) fn timed_ticket(&self, generation: u64, kind: TicketKind) -> Ticket {
        Ticket::new(generation, kind, nanos(self.now()))
    }
}

/// The wakers a period hands to futures; each holds the breaker weakly.
pub(super) struct PeriodWakers {
    /// Handed to freeze futures (see [`FreezeWake`]).
    pub(super) freeze: Waker,
    /// Of a fail-fast period's alarm (see [`FreezeSlot::alarm`]).
    pub(super) due: Waker,
    /// Of a period's backup ring (see [`FreezeSlot`]'s `backup`).
    pub(super) over: Waker,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name())
            .field("state", &self.load().state())
            .field("waiting", &self.waiting())
            .finish_non_exhaustive()
    }
}
