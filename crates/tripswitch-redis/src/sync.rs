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
use crate::script::{Action, Call, Counted, FleetState, Known, Lease, ProbeOutcome, Reply};

/// One attached breaker.
pub(crate) struct Entry {
    name: Arc<str>,
    state_key: String,
    counts_key: String,
    seen_key: String,
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
            seen_key: format!("{}:{{{}}}:seen:{}", inner.prefix, name, inner.replica),
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
            seen_key: &self.seen_key,
            channel: &inner.channel,
            name: &self.name,
            replica: &inner.replica,
            incarnation: &inner.incarnation,
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
    /// Running totals the server acknowledged.
    reported: Counted,
    /// Rejections seen at the last sync (new ones mean calls want through).
    rejected: u64,
    /// The local breaker is open (or half-open) on the fleet's orders.
    held: bool,
    /// The fleet state last applied (put back if the server loses it).
    known: Option<KnownAt>,
    /// The epoch of the half-open lease this replica holds.
    leading: Option<i64>,
    /// The error the last exchange for this breaker ended in (said once).
    error: Option<String>,
    /// The round this breaker was last read in.
    read_in: u64,
}

/// The fleet state last applied, with its open period as a local deadline.
#[derive(Debug, Clone, Copy)]
struct KnownAt {
    epoch: i64,
    state: FleetState,
    until: Instant,
    step: i64,
}

/// An idle closed breaker (no calls, nothing to say) is read back once
/// every this many rounds, not at every round.
pub(crate) const IDLE_EVERY: u64 = 10;

impl Book {
    /// Whether this breaker has anything to exchange at round `round`: new
    /// counts, a vote or a probe result, a fleet state that is not closed, an
    /// error to retry, or its turn to be read back while idle.
    fn due(&self, entry: &Entry, round: u64) -> bool {
        let counts = entry.control.counts();
        self.known
            .is_none_or(|known| known.state != FleetState::Closed)
            || self.held
            || self.leading.is_some()
            || self.error.is_some()
            || entry.news.pending()
            || counted(&counts) != self.reported
            || counts.rejected != self.rejected
            || entry.control.waiting() > 0
            || round.saturating_sub(self.read_in) >= IDLE_EVERY
    }

    fn known(&self) -> Option<Known> {
        self.known.map(|known| Known {
            epoch: known.epoch,
            state: known.state,
            leading: self.leading == Some(known.epoch),
            remaining: known.until.saturating_duration_since(Instant::now()),
            step: known.step,
        })
    }
}

/// A live link to Redis: a connection for scripts and a subscription.
struct Link {
    connection: MultiplexedConnection,
    changes: PubSubStream,
}

/// Why the link to Redis failed (the connection, not one breaker).
type Failure = String;

/// Whether Redis is reachable, as last said through events.
#[derive(Default)]
struct Health {
    /// `Unreachable` was said and no round succeeded since.
    unreachable: bool,
}

