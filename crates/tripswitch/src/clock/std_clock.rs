use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::lock;
use super::sleepers::{Sleepers, ThreadSleep};
use super::{Clock, Sleep};

/// A [`Clock`] on `std::time::Instant`, for code that runs without tokio.
///
/// Its sleeps are served by one process-wide timer thread, started the first
/// time a sleep is needed. A sleep that is dropped before it ends is taken
/// off that thread's queue at once. A sleep whose end is past what
/// `Instant` can represent never ends (it does not panic). Without the
/// `tokio` feature it is the default clock; with it, prefer
/// `TokioClock`, or give the breaker a clock on your
/// own runtime's timer.
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
        thread_sleep(duration)
    }
}

/// A sleep served by the process-wide timer thread, whatever runtime (or
/// none) polls it.
pub(crate) fn thread_sleep(duration: Duration) -> Sleep {
    if duration.is_zero() {
        return Box::pin(ThreadSleep::<Instant>::done());
    }
    let (Some(at), Some(timer)) = (Instant::now().checked_add(duration), timer()) else {
        // Past the end of time, or no timer thread could be started.
        return Box::pin(ThreadSleep::<Instant>::never());
    };
    let sleep = ThreadSleep::queued(&timer.sleepers, at);
    timer.changed.notify_one();
    Box::pin(sleep)
}

struct Timer {
    sleepers: Arc<Mutex<Sleepers<Instant>>>,
    changed: Condvar,
}

static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();

/// The timer thread, started on first use; `None` if the system refused a
/// thread (then sleeps never end by themselves, and an error is logged once).
fn timer() -> Option<&'static Timer> {
    *TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            sleepers: Arc::default(),
            changed: Condvar::new(),
        }));
        match std::thread::Builder::new()
            .name("tripswitch-timer".into())
            .spawn(move || timer.run())
        {
            Ok(_) => Some(timer),
            Err(error) => {
                crate::events::trace(|| tracing::error!(
                    %error,
                    "tripswitch: could not start the timer thread; StdClock sleeps will not end by themselves"
                ));
                None
            }
        }
    })
}

impl Timer {
    fn run(&self) {
        let mut sleepers = lock(&self.sleepers);
        loop {
            let due = sleepers.take_due(Instant::now());
            if !due.is_empty() {
                drop(sleepers);
                due.iter().for_each(|state| state.fire());
                sleepers = lock(&self.sleepers);
                continue;
            }
            sleepers = match sleepers.next() {
                Some(next) => {
                    let wait = next.saturating_duration_since(Instant::now());
                    match self.changed.wait_timeout(sleepers, wait) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    }
                }
                None => match self.changed.wait(sleepers) {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                },
            };
        }
    }
}
