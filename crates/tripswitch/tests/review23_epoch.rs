//! Review 23: a window's per-thread cells are tagged with an epoch of 24
//! bits above 40 bits of slice. Whether a reset still forgets after the
//! epoch has gone round (2^24 window resets; a breaker reset is two).

mod common;

use std::time::Duration;

use tripswitch::CircuitBreaker;
use tripswitch::policy::{FailureRate, Window};

#[test]
fn a_reset_forgets_after_the_epoch_goes_round() {
    let rt = common::paused_runtime();
    rt.block_on(async {
        let breaker = CircuitBreaker::standard()
            .failure_rate(FailureRate::new(
                0.5,
                Window::last_in_buckets(Duration::from_secs(3600), 1),
            ))
            .try_build()
            .unwrap();
        for _ in 0..5 {
            breaker.try_acquire().unwrap().success();
        }
        assert_eq!(breaker.metrics().calls_in_window, Some(5));
        let started = std::time::Instant::now();
        for i in 1..=(1u64 << 24) {
            breaker.reset();
            if i % (1 << 23) == 0 {
                eprintln!("{i} resets, {:?}", started.elapsed());
                assert_eq!(
                    breaker.metrics().calls_in_window,
                    Some(0),
                    "successes from before {i} resets are back"
                );
            }
        }
        breaker.try_acquire().unwrap().success();
        assert_eq!(breaker.metrics().calls_in_window, Some(1));
    });
}
