//! A breaker per key (per host, per endpoint, per tenant), made on first use
//! from one configuration, bounded in size, with idle breakers evicted.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::CircuitBreaker;
use crate::clock::{Clock, default_clock};

/// Breakers by key, created on first use by one factory.
///
/// It holds at most `max_breakers` breakers: making room for a new key evicts
/// the least recently used one. With
/// [`RegistryBuilder::evict_idle_after`], breakers unused for that long are
/// dropped as well (checked as keys are looked up, no background task). An evicted breaker that is still in use
/// elsewhere keeps working; the next lookup of its key starts a fresh one.
///
/// Cloning a registry shares it.
///
/// **Names.** Each breaker is named by its key (its `Display` form), so
/// that its events, rejections, logs and exported metrics say which key it
/// guards, unless the factory names it (`.name(..)` on its builder) or
/// [`RegistryBuilder::name_by`] says otherwise. The name goes to the
/// first unnamed breaker the factory builds, when the factory calls
/// `build()` / `try_build()`.
///
/// ```
/// use tripswitch::{CircuitBreaker, Registry};
///
/// let registry = Registry::new(1_000, |_: &String| CircuitBreaker::standard().build());
/// let a = registry.get(&"api.example.com".to_string());
/// let b = registry.get(&"api.example.com".to_string());
/// a.force_open();
/// assert!(b.is_frozen()); // the same breaker
/// assert_eq!(registry.len(), 1);
/// assert_eq!(a.name(), Some("api.example.com")); // named by its key
/// ```
pub struct Registry<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    factory: Box<dyn Fn(&K) -> CircuitBreaker + Send + Sync>,
    /// The name a key's breaker gets unless its factory names it.
    name: Box<dyn Fn(&K) -> String + Send + Sync>,
    max_breakers: usize,
    idle_after: Option<Duration>,
    clock: Arc<dyn Clock>,
    map: Mutex<Map<K>>,
}

struct Map<K> {
    entries: HashMap<K, Entry>,
    tick: u64,
    lookups: u64,
}

struct Entry {
    breaker: CircuitBreaker,
    /// Lookup counter value when last used (for least-recently-used eviction).
    used_tick: u64,
    /// Clock time when last used (for idle eviction).
    used_at: Duration,
}

impl<K> Clone for Registry<K> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: Eq + Hash + Clone + fmt::Display> Registry<K> {
    /// A registry of at most `max_breakers` breakers (at least one), each
    /// made by `factory` on its key's first use and named by its key
    /// unless the factory names it.
    pub fn new(
        max_breakers: usize,
        factory: impl Fn(&K) -> CircuitBreaker + Send + Sync + 'static,
    ) -> Self {
        Self::builder(max_breakers, factory).build()
    }

    /// Settings beyond the size: idle eviction and the clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tripswitch::{CircuitBreaker, Registry};
    ///
    /// let registry = Registry::builder(1_000, |_: &String| CircuitBreaker::new())
    ///     .evict_idle_after(Duration::from_secs(600))
    ///     .build();
    /// # drop(registry);
    /// ```
    pub fn builder(
        max_breakers: usize,
        factory: impl Fn(&K) -> CircuitBreaker + Send + Sync + 'static,
    ) -> RegistryBuilder<K> {
        RegistryBuilder {
            shared: Shared {
                factory: Box::new(factory),
                name: Box::new(|key: &K| key.to_string()),
                max_breakers: max_breakers.max(1),
                idle_after: None,
                clock: default_clock(),
                map: Mutex::new(Map {
                    entries: HashMap::new(),
                    tick: 0,
                    lookups: 0,
                }),
            },
        }
    }
}

