use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::lock;
use super::{Clock, Sleep};

/// A [`Clock`] on `std::time::Instant`, for code that runs without tokio.
///
/// Its sleeps are served by one process-wide timer thread, started the first
/// time a sleep is needed. Without the `tokio` feature it is the default
/// clock; with it, prefer `TokioClock`, or give the
/// breaker a clock on your own runtime's timer.
#[derive(Debug, Clone, Copy)]
pub struct StdClock {
    pub(super) origin: Instant,
}

impl StdClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let state = Arc::new(SleepState::default());
        if duration.is_zero() {
            state.fire();
        } else {
            timer().schedule(Instant::now() + duration, Arc::clone(&state));
        }
        Box::pin(ThreadSleep { state })
    }
}

/// Completion flag and waker of one sleep, shared with whatever fires it.
#[derive(Debug, Default)]
pub(super) struct SleepState {
    done: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl SleepState {
    pub(super) fn fire(&self) {
        self.done.store(true, Ordering::Release);
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }

    pub(super) fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *lock(&self.waker) = Some(cx.waker().clone());
        // Fired between the first check and storing the waker: don't miss it.
        if self.done.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[derive(Debug)]
pub(super) struct ThreadSleep {
    pub(super) state: Arc<SleepState>,
}

impl Future for ThreadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.state.poll(cx)
    }
}

struct Entry {
    at: Instant,
    seq: u64,
    state: Arc<SleepState>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Timer {
    queue: Mutex<(u64, BinaryHeap<Reverse<Entry>>)>,
    changed: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::default());
        std::thread::Builder::new()
            .name("tripswitch-timer".into())
            .spawn(move || timer.run())
            .expect("tripswitch: could not start the timer thread");
        timer
    })
}

impl Timer {
    fn schedule(&self, at: Instant, state: Arc<SleepState>) {
        let mut queue = lock(&self.queue);
        queue.0 += 1;
        let seq = queue.0;
        queue.1.push(Reverse(Entry { at, seq, state }));
        drop(queue);
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut queue = lock(&self.queue);
        loop {
            let now = Instant::now();
            while queue.1.peek().is_some_and(|Reverse(e)| e.at <= now) {
                if let Some(Reverse(entry)) = queue.1.pop() {
                    entry.state.fire();
                }
            }
            queue = match queue.1.peek() {
                Some(Reverse(next)) => {
                    let wait = next.at.saturating_duration_since(now);
                    match self.changed.wait_timeout(queue, wait) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
                None => match self.changed.wait(queue) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                },
            };
        }
    }
}
