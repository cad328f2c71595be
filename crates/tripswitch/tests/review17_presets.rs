//! Review 17: presets against the anchors' defaults, and config files.

use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::config::BreakerConfig;
use tripswitch::{Builder, CircuitBreaker, Preset, RejectReason, State};

fn preset(p: Preset, clock: &FakeClock) -> CircuitBreaker {
    Builder::from_preset(p)
        .clock(clock.clone())
        .try_build()
        .expect("preset builds")
}

fn fail(b: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("closed").failure(&"f");
    }
}

fn succeed(b: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        b.try_acquire().expect("closed").success();
    }
}

#[test]
fn names_round_trip() {
    for p in [
        Preset::Seed,
        Preset::Standard,
        Preset::Resilience4j,
        Preset::Polly,
        Preset::Gobreaker,
        Preset::Pybreaker,
        Preset::Hystrix,
    ] {
        assert_eq!(Preset::from_name(p.name()), Some(p));
        assert_eq!(p.to_string(), p.name());
        assert_eq!(Builder::from_preset(p).preset(), p);
    }
    assert_eq!(Preset::from_name("Gobreaker"), None);
    assert_eq!(Preset::from_name(""), None);
}

/// gobreaker: ReadyToTrip ConsecutiveFailures > 5; Timeout 60 s; MaxRequests 1.
#[test]
fn gobreaker_defaults() {
    let clock = FakeClock::new();
    let b = preset(Preset::Gobreaker, &clock);
    fail(&b, 5);
    assert_eq!(b.state(), State::Closed, "5 failures: not more than 5");
    succeed(&b, 1);
    fail(&b, 5);
    assert_eq!(
        b.state(),
        State::Closed,
        "a success resets the consecutive count"
    );
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "6 in a row");
    let r = b.try_acquire().unwrap_err();
    assert_eq!(r.reason(), RejectReason::Open);
    assert_eq!(r.retry_after(), Some(Duration::from_secs(60)));
    clock.advance(Duration::from_secs(60));
    let probe = b.try_acquire().expect("one probe");
    assert_eq!(
        b.try_acquire().unwrap_err().reason(),
        RejectReason::HalfOpenFull
    );
    probe.success();
    assert_eq!(b.state(), State::Closed);
    // After closing, gobreaker's counts are cleared: 5 more failures don't trip.
    fail(&b, 5);
    assert_eq!(b.state(), State::Closed);
}

/// pybreaker: fail_max 5, reset_timeout 60, success_threshold 1.
#[test]
fn pybreaker_defaults() {
    let clock = FakeClock::new();
    let b = preset(Preset::Pybreaker, &clock);
    fail(&b, 4);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(60))
    );
    clock.advance(Duration::from_secs(60));
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
}

/// Resilience4j: 50% of 100 calls, from 100 calls; 60 s; 10 half-open calls.
#[test]
fn resilience4j_defaults() {
    let clock = FakeClock::new();
    let b = preset(Preset::Resilience4j, &clock);
    fail(&b, 99);
    assert_eq!(b.state(), State::Closed, "minimumNumberOfCalls 100");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(60))
    );
    clock.advance(Duration::from_secs(60));
    let permits: Vec<_> = (0..10)
        .map(|_| b.try_acquire().expect("10 permitted"))
        .collect();
    assert!(b.try_acquire().is_err());
    for (i, p) in permits.into_iter().enumerate() {
        if i < 4 { p.failure(&"f") } else { p.success() }
    }
    assert_eq!(b.state(), State::Closed, "40% < 50%");
}

/// Resilience4j judges on the success that fills the window: 50 F then 50 S
/// trips on the 100th call.
#[test]
fn resilience4j_trips_on_the_hundredth_success() {
    let clock = FakeClock::new();
    let b = preset(Preset::Resilience4j, &clock);
    fail(&b, 50);
    succeed(&b, 49);
    assert_eq!(b.state(), State::Closed);
    succeed(&b, 1);
    assert_eq!(b.state(), State::Open);
}

