//! The background task: publishes counts, applies the fleet's state, and
//! listens for changes. Everything here is off the call path: a call never
//! waits on anything this task does.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use redis::aio::PubSubStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tripswitch::shared::SharedControl;
use tripswitch::{Counts, State};

use crate::conn::{Answer, Conn, Refusal};
use crate::events::FleetEvent;
use crate::hook::News;
use crate::inner::Inner;
use crate::script::{Action, Call, Counted, FleetState, Known, Lease, ProbeOutcome, Reply};

/// One attached breaker.
pub(crate) struct Entry {
    name: Arc<str>,
    state_key: String,
    /// Its settings as the script compares them.
    settings: String,
    control: SharedControl,
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

    fn mark_synced(&self) {
        if !self.synced.swap(true, Ordering::AcqRel) {
            self.synced_notify.notify_waiters();
        }
    }

    fn call<'a>(&'a self, inner: &'a Inner) -> Call<'a> {
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
    /// An idle read found a stored epoch other than the one applied here.
    recheck: bool,
    /// The fleet's settings of this breaker, when they differ from ours (said once).
    differs: Option<String>,
    /// The round from which its stored state is due to be read again
    /// while idle: [`IDLE_EVERY`] rounds after the server last confirmed it
    /// (a read of its epoch, or a report's answer: a breaker with calls in
    /// every round is never read besides). The first ones are spread over
    /// the rounds.
    next_read: u64,
}

/// The fleet state last applied, with its open period as a local deadline.
#[derive(Debug, Clone, Copy)]
struct KnownAt {
    epoch: i64,
    state: FleetState,
    until: Instant,
    step: i64,
}

/// An idle closed breaker (no calls, nothing to say) costs no script call:
/// its stored epoch is read once every this many rounds (a plain `HGET`)
/// unless a report's answer confirmed it meanwhile, and only a difference
/// calls for a script call.
pub(crate) const IDLE_EVERY: u64 = 10;

impl Book {
    /// Whether this breaker has anything to exchange at round `round`: new
    /// counts, a vote or a probe result, a fleet state that is not closed, an
    /// error to retry, or its turn to be read back while idle.
    fn due(&self, entry: &Entry, round: u64) -> bool {
        self.busy(entry) || round >= self.next_read
    }

    /// The server confirmed the state applied here at `round`.
    fn confirmed(&mut self, round: u64) {
        self.next_read = round + IDLE_EVERY;
    }

