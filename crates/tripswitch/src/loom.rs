//! The one place the crate takes its synchronisation primitives from (named
//! `loom`, as tokio names its own shim).
//!
//! Under `--cfg loom` the primitives come from loom so that the model checker
//! sees every atomic access and lock; otherwise they are `std`'s. Locks never
//! wedge the breaker through poisoning: [`lock`] takes the guard even when a
//! previous holder panicked, because no code path leaves the guarded data
//! half-updated across a call that could panic.

#[cfg(loom)]
pub(crate) use ::loom::hint::spin_loop;
#[cfg(loom)]
pub(crate) use ::loom::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use ::loom::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use std::sync::Weak;

#[cfg(not(loom))]
pub(crate) use std::hint::spin_loop;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, Weak};

/// A cell written once: `std`'s.
#[cfg(not(loom))]
pub(crate) use std::sync::OnceLock;

/// A cell written once, under loom: `std`'s cell, published through loom's
/// primitives so that the model sees the initialiser's writes (the atomics
/// it creates) happen before any use of the value. Initialised under a
/// loom lock (so a second caller waits where loom sees it wait), then
/// published with a release store that [`get`](OnceLock::get) acquires.
#[cfg(loom)]
pub(crate) struct OnceLock<T> {
    ready: AtomicBool,
    init: Mutex<()>,
    cell: std::sync::OnceLock<T>,
}

#[cfg(loom)]
impl<T> OnceLock<T> {
    pub(crate) fn new() -> Self {
        Self {
            ready: AtomicBool::new(false),
            init: Mutex::new(()),
            cell: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        if self.ready.load(Ordering::Acquire) {
            self.cell.get()
        } else {
            None
        }
    }

    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let _guard = lock(&self.init);
        let value = self.cell.get_or_init(init);
        self.ready.store(true, Ordering::Release);
        value
    }
}

#[cfg(loom)]
impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(loom)]
impl<T: std::fmt::Debug> std::fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OnceLock").field(&self.get()).finish()
    }
}

/// A value of the breaker allocated on its first use, for state that most
/// breakers never need (the queue of waiting calls, the freeze slot, the
/// counts at the last transition): a breaker that is never tripped, waited
/// on or frozen keeps a 16-byte cell instead of the value. Dereferencing
/// allocates it if needed (once; it is kept from then on); [`get`](Lazy::get)
/// reads it without allocating.
pub(crate) struct Lazy<T>(OnceLock<Box<T>>);

impl<T> Lazy<T> {
    pub(crate) fn new() -> Self {
        Lazy(OnceLock::new())
    }

    /// The value, if it was allocated.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        self.0.get().map(|value| &**value)
    }
}

impl<T: Default> std::ops::Deref for Lazy<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.get_or_init(Box::default)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Lazy").field(&self.get()).finish()
    }
}

/// Locks `mutex`, ignoring poisoning (see the module docs for why that is sound here).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// `thread_local!` with const initialisers (one thread-relative load, no
/// lazy initialisation); under loom, loom's, so that each model thread has
/// its own, as each OS thread does (loom runs its threads on one OS thread).
macro_rules! thread_local_const {
    ($($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;)*) => {
        #[cfg(not(loom))]
        std::thread_local! { $($(#[$attr])* static $name: $t = const { $init };)* }
        #[cfg(loom)]
        ::loom::thread_local! { $($(#[$attr])* static $name: $t = $init;)* }
    };
}
pub(crate) use thread_local_const;

/// The key of a [`thread_local_const`] value.
#[cfg(loom)]
pub(crate) use ::loom::thread::LocalKey;
#[cfg(not(loom))]
pub(crate) use std::thread::LocalKey;
