//! The background task: publishes counts, applies the fleet's state, and
//! listens for changes. Everything here is off the call path: a call never
//! waits on anything this task does.
//!
//! This file holds the task's loop; the rest is in its modules.

mod apply;
mod changes;
mod entry;
mod health;
mod link;
mod one_off;
mod ops;
mod pipeline;
mod round;

use std::sync::{Arc, PoisonError, Weak};

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};

use crate::inner::Inner;
use changes::{next_change, on_change};
use entry::{Book, IDLE_EVERY};
use health::{Health, lost, reached};
use link::{Link, connect};
use round::round;

pub(crate) use entry::Entry;
pub(crate) use one_off::{check, force};

/// Why the link to Redis failed (the connection, not one breaker).
type Failure = String;

/// What a round needs besides the breakers.
struct Context<'a> {
    fleet: &'a Inner,
    wake: &'a Notify,
    /// The number of the latest sync round.
    round: u64,
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
