//! A breaker per key: made on first use, bounded, idle ones evicted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::{CircuitBreaker, Registry};

fn counting_registry(max: usize) -> (Registry<String>, Arc<AtomicU32>) {
    let made = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&made);
    let registry = Registry::new(max, move |key: &String| {
        counter.fetch_add(1, Ordering::SeqCst);
        CircuitBreaker::builder()
            .name(key.as_str())
            .fail_fast()
            .build()
    });
    (registry, made)
}

#[test]
fn one_breaker_per_key_made_on_first_use() {
    let (registry, made) = counting_registry(10);
    let a = registry.get(&"a".to_string());
    let a_again = registry.get(&"a".to_string());
    let b = registry.get(&"b".to_string());
    assert_eq!(made.load(Ordering::SeqCst), 2);
    a.force_open();
    assert!(a_again.is_frozen());
    assert!(!b.is_frozen());
    assert_eq!(b.name(), Some("b"));
}

#[test]
fn the_least_recently_used_breaker_makes_room() {
    let (registry, made) = counting_registry(2);
    registry.get(&"a".to_string());
    registry.get(&"b".to_string());
    registry.get(&"a".to_string()); // a is now more recent than b
    registry.get(&"c".to_string()); // evicts b
    assert_eq!(registry.len(), 2);
    registry.get(&"a".to_string());
    assert_eq!(made.load(Ordering::SeqCst), 3, "a was kept");
    registry.get(&"b".to_string());
    assert_eq!(
        made.load(Ordering::SeqCst),
        4,
        "b was evicted and made again"
    );
}

#[test]
fn idle_breakers_are_evicted() {
    let clock = FakeClock::new();
    let made = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&made);
    let registry = Registry::builder(100, move |key: &String| {
        counter.fetch_add(1, Ordering::SeqCst);
        CircuitBreaker::builder().name(key.as_str()).build()
    })
    .evict_idle_after(Duration::from_secs(60))
    .clock(clock.clone())
    .build();
    registry.get(&"a".to_string());
    clock.advance(Duration::from_secs(59));
    registry.get(&"a".to_string());
    assert_eq!(made.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(61));
    registry.get(&"a".to_string());
    assert_eq!(
        made.load(Ordering::SeqCst),
        2,
        "idle for more than a minute: a fresh breaker"
    );
    // Sweeps drop idle keys that are never looked up again.
    for i in 0..200 {
        registry.get(&format!("k{i}"));
    }
    clock.advance(Duration::from_secs(120));
    for _ in 0..64 {
        registry.get(&"fresh".to_string());
    }
    assert!(registry.len() <= 2, "{} breakers left", registry.len());
}

#[test]
fn breakers_are_named_by_their_key_unless_the_factory_names_them() {
    let by_key = Registry::new(8, |_: &String| {
        CircuitBreaker::builder().fail_fast().build()
    });
    assert_eq!(
        by_key.get(&"orders:443".to_string()).name(),
        Some("orders:443")
    );
    // A name in the factory wins.
    let named = Registry::new(8, |key: &String| {
        CircuitBreaker::builder()
            .name(format!("upstream {key}"))
            .build()
    });
    assert_eq!(named.get(&"a".to_string()).name(), Some("upstream a"));
    // Keys of any Display type; rejections name the breaker.
    let numbered = Registry::new(8, |_: &u16| CircuitBreaker::builder().fail_fast().build());
    let shard = numbered.get(&7);
    shard.force_open();
    let rejected = shard.try_acquire().unwrap_err();
    assert!(rejected.to_string().contains("\"7\""), "{rejected}");
    // Or as `name_by` says.
    let custom = Registry::builder(8, |_: &String| CircuitBreaker::new())
        .name_by(|key| format!("host={key}"))
        .build();
    assert_eq!(custom.get(&"x".to_string()).name(), Some("host=x"));
}

#[test]
fn the_key_name_goes_to_the_factorys_breaker_only() {
    // A factory that builds a helper breaker after its own: the helper is
    // not named by the key (the name goes to the first breaker built).
    let helpers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&helpers);
    let registry = Registry::new(8, move |_: &String| {
        let breaker = CircuitBreaker::builder().fail_fast().build();
        kept.lock().unwrap().push(CircuitBreaker::new());
        breaker
    });
    assert_eq!(registry.get(&"k".to_string()).name(), Some("k"));
    assert_eq!(helpers.lock().unwrap()[0].name(), None);
    // Nor does it outlive the factory: a breaker built afterwards on the
    // same thread is unnamed.
    assert_eq!(CircuitBreaker::new().name(), None);

    // A factory that uses another registry: each breaker gets its own key.
    let inner = Registry::new(8, |_: &String| CircuitBreaker::new());
    let inner_for_factory = inner.clone();
    let outer = Registry::new(8, move |key: &String| {
        let _ = inner_for_factory.get(&format!("inner-{key}"));
        CircuitBreaker::new()
    });
    assert_eq!(outer.get(&"o".to_string()).name(), Some("o"));
    assert_eq!(
        inner.peek(&"inner-o".to_string()).unwrap().name(),
        Some("inner-o")
    );

    // A factory that panics leaves no name behind.
    let panicking = Registry::new(8, |_: &String| -> CircuitBreaker { panic!("factory") });
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        panicking.get(&"p".to_string())
    }));
    assert!(caught.is_err());
    assert_eq!(CircuitBreaker::new().name(), None);
}
