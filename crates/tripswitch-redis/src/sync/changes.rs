//! Pushed changes: the subscription's messages, applied to their breakers
//! if they are newer than what was applied.

use std::sync::Arc;

use futures_util::StreamExt;

use super::apply::apply;
use super::entry::{Book, Entry};
use super::link::Link;
use crate::inner::Inner;
use crate::script::Reply;

/// The next published change, or `None` when the subscription ended.
/// Without a link it never resolves.
pub(super) async fn next_change(link: &mut Option<Link>) -> Option<String> {
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

/// A pushed change: applied to its breaker if it is newer than what it has.
pub(super) fn on_change(fleet: &Inner, books: &mut [(Arc<Entry>, Book)], payload: &str) {
    if let Some((name, reply)) = Reply::from_message(payload, &fleet.replica)
        && let Some((entry, book)) = books.iter_mut().find(|(entry, _)| *entry.name == *name)
    {
        apply(fleet, entry, book, reply, false);
    }
}
