//! The background task: publishes counts, applies the fleet's state, and
//! listens for changes. Everything here is off the call path: a call never
//! waits on anything this task does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tripswitch::shared::SharedControl;
use tripswitch::{Counts, State};

use crate::events::FleetEvent;
use crate::fleet::Inner;
use crate::hook::News;
use crate::script::{Action, Call, FleetState, Lease, ProbeOutcome, Reply};

/// One attached breaker.
pub(crate) struct Entry {
    name: Arc<str>,
    state_key: String,
    counts_key: String,
    control: SharedControl,
    probes: u32,
    news: Arc<News>,
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
        Entry {
            // The braces are a Redis Cluster hash tag: both keys of a breaker
            // live in one slot, as a script needs.
            state_key: format!("{}:{{{}}}:state", inner.prefix, name),
            counts_key: format!("{}:{{{}}}:counts", inner.prefix, name),
            probes: control.probe_limit().unwrap_or(0),
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

    fn mark_synced(&self) {
        if !self.synced.swap(true, Ordering::AcqRel) {
            self.synced_notify.notify_waiters();
        }
    }

    fn call<'a>(&'a self, inner: &'a Inner) -> Call<'a> {
        Call {
            state_key: &self.state_key,
            counts_key: &self.counts_key,
            channel: &inner.channel,
            name: &self.name,
            replica: &inner.replica,
            probes: self.probes,
            lease: inner.lease,
            period: &inner.period,
            policy: &inner.policy,
        }
    }
}

/// What the sync task remembers of one breaker.
#[derive(Default)]
struct Book {
    /// Counts already published.
    reported: Counts,
    /// Rejections seen at the last sync (new ones mean calls want through).
    rejected: u64,
    /// The local breaker is open (or half-open) on the fleet's orders.
    held: bool,
    /// The fleet epoch last applied.
    epoch: Option<i64>,
    /// The fleet's backoff step last seen (restored if Redis loses it).
    step: i64,
    /// The epoch of the half-open lease this replica holds.
    leading: Option<i64>,
}

/// A live link to Redis: a connection for scripts and a subscription.
struct Link {
    connection: MultiplexedConnection,
    changes: PubSubStream,
}

type Failure = String;

pub(crate) async fn run(
    inner: Weak<Inner>,
    mut registrations: mpsc::UnboundedReceiver<Arc<Entry>>,
    wake: Arc<Notify>,
) {
    let mut books: Vec<(Arc<Entry>, Book)> = Vec::new();
    let mut link: Option<Link> = None;
    // Whether Redis was unreachable at the last attempt (and that was said).
    let mut unreachable = false;
    let mut next_sync = Instant::now();
    loop {
        let Some(fleet) = inner.upgrade() else {
            return;
        };
        books.retain(|(entry, _)| entry.control.is_alive());
        if Instant::now() >= next_sync {
            next_sync = Instant::now() + fleet.sync_interval;
            if link.is_none() {
                match connect(&fleet).await {
                    Ok(new) => {
                        link = Some(new);
                        if unreachable {
                            unreachable = false;
                            fleet.connected.store(true, Ordering::Release);
                            fleet.emit(FleetEvent::Reconnected);
                            if let Some(current) = link.as_mut()
                                && let Err(error) = restore(&fleet, current, &mut books).await
                            {
                                link = None;
                                lost(&fleet, &mut books, &mut unreachable, error);
                            }
                        }
                    }
                    Err(error) => lost(&fleet, &mut books, &mut unreachable, error),
                }
            }
            if let Some(current) = link.as_mut() {
                let mut failed = None;
                for (entry, book) in books.iter_mut() {
                    if let Err(error) = sync(&fleet, current, entry, book).await {
                        failed = Some(error);
                        break;
                    }
                }
                match failed {
                    Some(error) => {
                        link = None;
                        lost(&fleet, &mut books, &mut unreachable, error);
                    }
                    None => fleet.connected.store(true, Ordering::Release),
                }
            }
            for (entry, _) in &books {
                entry.mark_synced();
            }
        }
        let me = fleet.replica.clone();
        drop(fleet);

        tokio::select! {
            () = sleep_until(next_sync) => {}
            () = wake.notified() => next_sync = Instant::now(),
            registered = registrations.recv() => match registered {
                Some(entry) => {
                    books.push((entry, Book::default()));
                    next_sync = Instant::now();
                }
                // Every fleet handle is gone.
                None => return,
            },
            message = next_change(&mut link) => match message {
                Some(payload) => {
                    if let Some((name, reply)) = Reply::from_message(&payload, &me)
                        && let Some(fleet) = inner.upgrade()
                        && let Some((entry, book)) =
                            books.iter_mut().find(|(entry, _)| *entry.name == *name)
                    {
                        apply(&fleet, entry, book, reply, false);
                    }
                }
                None => {
                    // The subscription ended: Redis went away, maybe only
                    // for a restart that lost its data. Treated as an outage
                    // either way, so that the reconnection restores state.
                    link = None;
                    if let Some(fleet) = inner.upgrade() {
                        lost(&fleet, &mut books, &mut unreachable, "the change subscription ended".to_string());
                    }
                    next_sync = Instant::now();
                }
            },
        }
    }
}

/// The next published change, or `None` when the subscription ended.
/// Without a link it never resolves.
async fn next_change(link: &mut Option<Link>) -> Option<String> {
    match link {
        Some(link) => loop {
            let message = link.changes.next().await?;
            if let Ok(payload) = message.get_payload::<String>() {
                return Some(payload);
            }
        },
        None => std::future::pending().await,
    }
}

async fn connect(fleet: &Inner) -> Result<Link, Failure> {
    let limit = fleet.command_timeout;
    let attempt = async {
        let connection = fleet.client.get_multiplexed_async_connection().await?;
        let mut pubsub = fleet.client.get_async_pubsub().await?;
        pubsub.subscribe(&fleet.channel).await?;
        Ok::<_, redis::RedisError>(Link {
            connection,
            changes: pubsub.into_on_message(),
        })
    };
    match timeout(limit, attempt).await {
        Ok(Ok(link)) => Ok(link),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no connection within {limit:?}")),
    }
}

/// Redis cannot be reached: say so once, and let go of every breaker, so
/// that each goes on alone once the fleet's deadline it holds runs out.
fn lost(fleet: &Inner, books: &mut [(Arc<Entry>, Book)], unreachable: &mut bool, error: Failure) {
    fleet.connected.store(false, Ordering::Release);
    for (_, book) in books.iter_mut() {
        book.held = false;
    }
    if !*unreachable {
        *unreachable = true;
        fleet.emit(FleetEvent::Unreachable { error });
    }
}

async fn exchange(
    fleet: &Inner,
    link: &mut Link,
    entry: &Entry,
    action: Action,
) -> Result<Reply, Failure> {
    let limit = fleet.command_timeout;
    match timeout(limit, entry.call(fleet).run(&mut link.connection, action)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// After Redis comes back: a breaker that is open here puts its open period
/// back, in case the server lost it (the script only writes if it did).
async fn restore(
    fleet: &Inner,
    link: &mut Link,
    books: &mut [(Arc<Entry>, Book)],
) -> Result<(), Failure> {
    for (entry, book) in books.iter_mut() {
        if entry.control.state() != Some(State::Open) {
            continue;
        }
        if let Some(remaining) = entry.control.retry_after().filter(|r| !r.is_zero()) {
            let reply = exchange(
                fleet,
                link,
                entry,
                Action::Restore {
                    remaining,
                    step: book.step,
                },
            )
            .await?;
            apply(fleet, entry, book, reply, true);
        }
    }
    Ok(())
}

/// One round for one breaker: a probe result, the counts and trip vote, and
/// (when the fleet is half-open and calls here want through) a bid for the probes.
async fn sync(
    fleet: &Inner,
    link: &mut Link,
    entry: &Entry,
    book: &mut Book,
) -> Result<(), Failure> {
    let control = &entry.control;
    if let Some(outcome) = entry.news.take_outcome()
        && let Some(epoch) = book.leading
    {
        match exchange(fleet, link, entry, Action::Result { epoch, outcome }).await {
            Ok(reply) => {
                book.leading = None;
                apply(fleet, entry, book, reply, true);
            }
            Err(error) => {
                entry.news.put_outcome_back(outcome);
                return Err(error);
            }
        }
    }

    let counts = control.counts();
    let tripped = entry.news.take_trip();
    let runs = |c: &Counts| c.successes + c.failures;
    let report = Action::Report {
        calls: runs(&counts).saturating_sub(runs(&book.reported)),
        failures: counts.failures.saturating_sub(book.reported.failures),
        tripped,
    };
    let reply = match exchange(fleet, link, entry, report).await {
        Ok(reply) => reply,
        Err(error) => {
            if tripped {
                entry.news.put_trip_back();
            }
            return Err(error);
        }
    };
    book.reported = counts;
    apply(fleet, entry, book, reply, true);

    let wanted = counts.rejected > book.rejected || control.waiting() > 0;
    book.rejected = counts.rejected;
    if reply.state != FleetState::HalfOpen || book.leading.is_some() {
        return Ok(());
    }
    match reply.lease {
        Lease::Free if wanted => {
            let reply = exchange(fleet, link, entry, Action::Acquire).await?;
            if reply.lease == Lease::Mine && reply.granted > 0 {
                take_probes(fleet, link, entry, book, reply.epoch).await?;
            } else {
                apply(fleet, entry, book, reply, true);
            }
        }
        // A lease this replica holds but does not use (it left the
        // half-open state meanwhile): use it, or give it back.
        Lease::Mine => take_probes(fleet, link, entry, book, reply.epoch).await?,
        Lease::Free | Lease::Another => {}
    }
    Ok(())
}

/// This replica holds the fleet's half-open lease of `epoch`: its local
/// breaker runs the probes, or the lease is given back at once.
async fn take_probes(
    fleet: &Inner,
    link: &mut Link,
    entry: &Entry,
    book: &mut Book,
    epoch: i64,
) -> Result<(), Failure> {
    // End the local lease before the server's: a late probe result must not
    // land after another replica took over.
    let local = fleet.lease.saturating_sub(fleet.command_timeout);
    if entry.control.half_open(local) {
        book.leading = Some(epoch);
        book.held = true;
        book.epoch = Some(epoch);
        fleet.emit(FleetEvent::ProbesGranted {
            breaker: entry.name.clone(),
        });
        return Ok(());
    }
    let release = Action::Result {
        epoch,
        outcome: ProbeOutcome::Released,
    };
    let reply = exchange(fleet, link, entry, release).await?;
    apply(fleet, entry, book, reply, true);
    Ok(())
}

/// Makes the local breaker follow the fleet. `authoritative` replies come
/// from this task's own script calls; pushed messages may arrive late (after
/// a reply of the same epoch that said more, such as who holds the lease),
/// so a pushed message only counts if it is newer than what was applied.
fn apply(fleet: &Inner, entry: &Entry, book: &mut Book, reply: Reply, authoritative: bool) {
    if !authoritative && book.epoch.is_some_and(|epoch| reply.epoch <= epoch) {
        return;
    }
    let new_epoch = book.epoch != Some(reply.epoch);
    book.epoch = Some(reply.epoch);
    if reply.step >= 0 {
        book.step = reply.step;
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
