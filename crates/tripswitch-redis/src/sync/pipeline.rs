//! Operations into commands (short reports batched), pipelines sent with
//! the script loaded if the server lacks it, and answers spread back per
//! operation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::timeout;

use super::Failure;
use super::entry::{Book, Entry};
use super::link::is_noscript;
use super::ops::{Op, Sent};
use crate::conn::{Answer, Conn};
use crate::inner::Inner;
use crate::script::Action;

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

/// A batch of ops in flight, and its answers.
type Flight = Pin<Box<dyn Future<Output = (Vec<Op>, Result<Vec<Answer>, Failure>)> + Send>>;

pub(super) fn fly(
    fleet: &Inner,
    connection: &Conn,
    books: &[(Arc<Entry>, Book)],
    ops: Vec<Op>,
) -> Flight {
    let (commands, covers) = commands(fleet, books, &ops, connection.pipelines());
    let connection = connection.clone();
    let limit = fleet.command_timeout;
    Box::pin(async move { (ops, send(connection, commands, covers, limit).await) })
}
