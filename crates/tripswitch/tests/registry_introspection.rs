//! Registry introspection: `peek` finds without making, `snapshot` lists
//! every breaker with its key, name and metrics (issue 18 point 9).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tripswitch::clock::FakeClock;
use tripswitch::{CircuitBreaker, Registry, State};

fn counting_registry(max: usize) -> (Registry<String>, Arc<AtomicU32>) {
    let made = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&made);
    let registry = Registry::new(max, move |key: &String| {
        counter.fetch_add(1, Ordering::SeqCst);
        CircuitBreaker::builder()
            .name(format!("svc-{key}"))
            .fail_fast()
            .build()
    });
    (registry, made)
}

#[test]
fn peek_finds_without_making() {
    let (registry, made) = counting_registry(10);
    assert!(registry.peek(&"a".to_string()).is_none());
    assert_eq!(made.load(Ordering::SeqCst), 0, "peek made nothing");
    assert!(registry.is_empty());
    let a = registry.get(&"a".to_string());
    let peeked = registry.peek(&"a".to_string()).expect("held");
    a.force_open();
    assert_eq!(peeked.state(), State::ForcedOpen, "the same breaker");
    assert_eq!(made.load(Ordering::SeqCst), 1);
}

#[test]
fn peek_does_not_count_as_a_use() {
    // Room for two: "a" is the least recently used however often it is
    // peeked, so making "c" evicts it.
    let (registry, _) = counting_registry(2);
    registry.get(&"a".to_string());
    registry.get(&"b".to_string());
    for _ in 0..10 {
        registry.peek(&"a".to_string());
    }
    registry.get(&"c".to_string());
    assert!(registry.peek(&"a".to_string()).is_none());
    assert!(registry.peek(&"b".to_string()).is_some());
}

#[test]
fn peek_and_snapshot_skip_idle_breakers() {
    let clock = FakeClock::new();
    let registry = Registry::builder(10, |key: &String| {
        CircuitBreaker::builder().name(key.as_str()).build()
    })
    .evict_idle_after(Duration::from_secs(60))
    .clock(clock.clone())
    .build();
    registry.get(&"a".to_string());
    clock.advance(Duration::from_secs(61));
    assert!(registry.peek(&"a".to_string()).is_none());
    assert!(registry.snapshot().is_empty());
}

#[test]
fn snapshot_lists_each_breaker_with_key_name_and_metrics() {
    let (registry, made) = counting_registry(10);
    assert!(registry.snapshot().is_empty());
    registry.get(&"a".to_string());
    registry.get(&"b".to_string()).force_open();
    let mut snapshot = registry.snapshot();
    snapshot.sort_by(|x, y| x.key.cmp(&y.key));
    let rows: Vec<_> = snapshot
        .iter()
        .map(|s| (s.key.as_str(), s.name.as_deref(), s.metrics.state))
        .collect();
    assert_eq!(
        rows,
        [
            ("a", Some("svc-a"), State::Closed),
            ("b", Some("svc-b"), State::ForcedOpen)
        ]
    );
    assert_eq!(made.load(Ordering::SeqCst), 2, "snapshot made nothing");
}
