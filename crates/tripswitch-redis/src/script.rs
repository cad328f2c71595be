//! The one Lua script that reads and updates a breaker's fleet state, and its reply.

use std::sync::LazyLock;
use std::time::Duration;

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
    /// The script's answer, or why it cannot be read.
    pub(crate) fn parse(value: redis::Value) -> Result<Answer, String> {
        type Raw = (String, i64, i64, i64, i64, i64, String, String);
        let (state, epoch, remaining, holder, step, granted, repaired, differs): Raw =
            redis::from_redis_value(value).map_err(|e| e.to_string())?;
        let reply = Reply {
            state: state_of(&state)
                .ok_or_else(|| format!("the fleet script answered an unknown state {state:?}"))?,
            epoch,
            remaining: millis(remaining),
            lease: match holder {
                1 => Lease::Mine,
                2 => Lease::Another,
                _ => Lease::Free,
            },
            step,
            granted: u32::try_from(granted).unwrap_or(0),
        };
        let repaired = match repaired.as_str() {
            "" => None,
            "unreadable" => Some(Repair::Unreadable),
            "missing" => Some(Repair::Missing),
            _ => Some(Repair::Stale),
        };
        Ok(Answer {
            reply,
            repaired,
            differs: (!differs.is_empty()).then_some(differs),
        })
    }

    /// A change published by the script:
    /// `name \t epoch \t state \t remaining \t owner \t step`.
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
        let step = fields
            .next()
            .and_then(|step| step.parse::<f64>().ok())
            .map_or(-1, |step| step as i64);
        Some((
            name,
            Reply {
                state,
                epoch,
                remaining: millis(remaining),
                lease,
                step,
                granted: 0,
            },
        ))
    }
}

/// Why the script replaced the stored state with what this replica knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repair {
    /// The state could not be read (not written by this crate).
    Unreadable,
    /// The state was gone (FLUSHALL, DEL, eviction, a restart without it).
    Missing,
    /// The state was older than one this replica applied (a restart from an
    /// older snapshot, a failover to a lagging replica).
    Stale,
}

impl Repair {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Repair::Unreadable => "the fleet state on the server could not be read",
            Repair::Missing => "the fleet state was missing on the server",
            Repair::Stale => "the fleet state on the server was older than one already applied",
        }
    }
}

/// The script's whole answer to one call.
pub(crate) struct Answer {
    pub(crate) reply: Reply,
    /// Why the stored state was replaced, if it was.
    pub(crate) repaired: Option<Repair>,
    /// The fleet's settings (which won), if they differ from the caller's.
    pub(crate) differs: Option<String>,
}

/// The settings the script compares, in its order, for messages.
pub(crate) const SETTINGS: &str = "probes|lease ms|open ms|max open ms|multiplier|bucket ms|buckets|minimum calls|failure rate|quorum";

/// What a call of the script does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    /// Publishes outcome counts and a trip vote; reads the state. Counts are
    /// running totals: from the last acknowledged report to now.
    Report {
        from: Counted,
        to: Counted,
        tripped: bool,
    },
    /// The short form of a report: successes only, to a breaker this
    /// replica knows closed (at the epoch it sends). The script answers 1
    /// (added) or 0 (nothing written: send a full report).
    Count { from: Counted, to: Counted },
    /// Asks for the half-open probes.
    Acquire,
    /// Reports how the probes this replica held (in `epoch`) ended.
    Result { epoch: i64, outcome: ProbeOutcome },
    /// An operator's order: open for this long (`Some`), or close.
    Force { open: Option<Duration> },
}

/// Running totals of one breaker's calls and failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counted {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
}

/// How a replica's half-open lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    Closed,
    Opened,
    Released,
}

/// The fleet state a replica last applied: sent with every call, so that
/// the script can put it back if the server lost it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) epoch: i64,
    pub(crate) state: FleetState,
    /// This replica holds the half-open lease of that epoch.
    pub(crate) leading: bool,
    /// Open: what is left of the open period, now.
    pub(crate) remaining: Duration,
    pub(crate) step: i64,
}

/// Everything the script needs besides the action.
pub(crate) struct Call<'a> {
    pub(crate) state_key: &'a str,
    pub(crate) channel: &'a str,
    pub(crate) name: &'a str,
    pub(crate) replica: &'a str,
    pub(crate) incarnation: &'a str,
    pub(crate) policy: &'a FleetPolicy,
    /// The breaker's [`settings`], made once.
    pub(crate) settings: &'a str,
}

