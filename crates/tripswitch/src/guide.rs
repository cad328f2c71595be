//! # The tripswitch guide
//!
//! ## The seed preset
//!
//! [`CircuitBreaker::new()`](crate::CircuitBreaker::new) and a fresh
//! [`builder`](crate::CircuitBreaker::builder) behave exactly like the
//! Python `CircuitBreaker` this crate started from:
//!
//! - one failure freezes the breaker, for 5 seconds or until the future of
//!   the freeze function completes;
//! - calls made while it is frozen wait, then run;
//! - a failing call waits out the freeze and runs its operation once more;
//! - that retry, and calls released from a freeze, are not counted;
//! - `on_error` sees each counted failure; `is_frozen` tells the state.
//!
//! It improves on the seed where the seed is broken: a freeze function that
//! panics ends the freeze instead of freezing the breaker forever, and a
//! cancelled call never leaves the breaker stuck.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! use std::time::Duration;
//! use tripswitch::CircuitBreaker;
//!
//! let breaker = CircuitBreaker::builder()
//!     .freeze_with(|| tokio::time::sleep(Duration::from_secs(10)))
//!     .on_error(|e| println!("error occurred: {e:?}"))
//!     .build();
//! # let _ = breaker;
//! # }
//! ```