pub(crate) async fn run(
    inner: Weak<Inner>,
    mut registrations: mpsc::UnboundedReceiver<Arc<Entry>>,
    wake: Arc<Notify>,
) {
    let mut books: Vec<(Arc<Entry>, Book)> = Vec::new();
    let mut link: Option<Link> = None;
    let mut health = Health::default();
    let mut next_sync = Instant::now();
    let mut rounds: u64 = 0;
    // Every breaker is read back at the first round on a new link: changes
    // pushed while there was none were missed.
    let mut full = true;
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
                        full = true;
                    }
                    Err(error) => lost(&fleet, &mut books, &mut health, error),
                }
            }
            if let Some(current) = link.as_mut() {
                rounds += 1;
                let due: Vec<usize> = (0..books.len())
                    .filter(|&at| full || books[at].1.due(&books[at].0, rounds))
                    .collect();
                match round(&fleet, current, &mut books, due, rounds).await {
                    Ok(()) => {
                        full = false;
                        reached(&fleet, &mut health);
                    }
                    Err(error) => {
                        link = None;
                        lost(&fleet, &mut books, &mut health, error);
                    }
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
                    // Only the new breakers are synced now: registering
                    // costs one exchange, however many breakers there are.
                    let first = books.len();
                    books.push((entry, Book::default()));
                    while let Ok(entry) = registrations.try_recv() {
                        books.push((entry, Book::default()));
                    }
                    if let Some(fleet) = inner.upgrade()
                        && let Some(current) = link.as_mut()
                    {
                        let new = (first..books.len()).collect();
                        match round(&fleet, current, &mut books, new, rounds).await {
                            Ok(()) => reached(&fleet, &mut health),
                            Err(error) => {
                                link = None;
                                lost(&fleet, &mut books, &mut health, error);
                            }
                        }
                    }
                    for (entry, _) in &books[first..] {
                        entry.mark_synced();
                    }
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
                    // The subscription ended: changes may have been missed.
                    // Reconnect; every breaker is read back at that round.
                    link = None;
                    if let Some(fleet) = inner.upgrade() {
                        lost(&fleet, &mut books, &mut health, "the change subscription ended".to_string());
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
fn lost(fleet: &Inner, books: &mut [(Arc<Entry>, Book)], health: &mut Health, error: Failure) {
    fleet.connected.store(false, Ordering::Release);
    for (_, book) in books.iter_mut() {
        book.held = false;
    }
    if !health.unreachable {
        health.unreachable = true;
        fleet.emit(FleetEvent::Unreachable { error });
    }
}

/// A round went through: Redis is reachable (said once after an outage).
fn reached(fleet: &Inner, health: &mut Health) {
    fleet.connected.store(true, Ordering::Release);
    if health.unreachable {
        health.unreachable = false;
        fleet.emit(FleetEvent::Reconnected);
    }
}

/// One script call of a round, for the breaker at `index`.
struct Op {
    index: usize,
    action: Action,
}

/// Sends `ops` as one pipeline; every command gets its own answer (an error
/// reply is that breaker's). Loads the script once if the server lacks it.
/// Fails only when the exchange itself fails (the link is then dropped).
async fn send(
    fleet: &Inner,
    link: &mut Link,
    books: &[(Arc<Entry>, Book)],
    ops: &[Op],
) -> Result<Vec<redis::Value>, Failure> {
    let pipeline = |ops: &mut dyn Iterator<Item = &Op>| {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for op in ops {
            let (entry, book) = &books[op.index];
            pipe.add_command(entry.call(fleet).command(op.action, book.known()));
        }
        pipe
    };
    let limit = fleet.command_timeout;
    let started = Instant::now();
    let mut values: Vec<redis::Value> = exchange(
        limit,
        pipeline(&mut ops.iter()).query_async(&mut link.connection),
    )
    .await?;
    let missing: Vec<usize> = values
        .iter()
        .enumerate()
        .filter(|(_, value)| is_noscript(value))
        .map(|(at, _)| at)
        .collect();
    if !missing.is_empty() {
        // The server restarted or its scripts were flushed: load and resend.
        let left = limit.saturating_sub(started.elapsed());
        let again = async {
            crate::script::load(&mut link.connection).await?;
            pipeline(&mut missing.iter().map(|&at| &ops[at]))
                .query_async::<Vec<redis::Value>>(&mut link.connection)
                .await
        };
        match timeout(left, again).await {
            Ok(Ok(answers)) => {
                for (at, answer) in missing.into_iter().zip(answers) {
                    values[at] = answer;
                }
            }
            // A refused SCRIPT LOAD is a refusal, not an outage: the
            // NOSCRIPT answers stand, each reported for its breaker.
            Ok(Err(error)) if error.code().is_some() => {}
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => return Err(format!("no answer within {limit:?}")),
        }
    }
    if values.len() != ops.len() {
        return Err(format!(
            "{} answers to {} commands",
            values.len(),
            ops.len()
        ));
    }
    Ok(values)
}
fn is_noscript(value: &redis::Value) -> bool {
    matches!(value, redis::Value::ServerError(error) if error.code() == "NOSCRIPT")
}

async fn exchange<T>(
    limit: Duration,
    query: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Failure> {
    match timeout(limit, query).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// One sync round for the breakers at `indices`, in at most three
/// pipelined exchanges (usually one): probe results, counts and trip votes
/// and state read-back; then bids for the half-open probes; then leases
/// given back. An error reply concerns its breaker only; only a failed
/// exchange fails the round.
async fn round(
    fleet: &Inner,
    link: &mut Link,
    books: &mut [(Arc<Entry>, Book)],
    indices: Vec<usize>,
    round_no: u64,
) -> Result<(), Failure> {
    let mut ops = Vec::new();
    // What each report carries, to be acknowledged or put back.
    let mut sent: Vec<Option<(Counts, bool, Option<ProbeOutcome>)>> = vec![None; books.len()];
    for index in indices {
        let (entry, book) = &mut books[index];
        let outcome = entry.news.take_outcome();
        let mut result = None;
        if let Some(outcome) = outcome
            && let Some(epoch) = book.leading
        {
            ops.push(Op {
                index,
                action: Action::Result { epoch, outcome },
            });
            result = Some(outcome);
        }
        let counts = entry.control.counts();
        let tripped = entry.news.take_trip();
        ops.push(Op {
            index,
            action: Action::Report {
                from: book.reported,
                to: counted(&counts),
                tripped,
            },
        });
        sent[index] = Some((counts, tripped, result));
    }
    if ops.is_empty() {
        return Ok(());
    }
    let values = match send(fleet, link, books, &ops).await {
        Ok(values) => values,
        Err(error) => {
            // Nothing was acknowledged: it all goes again next round.
            for (index, sent) in sent.into_iter().enumerate() {
                if let Some((_, tripped, result)) = sent {
                    let news = &books[index].0.news;
                    if tripped {
                        news.put_trip_back();
                    }
                    if let Some(outcome) = result {
                        news.put_outcome_back(outcome);
                    }
                }
            }
            return Err(error);
        }
    };

    let mut bids = Vec::new();
    for (op, value) in ops.iter().zip(values) {
        let (entry, book) = &mut books[op.index];
        let answer = answered(fleet, entry, book, value);
        match op.action {
            Action::Result { outcome, .. } => match answer {
                Some(reply) => {
                    book.leading = None;
                    apply(fleet, entry, book, reply, true);
                }
                None => entry.news.put_outcome_back(outcome),
            },
            Action::Report { tripped, .. } => {
                let Some((counts, _, _)) = sent[op.index] else {
                    continue;
                };
                let Some(reply) = answer else {
                    if tripped {
                        entry.news.put_trip_back();
                    }
                    continue;
                };
                book.reported = counted(&counts);
                book.read_in = round_no;
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
                    }),
                    // A lease this replica holds but does not use (it left
                    // the half-open state meanwhile): use it, or give it back.
                    Lease::Mine => bids.push(Op {
                        index: op.index,
                        action: Action::Result {
                            epoch: reply.epoch,
                            outcome: ProbeOutcome::Released,
                        },
                    }),
                    Lease::Free | Lease::Another => {}
                }
            }
            Action::Acquire => {}
        }
    }
    // A lease already held is taken locally without asking again.
    let mut releases = Vec::new();
    bids.retain(|op| match op.action {
        Action::Result { epoch, .. } => {
            let (entry, book) = &mut books[op.index];
            if !take_probes(fleet, entry, book, epoch) {
                releases.push(Op {
                    index: op.index,
                    action: op.action,
                });
            }
            false
        }
        _ => true,
    });
    if !bids.is_empty() {
        let values = send(fleet, link, books, &bids).await?;
        for (op, value) in bids.iter().zip(values) {
            let (entry, book) = &mut books[op.index];
            let Some(reply) = answered(fleet, entry, book, value) else {
                continue;
            };
            if reply.lease == Lease::Mine && reply.granted > 0 {
                if !take_probes(fleet, entry, book, reply.epoch) {
                    releases.push(Op {
                        index: op.index,
                        action: Action::Result {
                            epoch: reply.epoch,
                            outcome: ProbeOutcome::Released,
                        },
                    });
                }
            } else {
                apply(fleet, entry, book, reply, true);
            }
        }
    }
    if !releases.is_empty() {
        let values = send(fleet, link, books, &releases).await?;
        for (op, value) in releases.iter().zip(values) {
            let (entry, book) = &mut books[op.index];
            if let Some(reply) = answered(fleet, entry, book, value) {
                apply(fleet, entry, book, reply, true);
            }
        }
    }
    Ok(())
}

fn counted(counts: &Counts) -> Counted {
    Counted {
        calls: counts.successes + counts.failures,
        failures: counts.failures,
    }
}

/// One breaker's answer: its reply, or its error said (once) and `None`.
fn answered(fleet: &Inner, entry: &Entry, book: &mut Book, value: redis::Value) -> Option<Reply> {
    let parsed = match value {
        redis::Value::ServerError(error) => {
            let code = error.code().to_string();
            // As Redis says it: the code, then the details.
            let said = match error.details() {
                Some(details) => format!("{code} {details}"),
                None => code.clone(),
            };
            Err((code, said))
        }
        value => {
            Reply::parse(value).map_err(|error| ("REPLY".to_string(), format!("REPLY {error}")))
        }
    };
    match parsed {
        Ok((reply, repaired)) => {
            if book.error.take().is_some() {
                fleet.emit(FleetEvent::SyncRecovered {
                    breaker: entry.name.clone(),
                });
            }
            if let Some(repair) = repaired {
                fleet.emit(FleetEvent::StateRepaired {
                    breaker: entry.name.clone(),
                    what: repair.describe(),
                });
            }
            Some(reply)
        }
        Err((code, error)) => {
            // The breaker goes on alone until its exchanges work again.
            book.held = false;
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
            "the server is a Redis Cluster node: a fleet needs a single server (or its primary)"
        }
        "OOM" => {
            "Redis is out of memory (maxmemory): raise it or let it evict; \
             every key of the fleet has a TTL"
        }
        "READONLY" => "the server is a read-only replica: point the fleet at the primary",
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
fn take_probes(fleet: &Inner, entry: &Entry, book: &mut Book, epoch: i64) -> bool {
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
fn apply(fleet: &Inner, entry: &Entry, book: &mut Book, reply: Reply, authoritative: bool) {
    let known = book.known;
    if !authoritative && known.is_some_and(|known| reply.epoch <= known.epoch) {
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
