//! Ratios that survive a noisy VM: every case of a group is run in turn,
//! batch after batch, so that a slow spell of the host hits all of them
//! alike, instead of whichever case criterion happened to be measuring.
//!
//! `interleaved [rounds] [calls-per-batch] [group-prefix]`: for each group,
//! `rounds` rounds of one batch per case; prints the median and the fastest
//! batch in ns per call, and each peer's median over tripswitch's.

use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(31, |a| a.parse().expect("rounds"));
    let calls: u64 = args
        .next()
        .map_or(200_000, |a| a.parse().expect("calls per batch"));
    let filter = args.next().unwrap_or_default();

    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for case in tripswitch_benches::CASES {
        let (group, _) = case.split_once('/').expect("group/crate");
        if case.starts_with(filter.as_str()) {
            groups.entry(group).or_default().push(case);
        }
    }

    println!("{rounds} rounds of {calls} calls per case; ns per call");
    println!(
        "{:<42} {:>9} {:>9} {:>16}",
        "case", "median", "fastest", "vs tripswitch"
    );
    for cases in groups.values() {
        let mut runners: Vec<_> = cases
            .iter()
            .map(|name| tripswitch_benches::case(name).expect("known case"))
            .collect();
        let batch: Vec<u64> = runners
            .iter_mut()
            .map(|run| tripswitch_benches::batch_size(run, calls))
            .collect();
        let mut samples = vec![Vec::with_capacity(rounds); runners.len()];
        for _ in 0..rounds {
            for ((run, n), out) in runners.iter_mut().zip(&batch).zip(&mut samples) {
                let started = Instant::now();
                run(*n);
                out.push(started.elapsed().as_nanos() as f64 / *n as f64);
            }
        }
        let medians: Vec<f64> = samples
            .iter_mut()
            .map(|s| {
                s.sort_by(f64::total_cmp);
                s[s.len() / 2]
            })
            .collect();
        let reference = cases
            .iter()
            .position(|c| c.ends_with("/tripswitch"))
            .map(|i| medians[i]);
        for ((case, median), s) in cases.iter().zip(&medians).zip(&samples) {
            let ratio = match reference {
                Some(r)
                    if !case.contains("/tripswitch")
                        && !case.ends_with("/bare")
                        && !case.ends_with("/floor") =>
                {
                    format!("{:.2}x slower", median / r)
                }
                _ => String::new(),
            };
            println!("{case:<42} {median:>9.1} {:>9.1} {ratio:>16}", s[0]);
        }
    }
}
