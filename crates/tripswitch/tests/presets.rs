//! Presets are chosen explicitly and never inferred: each setter changes
//! only its own setting; the standard preset's defaults; one open period;
//! `build` never fails, `try_build` refuses.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Boom, fail, succeed};
use tripswitch::{Backoff, Builder, CircuitBreaker, HalfOpen, Preset, RejectReason, State};

const SECOND: Duration = Duration::from_secs(1);

/// Runs an operation that fails the first time and counts its runs: the
/// seed retries it once after the freeze.
async fn runs_of_a_failing_call(breaker: &CircuitBreaker) -> u32 {
    let runs = AtomicU32::new(0);
    let _ = breaker
        .execute(|| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Boom("down"))
        })
        .await;
    runs.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn the_seeds_own_values_keep_the_seed_preset() {
    // The seed's values, set explicitly, used to switch presets.
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(1)
        .half_open(HalfOpen::release_all())
        .freeze_for(SECOND)
        .try_build()
        .unwrap();
    // The failing call waits out the freeze and runs once more.
    assert_eq!(runs_of_a_failing_call(&breaker).await, 2);
}

#[tokio::test(start_paused = true)]
async fn setting_a_maximum_wait_changes_nothing_else() {
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .freeze_for(SECOND)
            .max_wait(Duration::from_secs(10))
            .build(),
    );
    // Still the seed: the failing call is retried after the freeze...
    assert_eq!(runs_of_a_failing_call(&breaker).await, 2);
    // ... and when the freeze ends every waiting call goes through at once
    // (release_all), not one probe at a time.
    fail(&breaker).await.unwrap_err();
    let running = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let (breaker, running, most) = (breaker.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                breaker
                    .execute(|| async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(SECOND).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Boom>(())
                    })
                    .await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn failing_fast_on_the_seed_preset_keeps_its_half_open_rule() {
    let breaker = CircuitBreaker::builder()
        .freeze_for(SECOND)
        .fail_fast()
        .build();
    // Failing fast never retries.
    assert_eq!(runs_of_a_failing_call(&breaker).await, 1);
    assert_eq!(breaker.state(), State::Open);
    let rejected = succeed(&breaker).await.unwrap_err();
    assert_eq!(
        rejected.rejected().map(|r| r.reason()),
        Some(RejectReason::Open)
    );
    tokio::time::advance(SECOND).await;
    // release_all: the breaker closes when the period ends, without a probe.
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_standard_preset_trips_after_five_failures_and_fails_fast() {
    let breaker = CircuitBreaker::standard().build();
    for _ in 0..4 {
        assert_eq!(runs_of_a_failing_call(&breaker).await, 1, "no retry");
    }
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    let start = tokio::time::Instant::now();
    let rejected = succeed(&breaker).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "rejected at once");
    let rejected = rejected.rejected().cloned().expect("rejected");
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn the_standard_preset_lets_one_probe_through_and_counts_it() {
    let breaker = Arc::new(CircuitBreaker::standard().consecutive_failures(1).build());
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(5)).await;
    let probe = breaker.try_acquire().expect("the probe");
    assert_eq!(breaker.state(), State::HalfOpen);
    assert!(
        matches!(breaker.try_acquire(), Err(r) if r.reason() == RejectReason::HalfOpenFull),
        "a second concurrent call is refused"
    );
    probe.failure(&Boom("still down"));
    // The probe's failure is counted: open again.
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn from_preset_is_the_same_starting_point() {
    assert_eq!(Builder::new().preset(), Preset::Seed);
    assert_eq!(CircuitBreaker::builder().preset(), Preset::Seed);
    assert_eq!(CircuitBreaker::standard().preset(), Preset::Standard);
    assert_eq!(
        Builder::from_preset(Preset::Standard).preset(),
        Preset::Standard
    );
    assert_eq!(Preset::default(), Preset::Seed);
    let breaker = Builder::from_preset(Preset::Standard).build();
    for _ in 0..5 {
        fail(&breaker).await.unwrap_err();
    }
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn the_open_period_is_one_setting_and_the_last_one_set_wins() {
    // A backoff, then a fixed period: fixed.
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .backoff(Backoff::exponential(
            Duration::from_secs(60),
            Duration::from_secs(600),
        ))
        .open_for(Duration::from_secs(2))
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    assert_eq!(retry_after(&breaker), Some(Duration::from_secs(2)));

    // A fixed period, then a backoff: the backoff.
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .freeze_for(Duration::from_secs(2))
        .backoff(Backoff::exponential(
            Duration::from_secs(60),
            Duration::from_secs(600),
        ))
        .try_build()
        .unwrap();
    fail(&breaker).await.unwrap_err();
    assert_eq!(retry_after(&breaker), Some(Duration::from_secs(60)));
}

#[tokio::test(start_paused = true)]
async fn build_never_fails_and_clamps_what_try_build_refuses() {
    let refused = CircuitBreaker::builder()
        .consecutive_failures(0)
        .try_build()
        .unwrap_err();
    assert_eq!(refused.setting(), "consecutive_failures");
    // `build` logs the same error and clamps: 0 failures in a row is 1.
    let breaker = CircuitBreaker::builder()
        .consecutive_failures(0)
        .fail_fast()
        .build();
    fail(&breaker).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);

    let refused = CircuitBreaker::standard()
        .half_open(HalfOpen::probes(0))
        .try_build()
        .unwrap_err();
    assert_eq!(refused.setting(), "half_open.probes");
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .half_open(HalfOpen::probes(0))
        .build();
    fail(&breaker).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(5)).await;
    // Clamped to one probe.
    let probe = breaker.try_acquire().expect("one probe");
    assert!(breaker.try_acquire().is_err());
    probe.success();
    assert_eq!(breaker.state(), State::Closed);
}

fn retry_after(breaker: &CircuitBreaker) -> Option<Duration> {
    breaker.try_acquire().err().and_then(|r| r.retry_after())
}

#[test]
fn build_clamps_probes_and_the_successes_that_close_with_them() {
    use tripswitch::clock::FakeClock;
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .half_open(HalfOpen::probes(u32::MAX))
        .build();
    breaker.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    // 65,535 probes at most, and as many successes close the breaker.
    let mut successes = 0;
    while breaker.state() != State::Closed && successes < 70_000 {
        breaker.try_acquire().expect("a probe").success();
        successes += 1;
    }
    assert_eq!(successes, 65_535);
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn build_logs_the_setting_it_clamped_at_error_and_a_valid_build_logs_nothing() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::ERROR)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    drop(CircuitBreaker::standard().name("fine").build());
    assert!(logs.0.lock().unwrap().is_empty(), "a valid build is silent");

    drop(
        CircuitBreaker::standard()
            .name("clamped")
            .consecutive_failures(0)
            .build(),
    );
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("ERROR"), "{text}");
    assert!(text.contains("consecutive_failures"), "{text}");
    assert!(text.contains("clamped into range"), "{text}");
    assert!(text.contains("try_build"), "says what to do: {text}");
}
