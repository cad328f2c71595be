//! The fleet's health through the `metrics` crate (feature `metrics`); no-ops
//! without it.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `tripswitch_fleet_last_sync_seconds` (gauge) | `replica` | Unix time of the last sync round that went through: its age is `time() - value` |
//! | `tripswitch_fleet_connected` (gauge) | `replica` | 1 while Redis answers, 0 while this replica runs on its local state |
//! | `tripswitch_fleet_sync_errors_total` (counter) | `replica`, `breaker`, `code` | error replies to a breaker's exchanges (`WRONGTYPE`, `NOPERM`, `OOM`...) |
//! | `tripswitch_fleet_sync_failing` (gauge) | `replica`, `breaker` | 1 while the breaker's last exchange ended in an error, else 0 |

use crate::inner::Inner;

/// A round went through.
pub(crate) fn synced(fleet: &Inner) {
    #[cfg(feature = "metrics")]
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("tripswitch_fleet_last_sync_seconds", "replica" => fleet.replica.clone())
            .set(now);
    }
    let _ = fleet;
}

/// Redis is reachable (`true`) or not.
pub(crate) fn connected(fleet: &Inner, up: bool) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("tripswitch_fleet_connected", "replica" => fleet.replica.clone()).set(if up {
        1.0
    } else {
        0.0
    });
    let _ = (fleet, up);
}

/// An exchange for `breaker` ended in the error `code`, or (`None`) went through.
pub(crate) fn breaker_error(fleet: &Inner, breaker: &str, code: Option<&str>) {
    #[cfg(feature = "metrics")]
    {
        let failing = metrics::gauge!(
            "tripswitch_fleet_sync_failing",
            "replica" => fleet.replica.clone(),
            "breaker" => breaker.to_string()
        );
        match code {
            Some(code) => {
                metrics::counter!(
                    "tripswitch_fleet_sync_errors_total",
                    "replica" => fleet.replica.clone(),
                    "breaker" => breaker.to_string(),
                    "code" => code.to_string()
                )
                .increment(1);
                failing.set(1.0);
            }
            None => failing.set(0.0),
        }
    }
    let _ = (fleet, breaker, code);
}
