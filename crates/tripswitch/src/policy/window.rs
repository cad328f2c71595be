use std::time::Duration;

use crate::clock::nanos;
use crate::error::ConfigError;

/// The largest count window: 10 million calls (two 1.25 MB bit rings).
pub const MAX_WINDOW_CALLS: u32 = 10_000_000;
/// The most buckets a time window may have.
pub const MAX_BUCKETS: u32 = 100_000;

/// The sliding window a rate policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Window {
    /// The last `n` calls. Costs one bit per call and outcome kind (a window of
    /// 100 calls is two 128-bit rings), not a byte per call.
    LastCalls(u32),
    /// The calls of the last `length`, in `buckets` buckets of equal length;
    /// the oldest bucket drops out as a whole. Sub-second lengths work.
    LastDuration {
        /// How far back the window reaches.
        length: Duration,
        /// Into how many buckets the window is split (more buckets: smoother, costlier to read).
        buckets: u32,
    },
}

impl Window {
    /// The last `calls` calls.
    pub fn last_calls(calls: u32) -> Self {
        Window::LastCalls(calls)
    }

    /// The calls of the last `length`, in ten buckets.
    pub fn last(length: Duration) -> Self {
        Window::LastDuration {
            length,
            buckets: 10,
        }
    }

    /// The calls of the last `length`, in `buckets` buckets.
    pub fn last_in_buckets(length: Duration, buckets: u32) -> Self {
        Window::LastDuration { length, buckets }
    }

    pub(crate) fn validate(&self, setting: &'static str) -> Result<(), ConfigError> {
        match *self {
            Window::LastCalls(0) => Err(ConfigError::new(
                setting,
                self,
                "a window of at least 1 call",
            )),
            Window::LastCalls(calls) if calls > MAX_WINDOW_CALLS => Err(ConfigError::new(
                setting,
                self,
                format!("a window of at most {MAX_WINDOW_CALLS} calls (MAX_WINDOW_CALLS)"),
            )),
            Window::LastCalls(_) => Ok(()),
            Window::LastDuration { buckets: 0, .. } => {
                Err(ConfigError::new(setting, self, "at least 1 bucket"))
            }
            Window::LastDuration { buckets, .. } if buckets > MAX_BUCKETS => Err(ConfigError::new(
                setting,
                self,
                format!("at most {MAX_BUCKETS} buckets (MAX_BUCKETS)"),
            )),
            Window::LastDuration { length, buckets } => {
                if length.is_zero() {
                    Err(ConfigError::new(setting, self, "a window longer than zero"))
                } else if nanos(length) / u64::from(buckets) == 0 {
                    Err(ConfigError::new(
                        setting,
                        self,
                        "buckets of at least 1ns (fewer buckets or a longer window)",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    pub(crate) fn max_calls(&self) -> Option<u32> {
        match *self {
            Window::LastCalls(n) => Some(n),
            Window::LastDuration { .. } => None,
        }
    }
}

/// Counts in a window at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WindowCounts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}
