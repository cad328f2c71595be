//! The cases measured by the criterion benches and by the instruction-count
//! driver: each builds one breaker (tripswitch or a peer) on a given policy
//! and runs `n` calls through it inside one `futures::executor::block_on`, so
//! that executor cost stays out of the per-call figure.
//!
//! Policies are matched across crates: consecutive failures (5), a failure
//! rate over the last 100 calls, a failure rate over a 60 second time window,
//! and a breaker held open that rejects every call. `closed-consecutive/floor`
//! is no breaker at all but the least any wrapper can do (see [`floor`]).

pub mod floor;
pub mod http;

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use failsafe::futures::CircuitBreaker as _;
use tower::{Layer, Service, ServiceExt};
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{CircuitBreaker, HalfOpen};

/// How long the "rejected" cases stay open: longer than any run.
const LONG: Duration = Duration::from_secs(3600);

/// The operation every case guards: an async call that succeeds.
#[inline]
pub async fn operation(i: u64) -> Result<u64, ()> {
    Ok(black_box(i))
}

/// An operation where one call in a hundred fails (`i % 100 == 99`):
/// a breaker sees a failure, then 99 successes, and never trips.
#[inline]
pub async fn one_percent_failing(i: u64) -> Result<u64, ()> {
    sync_one_percent_failing(i)
}

/// [`one_percent_failing`] for the peers' synchronous calls.
#[inline]
#[allow(
    clippy::result_unit_err,
    reason = "the operations of every case fail with ()"
)]
pub fn sync_one_percent_failing(i: u64) -> Result<u64, ()> {
    if black_box(i) % 100 == 99 {
        Err(())
    } else {
        Ok(i)
    }
}

/// The synchronous operation of the permit cases.
#[inline]
#[allow(
    clippy::result_unit_err,
    reason = "the operations of every case fail with ()"
)]
pub fn sync_operation(i: u64) -> Result<u64, ()> {
    Ok(black_box(i))
}

/// An operation that fails, used to trip breakers.
pub async fn failing(_: u64) -> Result<u64, ()> {
    Err(())
}

/// A benchmark case: runs `n` calls through one breaker.
pub type Runner = Box<dyn FnMut(u64) + Send>;

/// Hands a call's result to the optimiser's black box, as a caller that
/// looks at it would: by reference, so the result must exist in memory but
/// is not copied.
///
/// Passing it by value instead (`black_box(result)`) makes the compiler copy
/// it into a second stack slot with 8-byte stores and read it back with
/// 16-byte loads, which stalls store forwarding: about 6 ns for a 32-byte
/// `Result` (tripswitch's), nothing for the peers' smaller ones, which stay
/// in registers. Real callers match on the result; they do not copy it.
#[inline(always)]
pub fn consume<T>(result: &T) {
    black_box(result);
}

/// How many calls a batch of `run` should make so that it lasts about as
/// long as `calls` calls of 15 ns each (at least 100, at most `calls`):
/// slow peers get smaller batches, and a round of the drivers stays short.
/// Runs 1,000 calls to time them, which also warms the case up.
pub fn batch_size(mut run: impl FnMut(u64), calls: u64) -> u64 {
    let started = std::time::Instant::now();
    run(1_000);
    let per_call = started.elapsed().as_secs_f64() / 1_000.0;
    ((calls as f64 * 15e-9 / per_call) as u64).clamp(100, calls)
}

/// Runs `n` sequential calls of `call` inside one `block_on`.
fn run_calls<F, Fut>(n: u64, mut call: F)
where
    F: FnMut(u64) -> Fut,
    Fut: Future,
{
    futures::executor::block_on(async {
        for i in 0..n {
            consume(&call(i).await);
        }
    });
}

/// A tokio runtime handle, for peers that need one for their timers.
fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    use std::sync::OnceLock;
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime")
    })
}

