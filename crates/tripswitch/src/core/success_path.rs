//! The success fast paths: how a counted success is recorded, chosen once
//! when the breaker is built (see [`SuccessPath`]).

use std::sync::Arc;

use super::rules::Move;
use super::*;
use crate::loom::lock;
use crate::metrics::Tally;
use crate::policy::{ConsecutiveState, CountRing, FastKind, RateState, TimeBuckets, TripPolicy};
use crate::state::State;
use crate::ticket::Ticket;

/// How [`Core::record_success`] records a counted success, decided once
/// from the settings. Separate fields rather than one enum: tests of two
/// pointers and a flag cost fewer instructions than the indirect jump a
/// `match` compiles to.
pub(super) struct SuccessPath {
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
    /// Boxed: 8 bytes in every breaker instead of 24, for one pointer load
    /// more on this shape's successes.
    paired: Option<Box<(Arc<ConsecutiveState>, Companion)>>,
    /// Every policy has a fast path (consecutive counts, count windows and
    /// time windows): no event, at most one clock read, and a rate judged
    /// only when a window asks for it (the rates among them, by
    /// [`Core::judge_after_success`]). Empty when one policy has none.
    windows: Box<[FastKind]>,
}

/// The window paired with a consecutive-failures policy in [`SuccessPath::paired`].
pub(super) enum Companion {
    Ring(Arc<CountRing>),
    Buckets(Arc<TimeBuckets>),
}

impl Companion {
    pub(super) fn of(rate: &RateState) -> Option<Companion> {
        match (rate.ring(), rate.buckets()) {
            (Some(ring), _) => Some(Companion::Ring(Arc::clone(ring))),
            (None, Some(buckets)) => Some(Companion::Buckets(Arc::clone(buckets))),
            (None, None) => None,
        }
    }
}

impl SuccessPath {
    /// `observed`: runs are timed or listeners want events; then every
    /// success goes through [`Core::record`]. Otherwise the built-in
    /// policies' fast paths (`policy::fast_path`) decide.
    pub(super) fn for_settings(policies: &[Box<dyn TripPolicy>], observed: bool) -> SuccessPath {
        let mut path = SuccessPath {
            ring: None,
            consecutive: None,
            buckets: None,
            paired: None,
            windows: Box::new([]),
        };
        let kinds: Option<Vec<FastKind>> = policies
            .iter()
            .map(|policy| crate::policy::fast_path(policy.as_ref()))
            .collect();
        let Some(kinds) = kinds.filter(|_| !observed) else {
            return path;
        };
        match kinds.as_slice() {
            [FastKind::Consecutive(consecutive)] => {
                path.consecutive = Some(Arc::clone(consecutive))
            }
            [FastKind::Rate(rate)] if rate.ring().is_some() => path.ring = rate.ring().cloned(),
            [FastKind::Rate(rate)] if rate.buckets().is_some() => {
                path.buckets = rate.buckets().cloned();
            }
            [FastKind::Consecutive(consecutive), FastKind::Rate(rate)]
            | [FastKind::Rate(rate), FastKind::Consecutive(consecutive)] => {
                path.paired = Companion::of(rate).map(|c| Box::new((Arc::clone(consecutive), c)));
            }
            _ => {}
        }
        path.windows = kinds.into();
        path
    }
}

impl Core {
    /// Records a success, by the path chosen when the breaker was built (see
    /// [`SuccessPath`]). On the happiest one (a counted call, no listeners,
    /// no timing, a consecutive-failures policy with nothing counted) this is
    /// one comparison of the state word with the ticket, one counter
    /// increment and one relaxed load.
    ///
    /// The comparison ([`Ticket::closed_word`]) tells in one instruction
    /// that the call is counted and that the breaker is still closed in the
    /// call's generation; anything else (a late result, the metrics-only
    /// state, a probe, a released or pass-through call) takes the path out
    /// of line.
    #[inline(always)]
    pub(crate) fn record_success(&self, ticket: Ticket) {
        if self.load().0 == ticket.closed_word() {
            self.success_by_path::<false>(ticket);
        } else {
            self.success_elsewhere(ticket);
        }
    }

    /// The consecutive count of a breaker whose only policy it is, when
    /// successes take its short path (no timing, no listeners): failures
    /// can take one too (`Core::record`).
    #[inline(always)]
    pub(super) fn lone_consecutive_count(&self) -> Option<&ConsecutiveState> {
        self.success_path.consecutive.as_deref()
    }