/// Polly v8: 10% over 30 s from 100 calls; break 5 s; one probe in all.
#[test]
fn polly_defaults() {
    let clock = FakeClock::new();
    let b = preset(Preset::Polly, &clock);
    succeed(&b, 90);
    fail(&b, 9);
    assert_eq!(
        b.state(),
        State::Closed,
        "99 calls: below MinimumThroughput"
    );
    fail(&b, 1);
    assert_eq!(b.state(), State::Open, "10 of 100 = FailureRatio 0.1");
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(5))
    );
    clock.advance(Duration::from_secs(5));
    let probe = b.try_acquire().expect("probe");
    let r = b.try_acquire().unwrap_err();
    assert_eq!(r.reason(), RejectReason::HalfOpenFull);
    assert_eq!(
        r.retry_after(),
        Some(Duration::from_secs(5)),
        "half-open bounded by the break"
    );
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        b.state(),
        State::Open,
        "a new break after one break duration"
    );
    drop(probe);
}

/// Polly's sampling duration: failures older than 30 s no longer count.
#[test]
fn polly_sampling_duration() {
    let clock = FakeClock::new();
    let b = preset(Preset::Polly, &clock);
    fail(&b, 50);
    clock.advance(Duration::from_secs(31));
    succeed(&b, 100);
    assert_eq!(
        b.state(),
        State::Closed,
        "the 50 failures left the 30 s window"
    );
}

/// Hystrix: 50% over 10 s in 10 buckets, from 20 calls; sleep window 5 s.
#[test]
fn hystrix_defaults() {
    let clock = FakeClock::new();
    let b = preset(Preset::Hystrix, &clock);
    fail(&b, 19);
    assert_eq!(b.state(), State::Closed, "requestVolumeThreshold 20");
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(5))
    );
    clock.advance(Duration::from_secs(5));
    let p = b.try_acquire().expect("one test request");
    assert!(b.try_acquire().is_err());
    p.success();
    assert_eq!(b.state(), State::Closed);
}

/// Every anchor preset fails fast, counts every outcome, bounds half-open at
/// 30 s (Polly 5 s) and does not retry.
#[test]
fn anchors_fail_fast_and_bound_half_open() {
    for (p, open, bound) in [
        (Preset::Resilience4j, 60, 30),
        (Preset::Polly, 5, 5),
        (Preset::Gobreaker, 60, 30),
        (Preset::Pybreaker, 60, 30),
        (Preset::Hystrix, 5, 30),
        (Preset::Standard, 5, 30),
    ] {
        let clock = FakeClock::new();
        let b = Builder::from_preset(p)
            .clock(clock.clone())
            .consecutive_failures(1)
            .try_build()
            .unwrap();
        fail(&b, 1);
        assert_eq!(b.state(), State::Open, "{p}");
        assert_eq!(
            b.try_acquire().unwrap_err().reason(),
            RejectReason::Open,
            "{p}: fail fast"
        );
        clock.advance(Duration::from_secs(open));
        assert_eq!(b.state(), State::HalfOpen, "{p}");
        let _hung: Vec<_> = std::iter::from_fn(|| b.try_acquire().ok())
            .take(100)
            .collect();
        let r = b.try_acquire().unwrap_err();
        assert_eq!(r.retry_after(), Some(Duration::from_secs(bound)), "{p}");
        clock.advance(Duration::from_secs(bound));
        assert_eq!(b.state(), State::Open, "{p}: half-open bounded");
    }
}

fn toml_breaker(text: &str) -> Result<CircuitBreaker, tripswitch::ConfigError> {
    let config: BreakerConfig = toml::from_str(text).expect("parses");
    config.build()
}

fn toml_builder(text: &str, clock: &FakeClock) -> CircuitBreaker {
    let config: BreakerConfig = toml::from_str(text).expect("parses");
    config
        .builder()
        .expect("valid")
        .clock(clock.clone())
        .try_build()
        .expect("valid")
}