/// Every case by name: `group/crate`.
pub const CASES: &[&str] = &[
    "closed-consecutive/bare",
    "closed-consecutive/tripswitch-seed",
    "closed-consecutive/floor",
    "closed-consecutive/tripswitch",
    "closed-consecutive/failsafe",
    "closed-consecutive/tower-resilience",
    "closed-count-window/tripswitch",
    "closed-count-window/recloser",
    "closed-count-window/tower-resilience",
    "closed-time-window/tripswitch",
    "closed-time-window/tripswitch-tsc",
    "closed-time-window/tripswitch-fake-clock",
    "closed-time-window/tripswitch-as-failsafe",
    "closed-time-window/failsafe",
    "closed-time-window/tower-resilience",
    "rejected/tripswitch",
    "rejected/failsafe",
    "rejected/recloser",
    "rejected/tower-resilience",
    "half-open/tripswitch",
    "two-call-sites/tripswitch-one-site",
    "two-call-sites/tripswitch",
    "two-call-sites/failsafe",
    "one-percent-failing-consecutive/tripswitch",
    "one-percent-failing-consecutive/failsafe",
    "one-percent-failing-count-window/tripswitch",
    "one-percent-failing-count-window/recloser",
    "eight-time-windows/tripswitch",
    "eight-time-windows/failsafe",
    "permit/tripswitch",
    "permit/tripswitch-async",
    "permit/failsafe",
    "permit/recloser",
    "permit-rejected/tripswitch",
    "permit-rejected/failsafe",
    "permit-rejected/recloser",
];

/// tripswitch tripping after 5 consecutive failures, failing fast.
pub fn tripswitch_consecutive() -> CircuitBreaker {
    CircuitBreaker::builder()
        .consecutive_failures(5)
        .fail_fast()
        .try_build()
        .expect("valid")
}

/// tripswitch on a 50% failure rate over the last 100 calls, failing fast.
pub fn tripswitch_count_window() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_rate(FailureRate::new(0.5, Window::last_calls(100)).min_calls(100))
        .fail_fast()
        .try_build()
        .expect("valid")
}

/// tripswitch on a 50% failure rate over the last 60 seconds, failing fast.
pub fn tripswitch_time_window() -> CircuitBreaker {
    time_window_settings().try_build().expect("valid")
}

/// [`tripswitch_time_window`] on the time-stamp-counter clock (feature `quanta`).
pub fn tripswitch_time_window_tsc() -> CircuitBreaker {
    time_window_settings()
        .clock(tripswitch::clock::TscClock::new())
        .try_build()
        .expect("valid")
}

/// [`tripswitch_time_window`] on a `FakeClock`, whose read is one atomic
/// load: what the window itself costs, without the clock.
pub fn tripswitch_time_window_fake_clock() -> CircuitBreaker {
    time_window_settings()
        .clock(tripswitch::clock::FakeClock::new())
        .try_build()
        .expect("valid")
}

/// failsafe's default policy in tripswitch's terms: a failure rate over a
/// 30 second window (failsafe's is a moving average over it), from the
/// first call, or three consecutive failures, whichever trips first.
pub fn tripswitch_as_failsafe_default() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(30))).min_calls(1))
        .consecutive_failures(3)
        .fail_fast()
        .try_build()
        .expect("valid")
}

fn time_window_settings() -> tripswitch::Builder {
    CircuitBreaker::builder()
        .failure_rate(FailureRate::new(0.5, Window::last(Duration::from_secs(60))).min_calls(100))
        .fail_fast()
}

/// Runs `n` synchronous calls of `call` (the permit cases: no executor).
fn run_sync<R>(n: u64, mut call: impl FnMut(u64) -> R) {
    for i in 0..n {
        consume(&call(i));
    }
}

