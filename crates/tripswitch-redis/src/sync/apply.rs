//! Replies read and applied to the breakers: acknowledged reports, error
//! replies said once (with advice), probe leases taken, and the local
//! breaker made to follow the fleet's state.

use std::sync::Arc;

use tokio::time::Instant;
use tripswitch::State;

use super::entry::{Book, Entry, KnownAt, counted};
use super::ops::{Op, Sent, release};
use super::{Context, Failure};
use crate::conn::{Answer, Refusal};
use crate::events::FleetEvent;
use crate::hook::News;
use crate::inner::Inner;
use crate::script::{Action, FleetState, Lease, Reply};

/// Applies the answers to one batch of reports; returns the bids for
/// half-open probes they call for, and the breakers whose short report the
/// script did not take (to be sent again in full). If the exchange failed,
/// every report's news is put back for the next round.
pub(super) fn settle(
    context: &Context<'_>,
    books: &mut [(Arc<Entry>, Book)],
    ops: Vec<Op>,
    answers: Result<Vec<Answer>, Failure>,
) -> Result<(Vec<Op>, Vec<usize>), Failure> {
    let fleet = context.fleet;
    let answers = match answers {
        Ok(answers) => answers,
        Err(error) => {
            // Nothing was acknowledged: it all goes again next round.
            for op in &ops {
                put_back(&books[op.index].0.news, op.sent);
            }
            return Err(error);
        }
    };
    let mut bids = Vec::new();
    let mut again = Vec::new();
    for (op, value) in ops.into_iter().zip(answers) {
        let (entry, book) = &mut books[op.index];
        if let Sent::Count { counts } = op.sent {
            match value {
                // Added: the state is as this replica knows it.
                Ok(redis::Value::Int(1)) => {
                    book.reported = counted(&counts);
                    book.recheck = false;
                    book.confirmed(context.round);
                }
                // Something else changed (the state, its settings, the
                // record of reports): a full report says what.
                Ok(_) => again.push(op.index),
                Err(refusal) => {
                    answered(fleet, entry, book, Err(refusal));
                }
            }
            continue;
        }
        if let Sent::Peek = op.sent {
            // Anything but the epoch applied here (lost, rolled back, taken
            // over by a change this replica missed, unreadable) calls for a
            // full exchange at the next round.
            let stored: Option<i64> = match value {
                Ok(redis::Value::Nil) => Some(0),
                Ok(value) => redis::from_redis_value::<String>(value)
                    .ok()
                    .and_then(|epoch| epoch.parse().ok()),
                Err(_) => None,
            };
            let known = book.known.map_or(0, |known| known.epoch);
            book.recheck = stored != Some(known);
            book.confirmed(context.round);
            continue;
        }
        let Some(reply) = answered(fleet, entry, book, value) else {
            put_back(&entry.news, op.sent);
            continue;
        };
        let Sent::Report { counts, .. } = op.sent else {
            // A probe result went through.
            book.leading = None;
            apply(fleet, entry, book, reply, true);
            continue;
        };
        book.reported = counted(&counts);
        book.recheck = false;
        book.confirmed(context.round);
        apply(fleet, entry, book, reply, true);
        let wanted = counts.rejected > book.rejected || entry.control.waiting() > 0;
        book.rejected = counts.rejected;
        if reply.state != FleetState::HalfOpen || book.leading.is_some() {
            continue;
        }
        match reply.lease {
            Lease::Free if wanted => bids.push(Op {
                index: op.index,
                action: Action::Acquire,
                sent: Sent::Nothing,
            }),
            // A lease this replica holds but does not use (it left the
            // half-open state meanwhile): use it, or give it back.
            Lease::Mine => bids.push(release(op.index, reply.epoch)),
            Lease::Free | Lease::Another => {}
        }
    }
    Ok((bids, again))
}

fn put_back(news: &News, sent: Sent) {
    match sent {
        Sent::Report { tripped: true, .. } => news.put_trip_back(),
        Sent::Result(outcome) => news.put_outcome_back(outcome),
        Sent::Report { .. } | Sent::Count { .. } | Sent::Nothing | Sent::Peek => {}
    }
}

/// One breaker's answer: its reply, or its error said (once) and `None`.
pub(super) fn answered(
    fleet: &Inner,
    entry: &Entry,
    book: &mut Book,
    value: Answer,
) -> Option<Reply> {
    let parsed = match value {
        Err(Refusal { code, said }) => Err((code, said)),
        Ok(value) => {
            Reply::parse(value).map_err(|error| ("REPLY".to_string(), format!("REPLY {error}")))
        }
    };
    match parsed {
        Ok(answer) => {
            if book.error.take().is_some() {
                crate::export::breaker_error(fleet, &entry.name, None);
                fleet.emit(FleetEvent::SyncRecovered {
                    breaker: entry.name.clone(),
                });
            }
            if let Some(repair) = answer.repaired {
                fleet.emit(FleetEvent::StateRepaired {
                    breaker: entry.name.clone(),
                    what: repair.describe(),
                });
            }
            if answer.differs != book.differs {
                if let Some(theirs) = &answer.differs {
                    fleet.emit(FleetEvent::SettingsDiffer {
                        breaker: entry.name.clone(),
                        ours: entry.settings.clone(),
                        fleet: theirs.clone(),
                    });
                }
                book.differs = answer.differs;
            }
            Some(answer.reply)
        }
        Err((code, error)) => {
            // The breaker goes on alone until its exchanges work again.
            crate::export::breaker_error(fleet, &entry.name, Some(&code));
            if book.error.as_deref() != Some(code.as_str()) {
                book.error = Some(code.clone());
                fleet.emit(FleetEvent::SyncFailed {
                    breaker: entry.name.clone(),
                    advice: advice(&code),
                    error,
                });
            }
            None
        }
    }
}

