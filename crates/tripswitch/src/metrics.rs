//! Counts and snapshots: what [`CircuitBreaker::metrics`](crate::CircuitBreaker::metrics) returns.

use std::cell::Cell;
use std::time::Duration;

use crate::State;
use crate::loom::{AtomicU32, AtomicU64, OnceLock, Ordering};

/// Numbers of calls by outcome.
///
/// Each run of an operation counts once (a seed-style retry is a second run).
/// `rejected` counts calls the breaker refused without running them;
/// `cancelled` counts runs whose future was dropped before they finished.
/// `slow` overlaps the others: a slow call is also a success or a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Counts {
    /// Runs that succeeded.
    pub successes: u64,
    /// Runs that failed, panics included.
    pub failures: u64,
    /// Runs that failed with an ignored error.
    pub ignored: u64,
    /// Runs slower than the slow-call threshold.
    pub slow: u64,
    /// Calls refused without running.
    pub rejected: u64,
    /// Runs cancelled before they finished.
    pub cancelled: u64,
}

impl Counts {
    /// Every call accounted for: successes, failures, ignored, rejected and cancelled.
    pub fn calls(&self) -> u64 {
        self.successes + self.failures + self.ignored + self.rejected + self.cancelled
    }

    /// One more of `tally`.
    pub(crate) fn add(&mut self, tally: Tally) {
        let count = match tally {
            Tally::Success => &mut self.successes,
            Tally::Failure => &mut self.failures,
            Tally::Ignored => &mut self.ignored,
            Tally::Slow => &mut self.slow,
            Tally::Rejected => &mut self.rejected,
            Tally::Cancelled => &mut self.cancelled,
        };
        *count = count.saturating_add(1);
    }

    pub(crate) fn saturating_sub(self, base: Counts) -> Counts {
        Counts {
            successes: self.successes.saturating_sub(base.successes),
            failures: self.failures.saturating_sub(base.failures),
            ignored: self.ignored.saturating_sub(base.ignored),
            slow: self.slow.saturating_sub(base.slow),
            rejected: self.rejected.saturating_sub(base.rejected),
            cancelled: self.cancelled.saturating_sub(base.cancelled),
        }
    }
}

/// A snapshot of a breaker, cheap to take.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The state when the snapshot was taken.
    pub state: State,
    /// The failure rate over the first failure-rate policy's window, if there is one and it holds calls.
    pub failure_rate: Option<f64>,
    /// The slow-call rate over the first slow-call policy's window, if there is one and it holds calls.
    pub slow_call_rate: Option<f64>,
    /// Consecutive failures so far, with a consecutive-failures policy.
    pub consecutive_failures: Option<u32>,
    /// The number of calls in the (first) window, with a windowed policy:
    /// Polly's throughput, Resilience4j's number of buffered calls.
    pub calls_in_window: Option<u64>,
    /// Counts since the breaker entered its current state, of runs admitted
    /// in it: a late result (a run that started before the last transition
    /// and ended after it) counts in [`totals`](Self::totals) only, as
    /// gobreaker's per-generation counts exclude it. (A result that ends
    /// while another thread makes the transition may still land on either
    /// side: the check and the count are not one atomic step, so that the
    /// happy path takes no lock.)
    pub current: Counts,
    /// Counts since the breaker was created.
    pub totals: Counts,
    /// Half-open probes running now.
    pub probes_in_flight: u32,
    /// Calls waiting for the breaker now.
    pub waiting: usize,
    /// How long until calls are let through: zero when they are now, `None`
    /// when unknown (an async freeze, forced open, half-open).
    pub retry_after: Option<Duration>,
}

/// Which counter of [`Counts`] an outcome adds to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tally {
    Success = 0,
    Failure = 1,
    Ignored = 2,
    Slow = 3,
    Rejected = 4,
    Cancelled = 5,
}

const COUNTERS: usize = 6;
/// Stripes owned by one thread at a time: an owner updates its stripe with
/// a plain load and store, no locked instruction.
pub(crate) const OWNED_STRIPES: usize = 8;

