//! The name a [`Registry`](crate::Registry) offers the breaker its
//! factory builds: the factory runs on the registry's thread, and
//! [`Builder`](crate::Builder) takes the offer when it builds an unnamed
//! breaker. A module of its own so that the builder does not import the
//! registry (which imports the breaker, which imports the builder).

use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    /// The name a registry offers the breaker its factory is building on
    /// this thread (see [`take`]).
    static KEY_NAME: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The key's name, offered while a registry's factory runs on this thread;
/// the previous offer (a factory that uses another registry) comes back
/// when it ends, on unwinding too. Nothing is offered on a thread whose
/// thread-locals are being destroyed.
pub(crate) struct KeyName {
    previous: Option<Option<Arc<str>>>,
}

impl KeyName {
    pub(crate) fn offer(name: String) -> Self {
        Self {
            previous: KEY_NAME
                .try_with(|offered| offered.replace(Some(name.into())))
                .ok(),
        }
    }
}

impl Drop for KeyName {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = KEY_NAME.try_with(|offered| *offered.borrow_mut() = previous);
        }
    }
}

/// For [`Builder`](crate::Builder): the name a registry offers the breaker
/// being built in its factory on this thread, taken by the first unnamed
/// breaker built there.
pub(crate) fn take() -> Option<Arc<str>> {
    KEY_NAME
        .try_with(|offered| offered.borrow_mut().take())
        .ok()
        .flatten()
}
