//! When the fleet trips, and for how long it stays open.

use std::time::Duration;

use crate::error::FleetError;

/// The fleet's trip decision, made on the Redis server over the counts that
/// every replica publishes.
///
/// The fleet trips when, within the last [`window`](Self::window):
///
/// - at least `quorum` distinct replicas saw their own breaker trip, or
/// - the fleet's failure rate reached [`failure_rate`](Self::failure_rate)
///   over at least `min_calls` calls, **and** at least `quorum` distinct
///   replicas saw failures.
///
/// The quorum is what keeps one bad node (a replica with a broken network
/// card, a bad config, a poisoned connection pool) from opening the breaker
/// for everybody: with `quorum(2)` its failures trip only its own local
/// breaker. A quorum of 1 (the default) lets the first replica that trips
/// freeze the whole fleet, which is what you want when every replica talks
/// to the same dependency the same way.
///
/// ```
/// use std::time::Duration;
/// use tripswitch_redis::FleetPolicy;
///
/// let policy = FleetPolicy::default()
///     .quorum(2)
///     .failure_rate(0.5, 50)
///     .window(Duration::from_secs(30));
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetPolicy {
    pub(crate) quorum: u32,
    pub(crate) failure_rate: Option<(f64, u64)>,
    pub(crate) window: Duration,
}

impl Default for FleetPolicy {
    /// A quorum of 1, a failure rate of 50 % over at least 20 calls, a 10 second window.
    fn default() -> Self {
        FleetPolicy {
            quorum: 1,
            failure_rate: Some((0.5, 20)),
            window: Duration::from_secs(10),
        }
    }
}

impl FleetPolicy {
    /// How many distinct replicas must agree before the fleet trips.
    pub fn quorum(mut self, replicas: u32) -> Self {
        self.quorum = replicas;
        self
    }

    /// Trip the fleet when at least `rate` (0 < rate <= 1) of the fleet's
    /// calls in the window failed, once it saw at least `min_calls` calls.
    pub fn failure_rate(mut self, rate: f64, min_calls: u64) -> Self {
        self.failure_rate = Some((rate, min_calls));
        self
    }

    /// Trip the fleet only on replicas' own trips (no fleet-wide rate).
    pub fn without_failure_rate(mut self) -> Self {
        self.failure_rate = None;
        self
    }

    /// How far back the fleet's counts and trip votes reach (kept in ten
    /// buckets on the server, so a call ages out within a tenth of it).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), FleetError> {
        if self.quorum == 0 {
            return Err(FleetError::config("quorum", "0", "at least one replica"));
        }
        if let Some((rate, _)) = self.failure_rate
            && !(rate > 0.0 && rate <= 1.0)
        {
            return Err(FleetError::config(
                "failure_rate",
                rate.to_string(),
                "a rate in (0, 1]",
            ));
        }
        if self.window < Duration::from_millis(10) {
            return Err(FleetError::config(
                "window",
                format!("{:?}", self.window),
                "at least 10 ms (ten buckets of at least 1 ms)",
            ));
        }
        Ok(())
    }

    /// The bucket length in milliseconds (ten buckets a window).
    pub(crate) fn bucket_ms(&self) -> u64 {
        (self.window.as_millis() / 10).max(1) as u64
    }
}

/// How long the fleet stays open after a trip: `base`, times `multiplier`
/// after every opening that follows a failed probe, at most `max`.
/// The default is the seed's 5 seconds, doubling up to one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetOpenPeriod {
    pub(crate) base: Duration,
    pub(crate) max: Duration,
    pub(crate) multiplier: f64,
}

impl Default for FleetOpenPeriod {
    fn default() -> Self {
        FleetOpenPeriod {
            base: Duration::from_secs(5),
            max: Duration::from_secs(60),
            multiplier: 2.0,
        }
    }
}

impl FleetOpenPeriod {
    /// The same period every time.
    pub fn fixed(period: Duration) -> Self {
        FleetOpenPeriod {
            base: period,
            max: period,
            multiplier: 1.0,
        }
    }

    /// `base`, then `base * multiplier^n` after n reopenings, at most `max`.
    pub fn backoff(base: Duration, multiplier: f64, max: Duration) -> Self {
        FleetOpenPeriod {
            base,
            max,
            multiplier,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), FleetError> {
        if self.base < Duration::from_millis(1) {
            return Err(FleetError::config(
                "open_period.base",
                format!("{:?}", self.base),
                "at least 1 ms (the server counts milliseconds)",
            ));
        }
        if self.max < self.base {
            return Err(FleetError::config(
                "open_period.max",
                format!("{:?}", self.max),
                "at least the base period",
            ));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(FleetError::config(
                "open_period.multiplier",
                self.multiplier.to_string(),
                "a finite number >= 1",
            ));
        }
        Ok(())
    }
}
