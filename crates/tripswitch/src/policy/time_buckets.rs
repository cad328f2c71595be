//! A time window: calls in buckets of equal length, by time slice.

use std::time::Duration;

use super::last_slice::{self, Reading};
use super::striped_successes::StripedSuccesses;
use super::window::{MAX_BUCKETS, WindowCounts};
use crate::clock::nanos;
use crate::loom::{AtomicU32, AtomicU64, Ordering};
use crate::metrics::{OWNED_STRIPES, claimed_stripe, owned_stripe};

/// Calls in the last `length`, bucketed; each bucket knows which slice of time it holds.
#[derive(Debug)]
pub(crate) struct TimeBuckets {
    bucket_nanos: u64,
    buckets: Box<[Bucket]>,
    /// The time slice most calls fall in, and its bucket's index, packed
    /// (slice << INDEX_BITS | index; 0 = none yet): a call in that slice
    /// finds its bucket with a load, a multiplication and a comparison;
    /// only a call in another slice pays for the two divisions (see
    /// [`TimeBuckets::slot`]).
    current: AtomicU64,
    /// Successes of threads that own a counter stripe, counted without a
    /// locked instruction (`None` for windows of many buckets).
    striped: Option<StripedSuccesses>,
    /// Names this window in threads' memory of their last slice (see
    /// `last_slice`); never reused, and renewed by [`reset`](Self::reset),
    /// so that a thread's memory of a slice from before a reset is never
    /// used after it. Invariant: a memory that names the current id holds a
    /// tag of the current epoch of `striped` (or of a reset in progress).
    /// Why the orderings suffice: `reset` bumps the epoch, then stores the
    /// new id with `Release`; the long way loads the id with `Acquire`
    /// before it reads the epoch for its tag, so a memory naming the new id
    /// holds the new epoch's tag. The short path loads it `Relaxed`: an old
    /// id there only matches memories made before the reset, whose counts
    /// the reset then takes, as it would have a moment earlier.
    id: AtomicU64,
    /// Failures and slow calls ever counted here. While it differs from
    /// `clean_upto`, the window may hold one, and every success is judged
    /// (old successes leaving the window can raise the rate, and calls can
    /// reach `min_calls`); once a judgement finds none, successes are fast
    /// again. Relaxed: a stale read only costs one judgement more or one
    /// success judged late, never a lost failure (a failure is judged itself).
    dirty: AtomicU64,
    /// The value of `dirty` read before the last judgement that found the
    /// window clean (only grows, by `fetch_max`).
    clean_upto: AtomicU64,
}

/// The next [`TimeBuckets::id`]. A plain `std` atomic even under loom: it
/// only names windows, it orders nothing.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Bits of [`TimeBuckets::current`] that hold the bucket index (enough for `MAX_BUCKETS`).
const INDEX_BITS: u32 = 17;
const _: () = assert!(MAX_BUCKETS < 1 << INDEX_BITS);

#[derive(Debug)]
struct Bucket {
    /// Index of the time slice (time / bucket length) this bucket counts, plus one; 0 = empty.
    slice: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

impl TimeBuckets {
    pub(super) fn new(length: Duration, buckets: u32) -> Self {
        Self {
            bucket_nanos: (nanos(length) / u64::from(buckets)).max(1),
            buckets: (0..buckets)
                .map(|_| Bucket {
                    slice: AtomicU64::new(0),
                    calls: AtomicU32::new(0),
                    failures: AtomicU32::new(0),
                    slow: AtomicU32::new(0),
                })
                .collect(),
            current: AtomicU64::new(0),
            striped: StripedSuccesses::new(buckets as usize, OWNED_STRIPES),
            id: AtomicU64::new(next_id()),
            dirty: AtomicU64::new(0),
            clean_upto: AtomicU64::new(0),
        }
    }

    /// Whether the window may hold a failure or a slow call, so that a
    /// success must be judged.
    #[inline(always)]
    pub(crate) fn may_hold_failures(&self) -> bool {
        self.dirty.load(Ordering::Relaxed) != self.clean_upto.load(Ordering::Relaxed)
    }

    /// The counts now, for a judgement; marks the window clean if it holds
    /// no failure or slow call.
    pub(super) fn judged_counts(&self, at: Duration) -> WindowCounts {
        let seen = self.dirty.load(Ordering::Relaxed);
        let counts = self.counts(at);
        if counts.failures == 0 && counts.slow == 0 {
            self.clean_upto.fetch_max(seen, Ordering::Relaxed);
        }
        counts
    }

