//! Exchanges outside the rounds, each on a connection of its own: an
//! operator's order and the strict start's check.

use std::time::Duration;

use tokio::time::timeout;

use super::Failure;
use super::entry::state_key;
use super::link::{connect, is_noscript};
use crate::inner::Inner;
use crate::script::{Action, Call};

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
