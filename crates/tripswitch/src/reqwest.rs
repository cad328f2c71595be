//! reqwest integration (feature `reqwest`): a
//! [`reqwest_middleware::Middleware`] that puts a breaker (or a breaker per
//! host) in front of a reqwest client.
//!
//! ```no_run
//! use reqwest_middleware::ClientBuilder;
//! use tripswitch::{CircuitBreaker, Registry};
//! use tripswitch::reqwest::CircuitBreakerMiddleware;
//!
//! let client = ClientBuilder::new(reqwest_middleware::reqwest::Client::new())
//!     .with(CircuitBreakerMiddleware::per_host(Registry::new(256, |host: &String| {
//!         CircuitBreaker::builder().name(host.as_str()).consecutive_failures(5).fail_fast()
//!             .try_build().expect("valid settings")
//!     })))
//!     .build();
//! # drop(client);
//! ```
//!
//! Responses with a 5xx status and transport errors are failures. A call the
//! breaker refuses fails with [`reqwest_middleware::Error::Middleware`]
//! wrapping a [`Rejected`](crate::Rejected) (reach it with `downcast_ref`).

use http::Extensions;
use reqwest_middleware::reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next, Result};

use crate::{CircuitBreaker, Outcome, Registry};

/// Guards a reqwest client with one breaker, or one per host.
#[derive(Debug, Clone)]
pub struct CircuitBreakerMiddleware {
    breakers: Breakers,
}

#[derive(Debug, Clone)]
enum Breakers {
    One(CircuitBreaker),
    PerHost(Registry<String>),
}

impl CircuitBreakerMiddleware {
    /// Every request goes through `breaker`.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self {
            breakers: Breakers::One(breaker),
        }
    }

    /// Each request goes through the breaker of its `host:port`, from `registry`.
    pub fn per_host(registry: Registry<String>) -> Self {
        Self {
            breakers: Breakers::PerHost(registry),
        }
    }

    fn breaker_for(&self, request: &Request) -> CircuitBreaker {
        match &self.breakers {
            Breakers::One(breaker) => breaker.clone(),
            Breakers::PerHost(registry) => {
                let url = request.url();
                let key = match (url.host_str(), url.port_or_known_default()) {
                    (Some(host), Some(port)) => format!("{host}:{port}"),
                    (Some(host), None) => host.to_owned(),
                    _ => String::new(),
                };
                registry.get(&key)
            }
        }
    }
}

#[async_trait::async_trait]
impl Middleware for CircuitBreakerMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let permit = self
            .breaker_for(&request)
            .acquire_owned()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let result = next.run(request, extensions).await;
        permit.record(match &result {
            Ok(response) if response.status().is_server_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        });
        result
    }
}
