//! The presets a [`Builder`](super::Builder) starts from, and the one table
//! of their defaults.

use std::fmt;
use std::time::Duration;

use crate::half_open::HalfOpen;

/// A breaker's starting point: the value of every setting the builder is
/// not told.
///
/// A preset is chosen once, when the builder is made, and never inferred
/// from the settings that follow: each setter changes only its own
/// setting. [`CircuitBreaker::builder`](crate::CircuitBreaker::builder)
/// starts from [`Preset::Seed`], [`CircuitBreaker::standard`](crate::CircuitBreaker::standard)
/// from [`Preset::Standard`], and [`Builder::from_preset`](super::Builder::from_preset)
/// from any.
///
/// The table of defaults (settings not listed have the same default in
/// every preset: no name, the default clock, no listeners, no maximum wait,
/// no cap on waiters, [`max_freeze`](super::Builder::max_freeze) 5 minutes,
/// no error ignored):
///
/// | setting | `Seed` | `Standard` |
/// |---|---|---|
/// | trip policy, when none is set | 1 failure ([`consecutive_failures`](super::Builder::consecutive_failures)`(1)`) | 5 failures in a row |
/// | open period | 5 s | 5 s |
/// | while open | calls wait ([`wait_when_open`](super::Builder::wait_when_open)) | calls are rejected at once ([`fail_fast`](super::Builder::fail_fast)) |
/// | half-open | [`HalfOpen::release_all`] | [`HalfOpen::default`]: one probe at a time, close after one success |
/// | [`retry_after_freeze`](super::Builder::retry_after_freeze) | on | off |
/// | [`seed_accounting`](super::Builder::seed_accounting) | on | off |
///
/// ```
/// use tripswitch::{Builder, CircuitBreaker, Preset};
///
/// // The same breaker, three ways.
/// let a = CircuitBreaker::standard().build();
/// let b = Builder::from_preset(Preset::Standard).build();
/// let c = CircuitBreaker::builder()
///     .consecutive_failures(5)
///     .fail_fast()
///     .half_open(tripswitch::HalfOpen::default())
///     .retry_after_freeze(false)
///     .seed_accounting(false)
///     .try_build()?;
/// # drop((a, b, c));
/// # Ok::<(), tripswitch::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Preset {
    /// The Python `CircuitBreaker` this crate started from: one failure
    /// freezes the breaker for 5 seconds; calls made meanwhile wait, then
    /// all run; the failing call runs once more after the freeze; that
    /// retry and the released calls are not counted.
    #[default]
    Seed,
    /// The closed / open / half-open breaker users of Resilience4j, Polly
    /// and gobreaker expect: five failures in a row open it for 5 seconds,
    /// calls are rejected at once while it is open, then one probe at a
    /// time decides, and every outcome counts.
    Standard,
}

impl Preset {
    /// The preset's name, as configuration files spell it (`"seed"`, `"standard"`).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Seed => "seed",
            Preset::Standard => "standard",
        }
    }

    /// The defaults of this preset: the one table the builder starts from.
    pub(crate) fn defaults(self) -> Defaults {
        match self {
            Preset::Seed => Defaults {
                consecutive_failures: 1,
                open_for: Duration::from_secs(5),
                fail_fast: false,
                half_open: HalfOpen::release_all(),
                retry_after_freeze: true,
                seed_accounting: true,
            },
            Preset::Standard => Defaults {
                consecutive_failures: 5,
                open_for: Duration::from_secs(5),
                fail_fast: true,
                half_open: HalfOpen::default(),
                retry_after_freeze: false,
                seed_accounting: false,
            },
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The settings whose default depends on the preset (see [`Preset`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    /// The consecutive-failures threshold used when no trip policy is set.
    pub(crate) consecutive_failures: u32,
    /// The fixed open period.
    pub(crate) open_for: Duration,
    pub(crate) fail_fast: bool,
    pub(crate) half_open: HalfOpen,
    pub(crate) retry_after_freeze: bool,
    pub(crate) seed_accounting: bool,
}
