//! The anchors' presets (issue 17, rule 8): each reproduces its library's
//! defaults, checked by behaviour, with scenarios ported from the
//! library's own tests (named on each test).

use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::{Builder, CircuitBreaker, Preset, State};

fn preset(preset: Preset, clock: &FakeClock) -> CircuitBreaker {
    Builder::from_preset(preset)
        .clock(clock.clone())
        .try_build()
        .unwrap()
}

fn fail(breaker: &CircuitBreaker, times: usize) {
    for _ in 0..times {
        breaker.try_acquire().unwrap().failure(&"down");
    }
}

fn succeed(breaker: &CircuitBreaker, times: usize) {
    for _ in 0..times {
        breaker.try_acquire().unwrap().success();
    }
}

#[test]
fn every_preset_is_named_and_found_by_its_name() {
    for preset in [
        Preset::Seed,
        Preset::Standard,
        Preset::Resilience4j,
        Preset::Polly,
        Preset::Gobreaker,
        Preset::Pybreaker,
        Preset::Hystrix,
    ] {
        assert_eq!(Preset::from_name(preset.name()), Some(preset));
        assert_eq!(Builder::from_preset(preset).preset(), preset);
        assert_eq!(preset.to_string(), preset.name());
    }
}

/// Ported from gobreaker's `TestDefaultCircuitBreaker`
/// (v2/gobreaker_test.go): five failures leave it closed, the sixth opens
/// it; open for 60 s; one failed probe reopens, one successful probe closes.
#[test]
fn gobreaker_trips_after_more_than_five_failures_and_probes_once_after_60s() {
    let clock = FakeClock::new();
    let breaker = preset(Preset::Gobreaker, &clock);
    fail(&breaker, 5);
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker, 1);
    assert_eq!(breaker.state(), State::Open);
    assert!(breaker.try_acquire().is_err());

    clock.advance(Duration::from_secs(59));
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(1));
    assert_eq!(breaker.state(), State::HalfOpen);
    fail(&breaker, 1);
    assert_eq!(breaker.state(), State::Open);

    clock.advance(Duration::from_secs(60));
    assert_eq!(breaker.state(), State::HalfOpen);
    // MaxRequests 1: one call in the whole half-open state.
    let probe = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    probe.success();
    assert_eq!(breaker.state(), State::Closed);
}

/// Ported from pybreaker's `test_failed_call_when_halfopen` and
/// `test_successful_call_when_halfopen` (tests/pybreaker_test.py), with its
/// defaults: fail_max 5, reset_timeout 60 s, success_threshold 1.
#[test]
fn pybreaker_opens_at_fail_max_and_closes_on_one_success() {
    let clock = FakeClock::new();
    let breaker = preset(Preset::Pybreaker, &clock);
    fail(&breaker, 4);
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker, 1);
    assert_eq!(breaker.state(), State::Open);
    clock.advance(Duration::from_secs(60));
    fail(&breaker, 1);
    assert_eq!(breaker.state(), State::Open, "a failed trial call reopens");
    clock.advance(Duration::from_secs(60));
    succeed(&breaker, 1);
    assert_eq!(breaker.state(), State::Closed, "success_threshold 1");
}

/// Ported from Resilience4j's `shouldOpenAfterFailureRateThresholdExceeded`
/// (CircuitBreakerStateMachineTest), with `ofDefaults()`: 50% over the
/// last 100 calls, judged from 100 calls; open 60 s; 10 half-open calls
/// judged by the same rate.
#[test]
fn resilience4j_judges_100_calls_at_50_percent_and_10_half_open_calls_by_rate() {
    let clock = FakeClock::new();
    let breaker = preset(Preset::Resilience4j, &clock);
    fail(&breaker, 50);
    succeed(&breaker, 49);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "99 calls: below minimumNumberOfCalls"
    );
    succeed(&breaker, 1);
    assert_eq!(breaker.state(), State::Open, "50 of 100 failed");
    assert_eq!(breaker.metrics().retry_after, Some(Duration::from_secs(60)));

    clock.advance(Duration::from_secs(60));
    assert_eq!(breaker.state(), State::HalfOpen);
    let permits: Vec<_> = (0..10).map(|_| breaker.try_acquire().unwrap()).collect();
    assert!(breaker.try_acquire().is_err(), "10 permitted calls");
    for (i, permit) in permits.into_iter().enumerate() {
        if i < 5 {
            permit.failure(&"down");
        } else {
            permit.success();
        }
    }
    assert_eq!(breaker.state(), State::Open, "5 of 10 is 50%");

    clock.advance(Duration::from_secs(60));
    fail(&breaker, 4);
    succeed(&breaker, 6);
    assert_eq!(breaker.state(), State::Closed, "4 of 10 is under 50%");
}

