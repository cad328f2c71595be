//! Review 22: the default `on_error` (a DEBUG `tracing` line) is skipped,
//! with its guards, when DEBUG is disabled. The line must appear exactly
//! when a DEBUG subscriber is active for the calling thread; a user
//! `on_error` is called on every failure whatever the level; a subscriber
//! that panics or re-enters is contained.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tracing::level_filters::LevelFilter;
use tracing::{Event, Metadata, Subscriber, span};
use tripswitch::clock::FakeClock;
use tripswitch::{CircuitBreaker, Error};

const LINE: &str = "guarded call failed";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn lines_with(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|line| line.contains(LINE) && line.contains(needle))
            .count()
    }
}

fn subscriber(level: LevelFilter, capture: &Capture) -> impl Subscriber + Send + Sync + 'static {
    let capture = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || capture.clone())
        .finish()
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Boom(&'static str);

/// Never trips (so every call runs): a standard breaker with a high count.
fn breaker(clock: &FakeClock) -> CircuitBreaker {
    CircuitBreaker::standard()
        .consecutive_failures(1_000_000)
        .clock(clock.clone())
        .build()
}

fn fail(breaker: &CircuitBreaker, tag: &'static str) {
    let result = breaker
        .execute(move || async move { Err::<(), _>(Boom(tag)) })
        .now_or_never()
        .unwrap();
    assert!(matches!(result, Err(Error::Inner(_))));
}

#[test]
fn the_line_appears_once_per_failure_under_debug_and_never_under_info() {
    let clock = FakeClock::new();
    let breaker = breaker(&clock);
    let debug = Capture::default();
    let info = Capture::default();
    tracing::subscriber::with_default(subscriber(LevelFilter::INFO, &info), || {
        for _ in 0..3 {
            fail(&breaker, "info-scope");
        }
    });
    tracing::subscriber::with_default(subscriber(LevelFilter::DEBUG, &debug), || {
        for _ in 0..4 {
            fail(&breaker, "debug-scope");
        }
        // A permit's failure, and an ignored outcome (no line).
        breaker
            .try_acquire()
            .unwrap()
            .failure(&Boom("debug-permit"));
        breaker
            .try_acquire()
            .unwrap()
            .ignored(&Boom("debug-ignored"));
    });
    tracing::subscriber::with_default(subscriber(LevelFilter::TRACE, &debug), || {
        fail(&breaker, "trace-scope");
    });
    assert_eq!(info.lines_with("info-scope"), 0);
    assert_eq!(debug.lines_with("debug-scope"), 4);
    assert_eq!(debug.lines_with("debug-permit"), 1);
    assert_eq!(debug.lines_with("debug-ignored"), 0);
    assert_eq!(debug.lines_with("trace-scope"), 1);
    assert_eq!(breaker.metrics().totals.failures, 9);
}

#[test]
fn a_subscriber_installed_after_the_breaker_and_after_quiet_failures_sees_its_failures() {
    let clock = FakeClock::new();
    let breaker = breaker(&clock);
    for _ in 0..5 {
        fail(&breaker, "before-any");
    }
    let debug = Capture::default();
    tracing::subscriber::with_default(subscriber(LevelFilter::DEBUG, &debug), || {
        fail(&breaker, "late-debug");
        fail(&breaker, "late-debug");
    });
    fail(&breaker, "after-scope");
    assert_eq!(debug.lines_with("before-any"), 0);
    assert_eq!(debug.lines_with("late-debug"), 2);
    assert_eq!(debug.lines_with("after-scope"), 0);
}

#[test]
fn thread_scoped_subscribers_see_exactly_their_threads_failures() {
    let clock = FakeClock::new();
    let breaker = Arc::new(breaker(&clock));
    let barrier = Arc::new(Barrier::new(3));
    let captures: Vec<_> = (0..3).map(|_| Capture::default()).collect();
    let levels = [LevelFilter::DEBUG, LevelFilter::INFO, LevelFilter::OFF];
    let tags = ["thread-debug", "thread-info", "thread-none"];
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let breaker = Arc::clone(&breaker);
            let barrier = Arc::clone(&barrier);
            let capture = captures[i].clone();
            let (level, tag) = (levels[i], tags[i]);
            std::thread::spawn(move || {
                let run = || {
                    for round in 0..50 {
                        if round == 10 {
                            barrier.wait();
                        }
                        fail(&breaker, tag);
                    }
                };
                if level == LevelFilter::OFF {
                    run();
                } else {
                    tracing::subscriber::with_default(subscriber(level, &capture), run);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(captures[0].lines_with("thread-debug"), 50);
    assert_eq!(captures[1].lines_with("thread-info"), 0);
    for (i, capture) in captures.iter().enumerate() {
        for (j, tag) in tags.iter().enumerate() {
            if i != j {
                assert_eq!(capture.lines_with(tag), 0, "{i} saw {tag}");
            }
        }
    }
    assert_eq!(breaker.metrics().totals.failures, 150);
}

#[test]
fn a_user_on_error_is_called_once_per_failure_at_every_level() {
    let clock = FakeClock::new();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let breaker = {
        let seen = Arc::clone(&seen);
        CircuitBreaker::standard()
            .consecutive_failures(1_000_000)
            .clock(clock.clone())
            .on_error(move |error| seen.lock().unwrap().push(format!("{error:?}")))
            .build()
    };
    fail(&breaker, "no-subscriber");
    let debug = Capture::default();
    tracing::subscriber::with_default(subscriber(LevelFilter::INFO, &Capture::default()), || {
        fail(&breaker, "info");
    });
    tracing::subscriber::with_default(subscriber(LevelFilter::DEBUG, &debug), || {
        fail(&breaker, "debug");
    });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[0].contains("no-subscriber"));
    assert!(seen[1].contains("info"));
    assert!(seen[2].contains("debug"));
    // A user on_error replaces the default line.
    assert_eq!(debug.lines_with("debug"), 0);
}

/// A subscriber that panics on every DEBUG event, or (with `reenter`) calls
/// the breaker again from inside the event.
struct Hostile {
    reenter: Option<Arc<CircuitBreaker>>,
    events: Arc<AtomicUsize>,
}

impl Subscriber for Hostile {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() != tracing::Level::DEBUG {
            return;
        }
        let n = self.events.fetch_add(1, Ordering::SeqCst);
        assert!(n < 10_000, "unbounded re-entry");
        match &self.reenter {
            Some(breaker) => {
                let _ = breaker
                    .execute(|| async { Err::<(), _>(Boom("inner")) })
                    .now_or_never();
                let _ = breaker
                    .try_acquire()
                    .map(|p| p.failure(&Boom("inner-permit")));
            }
            None => panic!("hostile subscriber"),
        }
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

#[test]
fn a_debug_subscriber_that_panics_on_the_line_loses_only_the_line() {
    let clock = FakeClock::new();
    let breaker = breaker(&clock);
    let events = Arc::new(AtomicUsize::new(0));
    let hostile = Hostile {
        reenter: None,
        events: Arc::clone(&events),
    };
    tracing::subscriber::with_default(hostile, || {
        for _ in 0..3 {
            fail(&breaker, "panicking");
        }
        // Also the seed's retry path (failure recorded from finish_run).
        let seed = CircuitBreaker::builder().clock(clock.clone()).build();
        let mut call = std::pin::pin!(seed.execute(|| async { Err::<(), _>(Boom("seed")) }));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(call.as_mut().poll(&mut cx).is_pending());
        clock.advance(Duration::from_secs(5));
        assert!(matches!(
            call.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Err(Error::Inner(_)))
        ));
    });
    assert!(events.load(Ordering::SeqCst) >= 3);
    assert_eq!(breaker.metrics().totals.failures, 3);
}

#[test]
fn a_debug_subscriber_that_reenters_the_breaker_is_bounded() {
    let clock = FakeClock::new();
    let breaker = Arc::new(breaker(&clock));
    let events = Arc::new(AtomicUsize::new(0));
    let hostile = Hostile {
        reenter: Some(Arc::clone(&breaker)),
        events: Arc::clone(&events),
    };
    tracing::subscriber::with_default(hostile, || {
        for _ in 0..3 {
            fail(&breaker, "outer");
        }
    });
    // Each outer failure: its line re-enters once with two failures, whose
    // own lines are not delivered again (the re-entrancy guard).
    assert_eq!(breaker.metrics().totals.failures, 9);
    assert_eq!(events.load(Ordering::SeqCst), 3);
}
