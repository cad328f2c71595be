//! One attached breaker ([`Entry`]) and what the sync task remembers of it
//! ([`Book`]): when it is due for an exchange, and in which form.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, timeout};
use tripswitch::Counts;
use tripswitch::shared::SharedControl;

use crate::hook::News;
use crate::inner::Inner;
use crate::script::{Call, Counted, FleetState, Known};

/// One attached breaker.
pub(crate) struct Entry {
    pub(super) name: Arc<str>,
    pub(super) state_key: String,
    /// Its settings as the script compares them.
    pub(super) settings: String,
    pub(super) control: SharedControl,
    pub(super) news: Arc<News>,
    synced: AtomicBool,
    synced_notify: Notify,
}

impl Entry {
    pub(crate) fn new(
        inner: &Inner,
        name: Arc<str>,
        control: SharedControl,
        news: Arc<News>,
    ) -> Entry {
        let probes = control.probe_limit().unwrap_or(0);
        Entry {
            state_key: state_key(inner, &name),
            settings: crate::script::settings(probes, inner.lease, &inner.period, &inner.policy),
            name,
            control,
            news,
            synced: AtomicBool::new(false),
            synced_notify: Notify::new(),
        }
    }

    /// Waits until the sync task has tried once to sync this breaker (or `limit` passed).
    pub(crate) async fn first_sync(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.synced.load(Ordering::Acquire) {
            let notified = self.synced_notify.notified();
            if self.synced.load(Ordering::Acquire) {
                break;
            }
            if timeout(deadline.saturating_duration_since(Instant::now()), notified)
                .await
                .is_err()
            {
                break;
            }
        }
    }

    pub(super) fn mark_synced(&self) {
        if !self.synced.swap(true, Ordering::AcqRel) {
            self.synced_notify.notify_waiters();
        }
    }

    pub(super) fn call<'a>(&'a self, inner: &'a Inner) -> Call<'a> {
        Call {
            state_key: &self.state_key,
            channel: &inner.channel,
            name: &self.name,
            replica: &inner.replica,
            incarnation: &inner.incarnation,
            policy: &inner.policy,
            settings: &self.settings,
        }
    }
}

/// What the sync task remembers of one breaker.
#[derive(Default)]
pub(super) struct Book {
    /// Running totals the server acknowledged.
    pub(super) reported: Counted,
    /// Rejections seen at the last sync (new ones mean calls want through).
    pub(super) rejected: u64,
    /// The local breaker is open (or half-open) on the fleet's orders.
    pub(super) held: bool,
    /// The fleet state last applied (put back if the server loses it).
    pub(super) known: Option<KnownAt>,
    /// The epoch of the half-open lease this replica holds.
    pub(super) leading: Option<i64>,
    /// The error the last exchange for this breaker ended in (said once).
    pub(super) error: Option<String>,
    /// An idle read found a stored epoch other than the one applied here.
    pub(super) recheck: bool,
    /// The fleet's settings of this breaker, when they differ from ours (said once).
    pub(super) differs: Option<String>,
    /// The round from which its stored state is due to be read again
    /// while idle: [`IDLE_EVERY`] rounds after the server last confirmed it
    /// (a read of its epoch, or a report's answer: a breaker with calls in
    /// every round is never read besides). The first ones are spread over
    /// the rounds.
    pub(super) next_read: u64,
}

/// The fleet state last applied, with its open period as a local deadline.
#[derive(Debug, Clone, Copy)]
pub(super) struct KnownAt {
    pub(super) epoch: i64,
    pub(super) state: FleetState,
    pub(super) until: Instant,
    pub(super) step: i64,
}

/// An idle closed breaker (no calls, nothing to say) costs no script call:
/// its stored epoch is read once every this many rounds (a plain `HGET`)
/// unless a report's answer confirmed it meanwhile, and only a difference
/// calls for a script call.
pub(super) const IDLE_EVERY: u64 = 10;

impl Book {
    /// Whether this breaker has anything to exchange at round `round`: new
    /// counts, a vote or a probe result, a fleet state that is not closed, an
    /// error to retry, or its turn to be read back while idle.
    pub(super) fn due(&self, entry: &Entry, round: u64) -> bool {
        self.busy(entry) || round >= self.next_read
    }

    /// The server confirmed the state applied here at `round`.
    pub(super) fn confirmed(&mut self, round: u64) {
        self.next_read = round + IDLE_EVERY;
    }

    /// Whether it needs a script call (not only a read of its epoch).
    pub(super) fn busy(&self, entry: &Entry) -> bool {
        let counts = entry.control.counts();
        self.known
            .is_none_or(|known| known.state != FleetState::Closed)
            || self.recheck
            || self.held
            || self.leading.is_some()
            || self.error.is_some()
            || entry.news.pending()
            || counted(&counts) != self.reported
            || counts.rejected != self.rejected
            || entry.control.waiting() > 0
    }

    /// Whether its news is successes and nothing else, to a breaker known
    /// closed: then a report's short form says it (the script checks the
    /// rest, and asks for a full report if anything else changed).
    pub(super) fn successes_only(&self, entry: &Entry, counts: &Counts, tripped: bool) -> bool {
        let to = counted(counts);
        !tripped
            && self
                .known
                .is_some_and(|known| known.state == FleetState::Closed)
            && !self.recheck
            && !self.held
            && self.leading.is_none()
            && self.error.is_none()
            && self.differs.is_none()
            && to.failures == self.reported.failures
            && to.calls > self.reported.calls
            && counts.rejected == self.rejected
            && entry.control.waiting() == 0
    }

    pub(super) fn known(&self) -> Option<Known> {
        self.known.map(|known| Known {
            epoch: known.epoch,
            state: known.state,
            leading: self.leading == Some(known.epoch),
            remaining: known.until.saturating_duration_since(Instant::now()),
            step: known.step,
        })
    }
}

/// The key of one breaker: a hash that holds all the fleet keeps of it
/// (the layout is in `fleet.lua`'s header). The braces are a Redis Cluster
/// hash tag, as before the single key: a breaker's keys share one slot.
pub(super) fn state_key(inner: &Inner, name: &str) -> String {
    format!("{}:{{{}}}:state", inner.prefix, name)
}

pub(super) fn counted(counts: &Counts) -> Counted {
    Counted {
        calls: counts.successes + counts.failures,
        failures: counts.failures,
    }
}
