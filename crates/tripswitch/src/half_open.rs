//! What happens when an open period ends.

use std::time::Duration;

use crate::error::ConfigError;
use crate::state::MAX_PROBES;

/// How long a half-open state may last by default before the breaker opens
/// again: a probe that never returns cannot hold the breaker half-open (and
/// a fail-fast breaker rejecting every call) for longer than this.
pub const DEFAULT_MAX_HALF_OPEN: Duration = Duration::from_secs(30);

/// How a breaker tests the service once its open period ends.
///
/// - [`HalfOpen::release_all`] is the seed's way: every waiting call goes
///   through at once and the breaker is closed again straight away. A service
///   that is still down then takes the whole herd.
/// - [`HalfOpen::probes`] is the safer way (gobreaker, Resilience4j, Polly):
///   only `n` probe calls go through at a time; the others keep waiting (or
///   are rejected when failing fast). The breaker closes after enough probes
///   succeed, and opens again, with the next backoff step, as soon as one fails.
///
/// ```
/// use std::time::Duration;
/// use tripswitch::HalfOpen;
///
/// let careful = HalfOpen::probes(3)
///     .close_after(5)
///     .max_duration(Duration::from_secs(30));
/// # let _ = careful;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfOpen {
    pub(crate) probes: Option<u32>,
    pub(crate) close_after: u32,
    pub(crate) max_duration: Option<Duration>,
}

impl HalfOpen {
    /// The seed's behaviour: let everybody through and close at once.
    pub fn release_all() -> Self {
        Self {
            probes: None,
            close_after: 1,
            max_duration: None,
        }
    }

    /// Let at most `probes` calls through at a time; close once `probes`
    /// probes have succeeded (change that with [`close_after`](Self::close_after)).
    /// Open again if no decision came within [`DEFAULT_MAX_HALF_OPEN`] (30
    /// seconds): a probe that hangs cannot hold the breaker half-open
    /// (change that with [`max_duration`](Self::max_duration), or remove
    /// the bound with [`without_max_duration`](Self::without_max_duration)).
    pub fn probes(probes: u32) -> Self {
        Self {
            probes: Some(probes),
            close_after: probes,
            max_duration: Some(DEFAULT_MAX_HALF_OPEN),
        }
    }

    /// Close after this many successful probes (a success frees its slot for the next probe).
    pub fn close_after(mut self, successes: u32) -> Self {
        self.close_after = successes;
        self
    }

    /// Open again if the half-open state has not decided within `max`, so that
    /// a probe that never finishes cannot hold the breaker half-open forever
    /// (default [`DEFAULT_MAX_HALF_OPEN`]).
    pub fn max_duration(mut self, max: Duration) -> Self {
        self.max_duration = Some(max);
        self
    }

    /// No bound on the half-open state: it lasts until the probes decide,
    /// however long a probe takes (Resilience4j's and gobreaker's default,
    /// and the top complaint in their trackers). Prefer
    /// [`max_duration`](Self::max_duration).
    pub fn without_max_duration(mut self) -> Self {
        self.max_duration = None;
        self
    }

    /// How long the half-open state may last, if bounded.
    pub fn max_duration_limit(&self) -> Option<Duration> {
        self.max_duration
    }

    /// The number of probes let through at a time; `None` for [`release_all`](Self::release_all).
    pub fn probe_limit(&self) -> Option<u32> {
        self.probes
    }

    /// The nearest valid settings (for `Builder::build`, which clamps what
    /// `try_build` refuses): 1 to `MAX_PROBES` probes, closing after at
    /// least one success, a maximum duration of at least a millisecond.
    pub(crate) fn clamped(self) -> Self {
        let probes = self.probes.map(|p| p.clamp(1, MAX_PROBES));
        // `probes(n)` closes after n successes: clamped with n.
        let close_after = match (self.probes, probes) {
            (Some(asked), Some(clamped)) if asked != clamped && self.close_after == asked => {
                clamped
            }
            _ => self.close_after.max(1),
        };
        Self {
            probes,
            close_after,
            max_duration: self.max_duration.map(|d| d.max(Duration::from_millis(1))),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(probes) = self.probes
            && !(1..=MAX_PROBES).contains(&probes)
        {
            return Err(ConfigError::new(
                "half_open.probes",
                probes,
                format!("between 1 and {MAX_PROBES}"),
            ));
        }
        if self.close_after == 0 {
            return Err(ConfigError::new(
                "half_open.close_after",
                self.close_after,
                "at least 1",
            ));
        }
        if let Some(max) = self.max_duration
            && max.is_zero()
        {
            return Err(ConfigError::new(
                "half_open.max_duration",
                max,
                "longer than zero",
            ));
        }
        Ok(())
    }
}

impl Default for HalfOpen {
    /// One probe at a time, closing after one success (gobreaker's default),
    /// bounded by [`DEFAULT_MAX_HALF_OPEN`] (gobreaker has no bound).
    fn default() -> Self {
        Self::probes(1)
    }
}
