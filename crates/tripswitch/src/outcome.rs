//! How a call's result counts.

use std::fmt;

/// How a finished call counts for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call counts as a success.
    Success,
    /// The call counts as a failure.
    Failure,
    /// The call counts as neither (and frees its half-open slot).
    Ignored,
}

/// What `on_error` and listeners see for a result classified without an
/// error value (an `Ok` value classified as a failure, say).
pub(crate) struct ClassifiedOk;

impl fmt::Debug for ClassifiedOk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a result classified as a failure")
    }
}
