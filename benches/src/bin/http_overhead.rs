//! End to end over HTTP: what a breaker adds to a request served by axum
//! and sent by a hyper client on loopback (issue 18 point 14), in time.
//!
//! Three servers, one per case of `tripswitch_benches::http` (the same
//! route behind no breaker, tripswitch's axum layer, tower-resilience), and
//! one client with one kept-alive connection to each, all on one
//! current-thread runtime: a request is the client's and the server's work
//! on one thread, with no cross-thread wake-ups to add noise. Rounds are
//! interleaved (a batch per case in turn, the order rotating), so that a
//! slow spell of the host falls on every case alike, and the overhead of a
//! case is taken round by round against the bare route's batch of the same
//! round. Printed: each case's median time per request; the median of the
//! per-round overheads over the bare route with a 95% bootstrap confidence
//! interval (rounds resampled) and the interquartile range of the
//! per-round overheads; and the same over `identity-layer`, the least any
//! axum route layer costs, which leaves the breaker's own cost. Short
//! batches, many rounds: a slow spell of the host spans few batches, and
//! falls on all cases alike.
//!
//! The interval covers the rounds' spread within one run only; runs of the
//! same binary differ by more (about 200 ns over the bare route, less over
//! `identity-layer`), so compare runs, not intervals.
//!
//! `http_overhead [rounds] [requests-per-batch]` (default 4,001 rounds of 50).
//! `benches/callgrind_http.sh` counts instructions instead, which a loaded
//! host does not disturb.

use std::time::Instant;

use tripswitch_benches::http::{HTTP_CASES, client, router, send, serve};

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile(&sorted, 0.5)
}

/// A 95% bootstrap interval of the median of `values` (2,000 resamples,
/// a fixed-seed xorshift generator: the same data give the same interval).
fn bootstrap_median(values: &[f64]) -> (f64, f64) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut medians: Vec<f64> = (0..2_000)
        .map(|_| {
            let resample: Vec<f64> = (0..values.len())
                .map(|_| values[(next() % values.len() as u64) as usize])
                .collect();
            median(&resample)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    (quantile(&medians, 0.025), quantile(&medians, 0.975))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(4_001, |a| a.parse().expect("rounds"));
    let per_batch: u64 = args.next().map_or(50, |a| a.parse().expect("requests"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = client();
        let mut uris = Vec::new();
        for case in HTTP_CASES {
            uris.push(serve(router(case).expect("a known case")).await);
        }
        // Warm up: connections, allocator, caches.
        for uri in &uris {
            send(&client, uri, per_batch).await;
        }
        let mut per_request = vec![Vec::new(); uris.len()];
        for round in 0..rounds {
            let mut times = vec![0.0; uris.len()];
            // Rotate the order each round: no case always goes first.
            for k in 0..uris.len() {
                let i = (k + round) % uris.len();
                let start = Instant::now();
                send(&client, &uris[i], per_batch).await;
                times[i] = start.elapsed().as_nanos() as f64 / per_batch as f64;
            }
            for (i, ns) in times.iter().enumerate() {
                per_request[i].push(*ns);
            }
        }
        println!(
            "{rounds} interleaved rounds of {per_batch} sequential requests per case (loopback, HTTP/1.1 keep-alive, one current-thread runtime)"
        );
        println!(
            "{:<18} {:>11} {:>26} {:>22} {:>30}",
            "case",
            "µs/request",
            "over none, ns [95% CI]",
            "IQR of rounds, ns",
            "over identity-layer, ns [95% CI]"
        );
        let overhead = |i: usize, base: usize| -> Vec<f64> {
            per_request[i]
                .iter()
                .zip(&per_request[base])
                .map(|(case, base)| case - base)
                .collect()
        };
        let with_interval = |values: &[f64]| {
            let (low, high) = bootstrap_median(values);
            format!("{:.0} [{low:.0}, {high:.0}]", median(values))
        };
        for (i, case) in HTTP_CASES.iter().enumerate() {
            let over_none = overhead(i, 0);
            let mut sorted = over_none.clone();
            sorted.sort_by(f64::total_cmp);
            println!(
                "{case:<18} {:>11.2} {:>26} {:>22} {:>30}",
                median(&per_request[i]) / 1000.0,
                with_interval(&over_none),
                format!("[{:.0}, {:.0}]", quantile(&sorted, 0.25), quantile(&sorted, 0.75)),
                with_interval(&overhead(i, 1)),
            );
        }
    });
}
