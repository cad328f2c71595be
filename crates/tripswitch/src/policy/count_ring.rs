//! A count window: the last `n` calls in a ring of bits.

use super::window::WindowCounts;
use crate::loom::{AtomicU32, AtomicU64, Ordering};

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
    pub(super) fn new(size: u32) -> Self {
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
    pub(super) fn judged_at(mut self, min_calls: u32) -> Self {
        self.judge_at = min_calls;
        self
    }

    /// Takes the next slot: its word index and bit mask, and whether the
    /// fill grew to `judge_at` with it.
    #[inline]
    fn advance(&self) -> (usize, u64, bool) {
        let slot = self.cursor.load(Ordering::Relaxed);
        let next = if slot + 1 >= self.size { 0 } else { slot + 1 };
        self.cursor.store(next, Ordering::Relaxed);
        let filled = self.filled.load(Ordering::Relaxed);
        let judgeable_now = filled < self.size && {
            self.filled.store(filled + 1, Ordering::Relaxed);
            filled + 1 == self.judge_at
        };
        let slot = slot.min(self.size - 1);
        ((slot / 64) as usize, 1u64 << (slot % 64), judgeable_now)
    }

    pub(super) fn record(&self, failed: bool, slow: bool) -> WindowCounts {
        let (word, mask, _) = self.advance();
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
    ///
    /// Only the success that makes the window judgeable (its fill grows to
    /// `judge_at`) asks for a judgement: any other success replaces a
    /// success, a failure or nothing, and cannot raise the rate. (Before
    /// the eighth session every success in a full ring whose `min_calls`
    /// was its size asked, and summed the ring: 348 instructions a call at
    /// 1% failures against 121 now.)
    #[inline(never)]
    fn success_over_failures(&self) -> bool {
        let (word, mask, judgeable_now) = self.advance();
        if self.failed_bits[word].load(Ordering::Relaxed) & mask != 0 {
            set_bit(&self.failed_bits[word], mask, false, &self.failures);
        }
        if self.slow_bits[word].load(Ordering::Relaxed) & mask != 0 {
            set_bit(&self.slow_bits[word], mask, false, &self.slow);
        }
        judgeable_now
    }

    pub(super) fn counts(&self) -> WindowCounts {
        WindowCounts {
            calls: u64::from(self.filled.load(Ordering::Relaxed)),
            failures: u64::from(self.failures.load(Ordering::Relaxed)),
            slow: u64::from(self.slow.load(Ordering::Relaxed)),
        }
    }

    pub(super) fn reset(&self) {
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
    fn only_the_success_that_makes_the_window_judgeable_asks_for_a_judgement() {
        let ring = CountRing::new(4).judged_at(4);
        ring.record(true, false);
        assert!(!ring.record_success(), "2 calls");
        assert!(!ring.record_success(), "3 calls");
        assert!(ring.record_success(), "the 4th call makes it judgeable");
        // Full, with a failure in it: no success can raise the rate.
        assert!(!ring.record_success(), "pushes the failure out");
        ring.record(true, false);
        for _ in 0..8 {
            assert!(!ring.record_success());
        }
    }
}
