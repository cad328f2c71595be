use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{BoxError, Classify};
use crate::OwnedPermit;

pin_project! {
    /// The response future of [`CircuitBreakerService`](super::CircuitBreakerService):
    /// the inner call, whose outcome is recorded on the permit when it completes.
    ///
    /// Dropped before completion, it records nothing and frees its half-open slot.
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        permit: Option<OwnedPermit>,
        classify: C,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn new(inner: F, permit: Option<OwnedPermit>, classify: C) -> Self {
        Self {
            inner,
            permit,
            classify,
        }
    }
}

impl<F, C, Response, Error> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response, Error>>,
    Error: Into<BoxError>,
    C: Classify<Response, Error>,
{
    type Output = Result<Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(permit) = this.permit.take() {
            permit.record(this.classify.classify(&result));
        }
        Poll::Ready(result.map_err(Into::into))
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
