//! Two threads on one breaker against one thread on the same breaker,
//! measured in the same round, so that a slow spell of the host hits both.
//!
//! `scaling [rounds=21] [calls-per-thread=200000] [case-filter]`: each round
//! runs every case of [`SHARED_CASES`] once on one thread, then on two
//! threads at once (each making the same number of calls; the clock starts
//! once both are running and stops when the later one ends). Prints each
//! case's median throughput on one and two threads, the median of the
//! per-round ratios (the scaling), and each case's two-thread throughput over
//! the best peer's (time windows over the best time-window peer's).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tripswitch_benches::{SHARED_CASES, SharedRunner, batch_size, shared_case};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(21, |a| a.parse().expect("rounds"));
    let calls: u64 = args
        .next()
        .map_or(200_000, |a| a.parse().expect("calls per thread"));
    let filter = args.next().unwrap_or_default();

    let cases: Vec<&str> = SHARED_CASES
        .iter()
        .copied()
        .filter(|c| c.contains(filter.as_str()))
        .collect();
    let runners: Vec<SharedRunner> = cases
        .iter()
        .map(|c| shared_case(c).expect("known shared case"))
        .collect();
    let batch: Vec<u64> = runners
        .iter()
        .map(|run| batch_size(|n| run(n), calls))
        .collect();

    let mut one = vec![Vec::with_capacity(rounds); cases.len()];
    let mut two = vec![Vec::with_capacity(rounds); cases.len()];
    let mut scaling = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (i, run) in runners.iter().enumerate() {
            let n = batch[i];
            let single = per_second(n, one_thread(run, n));
            let double = per_second(2 * n, two_threads(run, n));
            one[i].push(single);
            two[i].push(double);
            scaling[i].push(double / single);
        }
    }

    let one: Vec<f64> = one.iter_mut().map(|s| median(s)).collect();
    let two: Vec<f64> = two.iter_mut().map(|s| median(s)).collect();
    let scaling: Vec<f64> = scaling.iter_mut().map(|s| median(s)).collect();
    // Time windows are compared with time windows; the other policies with
    // the best peer on any count-based policy.
    let kind = |case: &str| case.starts_with("closed-time-window/");
    let best_peer = |case: &str| {
        cases
            .iter()
            .zip(&two)
            .filter(|(c, _)| !c.contains("/tripswitch") && !c.ends_with("/bare"))
            .filter(|(c, _)| kind(c) == kind(case))
            .map(|(_, t)| *t)
            .fold(0.0, f64::max)
    };

    println!(
        "{rounds} rounds; M calls/s in total; scaling = median of two threads / one thread per round"
    );
    println!(
        "{:<38} {:>10} {:>12} {:>9} {:>14}",
        "case", "1 thread", "2 threads", "scaling", "vs best peer"
    );
    for (i, case) in cases.iter().enumerate() {
        let versus = if case.contains("/tripswitch") && best_peer(case) > 0.0 {
            format!("{:.1}x", two[i] / best_peer(case))
        } else {
            String::new()
        };
        println!(
            "{case:<38} {:>10.1} {:>12.1} {:>8.2}x {versus:>14}",
            one[i] / 1e6,
            two[i] / 1e6,
            scaling[i]
        );
    }
}

fn per_second(calls: u64, took: Duration) -> f64 {
    calls as f64 / took.as_secs_f64()
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn one_thread(run: &SharedRunner, n: u64) -> Duration {
    let started = Instant::now();
    run(n);
    started.elapsed()
}

/// Both threads make `n` calls; timed from when both are running to when
/// the later one is done.
fn two_threads(run: &SharedRunner, n: u64) -> Duration {
    let running = AtomicUsize::new(0);
    let started = std::sync::OnceLock::new();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                // A thread woken late would otherwise run alone for a while.
                running.fetch_add(1, Ordering::AcqRel);
                while running.load(Ordering::Acquire) < 2 {
                    std::hint::spin_loop();
                }
                started.get_or_init(Instant::now);
                run(n);
            });
        }
    });
    started.get().expect("both threads ran").elapsed()
}
