//! Which moves are legal: a pure function of the move asked for and the
//! state the breaker is in. No atomics, no clock: the table below is the
//! whole state machine, and [`Core::apply`](super::Core::apply) is the one
//! compare-and-swap that carries a decision out.
//!
//! | move | closed | open | half-open | forced open | disabled | metrics-only |
//! |---|---|---|---|---|---|---|
//! | trip (a policy tripped) | open | – | – | – | – | – |
//! | end of the open period | – | half-open, or closed without probes | – | – | – | – |
//! | a probe failed | – | – | open | – | – | – |
//! | half-open ran out of time | – | – | open | – | – | – |
//! | probes succeeded | – | – | closed | – | – | – |
//! | force open | forced open | forced open | forced open | – | forced open | forced open |
//! | resume | – | – | – | closed | closed | closed |
//! | disable | disabled | disabled | disabled | disabled | – | disabled |
//! | metrics only | metrics-only | metrics-only | metrics-only | metrics-only | metrics-only | – |
//! | reset | *renew* | closed | closed | closed | closed | closed |
//! | shared: open | open | open | open | – | – | – |
//! | shared: half-open | – | half-open | – | – | – | – |
//! | shared: close | – | closed | closed | – | – | – |
//!
//! "–" refuses the move; *renew* stays in the state with a new generation
//! (calls admitted before it no longer count) and no event. Automatic moves
//! (the first five) are also refused once the generation that asked for
//! them has passed; manual and shared moves apply to whatever generation is
//! current. Manual states win over the fleet: a shared store cannot move a
//! forced-open, disabled or metrics-only breaker.

use crate::events::TransitionReason;
use crate::state::State;

/// A move asked of the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Move {
    /// A trip policy tripped.
    Trip,
    /// The open period ran out; `probes`: whether half-open lets probes through
    /// (otherwise the breaker closes at once).
    EndOpenPeriod { probes: bool },
    /// A probe failed (or was slow, when slow probes fail).
    ProbeFailed,
    /// The half-open state's maximum duration passed.
    HalfOpenTimedOut,
    /// Enough probes succeeded.
    ProbesSucceeded,
    /// [`force_open`](crate::CircuitBreaker::force_open).
    ForceOpen,
    /// [`resume`](crate::CircuitBreaker::resume).
    Release,
    /// [`disable`](crate::CircuitBreaker::disable).
    Disable,
    /// [`metrics_only`](crate::CircuitBreaker::metrics_only).
    MetricsOnly,
    /// [`reset`](crate::CircuitBreaker::reset).
    Reset,
    /// A shared store holds the breaker open for the fleet.
    SharedOpen,
    /// A shared store hands the fleet's probes to this breaker.
    SharedHalfOpen,
    /// A shared store closes the breaker (the fleet closed).
    SharedClose,
}

/// What a move does from a given state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Move to this state (a new generation, and an event).
    To(State),
    /// Stay, with a new generation and no event.
    Renew,
    /// Not from this state: nothing happens.
    Refused,
}

impl Move {
    /// The reason listeners and shared stores are given.
    pub(crate) fn reason(self) -> TransitionReason {
        match self {
            Move::Trip => TransitionReason::Tripped,
            Move::EndOpenPeriod { .. } => TransitionReason::OpenPeriodEnded,
            Move::ProbeFailed => TransitionReason::ProbeFailed,
            Move::HalfOpenTimedOut => TransitionReason::HalfOpenTimedOut,
            Move::ProbesSucceeded => TransitionReason::ProbesSucceeded,
            Move::ForceOpen => TransitionReason::ForcedOpen,
            Move::Release => TransitionReason::Released,
            Move::Disable => TransitionReason::Disabled,
            Move::MetricsOnly => TransitionReason::MetricsOnly,
            Move::Reset => TransitionReason::Reset,
            Move::SharedOpen | Move::SharedHalfOpen | Move::SharedClose => TransitionReason::Shared,
        }
    }
}

