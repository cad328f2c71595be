//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tripswitch::clock::{Clock, Sleep};
use tripswitch::events::{Event, EventKind, TransitionReason};
use tripswitch::{CircuitBreaker, Error, State};

/// A failure the tests' operations return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boom(pub &'static str);

/// Runs one successful call.
pub async fn succeed(breaker: &CircuitBreaker) -> Result<u32, Error<Boom>> {
    breaker.execute(|| async { Ok::<u32, Boom>(1) }).await
}

/// Runs one failing call.
pub async fn fail(breaker: &CircuitBreaker) -> Result<u32, Error<Boom>> {
    breaker
        .execute(|| async { Err::<u32, Boom>(Boom("down")) })
        .await
}

/// What listeners saw, in order, as short strings.
#[derive(Clone, Default)]
pub struct Recorder {
    pub seen: Arc<Mutex<Vec<String>>>,
    pub transitions: Arc<Mutex<Vec<(State, State, TransitionReason)>>>,
}

impl Recorder {
    pub fn listener(&self) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
        let this = self.clone();
        move |event| {
            let line = match event.kind() {
                EventKind::Transition { from, to, reason } => {
                    this.transitions.lock().unwrap().push((*from, *to, *reason));
                    format!("{from}->{to}")
                }
                EventKind::Success { .. } => "success".to_string(),
                EventKind::Failure { error, .. } => format!("failure {error:?}"),
                EventKind::Ignored { error } => format!("ignored {error:?}"),
                EventKind::Slow { .. } => "slow".to_string(),
                EventKind::Rejected { reason } => format!("rejected {reason:?}"),
                _ => "other".to_string(),
            };
            this.seen.lock().unwrap().push(line);
        }
    }

    pub fn transitions(&self) -> Vec<(State, State)> {
        self.transitions
            .lock()
            .unwrap()
            .iter()
            .map(|(f, t, _)| (*f, *t))
            .collect()
    }

    pub fn reasons(&self) -> Vec<TransitionReason> {
        self.transitions
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, r)| *r)
            .collect()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.starts_with(prefix))
            .count()
    }
}

/// A clock whose time is set by hand and whose sleeps never end: the
/// harshest case of a timer that never fires (its runtime idle or gone).
/// Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct DeafClock(Arc<AtomicU64>);

impl DeafClock {
    /// Moves the time on by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for DeafClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(std::future::pending())
    }
}

/// A current-thread tokio runtime with its timer, started with time paused.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused current-thread runtime")
}