/// One call through a permit, as synchronous code makes it: `try_acquire`,
/// the operation, the verdict. Inlined into the loop, as the peers' calls
/// (closures) are: kept out of line, its own frame (register saves) cost
/// 15 instructions a call that no peer's case paid.
#[inline(always)]
fn through_permit(breaker: &CircuitBreaker, i: u64) -> Result<u64, tripswitch::Rejected> {
    let permit = breaker.try_acquire()?;
    match sync_operation(i) {
        Ok(value) => {
            permit.success();
            Ok(value)
        }
        Err(error) => {
            permit.failure(&error);
            Ok(0)
        }
    }
}

/// The call of the two-call-site case: one closure type, so one `Execute`
/// future type, awaited from two places in the caller.
fn via_breaker(
    breaker: &CircuitBreaker,
    i: u64,
) -> impl Future<Output = Result<u64, tripswitch::Error<()>>> + '_ {
    breaker.execute(move || operation(i))
}

/// failsafe's call of the two-call-site case.
fn via_failsafe<B: failsafe::futures::CircuitBreaker>(
    breaker: &B,
    i: u64,
) -> impl Future<Output = Result<u64, failsafe::Error<()>>> + '_ {
    breaker.call(operation(i))
}

/// A failsafe breaker tripping after 5 consecutive failures.
fn failsafe_consecutive()
-> impl failsafe::futures::CircuitBreaker + failsafe::CircuitBreaker + Send + Sync + 'static {
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            5,
            failsafe::backoff::constant(LONG),
        ))
        .build()
}

/// A recloser on a 50% failure rate over the last 100 calls.
fn recloser_count_window(closed_len: usize) -> recloser::Recloser {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(closed_len)
        .open_wait(LONG)
        .build()
}

