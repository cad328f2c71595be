//! Each thread remembers where its last success in a time window went: the
//! span of time of that success's slice and the per-thread cell that counts
//! it. The next success in the same window and the same span goes straight
//! to that cell: two comparisons of clock readings instead of the clock
//! arithmetic (an `Instant` subtraction, a conversion to nanoseconds, the
//! slice lookup) that finds the slice from scratch.
//!
//! The span is exact: slice `s` of a window whose clock started at `origin`
//! is `[origin + (s - 1) * bucket, origin + s * bucket)`, so a reading in
//! the remembered span is in the remembered slice, whatever clock it came
//! from. Both ends are compared: tokio's clock can step back on one thread
//! (a thread that leaves a paused runtime that was advanced, or enters
//! another runtime), and a success read before the span must not be
//! counted in the later slice, which is outside the window at the time it
//! was read (review 23; the end alone was compared in one commit of the
//! eleventh session).
//!
//! Readings are of two kinds, each with its own memory: `Instant`s (tokio's
//! and `std`'s clocks) and nanoseconds since the clock's origin (the
//! time-stamp-counter clock).

use crate::loom::LocalKey;
use std::cell::Cell;
use std::time::Instant;

use crate::clock::nanos;

/// Windows remembered per thread (direct-mapped by window id), so that a
/// thread serving several time-window breakers in turn does not forget each
/// one as it moves to the next. Sixteen since the eighth session: with
/// four, a thread calling eight windows in turn forgot every one of them
/// before its next call (416 instructions a call against 240 for one
/// window, the `eight-time-windows` case). The memory is per thread, static
/// thread-local storage: 16 × 56 bytes of `Instant` spans and 16 × 48 of
/// nanosecond spans (1,664 bytes a thread, checked at compile time below).
const WAYS: usize = 16;

/// Where a thread's last success in one window went.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remembered<P> {
    /// The window's id (`TimeBuckets::id`, never reused).
    pub(crate) window: u64,
    /// The slice's span on the breaker's clock: `start <= now < end`.
    pub(crate) start: P,
    pub(crate) end: P,
    /// The cell, by its bucket's index in the row.
    pub(crate) cell: u32,
    /// The tag the cell held then (window epoch and slice).
    pub(crate) tag: u64,
}

type Memory<P> = [Cell<Option<Remembered<P>>>; WAYS];

crate::loom::thread_local_const! {
    // Const, and without destructors: reading one is one thread-relative load.
    static AT_INSTANTS: Memory<Instant> = [const { Cell::new(None) }; WAYS];
    static AT_NANOS: Memory<u64> = [const { Cell::new(None) }; WAYS];
}

/// A reading of a breaker's clock that a span can be made of and compared
/// with.
pub(crate) trait Reading: Copy + PartialOrd + 'static {
    /// This thread's memory of spans of this kind of reading.
    fn memory() -> &'static LocalKey<Memory<Self>>;
    /// Nanoseconds from `origin` to this reading (zero if before it).
    fn nanos_since(self, origin: Self) -> u64;
    /// The reading `nanos` after this one, if there is one.
    fn after(self, nanos: u64) -> Option<Self>;
}

impl Reading for Instant {
    fn memory() -> &'static LocalKey<Memory<Self>> {
        &AT_INSTANTS
    }

    #[inline]
    fn nanos_since(self, origin: Self) -> u64 {
        nanos(self.saturating_duration_since(origin))
    }

    fn after(self, nanos: u64) -> Option<Self> {
        self.checked_add(std::time::Duration::from_nanos(nanos))
    }
}

/// Nanoseconds since the clock's origin (whose own reading is zero).
impl Reading for u64 {
    fn memory() -> &'static LocalKey<Memory<Self>> {
        &AT_NANOS
    }

    #[inline]
    fn nanos_since(self, origin: Self) -> u64 {
        self.saturating_sub(origin)
    }

    fn after(self, nanos: u64) -> Option<Self> {
        self.checked_add(nanos)
    }
}

/// The cell (in this thread's own row: a thread keeps its stripe, and so
/// its row, for life) and tag of `window`'s slice holding `now`, if this
/// thread remembers it.
#[inline(always)]
pub(crate) fn recall<P: Reading>(window: u64, now: P) -> Option<(u32, u64)> {
    P::memory().with(|ways| {
        let last = ways[way(window)].get()?;
        if last.window == window && last.start <= now && now < last.end {
            Some((last.cell, last.tag))
        } else {
            None
        }
    })
}

/// Remembers where this thread's success in a window went.
pub(crate) fn remember<P: Reading>(last: Remembered<P>) {
    P::memory().with(|ways| ways[way(last.window)].set(Some(last)));
}

fn way(window: u64) -> usize {
    (window % WAYS as u64) as usize
}

// The thread-local memory the docs state: 16 × 56 + 16 × 48 bytes.
const _: () = assert!(std::mem::size_of::<Option<Remembered<Instant>>>() == 56);
const _: () = assert!(std::mem::size_of::<Option<Remembered<u64>>>() == 48);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_span_is_recalled_only_for_its_window_and_its_time() {
        let origin = Instant::now();
        let at = |nanos| origin + Duration::from_nanos(nanos);
        remember(Remembered {
            window: 7,
            start: at(100),
            end: at(200),
            cell: 3,
            tag: 42,
        });
        assert_eq!(recall(7, at(100)), Some((3, 42)));
        assert!(recall(7, at(199)).is_some());
        assert!(recall(7, at(99)).is_none(), "before the span");
        assert!(
            recall(7, at(200)).is_none(),
            "the span's end is the next slice"
        );
        assert!(
            recall(11, at(150)).is_none(),
            "another window in the same way"
        );
        // Another window in another way leaves the first one remembered.
        remember(Remembered {
            window: 8,
            start: at(0),
            end: at(1_000),
            cell: 0,
            tag: 1,
        });
        assert!(recall(7, at(150)).is_some());
        assert!(recall(8, at(150)).is_some());
    }

    #[test]
    fn sixteen_windows_called_in_turn_are_all_remembered() {
        // Window ids are handed out one after another: 16 in a row take 16 ways.
        let origin = Instant::now();
        let end = origin + Duration::from_secs(1);
        for window in 1_000..1_016_u64 {
            remember(Remembered {
                window,
                start: origin,
                end,
                cell: window as u32,
                tag: 1,
            });
        }
        for window in 1_000..1_016_u64 {
            assert_eq!(
                recall(window, origin).map(|(cell, _)| cell),
                Some(window as u32),
                "window {window}"
            );
        }
    }

    #[test]
    fn nanosecond_readings_have_a_memory_of_their_own() {
        let origin = Instant::now();
        remember(Remembered {
            window: 21,
            start: origin,
            end: origin + Duration::from_nanos(100),
            cell: 1,
            tag: 5,
        });
        remember(Remembered {
            window: 21,
            start: 1_000_u64,
            end: 2_000,
            cell: 2,
            tag: 6,
        });
        assert_eq!(recall(21, 1_500_u64), Some((2, 6)));
        assert!(recall(21, 2_000_u64).is_none(), "the span's end");
        assert!(recall(21, 999_u64).is_none(), "before the span");
        assert_eq!(
            recall(21, origin + Duration::from_nanos(50)).map(|(cell, _)| cell),
            Some(1),
            "the instants' memory of the same window is untouched"
        );
    }
}
