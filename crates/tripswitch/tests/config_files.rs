//! Breakers and registries from configuration files (feature `serde`,
//! issue 18 point 10): TOML and JSON, the same checks and messages as code.
#![cfg(all(feature = "serde", not(loom)))]

use std::time::Duration;

use tripswitch::config::{BreakerConfig, RegistryConfig};
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{CircuitBreaker, State};

fn fail(breaker: &CircuitBreaker) {
    let _ = futures::executor::block_on(breaker.execute(|| async { Err::<(), _>("down") }));
}

#[tokio::test(start_paused = true)]
async fn a_toml_file_builds_the_breaker_it_describes() {
    let config: BreakerConfig = toml::from_str(
        r#"
        name = "payments"
        consecutive_failures = 2
        open_for = "30s"
        half_open = { probes = 1, max_duration = "10s" }
        fail_fast = true
        "#,
    )
    .unwrap();
    let breaker = config.build().unwrap();
    assert_eq!(breaker.name(), Some("payments"));
    fail(&breaker);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "two failures trip it, not one"
    );
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().retry_after, Some(Duration::from_secs(30)));
    assert!(breaker.try_acquire().is_err(), "fail fast");
}

#[test]
fn json_and_toml_read_alike() {
    let json: BreakerConfig = serde_json::from_str(
        r#"{"name": "a", "failure_rate": {"threshold": 0.5, "last": "1m", "min_calls": 10}, "max_wait": 0.25}"#,
    )
    .unwrap();
    let toml: BreakerConfig = toml::from_str(
        "name = \"a\"\nfailure_rate = { threshold = 0.5, last = 60, min_calls = 10 }\nmax_wait = \"250ms\"\n",
    )
    .unwrap();
    assert_eq!(
        format!("{:?}", json.builder().unwrap()),
        format!("{:?}", toml.builder().unwrap())
    );
}

#[test]
fn an_empty_file_is_the_seed_preset() {
    let config: BreakerConfig = toml::from_str("").unwrap();
    assert_eq!(
        format!("{:?}", config.builder().unwrap()),
        format!("{:?}", CircuitBreaker::builder())
    );
}

#[test]
fn a_bad_value_gets_the_message_code_gets() {
    let config: BreakerConfig =
        toml::from_str("failure_rate = { threshold = 1.5, last_calls = 10 }").unwrap();
    let from_file = config.build().unwrap_err();
    let from_code = CircuitBreaker::builder()
        .failure_rate(FailureRate::new(1.5, Window::last_calls(10)))
        .try_build()
        .unwrap_err();
    assert_eq!(from_file, from_code);
    assert_eq!(from_file.setting(), "failure_rate.threshold");
}

#[test]
fn wrong_combinations_and_unknown_keys_are_refused() {
    let both: BreakerConfig =
        toml::from_str("open_for = \"5s\"\nbackoff = { initial = \"1s\", max = \"60s\" }").unwrap();
    assert_eq!(both.build().unwrap_err().setting(), "open_for");

    let window: BreakerConfig =
        toml::from_str("failure_rate = { threshold = 0.5, last_calls = 10, last = \"1m\" }")
            .unwrap();
    assert_eq!(window.build().unwrap_err().setting(), "failure_rate.window");

    let preset: BreakerConfig = toml::from_str("preset = \"aggressive\"").unwrap();
    assert_eq!(preset.build().unwrap_err().setting(), "preset");

    let typo = toml::from_str::<BreakerConfig>("consecutive_failure = 5").unwrap_err();
    assert!(typo.to_string().contains("consecutive_failure"), "{typo}");

    let unit = toml::from_str::<BreakerConfig>("open_for = \"5 parsecs\"").unwrap_err();
    assert!(unit.to_string().contains("unknown unit"), "{unit}");
}

#[cfg(feature = "http")]
#[test]
fn the_http_client_preset_is_a_preset_name() {
    let config: BreakerConfig = toml::from_str("preset = \"http_client\"").unwrap();
    let breaker = config.build().unwrap();
    for _ in 0..5 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), State::Open);
    assert!(breaker.try_acquire().is_err());
}

#[test]
fn a_registry_from_a_file_names_breakers_by_key_and_overrides_per_key() {
    let config: RegistryConfig = toml::from_str(
        r#"
        max_breakers = 16
        evict_idle_after = "10m"
        [defaults]
        consecutive_failures = 3
        fail_fast = true
        [breakers."fragile:443"]
        consecutive_failures = 1
        fail_fast = true
        [breakers."named:443"]
        name = "the named one"
        "#,
    )
    .unwrap();
    let registry = config.build().unwrap();
    let ordinary = registry.get(&"api:443".to_string());
    let fragile = registry.get(&"fragile:443".to_string());
    assert_eq!(ordinary.name(), Some("api:443"));
    assert_eq!(fragile.name(), Some("fragile:443"));
    assert_eq!(
        registry.get(&"named:443".to_string()).name(),
        Some("the named one")
    );
    fail(&ordinary);
    fail(&fragile);
    assert_eq!(ordinary.state(), State::Closed);
    assert_eq!(fragile.state(), State::Open);
}

#[test]
fn a_registry_file_is_checked_when_built() {
    let config: RegistryConfig =
        toml::from_str("max_breakers = 4\n[breakers.\"x\"]\nconsecutive_failures = 0\n").unwrap();
    let error = config.build().unwrap_err();
    assert_eq!(error.setting(), "consecutive_failures");
}

/// The half-open windows of issue 17 (rule 3) from a file: gobreaker's
/// budget and Resilience4j's rate judge, checked as code checks them.
#[test]
fn half_open_budgets_and_rate_judges_come_from_files() {
    let config: BreakerConfig = toml::from_str(
        r#"
        preset = "standard"
        consecutive_failures = 1
        open_for = "5s"
        half_open = { probes = 4, failure_rate = 0.5 }
        "#,
    )
    .unwrap();
    let clock = tripswitch::clock::FakeClock::new();
    let breaker = config.builder().unwrap().clock(clock.clone()).build();
    breaker.try_acquire().unwrap().failure(&"down");
    clock.advance(Duration::from_secs(5));
    breaker.try_acquire().unwrap().failure(&"still flaky");
    for _ in 0..3 {
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(breaker.state(), State::Closed, "F, S, S, S at 50% closes");

    let refused = |text: &str| {
        toml::from_str::<BreakerConfig>(text)
            .unwrap()
            .build()
            .unwrap_err()
            .setting()
    };
    assert_eq!(
        refused("half_open = { probes = 3, budget = 2 }"),
        "half_open.budget"
    );
    assert_eq!(
        refused("half_open = { probes = 3, slow_call_rate = 0.5 }"),
        "half_open.slow_call_rate"
    );
}