    fn slice_at(&self, at: Duration) -> u64 {
        (nanos(at) / self.bucket_nanos).saturating_add(1)
    }

    /// The time slice of `at` and the index of its bucket.
    #[inline]
    fn slot(&self, at: Duration) -> (u64, usize) {
        self.slot_at_nanos(nanos(at))
    }

    /// [`slot`](Self::slot), `at` in nanoseconds on the breaker's clock.
    #[inline]
    fn slot_at_nanos(&self, at: u64) -> (u64, usize) {
        let current = self.current.load(Ordering::Relaxed);
        let slice = current >> INDEX_BITS;
        // Slice `s` covers [(s - 1) * bucket_nanos, s * bucket_nanos).
        let start = slice.wrapping_sub(1).wrapping_mul(self.bucket_nanos);
        if slice != 0 && at >= start && at - start < self.bucket_nanos {
            return (slice, (current & ((1 << INDEX_BITS) - 1)) as usize);
        }
        let slice = (at / self.bucket_nanos).saturating_add(1);
        let index = (slice % self.buckets.len() as u64) as usize;
        if slice < 1 << (64 - INDEX_BITS) {
            self.current
                .store(slice << INDEX_BITS | index as u64, Ordering::Relaxed);
        }
        (slice, index)
    }

    /// A success, counted; returns whether the window must be judged now
    /// (see [`may_hold_failures`](Self::may_hold_failures)).
    #[inline]
    pub(crate) fn record_success(&self, at: Duration) -> bool {
        let (slice, index) = self.slot(at);
        if let Some(striped) = &self.striped
            && let Some(row) = owned_stripe()
            && striped.add(row, slice, index)
        {
            return self.may_hold_failures();
        }
        self.count(slice, index, false, false);
        self.may_hold_failures()
    }

    /// The short path of [`record_success`](Self::record_success) on a
    /// built-in clock (`now` is the clock's reading): a thread's second and
    /// later successes in the same slice go straight to its cell (see
    /// `last_slice`). `None` when the success must go the long way,
    /// [`record_success_at`](Self::record_success_at).
    #[inline(always)]
    pub(crate) fn record_success_again<P: Reading>(&self, now: P) -> Option<bool> {
        let striped = self.striped.as_ref()?;
        // The long way claims the thread's stripe if it has none yet.
        let row = claimed_stripe()?;
        let (cell, tag) = last_slice::recall(self.id.load(Ordering::Relaxed), now)?;
        striped
            .add_again(row, cell as usize, tag)
            .then(|| self.may_hold_failures())
    }

    /// [`record_success`](Self::record_success) on a built-in clock: `now`
    /// is the clock's reading, `origin` its start. Finds the slice and
    /// remembers its span, for [`record_success_again`](Self::record_success_again).
    #[inline(never)]
    pub(crate) fn record_success_at<P: Reading>(&self, now: P, origin: P) -> bool {
        let Some(striped) = &self.striped else {
            return self.record_success(Duration::from_nanos(now.nanos_since(origin)));
        };
        let Some(row) = owned_stripe() else {
            return self.record_success(Duration::from_nanos(now.nanos_since(origin)));
        };
        // Before the epoch is read for the cell's tag (see `id`).
        let id = self.id.load(Ordering::Acquire);
        let (slice, index) = self.slot_at_nanos(now.nanos_since(origin));
        match striped.add_at(row, slice, index) {
            Some((cell, tag)) => {
                // Cells are at most `MAX_STRIPED_BUCKETS` per row: the
                // index fits in a `u32`.
                if let Some((start, end)) = self.span(origin, slice)
                    && let Ok(cell) = u32::try_from(cell)
                {
                    last_slice::remember(last_slice::Remembered {
                        window: id,
                        start,
                        end,
                        cell,
                        tag,
                    });
                }
            }
            None => self.count(slice, index, false, false),
        }
        self.may_hold_failures()
    }

    /// Slice `slice`'s span of readings, for a clock that started at `origin`.
    fn span<P: Reading>(&self, origin: P, slice: u64) -> Option<(P, P)> {
        let from = slice.checked_sub(1)?.checked_mul(self.bucket_nanos)?;
        let to = slice.checked_mul(self.bucket_nanos)?;
        Some((origin.after(from)?, origin.after(to)?))
    }

    pub(super) fn record(&self, failed: bool, slow: bool, at: Duration) -> WindowCounts {
        let (slice, index) = self.slot(at);
        self.count(slice, index, failed, slow);
        if failed || slow || self.may_hold_failures() {
            self.judged_counts(at)
        } else {
            // No failure or slow call in the window: a rate of zero.
            WindowCounts::default()
        }
    }