#[test]
fn config_preset_gobreaker_matches_code() {
    let clock = FakeClock::new();
    let b = toml_builder("preset = \"gobreaker\"\n", &clock);
    fail(&b, 5);
    assert_eq!(b.state(), State::Closed);
    fail(&b, 1);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn config_half_open_rate_judge() {
    let clock = FakeClock::new();
    let b = toml_builder(
        "preset = \"standard\"\nconsecutive_failures = 1\nopen_for = \"5s\"\nhalf_open = { probes = 4, failure_rate = 0.5 }\n",
        &clock,
    );
    fail(&b, 1);
    clock.advance(Duration::from_secs(5));
    let p: Vec<_> = (0..4).map(|_| b.try_acquire().unwrap()).collect();
    assert!(b.try_acquire().is_err());
    for (i, p) in p.into_iter().enumerate() {
        if i == 0 { p.failure(&"f") } else { p.success() }
    }
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn config_half_open_budget() {
    let clock = FakeClock::new();
    let b = toml_builder(
        "preset = \"standard\"\nconsecutive_failures = 1\nopen_for = \"5s\"\nhalf_open = { probes = 3, budget = 3 }\n",
        &clock,
    );
    fail(&b, 1);
    clock.advance(Duration::from_secs(5));
    let a = b.try_acquire().unwrap();
    let c = b.try_acquire().unwrap();
    let _d = b.try_acquire().unwrap();
    a.success();
    c.success();
    assert!(b.try_acquire().is_err());
}

#[test]
fn config_errors_name_the_setting() {
    for (text, setting) in [
        (
            "half_open = { probes = 4, failure_rate = 1.5 }",
            "half_open.failure_rate",
        ),
        (
            "half_open = { probes = 4, failure_rate = nan }",
            "half_open.failure_rate",
        ),
        (
            "half_open = { probes = 4, failure_rate = -0.1 }",
            "half_open.failure_rate",
        ),
        (
            "half_open = { probes = 4, failure_rate = 0.5, slow_call_rate = 0.5 }",
            "half_open.slow_call_rate",
        ),
        (
            "half_open = { probes = 4, slow_call_rate = 0.5 }",
            "half_open.slow_call_rate",
        ),
        ("half_open = { probes = 3, budget = 2 }", "half_open.budget"),
        ("half_open = { probes = 3, budget = 0 }", "half_open.budget"),
        ("half_open = { probes = 0 }", "half_open.probes"),
        (
            "half_open = { probes = 0, failure_rate = 0.5 }",
            "half_open.probes",
        ),
        (
            "half_open = { probes = 1, max_duration = \"0s\" }",
            "half_open.max_duration",
        ),
        ("preset = \"hystrix2\"", "preset"),
        (
            "half_open = { probes = 4, failure_rate = 0.5, slow_call_rate = 2.0 }\nslow_call_threshold = \"1s\"",
            "half_open.slow_call_rate",
        ),
    ] {
        let error = toml_breaker(text)
            .err()
            .unwrap_or_else(|| panic!("{text} should be refused"));
        assert_eq!(error.setting(), setting, "{text}: {error}");
    }
}

/// A config file's `half_open` with the Resilience4j preset: the preset's
/// policy and open period are kept.
#[test]
fn config_preset_with_half_open_override() {
    let clock = FakeClock::new();
    let b = toml_builder(
        "preset = \"resilience4j\"\nhalf_open = { probes = 2, failure_rate = 0.5 }\n",
        &clock,
    );
    fail(&b, 100);
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after(),
        Some(Duration::from_secs(60))
    );
    clock.advance(Duration::from_secs(60));
    let _a = b.try_acquire().unwrap();
    let _c = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
}

// `polly_preset_does_not_break_on_a_success` was dropped: tripswitch judges a
// rate on every outcome (issue 17, rule 1), Polly on failures only; the
// preset's docs list the difference.
