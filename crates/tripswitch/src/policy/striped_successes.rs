//! Successes of a time window, counted per thread so that a success needs no
//! locked instruction.
//!
//! A time window's buckets are shared by every thread; counting a success in
//! one would be an atomic addition on a contended cache line, the most
//! expensive step of a time-window call after the clock read. Instead each
//! thread that owns a counter stripe (see `metrics::owned_stripe`) has a row
//! of cells, one per bucket, that only it writes: a success there is a plain
//! load and store. Threads without a stripe, and failures, still count in
//! the shared buckets; readers add the two.
//!
//! A cell holds a tag (the time slice it counts, and the window's epoch, so
//! that a reset invalidates every cell without writing to them) and a count.
//! The owner changes the tag like a sequence lock: it clears the tag, writes
//! the count, then writes the new tag; a reader takes a count only when it
//! read the same, expected tag before and after it. Counts are exact: a
//! reader sees a cell's count for the slice it asks about, or nothing when
//! the cell holds another slice.

use crate::loom::{AtomicU64, OnceLock, Ordering, fence};

/// Cells per 128-byte line (two cache lines, the unit adjacent-line
/// prefetching pulls in together): each cell is two words.
const CELLS_PER_LINE: usize = 8;

/// At most this many buckets get per-thread cells (8 rows of 64 buckets is
/// 8 KiB); windows with more buckets count every call in the shared buckets.
pub(crate) const MAX_STRIPED_BUCKETS: usize = 64;

/// Slices must fit under the epoch in a tag.
const SLICE_BITS: u32 = 40;

/// The bits of an epoch that a tag holds (24).
const EPOCH_MASK: u64 = (1 << (u64::BITS - SLICE_BITS)) - 1;

/// One bucket's successes, as counted by one thread.
#[derive(Debug, Default)]
struct Cell {
    /// `epoch << SLICE_BITS | slice`; 0 while the owner rewrites the cell.
    tag: AtomicU64,
    count: AtomicU64,
}

/// A cache line of cells, so that rows of different threads never share one.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Line([Cell; CELLS_PER_LINE]);

/// Per-thread success counts for the buckets of one time window.
///
/// A thread's row is allocated on its first success in the window: a
/// window counted by one thread holds one row (two 128-byte lines for up to
/// 16 buckets) instead of one per possible thread. The trade-off: one
/// allocation on each new thread's first success, kept until the window is
/// dropped.
#[derive(Debug)]
pub(crate) struct StripedSuccesses {
    buckets: usize,
    /// Lines per thread's row.
    row_lines: usize,
    /// Each thread's row, allocated on first use by that thread (the row's
    /// only writer); read by anyone through `OnceLock::get`, whose acquire
    /// pairs with the allocation's publication.
    rows: Box<[OnceLock<Box<[Line]>>]>,
    /// Bumped by [`reset`](Self::reset): cells of an older epoch count nothing.
    epoch: AtomicU64,
}

impl StripedSuccesses {
    /// Cells for `buckets` buckets and `rows` threads, or `None` when the
    /// window has too many buckets to be worth the memory.
    pub(crate) fn new(buckets: usize, rows: usize) -> Option<Self> {
        if buckets == 0 || buckets > MAX_STRIPED_BUCKETS {
            return None;
        }
        let row_lines = buckets.div_ceil(CELLS_PER_LINE);
        Some(Self {
            buckets,
            row_lines,
            rows: (0..rows).map(|_| OnceLock::new()).collect(),
            epoch: AtomicU64::new(0),
        })
    }

    /// Bucket `index`'s cell in `row`, if the row exists.
    #[inline(always)]
    fn cell(&self, row: usize, index: usize) -> Option<&Cell> {
        let line = self.rows.get(row)?.get()?.get(index / CELLS_PER_LINE)?;
        line.0.get(index % CELLS_PER_LINE)
    }

    /// Bucket `index`'s cell in `row`, allocating the row (by its owner).
    fn own_cell(&self, row: usize, index: usize) -> Option<&Cell> {
        let lines = self
            .rows
            .get(row)?
            .get_or_init(|| (0..self.row_lines).map(|_| Line::default()).collect());
        lines
            .get(index / CELLS_PER_LINE)?
            .0
            .get(index % CELLS_PER_LINE)
    }

    fn tag(&self, slice: u64) -> Option<u64> {
        (slice < 1 << SLICE_BITS)
            .then(|| self.epoch.load(Ordering::Relaxed) << SLICE_BITS | slice)
            .filter(|&tag| tag != 0)
    }

    /// Counts a success in `slice` (bucket `index`) in `row`, which only
    /// the calling thread writes. Returns false when it could not (a slice
    /// too far out, a count that would overflow): then count it in the
    /// shared bucket.
    #[inline]
    pub(crate) fn add(&self, row: usize, slice: u64, index: usize) -> bool {
        self.add_at(row, slice, index).is_some()
    }

    /// [`add`](Self::add), telling where the success went: the cell's
    /// bucket index and tag, for [`add_again`](Self::add_again).
    #[inline]
    pub(crate) fn add_at(&self, row: usize, slice: u64, index: usize) -> Option<(usize, u64)> {
        let (Some(cell), Some(tag)) = (self.own_cell(row, index), self.tag(slice)) else {
            return None;
        };
        if cell.tag.load(Ordering::Relaxed) == tag {
            return increment(cell).then_some((index, tag));
        }
        // The cell moves to a new slice (or epoch): clear the tag first, so
        // that no reader pairs the new count with the old tag.
        cell.tag.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        cell.count.store(1, Ordering::Relaxed);
        cell.tag.store(tag, Ordering::Release);
        Some((index, tag))
    }