    #[inline]
    fn count(&self, slice: u64, index: usize, failed: bool, slow: bool) {
        let bucket = &self.buckets[index];
        let seen = bucket.slice.load(Ordering::Acquire);
        if seen != slice
            && seen < slice
            && bucket
                .slice
                .compare_exchange(seen, slice, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // This call opened the bucket for a new time slice: drop the old counts.
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
        bucket.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            bucket.failures.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            bucket.slow.fetch_add(1, Ordering::Relaxed);
        }
        if failed || slow {
            // After the bucket's count: a judgement that reads the new
            // `dirty` value also sees this failure (or is followed by one).
            self.dirty.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn counts(&self, at: Duration) -> WindowCounts {
        let newest = self.slice_at(at);
        let oldest = newest.saturating_sub(self.buckets.len() as u64 - 1).max(1);
        let mut counts = WindowCounts::default();
        for bucket in self.buckets.iter() {
            let slice = bucket.slice.load(Ordering::Acquire);
            if (oldest..=newest).contains(&slice) {
                counts.calls += u64::from(bucket.calls.load(Ordering::Relaxed));
                counts.failures += u64::from(bucket.failures.load(Ordering::Relaxed));
                counts.slow += u64::from(bucket.slow.load(Ordering::Relaxed));
            }
        }
        if let Some(striped) = &self.striped {
            let buckets = striped.buckets() as u64;
            for slice in oldest..=newest {
                counts.calls += striped.count(slice, (slice % buckets) as usize);
            }
        }
        counts
    }

    pub(super) fn reset(&self) {
        if let Some(striped) = &self.striped {
            striped.reset();
        }
        // After the epoch (see `id`).
        self.id.store(next_id(), Ordering::Release);
        self.current.store(0, Ordering::Relaxed);
        for bucket in self.buckets.iter() {
            bucket.slice.store(0, Ordering::Release);
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slice_cache_gives_the_same_buckets_as_dividing() {
        let ms = Duration::from_millis;
        let window = TimeBuckets::new(ms(100), 4); // 25ms buckets
        // In order, out of order (a call that read the clock earlier and
        // records later), and far ahead: every call lands in its own slice.
        for at in [0, 10, 24, 25, 49, 30, 3, 250, 26, 1_000_000] {
            let (slice, index) = window.slot(ms(at));
            let expected = at * 1_000_000 / window.bucket_nanos + 1;
            assert_eq!(slice, expected, "at {at} ms");
            assert_eq!(index, (expected % 4) as usize, "at {at} ms");
        }
        window.record_success(ms(1_000_010));
        window.record_success(ms(1_000_020));
        let c = window.record(true, false, ms(1_000_030));
        assert_eq!((c.calls, c.failures), (3, 1));
    }

    #[test]
    fn successes_at_nanosecond_readings_count_in_the_slices_durations_do() {
        let ms = Duration::from_millis;
        let by_reading = TimeBuckets::new(ms(100), 4); // 25ms buckets
        let by_duration = TimeBuckets::new(ms(100), 4);
        // Twice in a row (the second goes through the thread's memory of
        // the slice), on both sides of each boundary, and back in time.
        let times = [
            0, 1, 24_999_999, 25_000_000, 25_000_001, 3, 74_999_999, 75_000_000,
        ];
        for at in times.into_iter().flat_map(|at| [at, at]) {
            by_reading.record_success_at(at, 0_u64);
            by_duration.record_success(Duration::from_nanos(at));
        }
        for at in [ms(20), ms(50), ms(80), ms(99), ms(120), ms(160)] {
            let (a, b) = (by_reading.counts(at), by_duration.counts(at));
            assert_eq!((a.calls, a.failures), (b.calls, b.failures), "at {at:?}");
        }
        let c = by_reading.counts(ms(99));
        assert_eq!(c.calls, 16, "every success is still in the window");
    }

    #[test]
    fn time_buckets_forget_old_slices() {
        let ms = Duration::from_millis;
        let window = TimeBuckets::new(ms(100), 4); // 25ms buckets
        window.record(true, false, ms(0));
        window.record(false, false, ms(30));
        let c = window.counts(ms(60));
        assert_eq!((c.calls, c.failures), (2, 1));
        let c = window.counts(ms(110)); // the 0..25ms bucket has left the window
        assert_eq!((c.calls, c.failures), (1, 0));
        let c = window.record(true, false, ms(200));
        assert_eq!((c.calls, c.failures), (1, 1));
    }
}
