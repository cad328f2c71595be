//! One sync round: the breakers' reports in pipelines, pushed changes and
//! urgent news handled meanwhile, then bids for probes and leases given back.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::apply::{answered, apply, settle, take_probes};
use super::changes::on_change;
use super::entry::{Book, Entry};
use super::link::Link;
use super::ops::{release, reports};
use super::pipeline::fly;
use super::{Context, Failure};
use crate::script::{Action, Lease};

/// At most this many script calls go in one pipeline: the answers of a
/// large round come back (and are applied) piece by piece.
const CHUNK: usize = 256;

/// At most this many pipelines of a round are in flight at once: enough to
/// hide the round trip, few enough that a pipeline's command timeout
/// measures Redis's answer, not its place behind the rest of a large round.
const WINDOW: usize = 2;

/// One sync round for the breakers at `indices`: their reports go out in
/// pipelines of at most [`CHUNK`] calls, [`WINDOW`] in flight at once, each
/// with its own command timeout. While they
/// are, pushed changes are applied as they arrive, and a breaker that trips
/// sends its news at once on the link's second connection (not behind the
/// round). Then bids for half-open probes, then leases given back (rare,
/// small). An error reply concerns its breaker only; only a failed exchange
/// fails the round.
pub(super) async fn round(
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
