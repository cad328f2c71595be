//! Builds breakers from arbitrary configuration values and drives arbitrary
//! sequences of calls, permits, time and manual control through them. It must
//! never panic: invalid configuration comes back from `try_build` as an error.
//!
//! cargo +nightly fuzz run config_and_calls -- -max_total_time=300
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use tripswitch::clock::FakeClock;
use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{Backoff, CircuitBreaker, HalfOpen};

#[derive(Debug, Arbitrary)]
struct Config {
    consecutive: Option<u32>,
    rate: Option<(f64, WindowSpec, u32)>,
    slow: Option<(u64, f64, WindowSpec)>,
    backoff: Option<(u64, u64, f64, f64, u64)>,
    freeze_ms: Option<u64>,
    half_open: Option<(Option<u32>, u32, Option<u64>)>,
    fail_fast: bool,
    max_wait_ms: Option<u64>,
    max_waiters: Option<usize>,
    retry: Option<bool>,
    seed_accounting: Option<bool>,
}

#[derive(Debug, Arbitrary)]
enum WindowSpec {
    Calls(u32),
    Time { ms: u64, buckets: u32 },
}

impl WindowSpec {
    fn window(&self) -> Window {
        match *self {
            // Keep memory bounded: the cap itself is checked by try_build.
            WindowSpec::Calls(n) => Window::last_calls(n % (tripswitch::policy::MAX_WINDOW_CALLS + 2)),
            WindowSpec::Time { ms, buckets } => Window::last_in_buckets(
                Duration::from_millis(ms % 100_000),
                buckets % (tripswitch::policy::MAX_BUCKETS + 2),
            ),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Ok,
    Err,
    Slow(u16),
    Acquire,
    Resolve(bool),
    Advance(u16),
    ForceOpen,
    Release,
    Disable,
    MetricsOnly,
    Reset,
    Metrics,
}

fuzz_target!(|input: (Config, Vec<Op>)| {
    let (config, ops) = input;
    let clock = FakeClock::new();
    let mut builder = CircuitBreaker::builder().clock(clock.clone()).half_open(HalfOpen::release_all());
    if let Some(n) = config.consecutive {
        builder = builder.consecutive_failures(n);
    }
    if let Some((threshold, window, min)) = &config.rate {
        builder = builder.failure_rate(FailureRate::new(*threshold, window.window()).min_calls(*min));
    }
    if let Some((slow_ms, threshold, window)) = &config.slow {
        builder = builder.slow_call_rate(SlowCallRate::new(
            Duration::from_millis(*slow_ms),
            *threshold,
            window.window(),
        ));
    }
    if let Some(ms) = config.freeze_ms {
        builder = builder.freeze_for(Duration::from_millis(ms));
    }
    if let Some((initial, max, multiplier, jitter, seed)) = config.backoff {
        builder = builder.backoff(
            Backoff::exponential(Duration::from_millis(initial), Duration::from_millis(max))
                .multiplier(multiplier)
                .jitter(jitter)
                .jitter_seed(seed),
        );
    }
    if let Some((probes, close_after, max)) = config.half_open {
        let mut half_open = match probes {
            Some(p) => HalfOpen::probes(p).close_after(close_after),
            None => HalfOpen::release_all(),
        };
        if let Some(ms) = max {
            half_open = half_open.max_duration(Duration::from_millis(ms));
        }
        builder = builder.half_open(half_open);
    }
    if config.fail_fast {
        builder = builder.fail_fast();
    }
    // Waiting would block this single-threaded driver: wait mode gets a
    // short maximum wait, and calls are polled once (see below).
    if let Some(ms) = config.max_wait_ms {
        builder = builder.max_wait(Duration::from_millis(ms));
    }
    if let Some(n) = config.max_waiters {
        builder = builder.max_waiters(n);
    }
    if let Some(retry) = config.retry {
        builder = builder.retry_after_freeze(retry);
    }
    if let Some(seed) = config.seed_accounting {
        builder = builder.seed_accounting(seed);
    }
    let Ok(breaker) = builder.try_build() else {
        return;
    };
    let mut held = Vec::new();
    for op in ops.into_iter().take(200) {
        match op {
            Op::Ok | Op::Err | Op::Slow(_) => {
                let fail = matches!(op, Op::Err);
                let slow = if let Op::Slow(ms) = op { u64::from(ms) } else { 0 };
                let clock = clock.clone();
                let call = breaker.execute(|| {
                    let clock = clock.clone();
                    async move {
                        clock.advance(Duration::from_millis(slow));
                        if fail { Err("down") } else { Ok(()) }
                    }
                });
                // Poll once: a call that would wait is dropped (cancelled).
                let _ = futures::FutureExt::now_or_never(call);
            }
            Op::Acquire => {
                if let Ok(permit) = breaker.try_acquire_owned() {
                    held.push(permit);
                }
            }
            Op::Resolve(ok) => {
                if let Some(permit) = held.pop() {
                    if ok { permit.success() } else { permit.failure(&"down") }
                }
            }
            Op::Advance(ms) => clock.advance(Duration::from_millis(u64::from(ms))),
            Op::ForceOpen => breaker.force_open(),
            Op::Release => breaker.resume(),
            Op::Disable => breaker.disable(),
            Op::MetricsOnly => breaker.force_metrics_only(),
            Op::Reset => breaker.reset(),
            Op::Metrics => {
                let _ = breaker.metrics();
                let _ = breaker.is_frozen();
            }
        }
    }
    drop(held);
    let _ = block_on(async { breaker.metrics() });
});
