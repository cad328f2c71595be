//! Breakers and registries from configuration files (feature `serde`).
//!
//! [`BreakerConfig`] and [`RegistryConfig`] deserialize from any serde
//! format (TOML, YAML, JSON, environment layers through `config` or
//! `figment`) and build through the [`Builder`], so a file is checked by the
//! same rules, with the same [`ConfigError`] messages, as code. Unknown keys
//! are refused. Durations are strings with a unit (`"250ms"`, `"5s"`,
//! `"2m"`, `"1h"`, decimals allowed) or a number of seconds. An empty
//! configuration is the seed preset, as `CircuitBreaker::builder()` is.
//!
//! ```toml
//! name = "payments"
//! preset = "http_client"            # or "seed" (the default), "standard", "resilience4j", "polly", "gobreaker", "pybreaker", "hystrix"; "http_client" needs the `http` feature
//! consecutive_failures = 5
//! failure_rate = { threshold = 0.5, last_calls = 100, min_calls = 20 }   # or last = "60s"
//! slow_call_rate = { slower_than = "2s", threshold = 0.8, last = "60s" }
//! open_for = "30s"                  # or backoff = { initial = "1s", max = "60s", jitter = 0.2 }
//! half_open = { probes = 3, close_after = 3, max_duration = "30s" }   # budget = 3 (gobreaker's MaxRequests)
//! # or, judged by rate (Resilience4j): half_open = { probes = 10, failure_rate = 0.5, slow_call_rate = 1.0 }
//! fail_fast = true                  # or max_wait = "500ms", max_waiters = 1000
//! ```
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use tripswitch::config::BreakerConfig;
//!
//! let config: BreakerConfig = serde_json::from_str(
//!     r#"{ "name": "payments", "consecutive_failures": 5, "open_for": "30s", "fail_fast": true }"#,
//! )?;
//! let breaker = config.build()?;
//! assert_eq!(breaker.name(), Some("payments"));
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::policy::{FailureRate, SlowCallRate, Window};
use crate::{Backoff, Builder, CircuitBreaker, ConfigError, HalfOpen, Registry};

/// A breaker's settings as a configuration file holds them. See the
/// [module docs](self) for the keys; [`build`](Self::build) checks them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    name: Option<String>,
    preset: Option<String>,
    consecutive_failures: Option<u32>,
    failure_rate: Option<RateConfig>,
    slow_call_rate: Option<SlowRateConfig>,
    slow_call_threshold: Option<Seconds>,
    open_for: Option<Seconds>,
    backoff: Option<BackoffConfig>,
    half_open: Option<HalfOpenConfig>,
    fail_fast: Option<bool>,
    max_wait: Option<Seconds>,
    max_waiters: Option<usize>,
}

