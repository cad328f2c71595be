//! A flaky service behind the seed's breaker: it fails, the breaker freezes,
//! callers wait out the freeze, and everybody gets through once it ends.
//!
//! Run with `cargo run --example freeze_timeline`. It takes about three seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tripswitch::CircuitBreaker;
use tripswitch::events::EventKind;

/// A service that answers, then goes down for a moment, then answers again.
struct FlakyService {
    calls: AtomicU32,
    started: Instant,
}

impl FlakyService {
    async fn fetch(&self, caller: u32) -> Result<String, String> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Down between 0.3s and 1.2s after start.
        let t = self.started.elapsed();
        if t > Duration::from_millis(300) && t < Duration::from_millis(1200) {
            Err(format!("503 Service Unavailable (request #{n})"))
        } else {
            Ok(format!("data for caller {caller} (request #{n})"))
        }
    }
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let stamp = move || format!("[{:>5.2}s]", started.elapsed().as_secs_f64());

    let breaker = Arc::new(
        CircuitBreaker::builder()
            .name("flaky-service")
            .freeze_for(Duration::from_secs(1))
            .on_error(move |e| println!("{} on_error: {e:?}", stamp()))
            .on_event(move |event| {
                if let EventKind::Transition { from, to, reason } = event.kind() {
                    println!(
                        "{} breaker {from} -> {to} ({reason})",
                        format_args!("[{:>5.2}s]", started.elapsed().as_secs_f64())
                    );
                }
            })
            .build(),
    );
    let service = Arc::new(FlakyService {
        calls: AtomicU32::new(0),
        started,
    });

    println!("tripswitch demo: 4 callers, one request every 200ms each, for 2.4s");
    println!("the service is down from 0.3s to 1.2s; the breaker freezes 1s per failure\n");
    let mut callers = Vec::new();
    for caller in 0..4u32 {
        let breaker = Arc::clone(&breaker);
        let service = Arc::clone(&service);
        callers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50 * u64::from(caller))).await;
            let mut waited_total = Duration::ZERO;
            while started.elapsed() < Duration::from_millis(2400) {
                let asked = Instant::now();
                let frozen = breaker.is_frozen();
                let result = breaker.execute(|| service.fetch(caller)).await;
                let took = asked.elapsed();
                let t = format!("[{:>5.2}s]", started.elapsed().as_secs_f64());
                match result {
                    Ok(data) if frozen || took > Duration::from_millis(200) => {
                        waited_total += took;
                        println!(
                            "{t} caller {caller}: waited {:.2}s, then got {data}",
                            took.as_secs_f64()
                        );
                    }
                    Ok(data) => println!("{t} caller {caller}: got {data}"),
                    Err(e) => println!(
                        "{t} caller {caller}: failed after {:.2}s: {e}",
                        took.as_secs_f64()
                    ),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            waited_total
        }));
    }
    let mut waited = Duration::ZERO;
    for caller in callers {
        waited += caller.await.expect("caller task");
    }
    let totals = breaker.metrics().totals;
    println!(
        "\nsummary: {} service requests ({} ok, {} failed); callers spent {:.2}s waiting for freezes instead of hitting a down service",
        service.calls.load(Ordering::SeqCst),
        totals.successes,
        totals.failures,
        waited.as_secs_f64()
    );
}