    /// Counts one more success in bucket `index`'s cell of `row` (the
    /// calling thread's own, as [`add_at`](Self::add_at) returned it), if
    /// it still holds `tag`. False when it moved on: then go the long way.
    ///
    /// The epoch is not checked: the caller vouches that `tag` is of the
    /// current one (a window renews its id at each reset, and a thread's
    /// memory of an older id is never used: see `TimeBuckets::id`).
    #[inline(always)]
    pub(crate) fn add_again(&self, row: usize, index: usize, tag: u64) -> bool {
        let Some(cell) = self.cell(row, index) else {
            return false;
        };
        cell.tag.load(Ordering::Relaxed) == tag && increment(cell)
    }

    /// Successes counted in cells for `slice` (bucket `index`), every row.
    pub(crate) fn count(&self, slice: u64, index: usize) -> u64 {
        let Some(expected) = self.tag(slice) else {
            return 0;
        };
        (0..self.rows.len())
            .filter_map(|row| self.cell(row, index))
            .map(|cell| read(cell, expected))
            .sum()
    }

    /// Forgets every count, by a new epoch: cells of an older one count
    /// nothing (their owners may be writing them right now, so they are
    /// left alone).
    ///
    /// A tag holds the epoch's low 24 bits: every 2^24th reset they go
    /// round, and a cell left from 2^24 resets ago would count again. That
    /// reset also clears every cell's tag (review 23). A success counted at
    /// that moment may be lost with them, as it may be by any reset it
    /// races with.
    pub(crate) fn reset(&self) {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if epoch & EPOCH_MASK == 0 {
            self.clear_every_tag();
        }
    }

    /// Sets every allocated cell's tag to 0 (a cell that counts nothing).
    #[cold]
    #[inline(never)]
    fn clear_every_tag(&self) {
        for row in self.rows.iter().filter_map(OnceLock::get) {
            for cell in row.iter().flat_map(|line| line.0.iter()) {
                cell.tag.store(0, Ordering::Release);
            }
        }
    }

    /// How many buckets this covers.
    pub(crate) fn buckets(&self) -> usize {
        self.buckets
    }
}

/// One more success in a cell whose tag is right, by its only writer.
#[inline(always)]
fn increment(cell: &Cell) -> bool {
    let count = cell.count.load(Ordering::Relaxed);
    if count == u64::MAX {
        return false;
    }
    // Single writer: a plain increment.
    cell.count.store(count + 1, Ordering::Release);
    true
}

/// A cell's count if it holds `expected`, read consistently.
fn read(cell: &Cell, expected: u64) -> u64 {
    loop {
        if cell.tag.load(Ordering::Acquire) != expected {
            return 0;
        }
        let count = cell.count.load(Ordering::Acquire);
        fence(Ordering::Acquire);
        if cell.tag.load(Ordering::Relaxed) == expected {
            return count;
        }
        // The owner moved the cell on while it was read: look again (the
        // cell now holds another slice, so this ends at once).
        crate::loom::spin_loop();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_slices_and_rows_and_a_reset_forgets_them() {
        let cells = StripedSuccesses::new(10, 3).expect("10 buckets");
        for _ in 0..5 {
            assert!(cells.add(0, 1, 1));
        }
        assert!(cells.add(2, 1, 1));
        assert_eq!(cells.count(1, 1), 6);
        // Slice 11 reuses bucket 1: the old slice's counts are gone from it.
        assert!(cells.add(0, 11, 1));
        assert_eq!(cells.count(11, 1), 1);
        assert_eq!(cells.count(1, 1), 1, "row 2 still holds slice 1");
        cells.reset();
        assert_eq!(cells.count(11, 1), 0);
        assert_eq!(cells.count(1, 1), 0);
        assert!(cells.add(0, 11, 1));
        assert_eq!(cells.count(11, 1), 1);
    }

    #[test]
    fn a_cell_from_before_the_epoch_went_round_counts_nothing() {
        let cells = StripedSuccesses::new(2, 2).expect("2 buckets");
        for _ in 0..5 {
            assert!(cells.add(0, 1, 1));
        }
        assert!(cells.add(1, 1, 0));
        for reset in 1..=(EPOCH_MASK + 1) {
            cells.reset();
            if reset % (1 << 22) == 0 || reset >= EPOCH_MASK {
                assert_eq!(cells.count(1, 1), 0, "after {reset} resets");
                assert_eq!(cells.count(1, 0), 0, "after {reset} resets");
            }
        }
        assert!(cells.add(0, 1, 1));
        assert_eq!(cells.count(1, 1), 1);
    }

    #[test]
    fn too_many_buckets_or_slices_fall_back_to_the_shared_buckets() {
        assert!(StripedSuccesses::new(MAX_STRIPED_BUCKETS + 1, 8).is_none());
        let cells = StripedSuccesses::new(4, 1).expect("4 buckets");
        assert!(!cells.add(0, 1 << SLICE_BITS, 0));
        assert!(!cells.add(1, 1, 0), "no such row");
    }
}