    /// A success that is not a counted one in its own closed generation.
    #[inline(never)]
    fn success_elsewhere(&self, ticket: Ticket) {
        if ticket.is_counted() {
            self.success_maybe_late(ticket);
        } else {
            self.record(ticket, Verdict::Success);
        }
    }

    /// Metrics-only, or a late result: the same paths, and a late result
    /// is taken out of the current state's counts. Apart, so that
    /// [`success_elsewhere`](Self::success_elsewhere) stays a pair of jumps.
    #[inline(never)]
    fn success_maybe_late(&self, ticket: Ticket) {
        self.success_by_path::<true>(ticket);
    }

    /// The success paths proper, for a counted ticket. `MAY_BE_LATE`: the
    /// caller has not ruled out a late result.
    ///
    /// The three one-policy paths are inlined into the caller (a time
    /// window's up to its clock read, which is out of line); the others are
    /// one call out of line.
    #[inline(always)]
    fn success_by_path<const MAY_BE_LATE: bool>(&self, ticket: Ticket) {
        if let Some(consecutive) = &self.success_path.consecutive {
            self.count_success::<MAY_BE_LATE>(ticket);
            if consecutive.current() != 0 {
                self.success_resets_the_count(consecutive, ticket);
            }
        } else if let Some(ring) = &self.success_path.ring {
            self.count_success::<MAY_BE_LATE>(ticket);
            self.success_to_own_ring::<MAY_BE_LATE>(ring, ticket);
        } else if let Some(buckets) = &self.success_path.buckets {
            self.count_success::<MAY_BE_LATE>(ticket);
            self.success_to_own_buckets::<MAY_BE_LATE>(buckets, ticket);
        } else {
            self.success_by_other_path::<MAY_BE_LATE>(ticket);
        }
    }

    /// [`success_by_path`](Self::success_by_path) for the other shapes: a
    /// consecutive count paired with a window, several windows, or a policy
    /// without a fast path.
    #[inline(never)]
    fn success_by_other_path<const MAY_BE_LATE: bool>(&self, ticket: Ticket) {
        if let Some(paired) = &self.success_path.paired {
            let (consecutive, companion) = &**paired;
            self.count_success::<MAY_BE_LATE>(ticket);
            if consecutive.current() != 0 {
                // The success resets the count: the general path.
                self.success_to_windows(ticket);
            } else {
                match companion {
                    Companion::Ring(ring) => {
                        self.success_to_own_ring::<MAY_BE_LATE>(ring, ticket);
                    }
                    Companion::Buckets(buckets) => {
                        self.success_to_own_buckets::<MAY_BE_LATE>(buckets, ticket);
                    }
                }
            }
        } else if !self.success_path.windows.is_empty() {
            self.count_success::<MAY_BE_LATE>(ticket);
            self.success_to_windows(ticket);
        } else {
            self.record(ticket, Verdict::Success);
        }
    }

    /// A success that resets a lone consecutive count, in its generation
    /// (as [`success_to_windows`](Self::success_to_windows) would, without
    /// the walk over the policy kinds).
    #[cold]
    #[inline(never)]
    fn success_resets_the_count(&self, consecutive: &ConsecutiveState, ticket: Ticket) {
        if self.load().generation() == ticket.generation() {
            consecutive.record(false);
        }
    }

    /// Adds a counted success to the totals; a late one (from before the
    /// last transition) is taken out of the current state's counts (see
    /// `Core::count_outcome`).
    #[inline(always)]
    fn count_success<const MAY_BE_LATE: bool>(&self, ticket: Ticket) {
        self.totals.add(Tally::Success);
        if MAY_BE_LATE && self.load().generation() != ticket.generation() {
            self.late_success();
        }
    }

    #[cold]
    #[inline(never)]
    fn late_success(&self) {
        lock(&self.cold.state_since).add(Tally::Success);
    }

    /// A success for the built-in policies (consecutive counts, count and
    /// time windows), in the call's generation only. A window that asks for
    /// it (see `CountRing::judge_at`, `TimeBuckets::may_hold_failures`) is
    /// judged afterwards.
    #[inline]
    pub(super) fn success_to_windows(&self, ticket: Ticket) {
        // A counted call was admitted closed or metrics-only; while the
        // generation is the same, the breaker is still in that state.
        if self.load().generation() != ticket.generation() {
            return;
        }
        let mut now = None;
        let mut judge = false;
        for kind in self.success_path.windows.iter() {
            match kind {
                FastKind::Consecutive(consecutive) => {
                    consecutive.record(false);
                }
                FastKind::Rate(rate) => {
                    if let Some(ring) = rate.ring() {
                        judge |= ring.record_success();
                    } else if let Some(buckets) = rate.buckets() {
                        judge |= buckets.record_success(*now.get_or_insert_with(|| self.now()));
                    }
                }
            }
        }
        if judge {
            self.judge_after_success(ticket);
        }
    }

