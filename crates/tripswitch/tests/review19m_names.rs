//! Review 19m: the breaker's name is now kept once, in what rejections
//! carry, and the default `on_error` is `events::log_error(name, error)`
//! instead of a closure holding a copy of the name. These attacks check
//! every place a name shows up (rejections' Display/Debug/eq, the breaker's
//! Debug, events, tracing output) for named, unnamed, custom-clock and
//! registry breakers, and that the default `on_error` still logs the failure
//! at DEBUG, naming the breaker, whatever other hooks are set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, Registry, State};

#[derive(Debug, Clone)]
struct Line {
    level: tracing::Level,
    fields: HashMap<String, String>,
}

impl Line {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Line>>>);

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.lock().unwrap().push(Line {
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
}

/// Runs `f` with a subscriber that keeps every event of this thread.
fn captured(f: impl FnOnce()) -> Vec<Line> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, f);
    capture.0.lock().unwrap().clone()
}

fn failures(lines: &[Line]) -> Vec<&Line> {
    lines
        .iter()
        .filter(|l| l.message() == "tripswitch: guarded call failed")
        .collect()
}

#[test]
fn the_default_on_error_logs_a_debug_line_naming_the_breaker() {
    let breaker = CircuitBreaker::standard().name("payments").build();
    let lines = captured(|| breaker.try_acquire().unwrap().failure(&"boom"));
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert_eq!(failed[0].level, tracing::Level::DEBUG);
    assert_eq!(failed[0].field("breaker"), Some("payments"));
    assert_eq!(failed[0].field("error"), Some("\"boom\""));
}

#[test]
fn the_default_on_error_of_an_unnamed_breaker_logs_an_empty_name() {
    let breaker = CircuitBreaker::standard().build();
    let lines = captured(|| breaker.try_acquire().unwrap().failure(&"boom"));
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert_eq!(failed[0].field("breaker"), Some(""));
}

#[test]
fn the_default_on_error_still_logs_when_other_hooks_are_set() {
    // Listeners, ignore rules and a shared store make the boxed hooks exist
    // while `on_error` stays the default.
    struct Store;
    impl tripswitch::shared::SharedState for Store {
        fn transitioned(&self, _: State, _: State, _: tripswitch::events::TransitionReason) {}
    }
    #[derive(Debug)]
    struct Ignored;
    let builders = [
        CircuitBreaker::standard()
            .name("with-listener")
            .on_event(|_| {}),
        CircuitBreaker::standard()
            .name("with-rule")
            .ignore_errors::<Ignored>(|_| true),
        CircuitBreaker::standard()
            .name("with-store")
            .shared_state(Arc::new(Store)),
        CircuitBreaker::standard()
            .name("with-fake-clock")
            .clock(FakeClock::new()),
    ];
    for builder in builders {
        let breaker = builder.build();
        let name = breaker.name().unwrap().to_owned();
        let lines = captured(|| breaker.try_acquire().unwrap().failure(&"boom"));
        let failed = failures(&lines);
        assert_eq!(failed.len(), 1, "{name}: {lines:#?}");
        assert_eq!(failed[0].field("breaker"), Some(name.as_str()));
    }
}

#[test]
fn a_custom_on_error_replaces_the_debug_line() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let breaker = CircuitBreaker::standard()
        .name("custom")
        .on_error(move |e| s.lock().unwrap().push(format!("{e:?}")))
        .build();
    let lines = captured(|| breaker.try_acquire().unwrap().failure(&"boom"));
    assert!(failures(&lines).is_empty(), "{lines:#?}");
    assert_eq!(*seen.lock().unwrap(), vec!["\"boom\"".to_owned()]);
}

#[test]
fn ignored_errors_and_successes_log_no_failure() {
    #[derive(Debug)]
    struct Ignored;
    let breaker = CircuitBreaker::standard()
        .name("quiet")
        .ignore_errors::<Ignored>(|_| true)
        .build();
    let lines = captured(|| {
        breaker.try_acquire().unwrap().failure(&Ignored);
        breaker.try_acquire().unwrap().success();
    });
    assert!(failures(&lines).is_empty(), "{lines:#?}");
}