/// Ported from Polly's `AdvancedCircuitBehaviorTests` (failure ratio and
/// minimum throughput) and `CircuitStateControllerTests` (one probe in the
/// half-open state), with v8's defaults: ratio 0.1 from 100 calls over
/// 30 s, a 5 s break.
#[test]
fn polly_breaks_at_a_tenth_of_100_calls_for_5s_and_lets_one_probe_through() {
    let clock = FakeClock::new();
    let breaker = preset(Preset::Polly, &clock);
    succeed(&breaker, 90);
    fail(&breaker, 9);
    assert_eq!(breaker.state(), State::Closed, "below MinimumThroughput");
    fail(&breaker, 1);
    assert_eq!(breaker.state(), State::Open, "10 of 100 failed");

    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), State::HalfOpen);
    let probe = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    // A probe that hangs: after one more break duration, a new break.
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), State::Open);
    drop(probe);
    clock.advance(Duration::from_secs(5));
    succeed(&breaker, 1);
    assert_eq!(breaker.state(), State::Closed);

    // The sampling duration is 30 s: failures older than that leave it.
    fail(&breaker, 10);
    clock.advance(Duration::from_secs(31));
    succeed(&breaker, 90);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the 10 failures left the window"
    );
    fail(&breaker, 10);
    assert_eq!(
        breaker.state(),
        State::Open,
        "10 of the last 100, within 30 s"
    );
}

/// Ported from Hystrix's `HystrixCircuitBreakerTest` (`testTripCircuit`,
/// `testCircuitDoesNotTripOnFailuresBelowThreshold`,
/// `testSingleTestOnOpenCircuitAfterTimeWindow`): 50% errors over 10 s
/// from a volume of 20; a 5 s sleep window; one test request.
#[test]
fn hystrix_trips_at_half_of_20_requests_and_sends_a_single_test() {
    let clock = FakeClock::new();
    let breaker = preset(Preset::Hystrix, &clock);
    fail(&breaker, 19);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "below requestVolumeThreshold"
    );
    fail(&breaker, 1);
    assert_eq!(breaker.state(), State::Open);

    clock.advance(Duration::from_secs(5));
    let test = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err(), "a single test request");
    test.success();
    assert_eq!(breaker.state(), State::Closed);

    // Below the threshold: 9 errors in 20 requests.
    fail(&breaker, 9);
    succeed(&breaker, 11);
    assert_eq!(breaker.state(), State::Closed);
}

/// An idle half-open state is not reopened by the stuck-probe bound: with
/// nobody calling (only a poller reading metrics), the first real call
/// after the open period is the probe, as gobreaker lets it be. (Found by
/// an adversarial review: the bound fired with no probe ever sent.)
#[test]
fn gobreaker_lets_the_first_call_probe_however_late_it_comes() {
    let clock = FakeClock::new();
    let breaker = preset(Preset::Gobreaker, &clock);
    fail(&breaker, 6);
    for _ in 0..65 {
        clock.advance(Duration::from_secs(10));
        let _ = breaker.metrics();
    }
    assert_eq!(breaker.state(), State::HalfOpen);
    let probe = breaker.try_acquire().expect("the first call is the probe");
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(breaker.state(), State::Closed);
}
