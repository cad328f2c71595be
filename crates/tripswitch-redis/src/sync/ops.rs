//! A round's operations: what each breaker has to say (a report, in its
//! short form if it can, a probe result, a read of an idle one's epoch),
//! taken from its news.

use std::sync::Arc;

use tripswitch::Counts;

use super::entry::{Book, Entry, counted};
use crate::script::{Action, ProbeOutcome};

/// One script call of a round, for the breaker at `index`.
pub(super) struct Op {
    pub(super) index: usize,
    pub(super) action: Action,
    /// What a report or a probe result took from the breaker's news, to be
    /// put back if it is not acknowledged.
    pub(super) sent: Sent,
}

#[derive(Clone, Copy)]
pub(super) enum Sent {
    /// Not a script call: a read of the stored epoch of an idle breaker.
    Peek,
    /// A report's short form (successes only).
    Count {
        counts: Counts,
    },
    Nothing,
    Result(ProbeOutcome),
    Report {
        counts: Counts,
        tripped: bool,
    },
}

/// The ops for the breakers at `indices`: a probe result if one waits, and
/// a report (counts, trip vote, state read-back), in its short form when it
/// only has successes to say (unless `full`). Takes the breakers' news.
pub(super) fn reports(books: &[(Arc<Entry>, Book)], indices: &[usize], full: bool) -> Vec<Op> {
    let mut ops = Vec::with_capacity(indices.len());
    for &index in indices {
        let (entry, book) = &books[index];
        if !book.busy(entry) {
            // Idle and closed: only its stored epoch is read (no script).
            ops.push(Op {
                index,
                action: Action::Acquire,
                sent: Sent::Peek,
            });
            continue;
        }
        if let Some(outcome) = entry.news.take_outcome()
            && let Some(epoch) = book.leading
        {
            ops.push(Op {
                index,
                action: Action::Result { epoch, outcome },
                sent: Sent::Result(outcome),
            });
        }
        let counts = entry.control.counts();
        let tripped = entry.news.take_trip();
        let to = counted(&counts);
        if !full && book.successes_only(entry, &counts, tripped) {
            ops.push(Op {
                index,
                action: Action::Count {
                    from: book.reported,
                    to,
                },
                sent: Sent::Count { counts },
            });
            continue;
        }
        ops.push(Op {
            index,
            action: Action::Report {
                from: book.reported,
                to,
                tripped,
            },
            sent: Sent::Report { counts, tripped },
        });
    }
    ops
}

pub(super) fn release(index: usize, epoch: i64) -> Op {
    Op {
        index,
        action: Action::Result {
            epoch,
            outcome: ProbeOutcome::Released,
        },
        sent: Sent::Nothing,
    }
}
