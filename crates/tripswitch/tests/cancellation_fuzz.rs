//! Cancellation fuzzing: thousands of seeded runs in which tasks making calls
//! are dropped at random poll points (while waiting, while probing, while a
//! freeze runs, during the retry), and permits are dropped at random. After
//! each run the service heals: the breaker must close again, with no probe
//! slot and no queue entry left behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tripswitch::{CircuitBreaker, HalfOpen, State};

/// A small deterministic generator (SplitMix64), so runs replay by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The breaker configurations the runs cycle through.
fn breaker(kind: u64) -> CircuitBreaker {
    let ms = Duration::from_millis;
    match kind % 5 {
        // The seed preset: wait, retry, release everybody.
        0 => CircuitBreaker::builder().freeze_for(ms(20)).build(),
        // The seed with an async freeze function that waiters must drive.
        1 => CircuitBreaker::builder()
            .freeze_with(|| tokio::time::sleep(Duration::from_millis(15)))
            .build(),
        // Probes in wait mode, with a bound on the half-open state.
        2 => CircuitBreaker::builder()
            .consecutive_failures(2)
            .half_open(HalfOpen::probes(2).close_after(2).max_duration(ms(50)))
            .freeze_for(ms(10))
            .try_build()
            .unwrap(),
        // Fail-fast with probes.
        3 => CircuitBreaker::builder()
            .half_open(HalfOpen::probes(1))
            .freeze_for(ms(10))
            .fail_fast()
            .try_build()
            .unwrap(),
        // Wait mode with limits.
        _ => CircuitBreaker::builder()
            .half_open(HalfOpen::probes(1))
            .freeze_for(ms(10))
            .max_wait(ms(30))
            .max_waiters(4)
            .retry_after_freeze(true)
            .try_build()
            .unwrap(),
    }
}

async fn one_run(seed: u64) {
    let mut rng = Rng(seed);
    let breaker = Arc::new(breaker(rng.next()));
    let healthy_from = Arc::new(AtomicU64::new(rng.below(200)));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..(4 + rng.below(12)) {
        let breaker = Arc::clone(&breaker);
        let healthy_from = Arc::clone(&healthy_from);
        let delay = rng.below(30);
        let work = rng.below(20);
        let use_permit = rng.below(4) == 0;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let healthy =
                || start.elapsed() >= Duration::from_millis(healthy_from.load(Ordering::Relaxed));
            if use_permit {
                if let Ok(permit) = breaker.acquire().await {
                    tokio::time::sleep(Duration::from_millis(work)).await;
                    if healthy() {
                        permit.success()
                    } else {
                        permit.failure(&"down")
                    }
                }
            } else {
                let _ = breaker
                    .execute(|| async {
                        tokio::time::sleep(Duration::from_millis(work)).await;
                        if healthy() { Ok(()) } else { Err("down") }
                    })
                    .await;
            }
        }));
    }
    // Drop some tasks at random moments: wherever their futures are.
    for _ in 0..rng.below(tasks.len() as u64 + 1) {
        tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
        let victim = rng.below(tasks.len() as u64) as usize;
        tasks[victim].abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    // The service heals; within a bounded time the breaker closes again.
    healthy_from.store(0, Ordering::Relaxed);
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let _ = breaker.execute(|| async { Ok::<_, &str>(()) }).await;
            if breaker.state() == State::Closed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        recovered.is_ok(),
        "seed {seed}: the breaker did not recover"
    );
    let metrics = breaker.metrics();
    assert_eq!(
        metrics.probes_in_flight, 0,
        "seed {seed}: a probe slot leaked"
    );
    assert_eq!(metrics.waiting, 0, "seed {seed}: a queue entry leaked");
}

#[test]
fn random_cancellation_never_wedges_the_breaker() {
    let runs: u64 = std::env::var("TRIPSWITCH_CANCEL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    for seed in 0..runs {
        runtime.block_on(one_run(seed));
    }
}
