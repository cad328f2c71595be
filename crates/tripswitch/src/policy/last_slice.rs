//! Each thread remembers where its last success in a time window went: the
//! span of time of that success's slice and the per-thread cell that counts
//! it. The next success in the same window and the same span goes straight
//! to that cell: two comparisons of instants instead of the clock
//! arithmetic (an `Instant` subtraction, a conversion to nanoseconds, the
//! slice lookup) that finds the slice from scratch.
//!
//! The span is exact: slice `s` of a window whose clock started at `origin`
//! is `[origin + (s - 1) * bucket, origin + s * bucket)`, so an instant in
//! the remembered span is in the remembered slice, whatever clock it came
//! from (tokio's paused clock included: the instant compared is the one the
//! breaker's clock just gave).

use std::cell::Cell;
use std::time::Instant;

/// Windows remembered per thread (direct-mapped by window id), so that a
/// thread serving a few time-window breakers in turn does not forget each
/// one as it moves to the next.
const WAYS: usize = 4;

/// Where a thread's last success in one window went.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Remembered {
    /// The window's id (`TimeBuckets::id`, never reused).
    pub(crate) window: u64,
    /// The slice's span on the breaker's clock: `start <= now < end`.
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    /// The stripe row the cell belongs to (the thread's own).
    pub(crate) row: usize,
    /// The cell, by its index among the window's cells.
    pub(crate) cell: usize,
    /// The tag the cell held then (window epoch and slice).
    pub(crate) tag: u64,
}

thread_local! {
    // Const, and without a destructor: reading it is one thread-relative load.
    static LAST: [Cell<Option<Remembered>>; WAYS] = const { [const { Cell::new(None) }; WAYS] };
}

/// The cell and tag of `window`'s slice holding `now`, if this thread
/// remembers it.
#[inline]
pub(crate) fn recall(window: u64, now: Instant) -> Option<Remembered> {
    LAST.with(|ways| {
        let last = ways[way(window)].get()?;
        (last.window == window && last.start <= now && now < last.end).then_some(last)
    })
}

/// Remembers where this thread's success in a window went.
pub(crate) fn remember(last: Remembered) {
    LAST.with(|ways| ways[way(last.window)].set(Some(last)));
}

fn way(window: u64) -> usize {
    (window % WAYS as u64) as usize
}

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
            row: 0,
            cell: 3,
            tag: 42,
        });
        assert_eq!(recall(7, at(100)).map(|r| (r.cell, r.tag)), Some((3, 42)));
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
            row: 0,
            cell: 0,
            tag: 1,
        });
        assert!(recall(7, at(150)).is_some());
        assert!(recall(8, at(150)).is_some());
    }
}
