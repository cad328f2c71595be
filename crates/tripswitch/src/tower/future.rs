use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{Classify, OnRejected};
use crate::{OwnedPermit, Rejected};

pin_project! {
    /// The response future of [`CircuitBreakerService`](super::CircuitBreakerService):
    /// either the inner call, whose outcome is recorded on the permit when it
    /// completes, or the answer to a rejection (see [`OnRejected`]).
    ///
    /// Dropped before completion, it records nothing and frees its half-open slot.
    pub struct ResponseFuture<F, C, R> {
        #[pin]
        kind: Kind<F>,
        classify: C,
        reject: R,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called {
            #[pin]
            inner: F,
            permit: Option<OwnedPermit>,
        },
        Rejected {
            rejected: Rejected,
        },
    }
}

impl<F, C, R> ResponseFuture<F, C, R> {
    pub(crate) fn called(inner: F, permit: OwnedPermit, classify: C, reject: R) -> Self {
        Self {
            kind: Kind::Called {
                inner,
                permit: Some(permit),
            },
            classify,
            reject,
        }
    }

    pub(crate) fn rejected(rejected: Rejected, classify: C, reject: R) -> Self {
        Self {
            kind: Kind::Rejected { rejected },
            classify,
            reject,
        }
    }
}

impl<F, C, R, Response, Error> Future for ResponseFuture<F, C, R>
where
    F: Future<Output = Result<Response, Error>>,
    C: Classify<Response, Error>,
    R: OnRejected<Response, Error>,
{
    type Output = Result<Response, R::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Called { inner, permit } => {
                let result = ready!(inner.poll(cx));
                if let Some(permit) = permit.take() {
                    this.classify.record(permit, &result);
                }
                Poll::Ready(result.map_err(|e| this.reject.inner_error(e)))
            }
            KindProj::Rejected { rejected } => Poll::Ready(this.reject.rejected(rejected.clone())),
        }
    }
}

impl<F, C, R> std::fmt::Debug for ResponseFuture<F, C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
