//! Point 9 of the core issue: borrowed operations, tokio's two runtimes, and
//! executors that are not tokio at all.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures::channel::oneshot;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use tripswitch::CircuitBreaker;
use tripswitch::clock::FakeClock;

#[tokio::test(start_paused = true)]
async fn the_operation_may_borrow_local_non_send_data() {
    let breaker = CircuitBreaker::new();
    let local = String::from("borrowed");
    let not_send = std::rc::Rc::new(Cell::new(0));
    let total = breaker
        .execute(|| async {
            not_send.set(not_send.get() + 1);
            Ok::<_, String>(local.len())
        })
        .await;
    assert_eq!(total, Ok(8));
    assert_eq!(not_send.get(), 1);
}

#[test]
fn works_on_a_current_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let breaker = CircuitBreaker::builder()
            .freeze_for(Duration::from_secs(1))
            .build();
        let runs = AtomicU32::new(0);
        let result = breaker
            .execute(|| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                async move { if run == 0 { Err("x") } else { Ok(run) } }
            })
            .await;
        assert_eq!(result, Ok(1));
    });
}

#[test]
fn works_on_a_multi_thread_runtime_with_concurrent_callers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let breaker = Arc::new(
            CircuitBreaker::builder()
                .freeze_for(Duration::from_millis(20))
                .build(),
        );
        let failed_once = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let breaker = Arc::clone(&breaker);
            let failed_once = Arc::clone(&failed_once);
            tasks.push(tokio::spawn(async move {
                breaker
                    .execute(|| {
                        let fail = !failed_once.swap(true, Ordering::SeqCst);
                        async move { if fail { Err("flaky") } else { Ok(i) } }
                    })
                    .await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            // The single failure is retried after the freeze; everybody succeeds.
            assert_eq!(task.await.unwrap(), Ok(i as u32));
        }
        assert!(!breaker.is_frozen());
    });
}

#[test]
fn runs_on_futures_executor_with_a_freeze_function_and_no_tokio() {
    // The freeze ends when the test says so, through a channel: no timer.
    let (release, released) = oneshot::channel::<()>();
    let released = std::sync::Mutex::new(Some(released));
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .clock(FakeClock::new())
            .freeze_with(move || {
                let rx = released.lock().unwrap().take();
                async move {
                    if let Some(rx) = rx {
                        let _ = rx.await;
                    }
                }
            })
            .build(),
    );
    let mut pool = LocalPool::new();
    let done = Arc::new(AtomicU32::new(0));
    for i in 0..3u32 {
        let breaker = Arc::clone(&breaker);
        let done = Arc::clone(&done);
        pool.spawner()
            .spawn_local(async move {
                let r = breaker
                    .execute(|| async move { if i == 0 { Err("x") } else { Ok(i) } })
                    .await;
                if i > 0 {
                    assert_eq!(r, Ok(i));
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    pool.run_until_stalled();
    assert!(breaker.is_frozen());
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "everybody waits for the freeze"
    );
    release.send(()).unwrap();
    pool.run_until_stalled();
    assert_eq!(done.load(Ordering::SeqCst), 3);
    assert!(!breaker.is_frozen());
}

#[test]
fn a_fake_clock_drives_timed_freezes_on_any_executor() {
    let clock = FakeClock::new();
    let breaker = Arc::new(
        CircuitBreaker::builder()
            .clock(clock.clone())
            .freeze_for(Duration::from_secs(5))
            .build(),
    );
    let mut pool = LocalPool::new();
    let finished = Arc::new(AtomicU32::new(0));
    {
        let breaker = Arc::clone(&breaker);
        let finished = Arc::clone(&finished);
        pool.spawner()
            .spawn_local(async move {
                let _ = breaker.execute(|| async { Err::<(), _>("x") }).await;
                finished.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    pool.run_until_stalled();
    assert!(breaker.is_frozen());
    clock.advance(Duration::from_secs(4));
    pool.run_until_stalled();
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    clock.advance(Duration::from_secs(1));
    pool.run_until_stalled();
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    assert!(!breaker.is_frozen());
}