    /// Whether it needs a script call (not only a read of its epoch).
    fn busy(&self, entry: &Entry) -> bool {
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
    fn successes_only(&self, entry: &Entry, counts: &Counts, tripped: bool) -> bool {
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
    connection: Conn,
    /// A second connection for news that must not wait behind a round.
    urgent: Conn,
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
    // A breaker tripped or ended its probes: its news goes out at once, in
    // a round of its own (not behind every other breaker's counts).
    let mut urgent = false;
    loop {
        let Some(fleet) = inner.upgrade() else {
            return;
        };
        books.retain(|(entry, _)| entry.control.is_alive());
        if std::mem::take(&mut urgent) {
            match link.as_mut() {
                Some(current) => {
                    let news: Vec<usize> = (0..books.len())
                        .filter(|&at| books[at].0.news.pending())
                        .collect();
                    if !news.is_empty() {
                        let context = Context {
                            fleet: &fleet,
                            wake: &wake,
                            round: rounds,
                        };
                        match round(&context, current, &mut books, news).await {
                            Ok(()) => reached(&fleet, &mut health),
                            Err(error) => {
                                link = None;
                                lost(&fleet, &mut health, error);
                            }
                        }
                    }
                }
                // No link: try to connect now rather than at the next sync.
                None => next_sync = Instant::now(),
            }
        }
        if Instant::now() >= next_sync {
            next_sync = Instant::now() + fleet.sync_interval;
            if link.is_none() {
                match connect(&fleet).await {
                    // Changes pushed while there was no link were missed:
                    // a breaker that is not closed here is read back at the
                    // next round (it always is), a closed one at its turn
                    // among the idle ones, within IDLE_EVERY rounds.
                    Ok(new) => link = Some(new),
                    Err(error) => lost(&fleet, &mut health, error),
                }
            }
            if let Some(current) = link.as_mut() {
                rounds += 1;
                let due: Vec<usize> = (0..books.len())
                    .filter(|&at| books[at].1.due(&books[at].0, rounds))
                    .collect();
                let started = Instant::now();
                let size = due.len();
                let context = Context {
                    fleet: &fleet,
                    wake: &wake,
                    round: rounds,
                };
                match round(&context, current, &mut books, due).await {
                    Ok(()) => {
                        *fleet
                            .last_round
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) =
                            Some((std::time::Instant::now(), started.elapsed(), size));
                        reached(&fleet, &mut health);
                    }
                    Err(error) => {
                        link = None;
                        lost(&fleet, &mut health, error);
                    }
                }
            }
            for (entry, _) in &books {
                entry.mark_synced();
            }
        }
        drop(fleet);

        tokio::select! {
            () = sleep_until(next_sync) => {}
            () = wake.notified() => urgent = true,
            registered = registrations.recv() => match registered {
                Some(entry) => {
                    // Only the new breakers are synced now: registering
                    // costs one exchange, however many breakers there are.
                    let first = books.len();
                    let book = |at: usize| Book {
                        next_read: rounds + 1 + at as u64 % IDLE_EVERY,
                        ..Book::default()
                    };
                    books.push((entry, book(first)));
                    while let Ok(entry) = registrations.try_recv() {
                        books.push((entry, book(books.len())));
                    }
                    if let Some(fleet) = inner.upgrade()
                        && let Some(current) = link.as_mut()
                    {
                        let new = (first..books.len()).collect();
                        let context = Context { fleet: &fleet, wake: &wake, round: rounds };
                        match round(&context, current, &mut books, new).await {
                            Ok(()) => reached(&fleet, &mut health),
                            Err(error) => {
                                link = None;
                                lost(&fleet, &mut health, error);
                            }
                        }
                    }
                    // Breakers registered together were confirmed together:
                    // spread their idle reads over the next rounds again.
                    for (at, (_, book)) in books.iter_mut().enumerate().skip(first) {
                        book.next_read = book
                            .next_read
                            .min(rounds + 1 + at as u64 % IDLE_EVERY);
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
                    if let Some(fleet) = inner.upgrade() {
                        on_change(&fleet, &mut books, &payload);
                    }
                }
                None => {
                    // The subscription ended: changes may have been missed.
                    // Reconnect; every breaker is read back at that round.
                    link = None;
                    if let Some(fleet) = inner.upgrade() {
                        lost(&fleet, &mut health, "the change subscription ended".to_string());
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
        let connection = fleet.source.connection().await?;
        let urgent = fleet.source.connection().await?;
        let mut pubsub = fleet.source.pubsub().await?;
        pubsub.subscribe(&fleet.channel).await?;
        Ok::<_, redis::RedisError>(Link {
            connection,
            urgent,
            changes: pubsub.into_on_message(),
        })
    };
    match timeout(limit, attempt).await {
        Ok(Ok(link)) => Ok(link),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no connection within {limit:?}")),
    }
}

/// An operator's order for the breaker `name`, fleet-wide (whether or not
/// this process has such a breaker): one script call on a connection of
/// its own, within the command timeout. The change is published, so every
/// replica applies it as it would a trip or a close.
pub(crate) async fn force(
    fleet: &Inner,
    name: &str,
    open: Option<Duration>,
) -> Result<(), Failure> {
    let limit = fleet.command_timeout;
    let key = state_key(fleet, name);
    let settings = crate::script::settings(0, fleet.lease, &fleet.period, &fleet.policy);
    let call = Call {
        state_key: &key,
        channel: &fleet.channel,
        name,
        replica: &fleet.replica,
        incarnation: &fleet.incarnation,
        policy: &fleet.policy,
        settings: &settings,
    };
    let command = call.command(Action::Force { open }, None);
    let attempt = async {
        let mut connection = fleet.source.connection().await?;
        let mut answers = connection.send(&[&command]).await?;
        if answers.first().is_some_and(is_noscript) {
            connection.load().await?;
            answers = connection.send(&[&command]).await?;
        }
        Ok::<_, redis::RedisError>(answers)
    };
    match timeout(limit, attempt).await {
        Ok(Ok(answers)) => match answers.into_iter().next() {
            Some(Err(refusal)) => Err(refusal.said),
            Some(Ok(_)) => Ok(()),
            None => Err("no answer".to_string()),
        },
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// The key of one breaker: a hash that holds all the fleet keeps of it
/// (the layout is in `fleet.lua`'s header). The braces are a Redis Cluster
/// hash tag, as before the single key: a breaker's keys share one slot.
fn state_key(inner: &Inner, name: &str) -> String {
    format!("{}:{{{}}}:state", inner.prefix, name)
}

/// The strict start's check: a connection (credentials included), the
/// subscription, and one run of the script on a key no breaker uses (it
/// reads, writes nothing). Within the command timeout.
pub(crate) async fn check(fleet: &Inner) -> Result<(), Failure> {
    let limit = fleet.command_timeout;
    let attempt = async {
        let mut link = connect(fleet).await?;
        let key = format!("{}:check", fleet.prefix);
        let settings = crate::script::settings(0, fleet.lease, &fleet.period, &fleet.policy);
        link.connection
            .load()
            .await
            .map_err(|error| error.to_string())?;
        let call = Call {
            state_key: &key,
            channel: &fleet.channel,
            name: "check",
            replica: &fleet.replica,
            incarnation: &fleet.incarnation,
            policy: &fleet.policy,
            settings: &settings,
        };
        let probe = call.check(&key);
        match link.connection.send(&[&probe]).await {
            Ok(answers) => match answers.into_iter().next() {
                Some(Ok(_)) => Ok(()),
                Some(Err(refusal)) => Err(refusal.said),
                None => Err("no answer".to_string()),
            },
            Err(error) => Err(error.to_string()),
        }
    };
    match timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// Redis cannot be reached: say so once.
fn lost(fleet: &Inner, health: &mut Health, error: Failure) {
    fleet.connected.store(false, Ordering::Release);
    crate::export::connected(fleet, false);
    // A breaker the fleet holds open stays open until the fleet's deadline
    // (plus grace), then goes on by itself; one still held when Redis is
    // back follows the fleet again (a close made meanwhile included).
    if !health.unreachable {
        health.unreachable = true;
        fleet.emit(FleetEvent::Unreachable { error });
    }
}

/// A round went through: Redis is reachable (said once after an outage).
fn reached(fleet: &Inner, health: &mut Health) {
    fleet.connected.store(true, Ordering::Release);
    crate::export::connected(fleet, true);
    crate::export::synced(fleet);
    if health.unreachable {
        health.unreachable = false;
        fleet.emit(FleetEvent::Reconnected);
    }
}

/// One script call of a round, for the breaker at `index`.
struct Op {
    index: usize,
    action: Action,
    /// What a report or a probe result took from the breaker's news, to be
    /// put back if it is not acknowledged.
    sent: Sent,
}

#[derive(Clone, Copy)]
enum Sent {
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

/// At most this many script calls go in one pipeline: the answers of a
/// large round come back (and are applied) piece by piece.
const CHUNK: usize = 256;

/// At most this many pipelines of a round are in flight at once: enough to
/// hide the round trip, few enough that a pipeline's command timeout
/// measures Redis's answer, not its place behind the rest of a large round.
const WINDOW: usize = 2;

/// The ops for the breakers at `indices`: a probe result if one waits, and
/// a report (counts, trip vote, state read-back), in its short form when it
/// only has successes to say (unless `full`). Takes the breakers' news.
fn reports(books: &[(Arc<Entry>, Book)], indices: &[usize], full: bool) -> Vec<Op> {
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

/// At most this many short reports go in one script call (on a single
/// server; one each on a Cluster, whose keys are in different slots): the
/// call's fixed cost is shared, and one call stays short (well under a
/// millisecond) so that other clients do not wait behind it.
const BATCH: usize = 32;

/// The commands for `ops`, as they are now (with each breaker's known
/// state), and how many ops each answers for: short reports next to each
/// other share a command (up to [`BATCH`] if `batch`), the others have one each.
fn commands(
    fleet: &Inner,
    books: &[(Arc<Entry>, Book)],
    ops: &[Op],
    batch: bool,
) -> (Vec<redis::Cmd>, Vec<Covers>) {
    let most = if batch { BATCH } else { 1 };
    let mut commands = Vec::with_capacity(ops.len());
    let mut covers = Vec::with_capacity(ops.len());
    let mut at = 0;
    while at < ops.len() {
        let op = &ops[at];
        let (entry, book) = &books[op.index];
        if let Action::Count { .. } = op.action {
            let counts: Vec<_> = ops[at..]
                .iter()
                .take(most)
                .take_while(|op| matches!(op.action, Action::Count { .. }))
                .map(|op| {
                    let (entry, book) = &books[op.index];
                    (entry.call(fleet), op.action, book.known())
                })
                .collect();
            at += counts.len();
            covers.push(Covers::Each(counts.len()));
            commands.push(crate::script::counts(&counts));
            continue;
        }
        at += 1;
        covers.push(Covers::One);
        commands.push(match op.sent {
            Sent::Peek => {
                let mut peek = redis::cmd("HGET");
                peek.arg(&entry.state_key).arg("epoch");
                peek
            }
            _ => entry.call(fleet).command(op.action, book.known()),
        });
    }
    (commands, covers)
}

/// How many ops a command answers for.
#[derive(Clone, Copy)]
enum Covers {
    /// One op: the command's answer is its.
    One,
    /// The short reports of this many breakers: an array of their answers.
    Each(usize),
}

/// The answers of each op, from those of each command.
fn spread(answers: Vec<Answer>, covers: &[Covers]) -> Vec<Answer> {
    let mut each = Vec::with_capacity(answers.len());
    for (answer, covers) in answers.into_iter().zip(covers) {
        match (covers, answer) {
            (Covers::One, answer) => each.push(answer),
            (Covers::Each(n), Ok(redis::Value::Array(values))) if values.len() == *n => {
                each.extend(values.into_iter().map(crate::conn::answer));
            }
            // Refused whole (NOPERM, a Cluster's CROSSSLOT...): each
            // breaker's answer; anything else asks for full reports.
            (Covers::Each(n), answer) => each.extend(std::iter::repeat_n(answer, *n)),
        }
    }
    each
}

/// Sends `commands` as one pipeline on `connection`; every command gets its
/// own answer (an error reply is that breaker's). Loads the script once if
/// the server lacks it. Fails only when the exchange itself fails or takes
/// longer than `limit` (the link is then dropped).
async fn send(
    mut connection: Conn,
    commands: Vec<redis::Cmd>,
    covers: Vec<Covers>,
    limit: Duration,
) -> Result<Vec<Answer>, Failure> {
    let attempt = async {
        let mut answers = connection
            .send(&commands.iter().collect::<Vec<_>>())
            .await?;
        let missing: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, answer)| is_noscript(answer))
            .map(|(at, _)| at)
            .collect();
        if !missing.is_empty() {
            // The server restarted or its scripts were flushed: load and
            // resend. A refused SCRIPT LOAD is a refusal, not an outage: the
            // NOSCRIPT answers stand, each reported for its breaker.
            match connection.load().await {
                Ok(()) => {
                    let again: Vec<&redis::Cmd> = missing.iter().map(|&at| &commands[at]).collect();
                    let resent = connection.send(&again).await?;
                    for (at, answer) in missing.into_iter().zip(resent) {
                        answers[at] = answer;
                    }
                }
                Err(error) if error.code().is_some() => {}
                Err(error) => return Err(error),
            }
        }
        if answers.len() != commands.len() {
            return Ok(answers);
        }
        Ok(spread(answers, &covers))
    };
    let expected = covers
        .iter()
        .map(|covers| match covers {
            Covers::One => 1,
            Covers::Each(n) => *n,
        })
        .sum::<usize>();
    match timeout(limit, attempt).await {
        // The server is a replica now (a failover): reconnect, which finds
        // the new primary through Sentinel.
        Ok(Ok(answers)) if answers.iter().any(is_readonly) => {
            Err("the server is a read-only replica now (a failover?)".to_string())
        }
        Ok(Ok(answers)) if answers.len() == expected => Ok(answers),
        Ok(Ok(answers)) => Err(format!(
            "{} answers to {} commands",
            answers.len(),
            commands.len()
        )),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

fn is_readonly(answer: &Answer) -> bool {
    matches!(answer, Err(refusal) if refusal.code == "READONLY")
}

fn is_noscript(answer: &Answer) -> bool {
    matches!(answer, Err(refusal) if refusal.code == "NOSCRIPT")
}

/// A batch of ops in flight, and its answers.
type Flight = Pin<Box<dyn Future<Output = (Vec<Op>, Result<Vec<Answer>, Failure>)> + Send>>;

fn fly(fleet: &Inner, connection: &Conn, books: &[(Arc<Entry>, Book)], ops: Vec<Op>) -> Flight {
    let (commands, covers) = commands(fleet, books, &ops, connection.pipelines());
    let connection = connection.clone();
    let limit = fleet.command_timeout;
    Box::pin(async move { (ops, send(connection, commands, covers, limit).await) })
}

/// What a round needs besides the breakers.
pub(crate) struct Context<'a> {
    pub(crate) fleet: &'a Inner,
    pub(crate) wake: &'a Notify,
    /// The number of the latest sync round.
    pub(crate) round: u64,
}

/// One sync round for the breakers at `indices`: their reports go out in
/// pipelines of at most [`CHUNK`] calls, [`WINDOW`] in flight at once, each
/// with its own command timeout. While they
/// are, pushed changes are applied as they arrive, and a breaker that trips
/// sends its news at once on the link's second connection (not behind the
/// round). Then bids for half-open probes, then leases given back (rare,
/// small). An error reply concerns its breaker only; only a failed exchange
/// fails the round.
async fn round(
    context: &Context<'_>,
    link: &mut Link,
    books: &mut [(Arc<Entry>, Book)],
    indices: Vec<usize>,
) -> Result<(), Failure> {
    let fleet = context.fleet;
    let mut flights = FuturesUnordered::new();
    let mut chunks = indices.chunks(CHUNK);
    for chunk in chunks.by_ref().take(WINDOW) {
        let ops = reports(books, chunk, false);
        flights.push(fly(fleet, &link.connection, books, ops));
    }
    let mut failure = None;
    let mut bids = Vec::new();
    // Short reports the script could not take: sent again in full.
    let mut resend = Vec::new();
    let mut subscribed = true;
    while !flights.is_empty() {
        tokio::select! {
            Some((ops, answers)) = flights.next() => {
                match settle(context, books, ops, answers) {
                    Ok((more, again)) => {
                        bids.extend(more);
                        resend.extend(again);
                    }
                    Err(error) => {
                        failure.get_or_insert(error);
                    }
                }
                // The next chunk, unless the link failed (its breakers'
                // news then stays for the next round).
                if failure.is_none()
                    && let Some(chunk) = chunks.next()
                {
                    let ops = reports(books, chunk, false);
                    flights.push(fly(fleet, &link.connection, books, ops));
                }
            }
            message = link.changes.next(), if subscribed => match message {
                Some(message) => {
                    if let Ok(payload) = message.get_payload::<String>() {
                        on_change(fleet, books, &payload);
                    }
                }
                None => {
                    subscribed = false;
                    failure.get_or_insert("the change subscription ended".to_string());
                }
            },
            () = context.wake.notified() => {
                let news: Vec<usize> = (0..books.len())
                    .filter(|&at| books[at].0.news.pending())
                    .collect();
                if !news.is_empty() {
                    let ops = reports(books, &news, false);
                    flights.push(fly(fleet, &link.urgent, books, ops));
                }
            }
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    if !resend.is_empty() {
        let ops = reports(books, &resend, true);
        let (ops, answers) = fly(fleet, &link.connection, books, ops).await;
        let (more, _) = settle(context, books, ops, answers)?;
        bids.extend(more);
    }
    if bids.is_empty() {
        return Ok(());
    }
    // A lease already held is taken locally without asking again.
    let mut releases = Vec::new();
    bids.retain(|op| match op.action {
        Action::Result { epoch, .. } => {
            let (entry, book) = &mut books[op.index];
            if !take_probes(fleet, entry, book, epoch) {
                releases.push(release(op.index, epoch));
            }
            false
        }
        _ => true,
    });
    if !bids.is_empty() {
        let (ops, answers) = fly(fleet, &link.connection, books, bids).await;
        let answers = answers?;
        for (op, value) in ops.iter().zip(answers) {
            let (entry, book) = &mut books[op.index];
            let Some(reply) = answered(fleet, entry, book, value) else {
                continue;
            };
            if reply.lease == Lease::Mine && reply.granted > 0 {
                if !take_probes(fleet, entry, book, reply.epoch) {
                    releases.push(release(op.index, reply.epoch));
                }
            } else {
                apply(fleet, entry, book, reply, true);
            }
        }
    }
    if !releases.is_empty() {
        let (ops, answers) = fly(fleet, &link.connection, books, releases).await;
        for (op, value) in ops.iter().zip(answers?) {
            let (entry, book) = &mut books[op.index];
            if let Some(reply) = answered(fleet, entry, book, value) {
                apply(fleet, entry, book, reply, true);
            }
        }
    }
    Ok(())
}

fn release(index: usize, epoch: i64) -> Op {
    Op {
        index,
        action: Action::Result {
            epoch,
            outcome: ProbeOutcome::Released,
        },
        sent: Sent::Nothing,
    }
}

/// A pushed change: applied to its breaker if it is newer than what it has.
fn on_change(fleet: &Inner, books: &mut [(Arc<Entry>, Book)], payload: &str) {
    if let Some((name, reply)) = Reply::from_message(payload, &fleet.replica)
        && let Some((entry, book)) = books.iter_mut().find(|(entry, _)| *entry.name == *name)
    {
        apply(fleet, entry, book, reply, false);
    }
}

/// Applies the answers to one batch of reports; returns the bids for
/// half-open probes they call for, and the breakers whose short report the
/// script did not take (to be sent again in full). If the exchange failed,
/// every report's news is put back for the next round.
fn settle(
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

fn counted(counts: &Counts) -> Counted {
    Counted {
        calls: counts.successes + counts.failures,
        failures: counts.failures,
    }
}

/// One breaker's answer: its reply, or its error said (once) and `None`.
fn answered(fleet: &Inner, entry: &Entry, book: &mut Book, value: Answer) -> Option<Reply> {
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
