//! The core on other executors: smol, and `futures::executor`, with a freeze
//! function (or a clock) from that runtime. tokio is not involved.
#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tripswitch::clock::{Clock, Sleep, StdClock};
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen, State};

/// A clock on smol's timer (async-io).
#[derive(Debug, Clone, Copy, Default)]
struct SmolClock(StdClock);

impl Clock for SmolClock {
    fn now(&self) -> Duration {
        self.0.now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(async move {
            smol::Timer::after(duration).await;
        })
    }
}

#[test]
fn the_seed_breaker_on_smol_with_a_smol_freeze_function() {
    smol::block_on(async {
        let opened = Arc::new(AtomicBool::new(false));
        let breaker = Arc::new(
            CircuitBreaker::builder()
                .freeze_with(|| async {
                    smol::Timer::after(Duration::from_millis(50)).await;
                })
                .on_event({
                    let opened = Arc::clone(&opened);
                    move |event| {
                        if let EventKind::Transition {
                            to: State::Open, ..
                        } = event.kind()
                        {
                            opened.store(true, Ordering::SeqCst);
                        }
                    }
                })
                .build(),
        );
        let runs = AtomicU32::new(0);
        let started = Instant::now();
        let tripped = smol::spawn({
            let breaker = Arc::clone(&breaker);
            async move { breaker.execute(|| async { Err::<(), _>("down") }).await }
        });
        // Wait for the breaker to have opened (not for a guessed 5 ms: on a
        // loaded machine the spawned task may not have run yet; nor for the
        // failure's count, which comes before the transition). If the
        // freeze is already over by the time this looks, what follows holds.
        while !opened.load(Ordering::SeqCst) {
            smol::future::yield_now().await;
        }
        let value = breaker
            .execute(|| {
                runs.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, &str>(42) }
            })
            .await;
        assert_eq!(value, Ok(42));
        assert!(
            started.elapsed() >= Duration::from_millis(45),
            "it waited for the freeze"
        );
        assert!(tripped.await.is_err());
        assert!(!breaker.is_frozen());
    });
}

#[test]
fn the_full_breaker_on_smol_with_a_smol_clock() {
    smol::block_on(async {
        let breaker = CircuitBreaker::builder()
            .clock(SmolClock::default())
            .consecutive_failures(2)
            .freeze_for(Duration::from_millis(30))
            .half_open(HalfOpen::probes(1))
            .try_build()
            .unwrap();
        for _ in 0..2 {
            let _ = breaker.execute(|| async { Err::<(), _>("down") }).await;
        }
        assert_eq!(breaker.state(), State::Open);
        // Waits on smol's timer, then probes and closes.
        let started = Instant::now();
        assert_eq!(breaker.execute(|| async { Ok::<_, &str>(1) }).await, Ok(1));
        assert!(started.elapsed() >= Duration::from_millis(25));
        assert_eq!(breaker.state(), State::Closed);
    });
}

#[test]
fn futures_executor_with_the_std_clock_and_its_timer_thread() {
    let breaker = CircuitBreaker::builder()
        .clock(StdClock::new())
        .freeze_for(Duration::from_millis(30))
        .build();
    let started = Instant::now();
    let runs = AtomicU32::new(0);
    let result = futures::executor::block_on(breaker.execute(|| {
        let run = runs.fetch_add(1, Ordering::SeqCst);
        async move { if run == 0 { Err("once") } else { Ok(run) } }
    }));
    assert_eq!(result, Ok(1));
    assert!(started.elapsed() >= Duration::from_millis(25));
}
