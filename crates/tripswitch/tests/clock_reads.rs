//! How often each path reads the breaker's clock, counted on a clock that
//! counts its reads. A clock read costs tens of nanoseconds on a VM (more
//! than the rest of a closed call), so the closed path of count-based
//! policies must not read it at all, and a fail-fast rejection only once in
//! a long while (to notice an open period whose timer never fired).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use tripswitch::clock::{Clock, FakeClock, Sleep};
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{Builder, CircuitBreaker, Error, State};

/// A [`FakeClock`] that counts how often the breaker asks it the time.
#[derive(Debug, Clone, Default)]
struct CountingClock {
    time: FakeClock,
    reads: Arc<AtomicUsize>,
}

impl CountingClock {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
}

impl Clock for CountingClock {
    fn now(&self) -> Duration {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.time.now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.time.sleep(duration)
    }
}

const CALLS: usize = 10_240;

fn succeed(breaker: &CircuitBreaker) {
    let result = breaker
        .execute(|| async { Ok::<u32, &str>(1) })
        .now_or_never()
        .expect("a closed breaker's call completes at once");
    assert_eq!(result, Ok(1));
}

fn fail(breaker: &CircuitBreaker) -> Result<u32, Error<&'static str>> {
    breaker
        .execute(|| async { Err::<u32, _>("down") })
        .now_or_never()
        .expect("a fail-fast call completes at once")
}

/// Clock reads made by `CALLS` successes on a breaker built from `settings`.
fn reads_by_successes(settings: Builder) -> usize {
    let clock = CountingClock::default();
    let breaker = settings.clock(clock.clone()).try_build().expect("valid");
    succeed(&breaker);
    let before = clock.reads();
    for _ in 0..CALLS {
        succeed(&breaker);
    }
    clock.reads() - before
}

#[test]
fn the_seed_preset_reads_no_clock_on_a_success() {
    assert_eq!(reads_by_successes(CircuitBreaker::builder()), 0);
}

#[test]
fn consecutive_failures_read_no_clock_on_a_success() {
    let settings = CircuitBreaker::builder()
        .consecutive_failures(5)
        .fail_fast();
    assert_eq!(reads_by_successes(settings), 0);
}

#[test]
fn a_success_after_a_failure_reads_no_clock_either() {
    let clock = CountingClock::default();
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(3)
        .fail_fast()
        .clock(clock.clone())
        .try_build()
        .expect("valid");
    for _ in 0..100 {
        assert!(matches!(fail(&breaker), Err(Error::Inner("down"))));
        let before = clock.reads();
        succeed(&breaker);
        succeed(&breaker);
        assert_eq!(clock.reads(), before, "the success that clears the count");
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[test]
fn a_count_window_reads_no_clock_on_a_success() {
    let settings = CircuitBreaker::builder()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(100)).min_calls(10))
        .fail_fast();
    assert_eq!(reads_by_successes(settings), 0);
}

#[test]
fn a_time_window_reads_the_clock_once_per_success() {
    let settings = CircuitBreaker::builder()
        .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(60))).min_calls(10))
        .fail_fast();
    assert_eq!(reads_by_successes(settings), CALLS);
}

#[test]
fn a_fail_fast_rejection_reads_the_clock_once_in_a_thousand_calls() {
    let clock = CountingClock::default();
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(1)
        .freeze_for(Duration::from_secs(30))
        .fail_fast()
        .clock(clock.clone())
        .try_build()
        .expect("valid");
    assert!(matches!(fail(&breaker), Err(Error::Inner("down"))));
    assert_eq!(breaker.state(), State::Open);
    let before = clock.reads();
    for _ in 0..CALLS {
        match fail(&breaker) {
            Err(Error::Rejected(rejected)) => {
                assert_eq!(rejected.state(), State::Open);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    let reads = clock.reads() - before;
    // One sample in 1,024 rejections per thread (see `Core::reject_while_open`).
    assert!(
        reads <= CALLS / 1024 + 1,
        "{reads} clock reads for {CALLS} rejections"
    );
    // Still open, and the rejection's wait is still told on the breaker's clock.
    clock.time.advance(Duration::from_secs(10));
    match fail(&breaker) {
        Err(Error::Rejected(rejected)) => {
            assert_eq!(rejected.retry_after(), Some(Duration::from_secs(20)));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}