/// Running totals.
///
/// Every thread that counts has an index (see [`owned_stripe`]): up to
/// [`OWNED_STRIPES`] live threads own one each, and are the only writers of
/// the counters of that index, so an increment is a plain load and store;
/// further threads share one stripe and use atomic additions. Readers sum
/// the stripes.
///
/// Memory: the first thread that counts gets `first`, one stripe on a line
/// of its own (64 bytes, see [`FirstStripe`]); the stripes of every other index (another
/// `(OWNED_STRIPES + 1) × 128` bytes) are allocated the first time a second
/// thread counts. A breaker used from one thread, or only ever tripped by
/// hand, never pays for them; the trade-off is one allocation, on the first
/// count of the second thread, and a breaker once used by two threads keeps
/// them.
#[derive(Debug)]
pub(crate) struct Totals {
    /// The counters of the index in `first_owner`.
    first: Box<FirstStripe>,
    /// The thread index ([`STRIPE`]'s value) whose counters are `first`,
    /// or [`NO_OWNER`] before the first count. Invariant: set once, from
    /// [`NO_OWNER`], by a compare-and-swap, to an owned index; afterwards
    /// only the thread that holds that index writes `first` (the index is
    /// handed from an exiting thread to the next through `OWNERS`, whose
    /// release and acquire order the old owner's last plain stores before
    /// the new owner's first load). `Relaxed` suffices: a thread compares
    /// it with its own index, and the one that set it sees its own write;
    /// any other thread finds it different from its index whatever it reads.
    first_owner: AtomicU32,
    /// Every other index's stripe, [`OWNED_STRIPES`] owned ones and the
    /// shared one last, allocated on first need (see above).
    more: OnceLock<Box<[Stripe; OWNED_STRIPES + 1]>>,
}

/// [`Totals::first_owner`] before any thread counted: no thread index equals it.
const NO_OWNER: u32 = u32::MAX;

impl Default for Totals {
    fn default() -> Self {
        Totals {
            first: Box::default(),
            first_owner: AtomicU32::new(NO_OWNER),
            more: OnceLock::new(),
        }
    }
}

/// One thread index's counters.
#[derive(Debug, Default)]
struct Counters {
    counts: [AtomicU64; COUNTERS],
}

/// The counters of an index other than the first, on a pair of cache lines
/// of their own (128 bytes: x86's adjacent-line prefetcher moves lines in
/// pairs), so that threads counting on the same breaker never share one.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(Counters);

/// The first counting thread's counters, on one cache line of their own
/// (64 bytes, not 128: every breaker has this one, and a registry of a
/// hundred thousand pays for it a hundred thousand times). The trade-off:
/// two breakers' first stripes, counted by two threads, may sit on the two
/// lines of one pair; they never share a line, so each owner's increment
/// stays a plain store to its own line, and no count is ever lost (each
/// line still has one writer).
#[derive(Debug, Default)]
#[repr(align(64))]
struct FirstStripe(Counters);

