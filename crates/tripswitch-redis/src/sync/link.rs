//! The link to Redis: a connection for scripts, one for urgent news, and
//! the change subscription; how it is opened, and the answer that says the
//! server lacks the script.

use redis::aio::PubSubStream;
use tokio::time::timeout;

use super::Failure;
use crate::conn::{Answer, Conn};
use crate::inner::Inner;

/// A live link to Redis: a connection for scripts and a subscription.
pub(super) struct Link {
    pub(super) connection: Conn,
    /// A second connection for news that must not wait behind a round.
    pub(super) urgent: Conn,
    pub(super) changes: PubSubStream,
}

pub(super) async fn connect(fleet: &Inner) -> Result<Link, Failure> {
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

pub(super) fn is_noscript(answer: &Answer) -> bool {
    matches!(answer, Err(refusal) if refusal.code == "NOSCRIPT")
}
