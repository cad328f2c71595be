//! Review 17: RateExceeded and the trip under many threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use tripswitch::events::EventKind;
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{CircuitBreaker, State};

fn run(metrics_only: bool) {
    for round in 0..200 {
        let rates = Arc::new(AtomicUsize::new(0));
        let trips = Arc::new(AtomicUsize::new(0));
        let (r, t) = (rates.clone(), trips.clone());
        let b = CircuitBreaker::standard()
            .failure_rate(FailureRate::new(0.5, Window::last_calls(50)).min_calls(20))
            .on_event(move |e| match e.kind() {
                EventKind::RateExceeded { .. } => {
                    r.fetch_add(1, Ordering::SeqCst);
                }
                EventKind::Transition {
                    to: State::Open, ..
                } => {
                    t.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            })
            .build();
        if metrics_only {
            b.force_metrics_only();
        }
        let barrier = Arc::new(Barrier::new(6));
        std::thread::scope(|s| {
            for _ in 0..6 {
                let b = b.clone();
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..40 {
                        if let Ok(p) = b.try_acquire() {
                            if i % 3 == 0 {
                                p.success()
                            } else {
                                p.failure(&"f")
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(
            rates.load(Ordering::SeqCst),
            1,
            "round {round}: RateExceeded once"
        );
        assert_eq!(
            trips.load(Ordering::SeqCst),
            if metrics_only { 0 } else { 1 },
            "round {round}"
        );
    }
}

#[test]
fn rate_exceeded_once_under_threads_closed() {
    run(false);
}

#[test]
fn rate_exceeded_once_under_threads_metrics_only() {
    run(true);
}
