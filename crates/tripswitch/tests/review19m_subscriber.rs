//! Review 19m: the default `on_error` is now a `tracing` DEBUG line written
//! by `events::log_error` "under the same re-entrancy guard and panic guard
//! as a user's on_error" (core/recording.rs: "a subscriber is user code
//! too"). These attacks install subscribers that panic, on chosen events,
//! and check that the caller is not crashed and the breaker not wedged.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tripswitch::clock::FakeClock;
use tripswitch::{CircuitBreaker, State};

#[derive(Default)]
struct Message(Option<String>);

impl tracing::field::Visit for Message {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// A layer that panics on every event whose message satisfies `when`.
struct PanicOn(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl<S: tracing::Subscriber> Layer<S> for PanicOn {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut message = Message::default();
        event.record(&mut message);
        let message = message.0.unwrap_or_default();
        if (self.0)(&message) {
            panic!("review19m: the subscriber panics on {message:?}");
        }
    }
}

fn with_panicking_subscriber<T>(
    when: impl Fn(&str) -> bool + Send + Sync + 'static,
    f: impl FnOnce() -> T,
) -> T {
    let subscriber = tracing_subscriber::registry().with(PanicOn(Arc::new(when)));
    tracing::subscriber::with_default(subscriber, f)
}

#[test]
fn a_subscriber_panicking_on_the_failure_line_does_not_crash_the_caller() {
    let breaker = CircuitBreaker::standard()
        .name("guarded")
        .consecutive_failures(2)
        .build();
    let result = with_panicking_subscriber(
        |m| m == "tripswitch: guarded call failed",
        || {
            catch_unwind(AssertUnwindSafe(|| {
                breaker.try_acquire().unwrap().failure(&"boom")
            }))
        },
    );
    assert!(result.is_ok(), "the panic reached the caller");
    assert_eq!(breaker.metrics().totals.failures, 1);
    assert_eq!(breaker.state(), State::Closed);
    // And the breaker still trips on the next one.
    let result = with_panicking_subscriber(
        |m| m == "tripswitch: guarded call failed",
        || {
            catch_unwind(AssertUnwindSafe(|| {
                breaker.try_acquire().unwrap().failure(&"boom")
            }))
        },
    );
    assert!(result.is_ok());
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_panicking_on_the_failure_line_does_not_crash_execute() {
    let breaker = CircuitBreaker::standard()
        .name("guarded-async")
        .consecutive_failures(5)
        .build();
    let subscriber = tracing_subscriber::registry().with(PanicOn(Arc::new(|m: &str| {
        m == "tripswitch: guarded call failed"
    })));
    let _guard = tracing::subscriber::set_default(subscriber);
    let result = futures::FutureExt::catch_unwind(AssertUnwindSafe(
        breaker.execute(|| async { Err::<(), _>("boom") }),
    ))
    .await;
    let result = result.expect("the panic reached the caller");
    assert!(result.unwrap_err().inner().is_some());
    assert_eq!(breaker.metrics().totals.failures, 1);
}

// Failed before the fix (also at 823e495): `call_guarded` (events.rs:183) contains the panic of the default
// on_error's DEBUG line, then reports it with `tracing::error!` outside any
// guard; a subscriber that panics on every event panics again there, and
// that panic reaches the caller of `Permit::failure`. Not introduced by
// 3c592ee (the old closure went through the same guard), but the promise
// that the DEBUG line is "under the same panic guard" holds only for
// subscribers that panic on DEBUG lines and not on ERROR ones.
#[test]
fn a_subscriber_panicking_on_every_event_does_not_crash_a_failing_call() {
    let breaker = CircuitBreaker::standard()
        .name("every-event")
        .consecutive_failures(100)
        .build();
    let permit = breaker.try_acquire().unwrap();
    let result = with_panicking_subscriber(
        |_| true,
        || catch_unwind(AssertUnwindSafe(|| permit.failure(&"boom"))),
    );
    assert!(
        result.is_ok(),
        "a failing call panicked because the subscriber did"
    );
}

// Failed before the fix (also at 823e495): the transition's WARN line (core/entering.rs:54) is written after
// the state word moved to Open and before the open period's deadline and
// freeze are installed, with no guard. A subscriber that panics on it
// unwinds out of `entered`: the breaker is left Open with no deadline and no
// freeze, and stays open forever (every later look finds `open_until` None
// and no freeze to drive). RELIABILITY.md: "never gets stuck". Pre-existing
// (not introduced by 3c592ee..29be92b).
#[test]
fn a_subscriber_panicking_on_the_opening_line_does_not_leave_the_breaker_stuck() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .name("stuck")
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .build();
    let _ = with_panicking_subscriber(
        |m| m == "tripswitch: state changed",
        || {
            catch_unwind(AssertUnwindSafe(|| {
                breaker.try_acquire().unwrap().failure(&"boom")
            }))
        },
    );
    // The subscriber is gone; the period must still end.
    clock.advance(Duration::from_secs(10));
    let state = breaker.state();
    let _ = breaker.is_frozen();
    let after = breaker.try_acquire().map(|p| p.success());
    assert!(
        after.is_ok(),
        "still refused ten open periods later: state {state:?}, {:?}",
        after.unwrap_err()
    );
}

// Failed before the fix (pre-existing, also at 823e495): the rejection's DEBUG line (core/admission.rs:351) is
// unguarded: a subscriber panicking on it makes `try_acquire` panic.
#[test]
fn a_subscriber_panicking_on_the_rejection_line_does_not_crash_try_acquire() {
    let breaker = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(60))
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let result = with_panicking_subscriber(
        |m| m == "tripswitch: call rejected",
        || catch_unwind(AssertUnwindSafe(|| breaker.try_acquire().is_err())),
    );
    assert!(matches!(result, Ok(true)), "try_acquire panicked");
}