impl<K: Eq + Hash + Clone> Registry<K> {
    /// The breaker for `key`, made now if there is none.
    ///
    /// No user code runs under the registry's lock: the factory runs with
    /// the lock released (so it may use this registry), and breakers that
    /// are evicted are dropped after it is released. If two threads make
    /// the same key's breaker at once, the first one stored wins and both
    /// get it.
    pub fn get(&self, key: &K) -> CircuitBreaker {
        let now = self.shared.clock.now();
        let mut evicted = Vec::new();
        {
            let mut map = self.lock();
            map.tick += 1;
            map.lookups += 1;
            let tick = map.tick;
            if let Some(idle) = self.shared.idle_after
                && map.lookups.is_multiple_of(64)
            {
                evicted.extend(map.take_idle(now, idle));
            }
            if let Some(breaker) = map.fresh(key, tick, now, self.shared.idle_after, &mut evicted) {
                drop(map);
                drop(evicted);
                return breaker;
            }
        }
        drop(evicted);

        // The factory is user code: it runs without the lock.
        let made = {
            let _naming = crate::key_name::KeyName::offer((self.shared.name)(key));
            (self.shared.factory)(key)
        };

        let mut evicted = Vec::new();
        let breaker = {
            let mut map = self.lock();
            map.tick += 1;
            let tick = map.tick;
            match map.fresh(key, tick, now, self.shared.idle_after, &mut evicted) {
                // Another thread stored one meanwhile: the first one wins.
                Some(breaker) => breaker,
                None => {
                    if map.entries.len() >= self.shared.max_breakers {
                        evicted.extend(map.take_least_recently_used());
                    }
                    map.entries.insert(
                        key.clone(),
                        Entry {
                            breaker: made.clone(),
                            used_tick: tick,
                            used_at: now,
                        },
                    );
                    made.clone()
                }
            }
        };
        drop(evicted);
        drop(made);
        breaker
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map<K>> {
        self.shared
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many breakers it holds now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether it holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash + Clone> Map<K> {
    /// The breaker stored for `key` if it is still fresh (marked used now);
    /// a stale one is moved to `evicted`.
    fn fresh(
        &mut self,
        key: &K,
        tick: u64,
        now: Duration,
        idle_after: Option<Duration>,
        evicted: &mut Vec<CircuitBreaker>,
    ) -> Option<CircuitBreaker> {
        let entry = self.entries.get_mut(key)?;
        if idle_after.is_none_or(|idle| now.saturating_sub(entry.used_at) < idle) {
            entry.used_tick = tick;
            entry.used_at = now;
            return Some(entry.breaker.clone());
        }
        if let Some(stale) = self.entries.remove(key) {
            evicted.push(stale.breaker);
        }
        None
    }

    /// Takes out every breaker unused for `idle`.
    fn take_idle(&mut self, now: Duration, idle: Duration) -> Vec<CircuitBreaker> {
        let stale: Vec<K> = self
            .entries
            .iter()
            .filter(|(_, entry)| now.saturating_sub(entry.used_at) >= idle)
            .map(|(key, _)| key.clone())
            .collect();
        stale
            .iter()
            .filter_map(|key| self.entries.remove(key))
            .map(|entry| entry.breaker)
            .collect()
    }

    /// Takes out the least recently used breaker.
    fn take_least_recently_used(&mut self) -> Option<CircuitBreaker> {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, entry)| entry.used_tick)
            .map(|(key, _)| key.clone())?;
        self.entries.remove(&oldest).map(|entry| entry.breaker)
    }
}

/// Builds a [`Registry`] with more than a size and a factory.
#[must_use = "a builder does nothing until it is built"]
pub struct RegistryBuilder<K> {
    shared: Shared<K>,
}

impl<K: Eq + Hash + Clone> RegistryBuilder<K> {
    /// Drop breakers that nobody looked up for `idle` (checked as keys are
    /// looked up; no background task).
    pub fn evict_idle_after(mut self, idle: Duration) -> Self {
        self.shared.idle_after = Some(idle);
        self
    }

    /// Name each breaker `name(key)` instead of by its key's `Display`
    /// form (a factory that names its breaker still wins).
    ///
    /// ```
    /// use tripswitch::{CircuitBreaker, Registry};
    ///
    /// let registry = Registry::builder(64, |_: &String| CircuitBreaker::new())
    ///     .name_by(|host| format!("upstream {host}"))
    ///     .build();
    /// assert_eq!(registry.get(&"db:5432".to_string()).name(), Some("upstream db:5432"));
    /// ```
    pub fn name_by(mut self, name: impl Fn(&K) -> String + Send + Sync + 'static) -> Self {
        self.shared.name = Box::new(name);
        self
    }

    /// The clock idle times are measured on (default: the breakers' default clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.shared.clock = Arc::new(clock);
        self
    }

    /// The registry.
    pub fn build(self) -> Registry<K> {
        Registry {
            shared: Arc::new(self.shared),
        }
    }
}

impl<K> fmt::Debug for RegistryBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("max_breakers", &self.shared.max_breakers)
            .field("idle_after", &self.shared.idle_after)
            .finish_non_exhaustive()
    }
}

impl<K> fmt::Debug for Registry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("max_breakers", &self.shared.max_breakers)
            .field("idle_after", &self.shared.idle_after)
            .finish_non_exhaustive()
    }
}

// Introspection, for health endpoints and dashboards (issue 18 point 9).
impl<K: Eq + Hash + Clone> Registry<K> {
    /// The breaker for `key` if the registry holds one, without making one
    /// and without counting as a use (a health check does not keep an idle
    /// breaker alive, nor evict another).
    pub fn peek(&self, key: &K) -> Option<CircuitBreaker> {
        let now = self.shared.clock.now();
        let map = self
            .shared
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entries.get(key)?;
        let fresh = self
            .shared
            .idle_after
            .is_none_or(|idle| now.saturating_sub(entry.used_at) < idle);
        fresh.then(|| entry.breaker.clone())
    }

    /// Each breaker the registry holds now, with its key, name and
    /// [`Metrics`](crate::Metrics) (which include its state), in no
    /// particular order. Nothing is made or counted as used; the metrics
    /// are read after the registry's lock is released.
    pub fn snapshot(&self) -> Vec<BreakerSnapshot<K>> {
        let now = self.shared.clock.now();
        let breakers: Vec<(K, CircuitBreaker)> = {
            let map = self
                .shared
                .map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.entries
                .iter()
                .filter(|(_, entry)| {
                    self.shared
                        .idle_after
                        .is_none_or(|idle| now.saturating_sub(entry.used_at) < idle)
                })
                .map(|(key, entry)| (key.clone(), entry.breaker.clone()))
                .collect()
        };
        breakers
            .into_iter()
            .map(|(key, breaker)| BreakerSnapshot {
                key,
                name: breaker.name().map(str::to_owned),
                metrics: breaker.metrics(),
            })
            .collect()
    }
}

/// One breaker of a [`Registry::snapshot`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BreakerSnapshot<K> {
    /// Its key in the registry.
    pub key: K,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its state and counts when the snapshot was taken.
    pub metrics: crate::Metrics,
}