impl Counters {
    /// One more in `tally`, by this stripe's only writer.
    #[inline(always)]
    fn bump(&self, tally: Tally) {
        let counter = &self.counts[tally as usize];
        // Single writer: this thread owns the stripe. (Under loom too:
        // each model thread has its own `STRIPE`, and a stripe with two
        // writers would lose a count the models check.)
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

impl Totals {
    /// Counts one outcome: on the first counting thread, one thread-local
    /// load, one relaxed load and a plain increment.
    #[inline(always)]
    pub(crate) fn add(&self, tally: Tally) {
        if u32::from(STRIPE.with(Cell::get)) == self.first_owner.load(Ordering::Relaxed) {
            self.first.0.bump(tally);
        } else {
            self.add_elsewhere(tally);
        }
    }

    /// This thread's count of `tally` so far, if this thread owns `first`
    /// (the common case, cheap: the same test as [`add`](Self::add)'s);
    /// `None` on any other thread.
    #[inline(always)]
    pub(crate) fn own_first_count(&self, tally: Tally) -> Option<u64> {
        if u32::from(STRIPE.with(Cell::get)) == self.first_owner.load(Ordering::Relaxed) {
            Some(self.first.0.counts[tally as usize].load(Ordering::Relaxed))
        } else {
            None
        }
    }

    /// [`add`](Self::add) on the thread that [`own_first_count`](Self::own_first_count)
    /// just answered for: `first` is this thread's (an owner keeps it for
    /// life), so the owner test need not be made again.
    #[inline(always)]
    pub(crate) fn add_to_own_first(&self, tally: Tally) {
        self.first.0.bump(tally);
    }

    /// [`add`](Self::add) from any thread but `first`'s owner (or the very
    /// first count). Out of line: most breakers are counted by one thread.
    #[cold]
    #[inline(never)]
    fn add_elsewhere(&self, tally: Tally) {
        let Some(index) = owned_stripe() else {
            if let Some(shared) = self.more().last() {
                shared.0.counts[tally as usize].fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        let first = self.first_owner.load(Ordering::Relaxed);
        if first == index as u32
            || first == NO_OWNER
                && self
                    .first_owner
                    .compare_exchange(NO_OWNER, index as u32, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
        {
            self.first.0.bump(tally);
        } else if let Some(stripe) = self.more().get(index) {
            stripe.0.bump(tally);
        }
    }

    /// The stripes of every index but `first`'s, allocated on first use.
    fn more(&self) -> &[Stripe; OWNED_STRIPES + 1] {
        self.more.get_or_init(Box::default)
    }

    pub(crate) fn snapshot(&self) -> Counts {
        let mut sums = [0u64; COUNTERS];
        let more = self.more.get().map_or(&[][..], |more| &more[..]);
        for stripe in std::iter::once(&self.first.0).chain(more.iter().map(|stripe| &stripe.0)) {
            for (sum, counter) in sums.iter_mut().zip(stripe.counts.iter()) {
                *sum += counter.load(Ordering::Relaxed);
            }
        }
        Counts {
            successes: sums[Tally::Success as usize],
            failures: sums[Tally::Failure as usize],
            ignored: sums[Tally::Ignored as usize],
            slow: sums[Tally::Slow as usize],
            rejected: sums[Tally::Rejected as usize],
            cancelled: sums[Tally::Cancelled as usize],
        }
    }
}

/// The stripe this thread owns, if it holds one. A thread takes a free stripe
/// index the first time it counts and gives it back when it exits, so a
/// stripe has one writer at a time; the hand-over goes through `OWNERS`
/// (release on exit, acquire on take), which orders the old owner's last
/// writes before the new owner's first.
#[inline]
pub(crate) fn owned_stripe() -> Option<usize> {
    // A const thread-local without a destructor: one thread-relative load.
    let index = STRIPE.with(Cell::get);
    if usize::from(index) < OWNED_STRIPES {
        Some(usize::from(index))
    } else if index == SHARED {
        None
    } else {
        claim_stripe()
    }
}

/// [`owned_stripe`] for a thread that has already counted: `None` also
/// before the thread's first count, instead of claiming a stripe. With no
/// call in it, a short path that uses it needs no saved registers.
#[inline(always)]
pub(crate) fn claimed_stripe() -> Option<usize> {
    let index = STRIPE.with(Cell::get);
    (usize::from(index) < OWNED_STRIPES).then_some(usize::from(index))
}

/// [`STRIPE`] before this thread's first count.
const UNCLAIMED: u8 = u8::MAX;
/// [`STRIPE`] of a thread that counts on the shared stripe (none was free,
/// or the thread is exiting).
const SHARED: u8 = u8::MAX - 1;

/// Which of the [`OWNED_STRIPES`] indices are taken, one bit each.
/// Invariant: a bit is set exactly while one live thread's [`STRIPE`] holds
/// its index. Taken with `Acquire`, given back with `Release`, so that the
/// old owner's last plain stores happen before the new owner's first load.
#[cfg(not(loom))]
static OWNERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

crate::loom::thread_local_const! {
    /// This thread's stripe index, [`UNCLAIMED`] or [`SHARED`].
    static STRIPE: Cell<u8> = Cell::new(UNCLAIMED);
    /// Holds the claimed index, to give it back when the thread exits.
    static CLAIM: Claim = Claim;
}

// The same under loom, per model execution, so that the models run the
// production path (one writer per stripe).
#[cfg(loom)]
::loom::lazy_static! {
    static ref OWNERS: crate::loom::AtomicU64 = crate::loom::AtomicU64::new(0);
}

/// Gives this thread's stripe back when the thread exits.
struct Claim;

// Not under loom: a model's threads end with its execution, which starts
// the next one with a fresh `OWNERS`, and loom's thread-locals cannot be
// reached from a destructor.
#[cfg(not(loom))]
impl Drop for Claim {
    fn drop(&mut self) {
        let index = STRIPE.with(|stripe| stripe.replace(SHARED));
        if usize::from(index) < OWNED_STRIPES {
            OWNERS.fetch_and(!(1 << index), Ordering::Release);
        }
    }
}

/// This thread's first count: takes a free stripe, if any.
#[cold]
#[inline(never)]
fn claim_stripe() -> Option<usize> {
    use Ordering::{Acquire, Relaxed};
    // Registers the destructor that gives the stripe back; a thread that is
    // already exiting cannot register one, and counts on the shared stripe.
    if CLAIM.try_with(|_| ()).is_err() {
        STRIPE.with(|stripe| stripe.set(SHARED));
        return None;
    }
    let mut taken = OWNERS.load(Relaxed);
    let index = loop {
        let free = (!taken).trailing_zeros() as usize;
        if free >= OWNED_STRIPES {
            break None;
        }
        match OWNERS.compare_exchange_weak(taken, taken | 1 << free, Acquire, Relaxed) {
            Ok(_) => break Some(free),
            Err(now) => taken = now,
        }
    };
    STRIPE.with(|stripe| stripe.set(index.map_or(SHARED, |i| i as u8)));
    index
}
