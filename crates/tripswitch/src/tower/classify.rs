use crate::Outcome;

/// Decides how a response (or error) of the inner service counts.
///
/// Implemented by closures `Fn(&Result<Response, Error>) -> Outcome`.
pub trait Classify<Response, Error> {
    /// How this result counts for the breaker.
    fn classify(&self, result: &Result<Response, Error>) -> Outcome;
}

impl<F, Response, Error> Classify<Response, Error> for F
where
    F: Fn(&Result<Response, Error>) -> Outcome,
{
    fn classify(&self, result: &Result<Response, Error>) -> Outcome {
        self(result)
    }
}

/// The default: every `Ok` is a success, every `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct EveryErr;

impl<Response, Error> Classify<Response, Error> for EveryErr {
    fn classify(&self, result: &Result<Response, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// HTTP (feature `http`): responses with a 5xx status are failures (a 503
/// storm opens the breaker), other responses succeed, and errors (refused
/// connections, timeouts) are failures.
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerErrors;

#[cfg(feature = "http")]
impl<B, Error> Classify<http::Response<B>, Error> for ServerErrors {
    fn classify(&self, result: &Result<http::Response<B>, Error>) -> Outcome {
        match result {
            Ok(response) if response.status().is_server_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}