#[test]
fn a_panicking_operation_is_logged_as_a_failure_naming_the_breaker() {
    let breaker = CircuitBreaker::standard().name("panics").build();
    let lines = captured(|| {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _permit = breaker.try_acquire().unwrap();
            panic!("review19m: operation panicked");
        }));
        assert!(result.is_err());
    });
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert_eq!(failed[0].field("breaker"), Some("panics"));
    assert_eq!(breaker.metrics().totals.failures, 1);
}

#[test]
fn every_tracing_line_of_a_cycle_names_the_breaker() {
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .name("cycle")
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .build();
    let lines = captured(|| {
        breaker.try_acquire().unwrap().failure(&"boom");
        let _ = breaker.try_acquire().unwrap_err();
        clock.advance(Duration::from_secs(1));
        breaker.try_acquire().unwrap().success();
    });
    let tripswitch_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.message().starts_with("tripswitch:"))
        .collect();
    // failure, opening (WARN), rejection, half-open (INFO), closing (INFO)
    assert!(tripswitch_lines.len() >= 5, "{lines:#?}");
    for line in &tripswitch_lines {
        assert_eq!(line.field("breaker"), Some("cycle"), "{line:?}");
    }
    let opened = tripswitch_lines
        .iter()
        .find(|l| l.message() == "tripswitch: state changed" && l.field("to") == Some("open"));
    assert_eq!(
        opened.map(|l| l.level),
        Some(tracing::Level::WARN),
        "{lines:#?}"
    );
    let rejected = tripswitch_lines
        .iter()
        .find(|l| l.message() == "tripswitch: call rejected");
    assert_eq!(rejected.map(|l| l.level), Some(tracing::Level::DEBUG));
}

#[test]
fn a_subscriber_that_calls_back_into_the_breaker_does_not_recurse() {
    // The default on_error's line reaches a subscriber that records another
    // failure on the same breaker: that failure's own line must not be
    // logged from inside the first (same re-entrancy guard as a closure).
    struct Reenter {
        breaker: CircuitBreaker,
        depth: Arc<Mutex<u32>>,
    }
    impl<S: tracing::Subscriber> Layer<S> for Reenter {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if fields.0.get("message").map(String::as_str)
                == Some("tripswitch: guarded call failed")
            {
                let mut depth = self.depth.lock().unwrap();
                *depth += 1;
                assert!(*depth < 50, "unbounded recursion through the subscriber");
                drop(depth);
                if let Ok(permit) = self.breaker.try_acquire() {
                    permit.failure(&"again");
                }
            }
        }
    }
    let breaker = CircuitBreaker::standard()
        .name("reenter")
        .consecutive_failures(1000)
        .build();
    let depth = Arc::new(Mutex::new(0));
    let subscriber = tracing_subscriber::registry().with(Reenter {
        breaker: breaker.clone(),
        depth: Arc::clone(&depth),
    });
    tracing::subscriber::with_default(subscriber, || {
        breaker.try_acquire().unwrap().failure(&"first");
    });
    assert_eq!(*depth.lock().unwrap(), 1);
    assert_eq!(breaker.metrics().totals.failures, 2);
}

#[test]
fn rejections_display_and_debug_the_name() {
    let clock = FakeClock::new();
    let named = CircuitBreaker::standard()
        .name("payments")
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(30))
        .build();
    let unnamed = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(30))
        .build();
    named.try_acquire().unwrap().failure(&"boom");
    unnamed.try_acquire().unwrap().failure(&"boom");
    clock.advance(Duration::from_millis(1500));
    let a = named.try_acquire().unwrap_err();
    let b = unnamed.try_acquire().unwrap_err();
    assert_eq!(
        a.to_string(),
        "circuit breaker \"payments\" rejected the call: it is open; calls are let through again in 28.5s"
    );
    assert_eq!(
        b.to_string(),
        "circuit breaker rejected the call: it is open; calls are let through again in 28.5s"
    );
    assert_eq!(
        format!("{a:?}"),
        "Rejected { name: Some(\"payments\"), state: Open, reason: Open, retry_after: Some(28.5s) }"
    );
    assert_eq!(
        format!("{b:?}"),
        "Rejected { name: None, state: Open, reason: Open, retry_after: Some(28.5s) }"
    );
    assert_eq!(a.name(), Some("payments"));
    assert_eq!(b.name(), None);
    assert_ne!(a, b, "names differ");
    named.force_open();
    let forced = named.try_acquire().unwrap_err();
    assert_eq!(
        forced.to_string(),
        "circuit breaker \"payments\" rejected the call: it was forced open; it stays open until it is released"
    );
}

