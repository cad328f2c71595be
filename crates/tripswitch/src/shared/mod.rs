//! The seam for state shared by a fleet of processes.
//!
//! A service usually runs as several replicas, each with its own breaker for
//! the same dependency. A shared store (such as the `tripswitch-redis`
//! crate) lets them act as one breaker without putting the store on the
//! call path:
//!
//! - the store is told of every transition of the local breaker through
//!   [`SharedState::transitioned`] (a trip, a probe's result, a period that
//!   ran out), and reads outcome counts from [`SharedControl::counts`];
//! - it steers the local breaker with a [`SharedControl`]: open it for the
//!   fleet's open period, hand it the fleet's half-open probes, close it.
//!
//! Calls keep using the local breaker's atomics only: a closed breaker costs
//! the same with a store attached. Transitions made through
//! [`SharedControl`] have the reason [`TransitionReason::Shared`](crate::events::TransitionReason::Shared), and are
//! reported to the store too (it can tell them apart by that reason).
//!
//! Manual states win: a forced-open, disabled or metrics-only breaker is not
//! moved by the store.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tripswitch::shared::SharedState;
//! use tripswitch::events::TransitionReason;
//! use tripswitch::{CircuitBreaker, State};
//!
//! struct Print;
//! impl SharedState for Print {
//!     fn transitioned(&self, from: State, to: State, reason: TransitionReason) {
//!         println!("{from} -> {to}: {reason}");
//!     }
//! }
//!
//! let breaker = CircuitBreaker::builder().shared_state(Arc::new(Print)).build();
//! let control = breaker.shared_control();
//! // Another replica tripped: this one opens for the fleet's open period.
//! assert!(control.hold_open(Duration::from_secs(30)));
//! assert!(breaker.is_frozen());
//! // The fleet closed again.
//! assert!(control.close());
//! assert!(!breaker.is_frozen());
//! ```

mod control;
pub(crate) mod hook;

pub use control::SharedControl;
pub use hook::SharedState;