/// What `request` does when the breaker is in `from` (see the module's table).
pub(crate) fn decide(request: Move, from: State) -> Decision {
    use Decision::{Refused, Renew, To};
    use State::{Closed, Disabled, ForcedOpen, HalfOpen, MetricsOnly, Open};
    match (request, from) {
        (Move::Trip, Closed) => To(Open),
        (Move::EndOpenPeriod { probes: true }, Open) => To(HalfOpen),
        (Move::EndOpenPeriod { probes: false }, Open) => To(Closed),
        (Move::ProbeFailed | Move::HalfOpenTimedOut, HalfOpen) => To(Open),
        (Move::ProbesSucceeded, HalfOpen) => To(Closed),
        (Move::ForceOpen, ForcedOpen) => Refused,
        (Move::ForceOpen, _) => To(ForcedOpen),
        (Move::Release, ForcedOpen | Disabled | MetricsOnly) => To(Closed),
        (Move::Disable, Disabled) => Refused,
        (Move::Disable, _) => To(Disabled),
        (Move::MetricsOnly, MetricsOnly) => Refused,
        (Move::MetricsOnly, _) => To(MetricsOnly),
        (Move::Reset, Closed) => Renew,
        (Move::Reset, _) => To(Closed),
        (Move::SharedOpen, Closed | Open | HalfOpen) => To(Open),
        (Move::SharedHalfOpen, Open) => To(HalfOpen),
        (Move::SharedClose, Open | HalfOpen) => To(Closed),
        _ => Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: [State; 6] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::Disabled,
        State::MetricsOnly,
    ];

    /// The module's table, written out as data: each row is what the move
    /// does from closed, open, half-open, forced open, disabled, metrics-only
    /// ("-" refused, "renew", or the state moved to).
    const TABLE: [(Move, [&str; 6]); 14] = [
        (Move::Trip, ["open", "-", "-", "-", "-", "-"]),
        (
            Move::EndOpenPeriod { probes: true },
            ["-", "half-open", "-", "-", "-", "-"],
        ),
        (
            Move::EndOpenPeriod { probes: false },
            ["-", "closed", "-", "-", "-", "-"],
        ),
        (Move::ProbeFailed, ["-", "-", "open", "-", "-", "-"]),
        (Move::HalfOpenTimedOut, ["-", "-", "open", "-", "-", "-"]),
        (Move::ProbesSucceeded, ["-", "-", "closed", "-", "-", "-"]),
        (
            Move::ForceOpen,
            [
                "forced open",
                "forced open",
                "forced open",
                "-",
                "forced open",
                "forced open",
            ],
        ),
        (Move::Release, ["-", "-", "-", "closed", "closed", "closed"]),
        (
            Move::Disable,
            [
                "disabled", "disabled", "disabled", "disabled", "-", "disabled",
            ],
        ),
        (
            Move::MetricsOnly,
            [
                "metrics-only",
                "metrics-only",
                "metrics-only",
                "metrics-only",
                "metrics-only",
                "-",
            ],
        ),
        (
            Move::Reset,
            ["renew", "closed", "closed", "closed", "closed", "closed"],
        ),
        (Move::SharedOpen, ["open", "open", "open", "-", "-", "-"]),
        (Move::SharedHalfOpen, ["-", "half-open", "-", "-", "-", "-"]),
        (Move::SharedClose, ["-", "closed", "closed", "-", "-", "-"]),
    ];

    fn named(decision: Decision) -> String {
        match decision {
            Decision::To(state) => state.to_string(),
            Decision::Renew => "renew".to_string(),
            Decision::Refused => "-".to_string(),
        }
    }

    #[test]
    fn every_move_from_every_state_is_as_the_table_says() {
        for (request, row) in TABLE {
            for (from, expected) in STATES.into_iter().zip(row) {
                assert_eq!(
                    named(decide(request, from)),
                    expected,
                    "{request:?} from {from}"
                );
            }
        }
    }

    #[test]
    fn automatic_moves_never_leave_or_enter_a_manual_state() {
        let automatic = [
            Move::Trip,
            Move::EndOpenPeriod { probes: true },
            Move::EndOpenPeriod { probes: false },
            Move::ProbeFailed,
            Move::HalfOpenTimedOut,
            Move::ProbesSucceeded,
            Move::SharedOpen,
            Move::SharedHalfOpen,
            Move::SharedClose,
        ];
        let manual = [State::ForcedOpen, State::Disabled, State::MetricsOnly];
        for request in automatic {
            for from in STATES {
                let decision = decide(request, from);
                if manual.contains(&from) {
                    assert_eq!(decision, Decision::Refused, "{request:?} from {from}");
                }
                if let Decision::To(to) = decision {
                    assert!(!manual.contains(&to), "{request:?} from {from} to {to}");
                }
            }
        }
    }
}
