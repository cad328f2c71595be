//! The public surface the core issue fixes: types, traits and error values.

use std::error::Error as _;
use std::fmt;
use std::sync::LazyLock;

use tripswitch::{CircuitBreaker, Error, Rejected};

fn assert_send_sync<T: Send + Sync>() {}

static SHARED: LazyLock<CircuitBreaker> = LazyLock::new(CircuitBreaker::new);

#[test]
fn the_breaker_is_send_sync_default_and_static_friendly() {
    assert_send_sync::<CircuitBreaker>();
    assert_send_sync::<Rejected>();
    let _default = CircuitBreaker::default();
    assert!(!SHARED.is_frozen());
}

#[tokio::test]
async fn execute_futures_are_send_when_the_operation_is() {
    fn assert_send<T: Send>(_: &T) {}
    let breaker = CircuitBreaker::new();
    let future = breaker.execute(|| async { Ok::<_, std::io::Error>(1) });
    assert_send(&future);
    assert_eq!(future.await.unwrap(), 1);
}

#[test]
fn on_error_accepts_a_debug_printing_closure() {
    let _ = CircuitBreaker::builder()
        .on_error(|e| eprintln!("{e:?}"))
        .build();
}

#[derive(Debug)]
struct Inner {
    cause: std::io::Error,
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("inner failed")
    }
}

impl std::error::Error for Inner {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

#[test]
fn inner_errors_are_reported_once() {
    let error: Error<Inner> = Error::Inner(Inner {
        cause: std::io::Error::other("disk on fire"),
    });
    assert_eq!(error.to_string(), "inner failed");
    // The source chain skips the inner error itself (Display already shows it).
    assert_eq!(error.source().unwrap().to_string(), "disk on fire");
    let mut chain = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(&error);
    while let Some(e) = next {
        chain.push(e.to_string());
        next = e.source();
    }
    assert_eq!(chain, ["inner failed", "disk on fire"]);
    assert!(format!("{error:?}").starts_with("Inner("));
}

#[test]
fn error_accessors() {
    let error: Error<&str> = Error::Inner("x");
    assert_eq!(error.inner(), Some(&"x"));
    assert!(!error.is_rejected());
    assert_eq!(error.map_inner(str::len).into_inner(), Some(1));
}
