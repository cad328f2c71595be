use std::time::Duration;

use super::last_slice::{self, Reading};
use super::striped_successes::StripedSuccesses;
use crate::clock::nanos;
use crate::error::ConfigError;
use crate::metrics::{OWNED_STRIPES, owned_stripe};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// The largest count window: 10 million calls (two 1.25 MB bit rings).
pub const MAX_WINDOW_CALLS: u32 = 10_000_000;
/// The most buckets a time window may have.
pub const MAX_BUCKETS: u32 = 100_000;

/// The sliding window a rate policy looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Window {
    /// The last `n` calls. Costs one bit per call and outcome kind (a window of
    /// 100 calls is two 128-bit rings), not a byte per call.
    LastCalls(u32),
    /// The calls of the last `length`, in `buckets` buckets of equal length;
    /// the oldest bucket drops out as a whole. Sub-second lengths work.
    LastDuration {
        /// How far back the window reaches.
        length: Duration,
        /// Into how many buckets the window is split (more buckets: smoother, costlier to read).
        buckets: u32,
    },
}

impl Window {
    /// The last `calls` calls.
    pub fn last_calls(calls: u32) -> Self {
        Window::LastCalls(calls)
    }

    /// The calls of the last `length`, in ten buckets.
    pub fn last(length: Duration) -> Self {
        Window::LastDuration {
            length,
            buckets: 10,
        }
    }

    /// The calls of the last `length`, in `buckets` buckets.
    pub fn last_in_buckets(length: Duration, buckets: u32) -> Self {
        Window::LastDuration { length, buckets }
    }