/// What to do about an error reply that will not go away by itself.
fn advice(code: &str) -> &'static str {
    match code {
        "NOPERM" => {
            "the Redis user lacks a permission the fleet needs: EVALSHA, SCRIPT LOAD, \
             PUBLISH and SUBSCRIBE, on the keys and channel of the fleet's prefix"
        }
        "NOSCRIPT" => "the fleet's script could not be loaded: allow SCRIPT LOAD",
        "MOVED" | "ASK" | "CLUSTERDOWN" | "CROSSSLOT" | "TRYAGAIN" => {
            "the server is a Redis Cluster node: connect with Fleet::cluster (feature `cluster`)"
        }
        "OOM" => {
            "Redis is out of memory (maxmemory): raise it or let it evict; \
             every key of the fleet has a TTL"
        }
        "READONLY" => {
            "the server is a read-only replica: point the fleet at the primary \
             (or use Fleet::sentinel to follow failovers)"
        }
        "WRONGTYPE" => {
            "a key under the fleet's prefix holds another type: another program uses \
             the prefix; choose another prefix or delete the key"
        }
        "MISCONF" => "Redis refuses writes because it cannot persist: see its log",
        "BUSY" => "a script runs too long on the server: see SCRIPT KILL",
        "LOADING" => "Redis is loading its dataset: this ends by itself",
        _ => "an unexpected error: the breaker runs on its local state until it is gone",
    }
}

/// This replica holds the fleet's half-open lease of `epoch`: its local
/// breaker runs the probes. False if it cannot (the lease must go back).
pub(super) fn take_probes(fleet: &Inner, entry: &Entry, book: &mut Book, epoch: i64) -> bool {
    // End the local lease before the server's: a late probe result must not
    // land after another replica took over.
    let local = fleet.lease.saturating_sub(fleet.command_timeout);
    if entry.control.half_open(local) {
        book.leading = Some(epoch);
        book.held = true;
        book.known = Some(KnownAt {
            epoch,
            state: FleetState::HalfOpen,
            until: Instant::now(),
            step: book.known.map_or(0, |known| known.step),
        });
        fleet.emit(FleetEvent::ProbesGranted {
            breaker: entry.name.clone(),
        });
        return true;
    }
    false
}

/// Makes the local breaker follow the fleet. `authoritative` replies come
/// from this task's own script calls; pushed messages may arrive late (after
/// a reply of the same epoch that said more, such as who holds the lease),
/// so a pushed message only counts if it is newer than what was applied.
pub(super) fn apply(
    fleet: &Inner,
    entry: &Entry,
    book: &mut Book,
    reply: Reply,
    authoritative: bool,
) {
    let known = book.known;
    // An answer older than a change already applied was overtaken (the
    // change was pushed while the answer was on its way): it says nothing new.
    if known.is_some_and(|known| {
        reply.epoch < known.epoch || (!authoritative && reply.epoch == known.epoch)
    }) {
        return;
    }
    let new_epoch = known.map(|known| known.epoch) != Some(reply.epoch);
    book.known = Some(KnownAt {
        epoch: reply.epoch,
        state: reply.state,
        until: Instant::now() + reply.remaining,
        step: if reply.step >= 0 {
            reply.step
        } else {
            known.map_or(0, |known| known.step)
        },
    });
    // A breaker that moved by itself (its hold ran out, a local trip or
    // probe) is no longer the fleet's: a fleet close does not undo that.
    if entry.news.take_alone() {
        book.held = false;
    }
    let control = &entry.control;
    let grace = fleet.grace();
    match reply.state {
        FleetState::Closed => {
            book.leading = None;
            if book.held {
                book.held = false;
                if control.close() {
                    fleet.emit(FleetEvent::Closed {
                        breaker: entry.name.clone(),
                    });
                }
            }
        }
        FleetState::Open => {
            book.leading = None;
            if new_epoch || !book.held || control.state() != Some(State::Open) {
                book.held = true;
                if control.hold_open(reply.remaining + grace) && new_epoch {
                    fleet.emit(FleetEvent::Opened {
                        breaker: entry.name.clone(),
                        remaining: reply.remaining,
                    });
                }
            }
        }
        FleetState::HalfOpen if reply.lease == Lease::Mine => {}
        FleetState::HalfOpen => {
            // Another replica probes (or nobody yet): stay open meanwhile,
            // long enough for a lease, and extend before that runs out.
            let expiring = control
                .retry_after()
                .is_none_or(|left| left < fleet.sync_interval * 2);
            if new_epoch || !book.held || control.state() != Some(State::Open) || expiring {
                book.held = true;
                book.leading = None;
                control.hold_open(fleet.lease + grace);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::advice;

    /// Each refusal the docs name gets advice of its own that says what to
    /// do; only an unknown code gets the generic answer.
    #[test]
    fn each_persistent_refusal_is_told_what_to_do() {
        let generic = advice("SOMETHING-ELSE");
        for (code, says) in [
            ("NOPERM", "EVALSHA"),
            ("NOSCRIPT", "SCRIPT LOAD"),
            ("MOVED", "Fleet::cluster"),
            ("CROSSSLOT", "Fleet::cluster"),
            ("OOM", "maxmemory"),
            ("READONLY", "primary"),
            ("WRONGTYPE", "prefix"),
            ("MISCONF", "persist"),
            ("BUSY", "SCRIPT KILL"),
            ("LOADING", "loading"),
        ] {
            let told = advice(code);
            assert_ne!(told, generic, "{code}");
            assert!(told.contains(says), "{code}: {told}");
        }
    }
}
