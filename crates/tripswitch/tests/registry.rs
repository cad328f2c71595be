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