    pub(crate) fn validate(&self, setting: &'static str) -> Result<(), ConfigError> {
        match *self {
            Window::LastCalls(0) => Err(ConfigError::new(
                setting,
                self,
                "a window of at least 1 call",
            )),
            Window::LastCalls(calls) if calls > MAX_WINDOW_CALLS => Err(ConfigError::new(
                setting,
                self,
                format!("a window of at most {MAX_WINDOW_CALLS} calls (MAX_WINDOW_CALLS)"),
            )),
            Window::LastCalls(_) => Ok(()),
            Window::LastDuration { buckets: 0, .. } => {
                Err(ConfigError::new(setting, self, "at least 1 bucket"))
            }
            Window::LastDuration { buckets, .. } if buckets > MAX_BUCKETS => Err(ConfigError::new(
                setting,
                self,
                format!("at most {MAX_BUCKETS} buckets (MAX_BUCKETS)"),
            )),
            Window::LastDuration { length, buckets } => {
                if length.is_zero() {
                    Err(ConfigError::new(setting, self, "a window longer than zero"))
                } else if nanos(length) / u64::from(buckets) == 0 {
                    Err(ConfigError::new(
                        setting,
                        self,
                        "buckets of at least 1ns (fewer buckets or a longer window)",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    pub(crate) fn max_calls(&self) -> Option<u32> {
        match *self {
            Window::LastCalls(n) => Some(n),
            Window::LastDuration { .. } => None,
        }
    }
}

/// Counts in a window at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WindowCounts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

/// The live state of a [`Window`].
#[derive(Debug)]
pub(crate) enum WindowState {
    /// Shared with the breaker's success path (see `Core::record_success`).
    Count(std::sync::Arc<CountRing>),
    /// Shared with the breaker's success path too.
    Time(std::sync::Arc<TimeBuckets>),
}

impl WindowState {
    /// `judge_at`: the rate policy's `min_calls`, the number of calls at
    /// which a count window is first judged (see [`CountRing::judge_at`]).
    pub(crate) fn new(window: Window, judge_at: u32) -> Self {
        match window {
            // Clamped as well as validated: a window is only built from a
            // checked configuration, and the clamp keeps the allocation and
            // the bucket index within their bounds even so.
            Window::LastCalls(n) => WindowState::Count(std::sync::Arc::new(
                CountRing::new(n.clamp(1, MAX_WINDOW_CALLS)).judged_at(judge_at),
            )),
            Window::LastDuration { length, buckets } => WindowState::Time(std::sync::Arc::new(
                TimeBuckets::new(length, buckets.clamp(1, MAX_BUCKETS)),
            )),
        }
    }

    pub(crate) fn record(&self, failed: bool, slow: bool, at: Duration) -> WindowCounts {
        match self {
            WindowState::Count(ring) => ring.record(failed, slow),
            WindowState::Time(buckets) => buckets.record(failed, slow, at),
        }
    }

    pub(crate) fn counts(&self, at: Duration) -> WindowCounts {
        match self {
            WindowState::Count(ring) => ring.counts(),
            WindowState::Time(buckets) => buckets.counts(at),
        }
    }

    /// The counts, read to judge the window: a time window that holds no
    /// failure or slow call any more is marked clean (its successes then
    /// stop asking to be judged).
    pub(crate) fn judged_counts(&self, at: Duration) -> WindowCounts {
        match self {
            WindowState::Count(ring) => ring.counts(),
            WindowState::Time(buckets) => buckets.judged_counts(at),
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            WindowState::Count(ring) => ring.reset(),
            WindowState::Time(buckets) => buckets.reset(),
        }
    }

    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, WindowState::Time(_))
    }

    /// The count ring, for the fast success path.
    pub(crate) fn ring(&self) -> Option<&std::sync::Arc<CountRing>> {
        match self {
            WindowState::Count(ring) => Some(ring),
            WindowState::Time(_) => None,
        }
    }

    /// The time buckets, for the fast success path.
    pub(crate) fn buckets(&self) -> Option<&std::sync::Arc<TimeBuckets>> {
        match self {
            WindowState::Time(buckets) => Some(buckets),
            WindowState::Count(_) => None,
        }
    }
}

/// The last `size` outcomes as two bit rings (failed, slow) plus running counts.
///
/// The cursor is advanced with a plain load and store, not an atomic
/// addition: under concurrent calls two of them may land in the same slot, so
/// the window then approximates the last `size` calls. The counts stay exact
/// for the bits in the ring, because bits change with atomic operations.
#[derive(Debug)]
pub(crate) struct CountRing {
    size: u32,
    cursor: AtomicU32,
    filled: AtomicU32,
    failed_bits: Box<[AtomicU64]>,
    slow_bits: Box<[AtomicU64]>,
    failures: AtomicU32,
    slow: AtomicU32,
    /// The fill at which a success must be judged: the rate policy's
    /// `min_calls`. Once a window is judgeable, a success can never raise
    /// its rate (it replaces a success, a failure, or nothing), so the one
    /// success that can change the verdict is the one that makes the window
    /// judgeable.
    judge_at: u32,
}

impl CountRing {
    fn new(size: u32) -> Self {
        let words = (size as usize).div_ceil(64);
        Self {
            size,
            cursor: AtomicU32::new(0),
            filled: AtomicU32::new(0),
            failed_bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            slow_bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
            failures: AtomicU32::new(0),
            slow: AtomicU32::new(0),
            judge_at: u32::MAX,
        }
    }

    /// The same ring, judged from `min_calls` calls on.
    fn judged_at(mut self, min_calls: u32) -> Self {
        self.judge_at = min_calls;
        self
    }

    /// Takes the next slot: its word index and bit mask.
    #[inline]
    fn advance(&self) -> (usize, u64) {
        let slot = self.cursor.load(Ordering::Relaxed);
        let next = if slot + 1 >= self.size { 0 } else { slot + 1 };
        self.cursor.store(next, Ordering::Relaxed);
        let filled = self.filled.load(Ordering::Relaxed);
        if filled < self.size {
            self.filled.store(filled + 1, Ordering::Relaxed);
        }
        let slot = slot.min(self.size - 1);
        ((slot / 64) as usize, 1u64 << (slot % 64))
    }

    fn record(&self, failed: bool, slow: bool) -> WindowCounts {
        let (word, mask) = self.advance();
        let failures = set_bit(&self.failed_bits[word], mask, failed, &self.failures);
        let slow_count = set_bit(&self.slow_bits[word], mask, slow, &self.slow);
        WindowCounts {
            calls: u64::from(self.filled.load(Ordering::Relaxed)),
            failures: u64::from(failures),
            slow: u64::from(slow_count),
        }
    }

    /// A fast success: clear the slot's bits if they are set. Returns
    /// whether the window must be judged now (see [`judge_at`](Self::judge_at)).
    ///
    /// While the ring holds no failure and no slow call, every slot is
    /// alike, so the cursor need not move: only the fill count grows. (A
    /// failure recorded later still leaves the ring exactly `size` calls
    /// after it, since the cursor then walks over every slot once.) Such a
    /// ring has a rate of zero: no success can trip it.
    #[inline(always)]
    pub(crate) fn record_success(&self) -> bool {
        if self.failures.load(Ordering::Relaxed) == 0 && self.slow.load(Ordering::Relaxed) == 0 {
            self.grow();
            return false;
        }
        self.success_over_failures()
    }

    /// [`record_success`](Self::record_success) for a breaker that does not
    /// time its runs: no slow bit is ever set, so only failures are looked at.
    #[inline(always)]
    pub(crate) fn record_untimed_success(&self) -> bool {
        debug_assert_eq!(
            self.slow.load(Ordering::Relaxed),
            0,
            "slow bits without timing"
        );
        if self.failures.load(Ordering::Relaxed) == 0 {
            self.grow();
            return false;
        }
        self.success_over_failures()
    }

    /// Whether a success changes nothing at all: the ring is full and holds
    /// no failure (and, when runs are timed, no slow call). The steady state
    /// of a healthy service, checked before anything else.
    #[inline(always)]
    pub(crate) fn success_is_a_no_op(&self) -> bool {
        self.failures.load(Ordering::Relaxed) == 0
            && self.filled.load(Ordering::Relaxed) >= self.size
    }

    /// One more call in a ring whose slots are all alike (see `record_success`).
    #[inline(always)]
    fn grow(&self) {
        let filled = self.filled.load(Ordering::Relaxed);
        if filled < self.size {
            self.filled.store(filled + 1, Ordering::Relaxed);
        }
    }

    /// A success while the ring holds failures or slow calls: it takes the
    /// next slot and clears it. Out of line, so that the clean case above
    /// inlines into the call.
    #[inline(never)]
    fn success_over_failures(&self) -> bool {
        let (word, mask) = self.advance();
        if self.failed_bits[word].load(Ordering::Relaxed) & mask != 0 {
            set_bit(&self.failed_bits[word], mask, false, &self.failures);
        }
        if self.slow_bits[word].load(Ordering::Relaxed) & mask != 0 {
            set_bit(&self.slow_bits[word], mask, false, &self.slow);
        }
        self.filled.load(Ordering::Relaxed) == self.judge_at
    }

    fn counts(&self) -> WindowCounts {
        WindowCounts {
            calls: u64::from(self.filled.load(Ordering::Relaxed)),
            failures: u64::from(self.failures.load(Ordering::Relaxed)),
            slow: u64::from(self.slow.load(Ordering::Relaxed)),
        }
    }

    fn reset(&self) {
        for word in self.failed_bits.iter().chain(self.slow_bits.iter()) {
            word.store(0, Ordering::Relaxed);
        }
        self.failures.store(0, Ordering::Relaxed);
        self.slow.store(0, Ordering::Relaxed);
        self.cursor.store(0, Ordering::Relaxed);
        self.filled.store(0, Ordering::Relaxed);
    }
}

/// Sets or clears `mask` in `word`, keeping `count` equal to the number of set
/// bits, and returns the count after the change.
fn set_bit(word: &AtomicU64, mask: u64, value: bool, count: &AtomicU32) -> u32 {
    // Skip the write when the bit already holds the value: on the happy path
    // (no failures) this keeps the ring read-only.
    let current = word.load(Ordering::Relaxed) & mask != 0;
    if current == value {
        return count.load(Ordering::Relaxed);
    }
    let before = if value {
        word.fetch_or(mask, Ordering::Relaxed)
    } else {
        word.fetch_and(!mask, Ordering::Relaxed)
    };
    let was_set = before & mask != 0;
    match (was_set, value) {
        (false, true) => count.fetch_add(1, Ordering::Relaxed).saturating_add(1),
        (true, false) => {
            let previous = count.fetch_sub(1, Ordering::Relaxed);
            previous.saturating_sub(1)
        }
        _ => count.load(Ordering::Relaxed),
    }
}

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
    /// `last_slice`); never reused.
    id: u64,
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
    fn new(length: Duration, buckets: u32) -> Self {
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
            // Under loom every model thread shares one thread-local stripe
            // index, so rows would have two writers: the cells are modelled
            // on their own instead (tests/loom.rs).
            striped: if cfg!(loom) {
                None
            } else {
                StripedSuccesses::new(buckets as usize, OWNED_STRIPES)
            },
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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
    fn judged_counts(&self, at: Duration) -> WindowCounts {
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

    /// [`record_success`](Self::record_success) on a built-in clock: `now`
    /// is the clock's reading, `origin` its start. A thread's second and
    /// later successes in the same slice go straight to its cell (see
    /// `last_slice`); the first one finds the slice and remembers its span.
    #[inline]
    pub(crate) fn record_success_at<P: Reading>(&self, now: P, origin: P) -> bool {
        let Some(striped) = &self.striped else {
            return self.record_success(Duration::from_nanos(now.nanos_since(origin)));
        };
        let Some(row) = owned_stripe() else {
            return self.record_success(Duration::from_nanos(now.nanos_since(origin)));
        };
        if let Some(last) = last_slice::recall(self.id, now)
            && last.row == row
            && striped.add_again(last.cell, last.tag)
        {
            return self.may_hold_failures();
        }
        let (slice, index) = self.slot_at_nanos(now.nanos_since(origin));
        match striped.add_at(row, slice, index) {
            Some((cell, tag)) => {
                if let Some((start, end)) = self.span(origin, slice) {
                    last_slice::remember(last_slice::Remembered {
                        window: self.id,
                        start,
                        end,
                        row,
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

    fn record(&self, failed: bool, slow: bool, at: Duration) -> WindowCounts {
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

    fn counts(&self, at: Duration) -> WindowCounts {
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

    fn reset(&self) {
        if let Some(striped) = &self.striped {
            striped.reset();
        }
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
    fn count_ring_keeps_the_last_n() {
        let ring = CountRing::new(3);
        ring.record(true, false);
        ring.record(true, false);
        let c = ring.record(false, false);
        assert_eq!((c.calls, c.failures), (3, 2));
        let c = ring.record(false, false); // pushes out the first failure
        assert_eq!((c.calls, c.failures), (3, 1));
        let c = ring.record(false, true);
        assert_eq!((c.calls, c.failures, c.slow), (3, 0, 1));
    }

    #[test]
    fn successes_on_a_clean_ring_keep_a_failure_for_exactly_size_calls() {
        let ring = CountRing::new(4);
        ring.record_success();
        ring.record_success();
        assert_eq!(ring.counts().calls, 2);
        for _ in 0..10 {
            ring.record_success();
        }
        assert_eq!(ring.counts().calls, 4, "full");
        assert_eq!(ring.record(true, false).failures, 1);
        for _ in 0..3 {
            ring.record_success();
            assert_eq!(ring.counts().failures, 1, "still among the last 4");
        }
        ring.record_success();
        assert_eq!(
            ring.counts().failures,
            0,
            "the 4th call after it pushes it out"
        );

        // While filling.
        let ring = CountRing::new(4);
        ring.record_success();
        ring.record(true, false);
        for _ in 0..3 {
            ring.record_success();
            assert_eq!(ring.counts().failures, 1);
        }
        ring.record_success();
        assert_eq!(
            ring.counts(),
            WindowCounts {
                calls: 4,
                failures: 0,
                slow: 0
            }
        );
    }

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
