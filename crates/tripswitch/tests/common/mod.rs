//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};

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
