//! Review 17: wait mode with budgets and rate judges; cancellation at every
//! point of the half-open window; panics in probes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen, State};

fn waiting(half_open: HalfOpen) -> CircuitBreaker {
    CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .wait_when_open()
        .half_open(half_open)
        .try_build()
        .unwrap()
}

/// Wait mode + rate judge: 10 waiting calls; the first 4 are the window
/// (F,S,S,S -> closed), then the other 6 run.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn wait_mode_rate_judge_closes_and_releases() {
    let b = waiting(HalfOpen::judged_by_rate(4, 0.5));
    let _ = b.execute(|| async { Err::<(), _>("trip") }).await;
    assert_eq!(b.state(), State::Open);
    let ran = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let b = b.clone();
        let ran = ran.clone();
        tasks.push(tokio::spawn(async move {
            b.execute(|| {
                let ran = ran.clone();
                async move {
                    let n = ran.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100 * (i + 1))).await;
                    if n == 0 { Err("first fails") } else { Ok(()) }
                }
            })
            .await
        }));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(5_050)).await;
    assert_eq!(ran.load(Ordering::SeqCst), 4, "four calls in the window");
    let mut errors = 0;
    for t in tasks {
        if t.await.unwrap().is_err() {
            errors += 1;
        }
    }
    assert_eq!(errors, 1);
    assert_eq!(ran.load(Ordering::SeqCst), 10);
    assert_eq!(b.state(), State::Closed);
}

/// Wait mode + rate judge that reopens: the waiters beyond the window wait
/// through the next open period and form the next window.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn wait_mode_rate_judge_reopens_then_closes() {
    let b = waiting(HalfOpen::judged_by_rate(2, 0.5));
    let _ = b.execute(|| async { Err::<(), _>("trip") }).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let b = b.clone();
        let ran = ran.clone();
        tasks.push(tokio::spawn(async move {
            b.execute(|| {
                let ran = ran.clone();
                async move {
                    let n = ran.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if n < 2 { Err("still down") } else { Ok(()) }
                }
            })
            .await
        }));
        tokio::task::yield_now().await;
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().is_ok());
    }
    assert_eq!(results.iter().filter(|ok| !**ok).count(), 2);
    assert_eq!(ran.load(Ordering::SeqCst), 5);
    assert_eq!(b.state(), State::Closed);
}

/// A probe's future aborted mid-run (task cancelled) gives its place back:
/// a waiting call takes it and the window still decides.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn aborted_probe_hands_place_to_waiter() {
    let b = waiting(HalfOpen::judged_by_rate(2, 0.5));
    let _ = b.execute(|| async { Err::<(), _>("trip") }).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let b = b.clone();
        let ran = ran.clone();
        tasks.push(tokio::spawn(async move {
            b.execute(|| {
                let ran = ran.clone();
                async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok::<_, &str>(())
                }
            })
            .await
        }));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    tasks.remove(0).abort();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        ran.load(Ordering::SeqCst),
        3,
        "the waiter took the aborted probe's place"
    );
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(b.state(), State::Closed);
}

fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    Pin::new(f).poll(&mut cx)
}

/// A waiting acquire() handed the probe slot and dropped before it is
/// polled again: the slot (and the budget) pass to the next waiter.
#[test]
fn grant_dropped_unpolled_passes_to_next() {
    let clock = FakeClock::new();
    let b = CircuitBreaker::standard()
        .clock(clock.clone())
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .wait_when_open()
        .half_open(HalfOpen::probes(1).budget(1))
        .build();
    b.try_acquire().unwrap().failure(&"trip");
    let mut first = Box::pin(b.acquire());
    let mut second = Box::pin(b.acquire());
    assert!(poll_once(&mut first).is_pending());
    assert!(poll_once(&mut second).is_pending());
    clock.advance(Duration::from_secs(5));
    // The second one polls first: it moves the breaker half-open, and the
    // slot goes to the oldest waiter (the first), which is never polled.
    let polled = poll_once(&mut second);
    assert!(polled.is_pending(), "the oldest waiter gets the probe");
    drop(first);
    match poll_once(&mut second) {
        Poll::Ready(Ok(permit)) => {
            assert!(permit.is_probe());
            permit.success();
        }
        other => panic!(
            "the second waiter should now hold the probe: {:?}",
            other.is_ready()
        ),
    }
    assert_eq!(b.state(), State::Closed);
}

