//! The one Lua script that reads and updates a breaker's fleet state, and its reply.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use crate::policy::{FleetOpenPeriod, FleetPolicy};

static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("fleet.lua")));

/// The fleet's state of one breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FleetState {
    Closed,
    Open,
    HalfOpen,
}

/// Who holds the half-open lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lease {
    Free,
    Mine,
    Another,
}

/// The script's answer: the state after the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) state: FleetState,
    pub(crate) epoch: i64,
    /// Open: the rest of the open period; half-open with a lease: the rest of the lease.
    pub(crate) remaining: Duration,
    pub(crate) lease: Lease,
    /// The backoff step: openings since the fleet last closed.
    pub(crate) step: i64,
    pub(crate) granted: u32,
}

fn state_of(text: &str) -> Option<FleetState> {
    match text {
        "closed" => Some(FleetState::Closed),
        "open" => Some(FleetState::Open),
        "half_open" => Some(FleetState::HalfOpen),
        _ => None,
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

impl Reply {
    fn parse(values: (String, i64, i64, i64, i64, i64)) -> Option<Reply> {
        let (state, epoch, remaining, holder, step, granted) = values;
        Some(Reply {
            state: state_of(&state)?,
            epoch,
            remaining: millis(remaining),
            lease: match holder {
                1 => Lease::Mine,
                2 => Lease::Another,
                _ => Lease::Free,
            },
            step,
            granted: u32::try_from(granted).unwrap_or(0),
        })
    }

    /// A change published by the script: `name \t epoch \t state \t remaining \t owner`.
    pub(crate) fn from_message(payload: &str, me: &str) -> Option<(String, Reply)> {
        let mut fields = payload.split('\t');
        let name = fields.next()?.to_string();
        let epoch = fields.next()?.parse().ok()?;
        let state = state_of(fields.next()?)?;
        let remaining = fields.next()?.parse::<f64>().ok()? as i64;
        let owner = fields.next().unwrap_or("");
        let lease = match owner {
            "" => Lease::Free,
            owner if owner == me => Lease::Mine,
            _ => Lease::Another,
        };
        Some((
            name,
            Reply {
                state,
                epoch,
                remaining: millis(remaining),
                lease,
                step: -1,
                granted: 0,
            },
        ))
    }
}

/// What a call of the script does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    /// Publishes outcome counts and a trip vote; reads the state.
    Report {
        calls: u64,
        failures: u64,
        tripped: bool,
    },
    /// Asks for the half-open probes.
    Acquire,
    /// Reports how the probes this replica held (in `epoch`) ended.
    Result { epoch: i64, outcome: ProbeOutcome },
    /// Puts an open period back if the server lost the state.
    Restore { remaining: Duration, step: i64 },
}

/// How a replica's half-open lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    Closed,
    Opened,
    Released,
}

/// Everything the script needs besides the action.
pub(crate) struct Call<'a> {
    pub(crate) state_key: &'a str,
    pub(crate) counts_key: &'a str,
    pub(crate) channel: &'a str,
    pub(crate) name: &'a str,
    pub(crate) replica: &'a str,
    pub(crate) probes: u32,
    pub(crate) lease: Duration,
    pub(crate) period: &'a FleetOpenPeriod,
    pub(crate) policy: &'a FleetPolicy,
}

impl Call<'_> {
    pub(crate) async fn run(
        &self,
        connection: &mut MultiplexedConnection,
        action: Action,
    ) -> redis::RedisResult<Reply> {
        let mut invocation = SCRIPT.key(self.state_key);
        invocation.key(self.counts_key);
        let (rate, min_calls) = self.policy.failure_rate.unwrap_or((0.0, 0));
        let name = match action {
            Action::Report { .. } => "report",
            Action::Acquire => "acquire",
            Action::Result { .. } => "result",
            Action::Restore { .. } => "restore",
        };
        invocation
            .arg(name)
            .arg(self.replica)
            .arg(self.probes)
            .arg(self.lease.as_millis() as u64)
            .arg(self.period.base.as_millis() as u64)
            .arg(self.period.max.as_millis() as u64)
            .arg(self.period.multiplier)
            .arg(self.policy.bucket_ms())
            .arg(10)
            .arg(min_calls)
            .arg(rate)
            .arg(self.policy.quorum)
            .arg(self.channel)
            .arg(self.name);
        match action {
            Action::Report {
                calls,
                failures,
                tripped,
            } => {
                invocation.arg(calls).arg(failures).arg(u8::from(tripped));
            }
            Action::Acquire => {}
            Action::Result { epoch, outcome } => {
                invocation.arg(epoch).arg(match outcome {
                    ProbeOutcome::Closed => "closed",
                    ProbeOutcome::Opened => "opened",
                    ProbeOutcome::Released => "released",
                });
            }
            Action::Restore { remaining, step } => {
                invocation
                    .arg(remaining.as_millis() as u64)
                    .arg(step.max(0));
            }
        }
        let values = invocation.invoke_async(connection).await?;
        Reply::parse(values).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::Parse,
                "the fleet script answered with an unknown state",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_changes_parse() {
        let (name, reply) = Reply::from_message("payments\t7\topen\t4999\t", "me").unwrap();
        assert_eq!(name, "payments");
        assert_eq!(reply.state, FleetState::Open);
        assert_eq!(reply.epoch, 7);
        assert_eq!(reply.remaining, Duration::from_millis(4999));
        assert_eq!(reply.lease, Lease::Free);
        let (_, reply) = Reply::from_message("x\t8\thalf_open\t100\tme", "me").unwrap();
        assert_eq!(reply.lease, Lease::Mine);
        assert!(Reply::from_message("x\t8\tweird\t0\t", "me").is_none());
        assert!(Reply::from_message("garbage", "me").is_none());
    }
}