/// A window as a file gives it: `last_calls`, or `last` (and `buckets`).
#[derive(Debug, Clone, Copy)]
struct WindowConfig {
    last_calls: Option<u32>,
    last: Option<Seconds>,
    buckets: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateConfig {
    threshold: f64,
    min_calls: Option<u32>,
    last_calls: Option<u32>,
    last: Option<Seconds>,
    buckets: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlowRateConfig {
    slower_than: Seconds,
    threshold: f64,
    min_calls: Option<u32>,
    last_calls: Option<u32>,
    last: Option<Seconds>,
    buckets: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackoffConfig {
    initial: Seconds,
    max: Seconds,
    multiplier: Option<f64>,
    jitter: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HalfOpenConfig {
    probes: u32,
    close_after: Option<u32>,
    /// gobreaker's MaxRequests: calls in the whole half-open state.
    budget: Option<u32>,
    /// Resilience4j's judge: `probes` calls, judged by this failure rate.
    failure_rate: Option<f64>,
    /// With `failure_rate`: the slow-call rate that reopens too.
    slow_call_rate: Option<f64>,
    max_duration: Option<Seconds>,
}

impl BreakerConfig {
    /// The builder these settings make, to add what a file cannot hold
    /// (listeners, a clock, error rules) before building. Settings a file
    /// combines wrongly (a window with both `last_calls` and `last`, both
    /// `open_for` and `backoff`, an unknown preset) are refused here; the
    /// values themselves are checked by [`Builder::try_build`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting.
    pub fn builder(&self) -> Result<Builder, ConfigError> {
        let mut builder = match self.preset.as_deref() {
            None => CircuitBreaker::builder(),
            #[cfg(feature = "http")]
            Some("http_client") => crate::http::client_preset(),
            Some(name) => match crate::Preset::from_name(name) {
                Some(preset) => Builder::from_preset(preset),
                None => {
                    let allowed = if cfg!(feature = "http") {
                        "\"seed\", \"standard\", \"resilience4j\", \"polly\", \"gobreaker\", \"pybreaker\", \"hystrix\" or \"http_client\""
                    } else {
                        "\"seed\", \"standard\", \"resilience4j\", \"polly\", \"gobreaker\", \"pybreaker\" or \"hystrix\" (\"http_client\" needs the `http` feature)"
                    };
                    return Err(ConfigError::new("preset", name, allowed));
                }
            },
        };
        if let Some(name) = &self.name {
            builder = builder.name(name.as_str());
        }
        if let Some(n) = self.consecutive_failures {
            builder = builder.consecutive_failures(n);
        }
        if let Some(rate) = &self.failure_rate {
            let window = WindowConfig {
                last_calls: rate.last_calls,
                last: rate.last,
                buckets: rate.buckets,
            }
            .window("failure_rate.window")?;
            let mut policy = FailureRate::new(rate.threshold, window);
            if let Some(min) = rate.min_calls {
                policy = policy.min_calls(min);
            }
            builder = builder.failure_rate(policy);
        }
        if let Some(rate) = &self.slow_call_rate {
            let window = WindowConfig {
                last_calls: rate.last_calls,
                last: rate.last,
                buckets: rate.buckets,
            }
            .window("slow_call_rate.window")?;
            let mut policy = SlowCallRate::new(rate.slower_than.0, rate.threshold, window);
            if let Some(min) = rate.min_calls {
                policy = policy.min_calls(min);
            }
            builder = builder.slow_call_rate(policy);
        }
        if let Some(threshold) = self.slow_call_threshold {
            builder = builder.slow_call_threshold(threshold.0);
        }
        match (self.open_for, &self.backoff) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "open_for",
                    "both open_for and backoff",
                    "one of open_for (a fixed period) or backoff (growing periods)",
                ));
            }
            (Some(period), None) => builder = builder.freeze_for(period.0),
            (None, Some(backoff)) => {
                let mut policy = Backoff::exponential(backoff.initial.0, backoff.max.0);
                if let Some(multiplier) = backoff.multiplier {
                    policy = policy.multiplier(multiplier);
                }
                if let Some(jitter) = backoff.jitter {
                    policy = policy.jitter(jitter);
                }
                builder = builder.backoff(policy);
            }
            (None, None) => {}
        }
        if let Some(half_open) = &self.half_open {
            let mut policy = match half_open.failure_rate {
                Some(rate) => HalfOpen::judged_by_rate(half_open.probes, rate),
                None => HalfOpen::probes(half_open.probes),
            };
            if let Some(rate) = half_open.slow_call_rate {
                if half_open.failure_rate.is_none() {
                    return Err(ConfigError::new(
                        "half_open.slow_call_rate",
                        rate,
                        "used with half_open.failure_rate (a half-open state judged by rate)",
                    ));
                }
                policy = policy.slow_call_rate(rate);
            }
            if let Some(successes) = half_open.close_after {
                policy = policy.close_after(successes);
            }
            if let Some(budget) = half_open.budget {
                policy = policy.budget(budget);
            }
            if let Some(max) = half_open.max_duration {
                policy = policy.max_duration(max.0);
            }
            builder = builder.half_open(policy);
        }
        match self.fail_fast {
            Some(true) => builder = builder.fail_fast(),
            Some(false) => builder = builder.wait_when_open(),
            None => {}
        }
        if let Some(max) = self.max_wait {
            builder = builder.max_wait(max.0);
        }
        if let Some(max) = self.max_waiters {
            builder = builder.max_waiters(max);
        }
        Ok(builder)
    }

