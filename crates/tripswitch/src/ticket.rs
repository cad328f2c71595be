//! A call's admission ticket: the generation that let it in and how it counts.

use std::num::NonZeroU64;

use crate::state::{GEN_SHIFT, State, Word};

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
    /// The generation, shifted left by [`GEN_SHIFT`] as in the state word,
    /// with the kind's code (see [`KIND_MASK`]) in the low bits (so it is
    /// never zero).
    tag: NonZeroU64,
    /// When the run started in nanoseconds on the clock, when the breaker
    /// measures runs; [`NOT_TIMED`] otherwise.
    started: u64,
}

/// Low bits of [`Ticket::tag`] holding the kind's code: 1 for a counted
/// call; for the others, low three bits 7 and the kind above them, so that
/// `tag - 1` ends in 6, a state no word has (see [`Ticket::closed_word`]).
const KIND_MASK: u64 = 0b11_1111;
const COUNTED: u64 = 0b00_0001;
const PROBE: u64 = 0b00_1111;
const RELEASED: u64 = 0b01_0111;
const PASS_THROUGH: u64 = 0b01_1111;
const _: () = assert!(std::mem::size_of::<Option<Ticket>>() == 16);

impl Ticket {
    #[inline(always)]
    pub(crate) fn new(generation: u64, kind: TicketKind, started: u64) -> Ticket {
        // The generation where the state word has it (the word's generation
        // fits: it has `64 - GEN_SHIFT` bits), the kind in the low bits.
        let code = match kind {
            TicketKind::Counted => COUNTED,
            TicketKind::Probe => PROBE,
            TicketKind::Released => RELEASED,
            TicketKind::PassThrough => PASS_THROUGH,
        };
        let tag = generation << GEN_SHIFT | code;
        Ticket {
            tag: NonZeroU64::new(tag).unwrap_or(NonZeroU64::MIN),
            started,
        }
    }

    /// The ticket of a counted, untimed call admitted by the closed state
    /// word `word`: the same as `Ticket::new(word.generation(), Counted,
    /// NOT_TIMED)`, made with one instruction. A closed word is its
    /// generation and nothing else (state bits 0, and no probes: only
    /// half-open words carry probes, `Word::with_probes`).
    #[inline(always)]
    pub(crate) fn counted_in_closed(word: Word) -> Ticket {
        debug_assert!(word.is(State::Closed) && word.probes() == 0);
        Ticket {
            tag: NonZeroU64::new(word.0 | COUNTED).unwrap_or(NonZeroU64::MIN),
            started: NOT_TIMED,
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
        self.tag.get() >> GEN_SHIFT
    }

    /// The state word of a closed breaker in this ticket's generation:
    /// equal to the state word exactly when the ticket is counted and the
    /// breaker is still closed in the generation that admitted it (no late
    /// result, no metrics-only state). For a ticket of another kind it ends
    /// in state bits 6, which no word has, so it equals no word.
    #[inline(always)]
    pub(crate) fn closed_word(self) -> u64 {
        self.tag.get() - 1
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
        match self.tag.get() & KIND_MASK {
            COUNTED => TicketKind::Counted,
            PROBE => TicketKind::Probe,
            RELEASED => TicketKind::Released,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `closed_word` equals the state word only for a counted ticket of a
    /// breaker still closed in the ticket's generation: never for another
    /// kind, state, probe count or generation.
    #[test]
    fn only_a_counted_ticket_of_a_closed_generation_matches_the_word() {
        let states = [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::ForcedOpen,
            State::Disabled,
            State::MetricsOnly,
        ];
        let kinds = [
            TicketKind::Counted,
            TicketKind::Probe,
            TicketKind::Released,
            TicketKind::PassThrough,
        ];
        let mut word = Word::INITIAL;
        for _ in 0..4 {
            for state in states {
                let entered = word.next(state);
                for probes in [0, 1, 7, 255] {
                    let current = entered.with_probes(probes);
                    for kind in kinds {
                        for generation in [entered.generation(), entered.generation() + 1] {
                            let ticket = Ticket::new(generation, kind, NOT_TIMED);
                            assert_eq!(ticket.kind(), kind);
                            assert_eq!(ticket.generation(), generation);
                            let expected = kind == TicketKind::Counted
                                && state == State::Closed
                                && probes == 0
                                && generation == entered.generation();
                            assert_eq!(
                                current.0 == ticket.closed_word(),
                                expected,
                                "{kind:?} of generation {generation} against {state:?} with {probes} probes"
                            );
                        }
                    }
                }
                word = entered;
            }
        }
    }

    /// The closed-word shortcut makes the same ticket as `Ticket::new`, in
    /// every generation (the largest and the wrapped one included).
    #[test]
    fn a_closed_words_ticket_is_the_counted_ticket_of_its_generation() {
        let largest = u64::MAX >> GEN_SHIFT;
        let mut words = vec![Word::INITIAL];
        let mut word = Word::INITIAL;
        for _ in 0..5 {
            word = word.next(State::Open).next(State::Closed);
            words.push(word);
        }
        let last = Word(largest << GEN_SHIFT);
        words.push(last);
        words.push(last.next(State::Closed));
        for word in words {
            assert!(word.is(State::Closed));
            let shortcut = Ticket::counted_in_closed(word);
            let full = Ticket::new(word.generation(), TicketKind::Counted, NOT_TIMED);
            assert_eq!(shortcut.tag, full.tag, "{word:?}");
            assert_eq!(shortcut.started(), NOT_TIMED);
            assert_eq!(shortcut.kind(), TicketKind::Counted);
            assert_eq!(shortcut.closed_word(), word.0);
        }
    }
}