/// The short form of reports (successes to breakers known closed) for
/// several breakers of one replica in one script call: one answer each, 1
/// (added), 0 (send a full report) or that breaker's error.
pub(crate) fn counts(reports: &[(Call<'_>, Action, Option<Known>)]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(hash()).arg(reports.len());
    for (call, _, _) in reports {
        cmd.arg(call.state_key);
    }
    if let Some((call, _, _)) = reports.first() {
        cmd.arg("count")
            .arg(call.replica)
            .arg(call.policy.bucket_ms())
            .arg(BUCKETS);
    }
    for (call, action, known) in reports {
        if let Action::Count { from, to } = *action {
            cmd.arg(call.settings)
                .arg(known.map_or(0, |known| known.epoch))
                .arg(call.totals(from))
                .arg(call.totals(to))
                .arg(to.calls.saturating_sub(from.calls));
        }
    }
    cmd
}

/// The buckets of a count window.
const BUCKETS: u64 = 10;

/// The script's SHA1, for `EVALSHA`.
pub(crate) fn hash() -> &'static str {
    SCRIPT.get_hash()
}

/// A replica's settings of one breaker as the script stores and compares
/// them (its ARGV 3): `probes|lease ms|open ms|max open ms|multiplier|bucket
/// ms|buckets|minimum calls|failure rate|quorum`, each as it goes on the wire.
pub(crate) fn settings(
    probes: u32,
    lease: Duration,
    period: &FleetOpenPeriod,
    policy: &FleetPolicy,
) -> String {
    let (rate, min_calls) = policy.failure_rate.unwrap_or((0.0, 0));
    let mut probe = redis::cmd("X");
    probe
        .arg(probes)
        .arg(lease.as_millis() as u64)
        .arg(period.base.as_millis() as u64)
        .arg(period.max.as_millis() as u64)
        .arg(period.multiplier)
        .arg(policy.bucket_ms())
        .arg(BUCKETS)
        .arg(min_calls)
        .arg(rate)
        .arg(policy.quorum);
    probe
        .args_iter()
        .skip(1)
        .map(|arg| match arg {
            redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        })
        .collect::<Vec<_>>()
        .join("|")
}

impl Call<'_> {
    /// The `EVALSHA` command for `action`.
    pub(crate) fn command(&self, action: Action, known: Option<Known>) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(hash()).arg(1).arg(self.state_key);
        let name = match action {
            Action::Count { .. } => "count",
            Action::Report { .. } => "report",
            Action::Acquire => "acquire",
            Action::Result { .. } => "result",
            Action::Force { .. } => "force",
        };
        cmd.arg(name)
            .arg(self.replica)
            .arg(self.settings)
            .arg(self.policy.bucket_ms())
            .arg(BUCKETS)
            .arg(self.channel)
            .arg(self.name);
        match known {
            Some(known) => cmd
                .arg(known.epoch)
                .arg(match known.state {
                    FleetState::Closed => "closed",
                    FleetState::Open => "open",
                    FleetState::HalfOpen if known.leading => "half_open_mine",
                    FleetState::HalfOpen => "half_open",
                })
                .arg(known.remaining.as_millis() as u64)
                .arg(known.step.max(0)),
            None => cmd.arg(0).arg("closed").arg(0).arg(0),
        };
        match action {
            Action::Report { from, to, tripped } => {
                // Running totals as the script records them
                // (`incarnation|calls|failures`), and the calls and
                // failures between them.
                cmd.arg(self.totals(from))
                    .arg(self.totals(to))
                    .arg(to.calls.saturating_sub(from.calls))
                    .arg(to.failures.saturating_sub(from.failures))
                    .arg(u8::from(tripped));
            }
            Action::Acquire | Action::Count { .. } => {}
            Action::Force { open } => {
                match open {
                    Some(period) => cmd.arg("open").arg(period.as_millis() as u64),
                    None => cmd.arg("close").arg(0),
                };
            }
            Action::Result { epoch, outcome } => {
                cmd.arg(epoch).arg(match outcome {
                    ProbeOutcome::Closed => "closed",
                    ProbeOutcome::Opened => "opened",
                    ProbeOutcome::Released => "released",
                });
            }
        }
        cmd
    }

    /// Running totals as the script's records begin:
    /// `incarnation|calls|failures|`.
    fn totals(&self, counted: Counted) -> String {
        format!(
            "{}|{}|{}|",
            self.incarnation, counted.calls, counted.failures
        )
    }

    /// The strict start's probe on `key` (no breaker's): the script runs,
    /// reads, and writes nothing.
    pub(crate) fn check(&self, key: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(hash())
            .arg(1)
            .arg(key)
            .arg("check")
            .arg(self.replica)
            .arg(self.settings)
            .arg(self.policy.bucket_ms())
            .arg(BUCKETS)
            .arg(self.channel)
            .arg(self.name)
            .arg(0)
            .arg("closed")
            .arg(0)
            .arg(0);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_changes_parse() {
        let (name, reply) = Reply::from_message("payments\t7\topen\t4999\t\t3", "me").unwrap();
        assert_eq!(reply.step, 3);
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