#[tokio::test(start_paused = true)]
async fn rejections_of_default_clock_breakers_display_the_name() {
    let named = CircuitBreaker::standard()
        .name("db")
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .build();
    let unnamed = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .build();
    named.try_acquire().unwrap().failure(&"boom");
    unnamed.try_acquire().unwrap().failure(&"boom");
    assert_eq!(
        named.try_acquire().unwrap_err().to_string(),
        "circuit breaker \"db\" rejected the call: it is open; calls are let through again in 5s"
    );
    assert_eq!(
        unnamed.try_acquire().unwrap_err().to_string(),
        "circuit breaker rejected the call: it is open; calls are let through again in 5s"
    );
    let err = named
        .execute(|| async { Ok::<_, std::io::Error>(()) })
        .await
        .unwrap_err();
    assert_eq!(err.rejected().unwrap().name(), Some("db"));
}

#[test]
fn two_breakers_with_one_name_give_equal_rejections() {
    let clock = FakeClock::new();
    let make = |name: &str| {
        CircuitBreaker::standard()
            .name(name)
            .clock(clock.clone())
            .consecutive_failures(1)
            .open_for(Duration::from_secs(30))
            .build()
    };
    let (a, b, c) = (make("same"), make("same"), make("other"));
    for breaker in [&a, &b, &c] {
        breaker.try_acquire().unwrap().failure(&"boom");
    }
    let (ra, rb, rc) = (
        a.try_acquire().unwrap_err(),
        b.try_acquire().unwrap_err(),
        c.try_acquire().unwrap_err(),
    );
    assert_eq!(ra, rb);
    assert_ne!(ra, rc);
}

#[test]
fn the_breaker_debug_and_events_carry_the_name() {
    let names = Arc::new(Mutex::new(Vec::new()));
    let n = Arc::clone(&names);
    let clock = FakeClock::new();
    let breaker = CircuitBreaker::standard()
        .name("events")
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(1))
        .on_event(move |event| n.lock().unwrap().push(event.breaker().map(str::to_owned)))
        .build();
    assert_eq!(
        format!("{breaker:?}"),
        "CircuitBreaker { name: Some(\"events\"), state: Closed, waiting: 0, .. }"
    );
    breaker.try_acquire().unwrap().success();
    breaker.try_acquire().unwrap().failure(&"boom");
    let _ = breaker.try_acquire().unwrap_err();
    clock.advance(Duration::from_secs(1));
    breaker.try_acquire().unwrap().success();
    let names = names.lock().unwrap();
    assert!(names.len() >= 6, "{names:?}");
    assert!(
        names.iter().all(|n| n.as_deref() == Some("events")),
        "{names:?}"
    );
    let unnamed = CircuitBreaker::new();
    assert_eq!(
        format!("{unnamed:?}"),
        "CircuitBreaker { name: None, state: Closed, waiting: 0, .. }"
    );
}

#[test]
fn registry_breakers_are_named_by_their_key_everywhere() {
    let registry: Registry<String> = Registry::new(16, |_key: &String| {
        CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(30))
            .build()
    });
    let breaker = registry.get(&"api.example.com:443".to_owned());
    assert_eq!(breaker.name(), Some("api.example.com:443"));
    let lines = captured(|| breaker.try_acquire().unwrap().failure(&"boom"));
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert_eq!(failed[0].field("breaker"), Some("api.example.com:443"));
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(rejected.name(), Some("api.example.com:443"));
    assert!(
        rejected
            .to_string()
            .starts_with("circuit breaker \"api.example.com:443\"")
    );
    let snapshot = registry.snapshot();
    assert_eq!(snapshot.len(), 1);
}

#[test]
fn a_name_outlives_every_handle_in_its_rejections() {
    let breaker = CircuitBreaker::standard()
        .name(String::from("short-lived"))
        .consecutive_failures(1)
        .build();
    breaker.try_acquire().unwrap().failure(&"boom");
    let rejected = breaker.try_acquire().unwrap_err();
    drop(breaker);
    assert_eq!(rejected.name(), Some("short-lived"));
    assert!(rejected.to_string().contains("\"short-lived\""));
    assert_eq!(rejected.state(), State::Open);
    let _ = matches!(
        EventKind::Rejected {
            reason: rejected.reason()
        },
        EventKind::Rejected { .. }
    );
}