/// Wait mode, budget spent by probes that hang: the half-open bound
/// reopens, and the waiters get the next window's probes.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn wait_mode_hung_budget_recovers() {
    let b = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .wait_when_open()
        .half_open(
            HalfOpen::probes(1)
                .budget(1)
                .max_duration(Duration::from_secs(10)),
        )
        .build();
    let _ = b.execute(|| async { Err::<(), _>("trip") }).await;
    let hang = {
        let b = b.clone();
        tokio::spawn(async move {
            b.execute(|| async {
                std::future::pending::<()>().await;
                Ok::<_, &str>(())
            })
            .await
        })
    };
    tokio::task::yield_now().await;
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.execute(|| async { Ok::<_, &str>(7) }).await })
    };
    // 5 s open, 10 s half-open (hung), 5 s open, then the waiter's probe.
    let got = tokio::time::timeout(Duration::from_secs(21), waiter)
        .await
        .expect("the waiter is let through by the next half-open state")
        .unwrap();
    assert_eq!(got.unwrap(), 7);
    assert_eq!(b.state(), State::Closed);
    hang.abort();
}

/// A panicking probe is a failure in the rate window: P,S,S,S at 0.5 closes;
/// P,P,S,S reopens. The panic reaches the caller.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn panicking_probes_counted_as_failures() {
    for (panics, expected) in [(1, State::Closed), (2, State::Open)] {
        let b = CircuitBreaker::standard()
            .consecutive_failures(1)
            .open_for(Duration::from_secs(5))
            .half_open(HalfOpen::judged_by_rate(4, 0.5))
            .build();
        let _ = b.execute(|| async { Err::<(), _>("trip") }).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut tasks = Vec::new();
        for i in 0..4 {
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                b.execute(|| async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    if i < panics {
                        panic!("probe panics");
                    }
                    Ok::<_, &str>(())
                })
                .await
            }));
        }
        let mut panicked = 0;
        for t in tasks {
            if t.await.is_err() {
                panicked += 1;
            }
        }
        assert_eq!(panicked, panics);
        assert_eq!(b.state(), expected, "{panics} panics of 4");
    }
}

/// The seed's wait-mode breaker (retry after freeze, seed accounting) with
/// a rate-judged half-open state: nothing gets stuck and the calls complete.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn seed_builder_with_rate_judge() {
    let b = CircuitBreaker::builder()
        .half_open(HalfOpen::judged_by_rate(3, 0.5))
        .freeze_for(Duration::from_secs(5))
        .build();
    let healthy = Arc::new(Mutex::new(false));
    let h = healthy.clone();
    let first = {
        let b = b.clone();
        let h = h.clone();
        tokio::spawn(async move {
            b.execute(|| {
                let h = h.clone();
                async move {
                    if *h.lock().unwrap() {
                        Ok(1)
                    } else {
                        Err("down")
                    }
                }
            })
            .await
        })
    };
    tokio::task::yield_now().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let b = b.clone();
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            b.execute(|| {
                let h = h.clone();
                async move {
                    if *h.lock().unwrap() {
                        Ok(2)
                    } else {
                        Err("down")
                    }
                }
            })
            .await
        }));
    }
    *healthy.lock().unwrap() = true;
    let r = tokio::time::timeout(Duration::from_secs(60), first)
        .await
        .expect("not stuck");
    assert_eq!(r.unwrap().unwrap(), 1, "the seed's retry after the freeze");
    for t in tasks {
        let r = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("not stuck");
        assert_eq!(r.unwrap().unwrap(), 2);
    }
    assert_eq!(b.state(), State::Closed);
}

/// An ignored error in the rate window gives its place back (execute with
/// ignore_errors), so the judge waits for a real verdict.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn ignored_error_gives_place_back_via_execute() {
    #[derive(Debug)]
    struct NotFound;
    let decisions = Arc::new(AtomicUsize::new(0));
    let d = decisions.clone();
    let b = CircuitBreaker::standard()
        .consecutive_failures(1)
        .open_for(Duration::from_secs(5))
        .half_open(HalfOpen::judged_by_rate(2, 0.5))
        .ignore_errors(|_: &NotFound| true)
        .on_event(move |e| {
            if let EventKind::Transition {
                from: State::HalfOpen,
                ..
            } = e.kind()
            {
                d.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build();
    let _ = b.execute(|| async { Err::<(), _>(NotFound) }).await;
    assert_eq!(b.state(), State::Closed, "an ignored error does not trip");
    let _ = b.execute(|| async { Err::<(), _>("trip") }).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = b.execute(|| async { Err::<(), _>(NotFound) }).await;
    let _ = b.execute(|| async { Err::<(), _>(NotFound) }).await;
    let _ = b.execute(|| async { Err::<(), _>(NotFound) }).await;
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(decisions.load(Ordering::SeqCst), 0);
    b.execute(|| async { Ok::<_, &str>(()) }).await.unwrap();
    assert_eq!(b.state(), State::HalfOpen, "one verdict of two");
    b.execute(|| async { Ok::<_, &str>(()) }).await.unwrap();
    assert_eq!(b.state(), State::Closed);
}
