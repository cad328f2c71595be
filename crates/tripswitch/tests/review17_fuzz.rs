//! Review 17: random cancellations across the half-open window; the breaker
//! must end consistent (no probe in flight, nobody waiting) and not stuck.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tripswitch::{CircuitBreaker, HalfOpen, State};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn shapes() -> Vec<(&'static str, HalfOpen, bool)> {
    vec![
        ("rate 3 wait", HalfOpen::judged_by_rate(3, 0.5), false),
        ("rate 3 fast", HalfOpen::judged_by_rate(3, 0.5), true),
        ("budget 2 wait", HalfOpen::probes(2).budget(2), false),
        ("budget 2 fast", HalfOpen::probes(2).budget(2), true),
        (
            "probes 1 close 3 wait",
            HalfOpen::probes(1).close_after(3),
            false,
        ),
        (
            "rate 5 slow",
            HalfOpen::judged_by_rate(5, 0.4).max_duration(Duration::from_secs(3)),
            false,
        ),
    ]
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn random_cancellation_never_sticks() {
    for (name, half_open, fail_fast) in shapes() {
        for seed in 1..=15u64 {
            let mut rng = Lcg(seed * 7919);
            let mut builder = CircuitBreaker::standard()
                .consecutive_failures(2)
                .open_for(Duration::from_secs(1))
                .half_open(half_open);
            builder = if fail_fast {
                builder.fail_fast()
            } else {
                builder.wait_when_open().max_wait(Duration::from_secs(20))
            };
            let b = builder.build();
            let failing_until = Arc::new(AtomicU64::new(rng.below(8_000)));
            let start = tokio::time::Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..60 {
                let b = b.clone();
                let run_ms = rng.below(1_500);
                let fails = rng.below(3) == 0;
                let until = failing_until.clone();
                let acquire_style = rng.below(2) == 0;
                tasks.push((
                    rng.below(3) == 0,
                    rng.below(4_000),
                    tokio::spawn(async move {
                        let failing_phase = || {
                            start.elapsed() < Duration::from_millis(until.load(Ordering::SeqCst))
                        };
                        if acquire_style {
                            if let Ok(permit) = b.acquire().await {
                                tokio::time::sleep(Duration::from_millis(run_ms)).await;
                                if fails || failing_phase() {
                                    permit.failure(&"down");
                                } else {
                                    permit.success();
                                }
                            }
                        } else {
                            let _ = b
                                .execute(|| async {
                                    tokio::time::sleep(Duration::from_millis(run_ms)).await;
                                    if fails || failing_phase() {
                                        Err("down")
                                    } else {
                                        Ok(())
                                    }
                                })
                                .await;
                        }
                    }),
                ));
                tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
            }
            // Abort a third of them at random moments.
            for (abort, at, task) in &tasks {
                if *abort {
                    let handle = task.abort_handle();
                    let at = *at;
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(at)).await;
                        handle.abort();
                    });
                }
            }
            for (_, _, task) in tasks {
                let _ = task.await;
            }
            // Let every period and bound run out.
            tokio::time::sleep(Duration::from_secs(120)).await;
            let m = b.metrics();
            assert_eq!(m.probes_in_flight, 0, "{name} seed {seed}: {m:?}");
            assert_eq!(m.waiting, 0, "{name} seed {seed}");
            // Healthy service now: the breaker must come back within a few
            // periods for a caller that keeps trying.
            let mut closed = false;
            for _ in 0..200 {
                let _ = b.execute(|| async { Ok::<_, &str>(()) }).await;
                if b.state() == State::Closed {
                    closed = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                closed,
                "{name} seed {seed}: stuck in {:?} {:?}",
                b.state(),
                b.metrics()
            );
        }
    }
}