    /// The breaker, checked as [`Builder::try_build`] checks it.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting, its value and what is allowed.
    pub fn build(&self) -> Result<CircuitBreaker, ConfigError> {
        self.builder()?.try_build()
    }
}

impl WindowConfig {
    fn window(self, setting: &'static str) -> Result<Window, ConfigError> {
        match (self.last_calls, self.last) {
            (Some(calls), None) if self.buckets.is_none() => Ok(Window::last_calls(calls)),
            (None, Some(length)) => Ok(match self.buckets {
                Some(buckets) => Window::last_in_buckets(length.0, buckets),
                None => Window::last(length.0),
            }),
            _ => Err(ConfigError::new(
                setting,
                self,
                "either last_calls, or last (with buckets, optionally)",
            )),
        }
    }
}

/// A registry as a configuration file holds it: its size, idle eviction,
/// the settings of every breaker (`defaults`) and of particular keys
/// (`breakers`, replacing the defaults for that key). Each breaker is named
/// by its key unless its settings give a name.
///
/// ```toml
/// max_breakers = 256
/// evict_idle_after = "10m"
/// [defaults]
/// consecutive_failures = 5
/// fail_fast = true
/// [breakers."payments.internal:443"]
/// consecutive_failures = 2
/// fail_fast = true
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    max_breakers: usize,
    evict_idle_after: Option<Seconds>,
    #[serde(default)]
    defaults: BreakerConfig,
    #[serde(default)]
    breakers: BTreeMap<String, BreakerConfig>,
}

impl RegistryConfig {
    /// The registry. Every breaker's settings are checked now, once (the
    /// defaults, and each key's), so that making a breaker later cannot fail.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`], as [`BreakerConfig::build`] gives it.
    pub fn build(&self) -> Result<Registry<String>, ConfigError> {
        self.defaults.build()?;
        for settings in self.breakers.values() {
            settings.build()?;
        }
        let defaults = self.defaults.clone();
        let breakers = self.breakers.clone();
        let factory = move |key: &String| {
            let settings = breakers.get(key).unwrap_or(&defaults);
            let named = |builder: Builder| match settings.name {
                Some(_) => builder,
                None => builder.name(key.as_str()),
            };
            // Checked above; the settings do not depend on the key but for
            // the name, so this cannot fail. Were it to, the key still gets
            // a breaker (the standard preset) rather than a panic.
            match settings.builder().map(named).and_then(Builder::try_build) {
                Ok(breaker) => breaker,
                Err(error) => {
                    crate::events::trace(
                        || tracing::error!(%error, key = key.as_str(), "tripswitch: a configured breaker did not build"),
                    );
                    CircuitBreaker::standard().name(key.as_str()).build()
                }
            }
        };
        let mut builder = Registry::builder(self.max_breakers, factory);
        if let Some(idle) = self.evict_idle_after {
            builder = builder.evict_idle_after(idle.0);
        }
        Ok(builder.build())
    }
}

/// A duration in a configuration file: `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`,
/// or a number of seconds.
#[derive(Debug, Clone, Copy)]
struct Seconds(Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"250ms\", \"5s\", \"2m\", \"1h\", or a number of seconds",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(seconds)))
            }
            fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<Seconds, E> {
                u64::try_from(seconds)
                    .map(|s| Seconds(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("a negative duration: {seconds}")))
            }
            fn visit_f64<E: serde::de::Error>(self, seconds: f64) -> Result<Seconds, E> {
                Duration::try_from_secs_f64(seconds)
                    .map(Seconds)
                    .map_err(|_| E::custom(format!("not a duration in seconds: {seconds}")))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Seconds, E> {
                parse_duration(text).map(Seconds).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "s" | "" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in duration {text:?} (use ms, s, m or h)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (e.g. \"250ms\", \"5s\", \"2m\")"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("not a duration: {text:?}"))
}
