//! A call's admission ticket: the generation that let it in and how it counts.

use std::num::NonZeroU64;

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
    #[inline(always)]
    pub(crate) fn new(generation: u64, kind: TicketKind, started: u64) -> Ticket {
        let tag = generation << KIND_BITS | (kind as u64 + 1);
        Ticket {
            tag: NonZeroU64::new(tag).unwrap_or(NonZeroU64::MIN),
            started,
        }
    }

    /// When the run started (nanoseconds on the clock), or [`NOT_TIMED`].
    #[inline]
    pub(crate) fn started(self) -> u64 {
        self.started
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

/// [`Ticket::started`] of a run that is not timed.
pub(crate) const NOT_TIMED: u64 = u64::MAX;
