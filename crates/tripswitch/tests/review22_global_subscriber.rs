//! Review 22: a global DEBUG subscriber set after the breaker was built
//! (and after failures with none) gets the default line for every failure
//! from then on, on every thread. One test: the global default is set once.

use std::io;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tracing::level_filters::LevelFilter;
use tripswitch::CircuitBreaker;
use tripswitch::clock::FakeClock;

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

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Boom(&'static str);

fn fail(breaker: &CircuitBreaker, tag: &'static str) {
    let result = breaker
        .execute(move || async move { Err::<(), _>(Boom(tag)) })
        .now_or_never()
        .unwrap();
    assert!(result.is_err());
}

#[test]
fn a_global_debug_subscriber_set_late_sees_every_later_failure() {
    let breaker = Arc::new(
        CircuitBreaker::standard()
            .consecutive_failures(1_000_000)
            .clock(FakeClock::new())
            .build(),
    );
    for _ in 0..3 {
        fail(&breaker, "before-global");
    }
    let capture = Capture::default();
    let writer = capture.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(LevelFilter::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();
    for _ in 0..4 {
        fail(&breaker, "after-global");
    }
    let other = Arc::clone(&breaker);
    std::thread::spawn(move || {
        for _ in 0..2 {
            fail(&other, "other-thread");
        }
    })
    .join()
    .unwrap();
    let text = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    let count = |tag: &str| {
        text.lines()
            .filter(|l| l.contains("guarded call failed") && l.contains(tag))
            .count()
    };
    assert_eq!(count("before-global"), 0);
    assert_eq!(count("after-global"), 4, "{text}");
    assert_eq!(count("other-thread"), 2, "{text}");
}
