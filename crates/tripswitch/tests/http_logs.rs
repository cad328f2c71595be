//! Logs (issue 18 point 7): one failure is a DEBUG event that names what
//! failed (for HTTP, the status), not a WARN without it; opening is logged
//! at WARN, other state changes at INFO.
#![cfg(all(feature = "http", not(loom)))]

use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tower::{Layer, ServiceExt, service_fn};
use tripswitch::CircuitBreaker;
use tripswitch::tower::{CircuitBreakerLayer, UpstreamErrors};

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failure_is_a_debug_event_naming_the_status_and_the_trip_is_info() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let breaker = CircuitBreaker::builder()
        .name("inventory")
        .consecutive_failures(2)
        .fail_fast()
        .try_build()
        .unwrap();
    let service = CircuitBreakerLayer::new(breaker)
        .classify(UpstreamErrors)
        .layer(service_fn(|()| async {
            Ok::<_, Infallible>(http::Response::builder().status(503).body(()).unwrap())
        }));
    for _ in 0..2 {
        service.clone().oneshot(()).await.unwrap();
    }

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let failures: Vec<&str> = text.lines().filter(|l| l.contains("call failed")).collect();
    assert_eq!(failures.len(), 2, "{text}");
    for line in &failures {
        assert!(line.contains("DEBUG"), "{line}");
        assert!(line.contains("503"), "the status is named: {line}");
    }
    // The only WARN is the breaker opening.
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "one WARN, for the opening:\n{text}");
    assert!(
        warnings[0].contains("state changed") && warnings[0].contains("to=open"),
        "{text}"
    );
}
