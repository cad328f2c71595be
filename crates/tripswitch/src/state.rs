//! The breaker's state: the public [`State`] and the packed word that holds it.

use std::fmt;

/// Where a breaker stands.
///
/// The seed's "frozen" is [`State::Open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Calls go through; outcomes are recorded and may trip the breaker.
    Closed,
    /// The breaker tripped: calls wait (wait mode) or are rejected (fail-fast)
    /// until the open period ends.
    Open,
    /// The open period ended: a limited number of probe calls go through to
    /// decide between closing and opening again.
    HalfOpen,
    /// Opened by hand ([`force_open`](crate::CircuitBreaker::force_open)); stays
    /// open until [`resume`](crate::CircuitBreaker::resume) or
    /// [`reset`](crate::CircuitBreaker::reset).
    ForcedOpen,
    /// Turned off by hand: every call goes through and nothing is recorded.
    Disabled,
    /// Records outcomes and reports metrics but never changes state by itself.
    MetricsOnly,
}

impl State {
    /// Whether calls are held back (waiting or rejected) in this state, as the
    /// seed's `is_frozen` means it.
    pub fn is_open(self) -> bool {
        matches!(self, State::Open | State::ForcedOpen)
    }

    pub(crate) fn from_bits(bits: u64) -> State {
        match bits {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            _ => State::MetricsOnly,
        }
    }

    pub(crate) fn bits(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
            State::MetricsOnly => 5,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
            State::ForcedOpen => "forced open",
            State::Disabled => "disabled",
            State::MetricsOnly => "metrics-only",
        })
    }
}

const KIND_BITS: u32 = 3;
const PROBE_BITS: u32 = 16;
const PROBE_SHIFT: u32 = KIND_BITS;
/// Where the generation starts in a [`Word`] (and in a ticket's tag, so
/// that the two compare in one instruction: `Ticket::closed_word`).
pub(crate) const GEN_SHIFT: u32 = KIND_BITS + PROBE_BITS;
const KIND_MASK: u64 = (1 << KIND_BITS) - 1;
const PROBE_MASK: u64 = ((1 << PROBE_BITS) - 1) << PROBE_SHIFT;

/// The most probes that can be in flight at once (the probe counter's width).
pub(crate) const MAX_PROBES: u32 = (1 << PROBE_BITS) - 1;

/// Everything a call needs to know to be admitted, in one atomic word:
/// the state, the number of half-open probes in flight, and a generation
/// number that changes on every transition, so that outcomes of calls that
/// started before a transition are not counted after it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) const INITIAL: Word = Word(0);

    pub(crate) fn state(self) -> State {
        State::from_bits(self.0 & KIND_MASK)
    }

    /// Whether the word is in `state`: a mask and a compare, no decoding
    /// (for the hot paths).
    #[inline]
    pub(crate) fn is(self, state: State) -> bool {
        self.0 & KIND_MASK == state.bits()
    }

    pub(crate) fn probes(self) -> u32 {
        ((self.0 & PROBE_MASK) >> PROBE_SHIFT) as u32
    }

    pub(crate) fn generation(self) -> u64 {
        self.0 >> GEN_SHIFT
    }

    /// The same state and generation with `probes` probes in flight.
    pub(crate) fn with_probes(self, probes: u32) -> Word {
        Word((self.0 & !PROBE_MASK) | (u64::from(probes.min(MAX_PROBES)) << PROBE_SHIFT))
    }

    /// The word after a transition to `state`: next generation, no probes.
    pub(crate) fn next(self, state: State) -> Word {
        let generation = self.generation().wrapping_add(1) & (u64::MAX >> GEN_SHIFT);
        Word((generation << GEN_SHIFT) | state.bits())
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("probes", &self.probes())
            .field("generation", &self.generation())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trips() {
        let w = Word::INITIAL.next(State::HalfOpen).with_probes(7);
        assert_eq!(w.state(), State::HalfOpen);
        assert_eq!(w.probes(), 7);
        assert_eq!(w.generation(), 1);
        let n = w.next(State::Closed);
        assert_eq!(
            (n.state(), n.probes(), n.generation()),
            (State::Closed, 0, 2)
        );
    }
}