/// Builds the runner of a case, or `None` for an unknown name.
#[allow(
    clippy::if_same_then_else,
    reason = "the two-call-site cases await the same future type from two places on purpose"
)]
pub fn case(name: &str) -> Option<Runner> {
    let _guard = tokio_runtime().enter();
    let runner: Runner = match name {
        "two-call-sites/tripswitch-one-site" => tripswitch_runner(tripswitch_consecutive()),
        "two-call-sites/tripswitch" => {
            let breaker = tripswitch_consecutive();
            Box::new(move |n| {
                futures::executor::block_on(async {
                    for i in 0..n {
                        if i & 1 == 0 {
                            consume(&via_breaker(&breaker, i).await);
                        } else {
                            consume(&via_breaker(&breaker, i).await);
                        }
                    }
                })
            })
        }
        "two-call-sites/failsafe" => {
            let breaker = failsafe_consecutive();
            Box::new(move |n| {
                futures::executor::block_on(async {
                    for i in 0..n {
                        if i & 1 == 0 {
                            consume(&via_failsafe(&breaker, i).await);
                        } else {
                            consume(&via_failsafe(&breaker, i).await);
                        }
                    }
                })
            })
        }
        "one-percent-failing-consecutive/tripswitch" => {
            let breaker = tripswitch_consecutive();
            Box::new(move |n| run_calls(n, |i| breaker.execute(move || one_percent_failing(i))))
        }
        "one-percent-failing-consecutive/failsafe" => {
            let breaker = failsafe_consecutive();
            Box::new(move |n| {
                run_calls(n, |i| {
                    failsafe::futures::CircuitBreaker::call(&breaker, one_percent_failing(i))
                })
            })
        }
        "one-percent-failing-count-window/tripswitch" => {
            let breaker = tripswitch_count_window();
            Box::new(move |n| run_calls(n, |i| breaker.execute(move || one_percent_failing(i))))
        }
        "one-percent-failing-count-window/recloser" => {
            let breaker = recloser::AsyncRecloser::from(recloser_count_window(100));
            Box::new(move |n| run_calls(n, |i| breaker.call(one_percent_failing(i))))
        }
        "eight-time-windows/tripswitch" => {
            let breakers: Vec<CircuitBreaker> = (0..8).map(|_| tripswitch_time_window()).collect();
            Box::new(move |n| {
                run_calls(n, |i| {
                    breakers[(i % 8) as usize].execute(move || operation(i))
                })
            })
        }
        "eight-time-windows/failsafe" => {
            let breakers: Vec<_> = (0..8).map(|_| failsafe::Config::new().build()).collect();
            Box::new(move |n| run_calls(n, |i| breakers[(i % 8) as usize].call(operation(i))))
        }
        "permit/tripswitch" => {
            let breaker = tripswitch_consecutive();
            Box::new(move |n| run_sync(n, |i| through_permit(&breaker, i)))
        }
        "permit/tripswitch-async" => tripswitch_runner(tripswitch_consecutive()),
        "permit/failsafe" => {
            let breaker = failsafe_consecutive();
            Box::new(move |n| {
                run_sync(n, |i| {
                    failsafe::CircuitBreaker::call(&breaker, || sync_operation(i))
                })
            })
        }
        "permit/recloser" => {
            let breaker = recloser_count_window(100);
            Box::new(move |n| run_sync(n, |i| breaker.call(|| sync_operation(i))))
        }
        "permit-rejected/tripswitch" => {
            let breaker = CircuitBreaker::builder()
                .freeze_for(LONG)
                .fail_fast()
                .build();
            breaker.try_acquire().expect("closed").failure(&"trip");
            assert!(breaker.is_frozen());
            Box::new(move |n| run_sync(n, |i| through_permit(&breaker, i)))
        }
        "permit-rejected/failsafe" => {
            let breaker = failsafe::Config::new()
                .failure_policy(failsafe::failure_policy::consecutive_failures(
                    1,
                    failsafe::backoff::constant(LONG),
                ))
                .build();
            let _ = failsafe::CircuitBreaker::call(&breaker, || Err::<u64, ()>(()));
            assert!(!failsafe::CircuitBreaker::is_call_permitted(&breaker));
            Box::new(move |n| {
                run_sync(n, |i| {
                    failsafe::CircuitBreaker::call(&breaker, || sync_operation(i))
                })
            })
        }
        "permit-rejected/recloser" => {
            let breaker = recloser_count_window(1);
            for _ in 0..2 {
                let _ = breaker.call(|| Err::<u64, ()>(()));
            }
            Box::new(move |n| run_sync(n, |i| breaker.call(|| sync_operation(i))))
        }
        "closed-consecutive/bare" => Box::new(|n| run_calls(n, operation)),
        "closed-consecutive/tripswitch-seed" => {
            let breaker = CircuitBreaker::new();
            Box::new(move |n| run_calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-consecutive/floor" => {
            let floor = floor::Floor::default();
            Box::new(move |n| run_calls(n, |i| floor.call(operation(i))))
        }
        "closed-consecutive/tripswitch" => tripswitch_runner(tripswitch_consecutive()),
        "closed-count-window/tripswitch" => tripswitch_runner(tripswitch_count_window()),
        "closed-time-window/tripswitch" => tripswitch_runner(tripswitch_time_window()),
        "closed-time-window/tripswitch-tsc" => tripswitch_runner(tripswitch_time_window_tsc()),
        "closed-time-window/tripswitch-fake-clock" => {
            tripswitch_runner(tripswitch_time_window_fake_clock())
        }
        "closed-time-window/tripswitch-as-failsafe" => {
            tripswitch_runner(tripswitch_as_failsafe_default())
        }
        "closed-consecutive/failsafe" => {
            let breaker = failsafe::Config::new()
                .failure_policy(failsafe::failure_policy::consecutive_failures(
                    5,
                    failsafe::backoff::constant(LONG),
                ))
                .build();
            Box::new(move |n| run_calls(n, |i| breaker.call(operation(i))))
        }
        "closed-time-window/failsafe" => {
            let breaker = failsafe::Config::new().build();
            Box::new(move |n| run_calls(n, |i| breaker.call(operation(i))))
        }
        "closed-count-window/recloser" => {
            let breaker = recloser::AsyncRecloser::from(
                recloser::Recloser::custom()
                    .error_rate(0.5)
                    .closed_len(100)
                    .open_wait(LONG)
                    .build(),
            );
            Box::new(move |n| run_calls(n, |i| breaker.call(operation(i))))
        }
        "closed-consecutive/tower-resilience" => tower_runner(
            tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
                .consecutive_failures(5)
                .wait_duration_in_open(LONG),
        ),
        "closed-count-window/tower-resilience" => tower_runner(
            tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
                .failure_rate_threshold(0.5)
                .sliding_window_size(100)
                .minimum_number_of_calls(100)
                .wait_duration_in_open(LONG),
        ),
        "closed-time-window/tower-resilience" => tower_runner(
            tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
                .failure_rate_threshold(0.5)
                .sliding_window_type(tower_resilience_circuitbreaker::SlidingWindowType::TimeBased)
                .sliding_window_duration(Duration::from_secs(60))
                .minimum_number_of_calls(100)
                .wait_duration_in_open(LONG),
        ),
        "rejected/tripswitch" => {
            let breaker = CircuitBreaker::builder()
                .freeze_for(LONG)
                .fail_fast()
                .build();
            run_calls(1, |i| breaker.execute(move || failing(i)));
            assert!(breaker.is_frozen());
            tripswitch_runner(breaker)
        }
        "rejected/failsafe" => {
            let breaker = failsafe::Config::new()
                .failure_policy(failsafe::failure_policy::consecutive_failures(
                    1,
                    failsafe::backoff::constant(LONG),
                ))
                .build();
            run_calls(1, |i| breaker.call(failing(i)));
            assert!(!breaker.is_call_permitted());
            Box::new(move |n| run_calls(n, |i| breaker.call(operation(i))))
        }
        "rejected/recloser" => {
            let breaker = recloser::AsyncRecloser::from(
                recloser::Recloser::custom()
                    .error_rate(0.5)
                    .closed_len(1)
                    .open_wait(LONG)
                    .build(),
            );
            run_calls(2, |i| breaker.call(failing(i)));
            Box::new(move |n| run_calls(n, |i| breaker.call(operation(i))))
        }
        "rejected/tower-resilience" => {
            let mut runner = tower_runner(
                tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
                    .consecutive_failures(1)
                    .wait_duration_in_open(LONG),
            );
            runner(u64::MAX); // the sentinel trips it (see `tower_runner`)
            runner
        }
        "half-open/tripswitch" => {
            let breaker = CircuitBreaker::builder()
                .half_open(HalfOpen::probes(1).close_after(u32::MAX))
                .freeze_for(Duration::ZERO)
                .fail_fast()
                .try_build()
                .expect("valid");
            run_calls(1, |i| breaker.execute(move || failing(i)));
            assert_eq!(breaker.state(), tripswitch::State::HalfOpen);
            tripswitch_runner(breaker)
        }
        _ => return None,
    };
    Some(runner)
}

/// The cases that [`shared_case`] can run from two threads at once.
pub const SHARED_CASES: &[&str] = &[
    "closed-consecutive/bare",
    "closed-consecutive/tripswitch-seed",
    "closed-consecutive/tripswitch",
    "closed-consecutive/failsafe",
    "closed-count-window/recloser",
    "closed-consecutive/tower-resilience",
    "closed-time-window/tripswitch",
    "closed-time-window/tripswitch-tsc",
    "closed-time-window/failsafe",
];

/// A benchmark case whose one breaker several threads call at once.
pub type SharedRunner = Arc<dyn Fn(u64) + Send + Sync>;

/// The runner of a [`SHARED_CASES`] case, or `None` for an unknown name:
/// each call of it runs `n` calls on the case's one breaker, from whichever
/// thread calls it.
pub fn shared_case(name: &str) -> Option<SharedRunner> {
    let _guard = tokio_runtime().enter();
    let runner: SharedRunner = match name {
        "closed-consecutive/bare" => Arc::new(|n| run_calls(n, operation)),
        "closed-consecutive/tripswitch-seed" => {
            let breaker = CircuitBreaker::new();
            Arc::new(move |n| run_calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-consecutive/tripswitch" => {
            let breaker = tripswitch_consecutive();
            Arc::new(move |n| run_calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-time-window/tripswitch" => {
            let breaker = tripswitch_time_window();
            Arc::new(move |n| run_calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-time-window/tripswitch-tsc" => {
            let breaker = tripswitch_time_window_tsc();
            Arc::new(move |n| run_calls(n, |i| breaker.execute(move || operation(i))))
        }
        "closed-time-window/failsafe" => {
            let breaker = failsafe::Config::new().build();
            Arc::new(move |n| run_calls(n, |i| breaker.call(operation(i))))
        }
        "closed-consecutive/failsafe" => {
            let breaker = failsafe::Config::new()
                .failure_policy(failsafe::failure_policy::consecutive_failures(
                    5,
                    failsafe::backoff::constant(Duration::from_secs(3600)),
                ))
                .build();
            Arc::new(move |n| run_calls(n, |i| breaker.call(operation(i))))
        }
        "closed-count-window/recloser" => {
            let breaker = recloser::AsyncRecloser::from(
                recloser::Recloser::custom()
                    .error_rate(0.5)
                    .closed_len(100)
                    .build(),
            );
            Arc::new(move |n| run_calls(n, |i| breaker.call(operation(i))))
        }
        "closed-consecutive/tower-resilience" => {
            let layer = tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
                .consecutive_failures(5)
                .build()
                .expect("valid");
            let service = layer.layer(tower::service_fn(operation));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime");
            let runtime = Arc::new(runtime);
            Arc::new(move |n| {
                let _guard = runtime.enter();
                // Clones share the breaker, as a tower service's clones do.
                let mut service = service.clone();
                futures::executor::block_on(async {
                    for i in 0..n {
                        if let Ok(ready) = service.ready().await {
                            consume(&ready.call(i).await);
                        }
                    }
                });
            })
        }
        _ => return None,
    };
    Some(runner)
}

fn tripswitch_runner(breaker: CircuitBreaker) -> Runner {
    Box::new(move |n| run_calls(n, |i| breaker.execute(move || operation(i))))
}

/// tower-resilience is a layer: the call is `ready().await` then `call`. A
/// run of `u64::MAX` calls is the sentinel that sends one failure instead.
fn tower_runner<C>(
    builder: tower_resilience_circuitbreaker::CircuitBreakerConfigBuilder<C>,
) -> Runner
where
    C: Send + Sync + 'static,
    tower_resilience_circuitbreaker::CircuitBreakerConfigBuilder<C>: BuildLayer,
{
    builder.runner()
}

/// Turns a tower-resilience builder into a runner (kept generic over its classifier type).
pub trait BuildLayer {
    /// The runner of this layer's service.
    fn runner(self) -> Runner;
}

impl BuildLayer
    for tower_resilience_circuitbreaker::CircuitBreakerConfigBuilder<
        tower_resilience_circuitbreaker::DefaultClassifier,
    >
{
    fn runner(self) -> Runner {
        let layer = self.build().expect("valid tower-resilience config");
        let service = tower::service_fn(|i: u64| async move {
            if i == u64::MAX {
                Err(())
            } else {
                operation(i).await
            }
        });
        let mut service = layer.layer(service);
        Box::new(move |n| {
            let _guard = tokio_runtime().enter();
            futures::executor::block_on(async {
                if n == u64::MAX {
                    let ready = service.ready().await.expect("ready");
                    let _ = ready.call(u64::MAX).await;
                    return;
                }
                for i in 0..n {
                    let result = match service.ready().await {
                        Ok(ready) => ready.call(i).await.map_err(|_| ()),
                        Err(_) => Err(()),
                    };
                    consume(&result);
                }
            });
        })
    }
}