    /// Judges the rate policies after a success that a window asked to be
    /// judged (it made the window judgeable, or the window may hold
    /// failures): trips the breaker if a rate is exceeded, in the success's
    /// generation, from closed only. Out of line: most successes never get
    /// here.
    #[cold]
    #[inline(never)]
    pub(super) fn judge_after_success(&self, ticket: Ticket) {
        let word = self.load();
        if word.generation() != ticket.generation() || word.state() != State::Closed {
            return;
        }
        let now = self.now();
        let mut exceeded = false;
        for kind in self.success_path.windows.iter() {
            if let FastKind::Rate(rate) = kind
                && rate.judge(now)
            {
                exceeded = true;
                if self.listening() {
                    self.announce(rate, now);
                }
            }
        }
        if exceeded {
            self.apply(Move::Trip, Some(word.generation()), None);
        }
    }

    /// A success in a breaker's only count window (beside a consecutive
    /// count, if any). A full ring without failures needs nothing, in any
    /// generation; otherwise only in the call's own generation (the breaker
    /// is still in the state that admitted the call). `MAY_BE_LATE`: the
    /// caller has not checked the generation ([`record_success`](Self::record_success)
    /// has, when it is false).
    #[inline(always)]
    pub(super) fn success_to_own_ring<const MAY_BE_LATE: bool>(
        &self,
        ring: &CountRing,
        ticket: Ticket,
    ) {
        if !ring.success_is_a_no_op()
            && (!MAY_BE_LATE || self.load().generation() == ticket.generation())
            && ring.record_untimed_success()
        {
            self.judge_after_success(ticket);
        }
    }

    /// A success in a breaker's only time window (beside a consecutive
    /// count, if any), in the call's generation. `MAY_BE_LATE` as for
    /// [`success_to_own_ring`](Self::success_to_own_ring).
    #[inline(always)]
    pub(super) fn success_to_own_buckets<const MAY_BE_LATE: bool>(
        &self,
        buckets: &TimeBuckets,
        ticket: Ticket,
    ) {
        if MAY_BE_LATE && self.load().generation() != ticket.generation() {
            return;
        }
        if self.success_to_buckets(buckets) {
            self.judge_after_success(ticket);
        }
    }

    /// A success counted in `buckets` at the clock's time. On tokio's or
    /// `std`'s clock the thread's last slice is reused (see
    /// `policy::last_slice`), inlined up to the
    /// clock read (a call), so that a success in the thread's last slice
    /// costs no other call. The first success in a slice goes the long
    /// way, and the other clocks their own, out of line.
    #[inline(always)]
    pub(super) fn success_to_buckets(&self, buckets: &TimeBuckets) -> bool {
        let Some(on_tokio) = self.settings.clock.reads_instants() else {
            return self.success_on_another_clock(buckets);
        };
        let now = crate::clock::instant_now(on_tokio);
        match buckets.record_success_again(now) {
            Some(judge) => judge,
            None => self.success_in_a_new_slice(buckets, now),
        }
    }

    /// [`success_to_buckets`](Self::success_to_buckets)
    /// on the time-stamp-counter clock (its last slice reused too) or a
    /// custom one.
    #[inline(never)]
    fn success_on_another_clock(&self, buckets: &TimeBuckets) -> bool {
        #[cfg(feature = "quanta")]
        if let Some(tsc) = self.settings.clock.tsc() {
            let now = tsc.nanos();
            return match buckets.record_success_again(now) {
                Some(judge) => judge,
                None => buckets.record_success_at(now, 0),
            };
        }
        buckets.record_success(self.now())
    }

    /// The long way of [`success_to_buckets`](Self::success_to_buckets)
    /// on tokio's or `std`'s clock. The origin is loaded here rather than
    /// by the caller: the short path never needs it.
    #[inline(never)]
    fn success_in_a_new_slice(&self, buckets: &TimeBuckets, now: std::time::Instant) -> bool {
        match self.settings.clock.instant_origin() {
            Some(origin) => buckets.record_success_at(now, origin),
            // Instants come from tokio's and `std`'s clocks only.
            None => buckets.record_success(self.now()),
        }
    }
}
