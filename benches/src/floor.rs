//! The least a circuit breaker can do around an async call, written only to
//! measure it: the `closed-consecutive/floor` case.
//!
//! One load of a state word before the call, and after a success one load
//! of the count of consecutive failures. Nothing else: no metrics, no
//! generation (a late result lands in whatever state the breaker is in), no
//! accounting for cancelled or panicking calls, no waiting, a rejection
//! without a reason. It is not a usable breaker; its cost over the bare call
//! is what any wrapper that can refuse a call pays in this harness.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

/// The floor breaker's state: zero is closed.
#[derive(Debug, Default)]
pub struct Floor {
    state: AtomicU64,
    failures: AtomicU32,
}

impl Floor {
    /// `future` through the floor breaker.
    pub fn call<Fut>(&self, future: Fut) -> FloorCall<'_, Fut> {
        FloorCall {
            floor: self,
            future,
        }
    }
}

pin_project_lite::pin_project! {
    /// A call through [`Floor`]: `Err(None)` is a rejection.
    #[derive(Debug)]
    pub struct FloorCall<'a, Fut> {
        floor: &'a Floor,
        #[pin]
        future: Fut,
    }
}

impl<Fut, T, E> Future for FloorCall<'_, Fut>
where
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Option<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let floor = *this.floor;
        if floor.state.load(Ordering::Acquire) != 0 {
            return Poll::Ready(Err(None));
        }
        Poll::Ready(match ready!(this.future.poll(cx)) {
            Ok(value) => {
                if floor.failures.load(Ordering::Relaxed) != 0 {
                    floor.failures.store(0, Ordering::Relaxed);
                }
                Ok(value)
            }
            Err(error) => {
                floor.failures.fetch_add(1, Ordering::Relaxed);
                Err(Some(error))
            }
        })
    }
}
