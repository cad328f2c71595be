//! Model-based property test: random configurations and random sequences of
//! operations (successes, failures, ignored errors, held and cancelled
//! permits, time passing, manual control) run against the real breaker and
//! against a small reference model written as plainly as possible. After
//! every step they must agree on the state, the counts, the probes in
//! flight, and whether each call was let through.
//!
//! The breaker runs single-threaded here, on a fake clock, in fail-fast mode
//! (calls never wait), so every step is deterministic. Concurrency is
//! covered by the loom models and the soak test.

use std::collections::VecDeque;
use std::time::Duration;

use futures::executor::block_on;
use proptest::prelude::*;
use tripswitch::clock::FakeClock;
use tripswitch::policy::{FailureRate, SlowCallRate, Window};
use tripswitch::{CircuitBreaker, HalfOpen, OwnedPermit, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Err,
    Ignored,
    /// A success that takes longer than the slow-call threshold.
    SlowOk,
}

/// A call slower than this is slow (when the configuration has a slow-call policy).
const SLOW_AFTER_MS: u64 = 10;

#[derive(Debug)]
struct Failure {
    ignored: bool,
}

#[derive(Debug, Clone)]
struct Config {
    consecutive: Option<u32>,
    rate: Option<(f64, u32, u32)>,
    slow: Option<(f64, u32, u32)>,
    probes: u32,
    close_after: u32,
    open_ms: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Call(Outcome),
    Begin,
    Finish(usize, Outcome),
    Drop(usize),
    Advance(u64),
    ForceOpen,
    Release,
    Disable,
    MetricsOnly,
    Reset,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Ok),
        4 => Just(Outcome::Err),
        1 => Just(Outcome::Ignored),
        2 => Just(Outcome::SlowOk),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    let rate = || {
        (
            prop_oneof![Just(0.25), Just(0.5), Just(1.0)],
            1u32..8,
            1u32..8,
        )
    };
    (
        proptest::option::of(1u32..5),
        proptest::option::of(rate()),
        proptest::option::of(rate()),
        1u32..4,
        1u32..4,
        1u64..50,
    )
        .prop_map(
            |(consecutive, rate, slow, probes, close_after, open_ms)| Config {
                consecutive,
                // min_calls must not exceed the window: clamp it into range.
                rate: rate.map(|(t, size, min)| (t, size, min.min(size))),
                slow: slow.map(|(t, size, min)| (t, size, min.min(size))),
                probes,
                close_after,
                open_ms,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => outcome().prop_map(Op::Call),
        3 => Just(Op::Begin),
        3 => (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Finish(i, o)),
        1 => any::<usize>().prop_map(Op::Drop),
        4 => (0u64..60).prop_map(Op::Advance),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Release),
        1 => Just(Op::Disable),
        1 => Just(Op::MetricsOnly),
        1 => Just(Op::Reset),
    ]
}

// ----- the reference model ---------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counted,
    Probe,
    PassThrough,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    generation: u64,
    kind: Kind,
    /// When the run started on the clock (slowness is measured from here).
    started: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    successes: u64,
    failures: u64,
    ignored: u64,
    rejected: u64,
    cancelled: u64,
}

struct Model {
    config: Config,
    now: u64,
    state: State,
    generation: u64,
    consecutive: u32,
    window: VecDeque<bool>,
    slow_window: VecDeque<bool>,
    open_until: u64,
    successes: u32,
    probes: u32,
    totals: Totals,
}

impl Model {
    fn new(config: Config) -> Self {
        Self {
            config,
            now: 0,
            state: State::Closed,
            generation: 0,
            consecutive: 0,
            window: VecDeque::new(),
            slow_window: VecDeque::new(),
            open_until: 0,
            successes: 0,
            probes: 0,
            totals: Totals::default(),
        }
    }

    fn consecutive_limit(&self) -> Option<u32> {
        match (self.config.consecutive, self.config.rate, self.config.slow) {
            (None, None, None) => Some(1),
            (n, _, _) => n,
        }
    }

    fn transition(&mut self, to: State) {
        self.generation += 1;
        self.probes = 0;
        match to {
            State::Open => self.open_until = self.now + self.config.open_ms,
            State::HalfOpen => self.successes = 0,
            State::Closed | State::MetricsOnly => {
                self.consecutive = 0;
                self.window.clear();
                self.slow_window.clear();
            }
            _ => {}
        }
        self.state = to;
    }

    /// An open period whose end has passed ends when anybody looks.
    fn refresh(&mut self) {
        if self.state == State::Open && self.now >= self.open_until {
            self.transition(State::HalfOpen);
        }
    }

    fn admit(&mut self) -> Option<Held> {
        self.refresh();
        let kind = match self.state {
            State::Closed | State::MetricsOnly => Kind::Counted,
            State::Disabled => Kind::PassThrough,
            State::HalfOpen if self.probes < self.config.probes => {
                self.probes += 1;
                Kind::Probe
            }
            _ => {
                self.totals.rejected += 1;
                return None;
            }
        };
        Some(Held {
            generation: self.generation,
            kind,
            started: self.now,
        })
    }

    /// `None` for a cancelled run.
    fn record(&mut self, held: Held, outcome: Option<Outcome>) {
        if held.kind == Kind::PassThrough {
            return;
        }
        // A run is slow when it took longer than the threshold, whatever its
        // outcome (ignored and cancelled runs are not measured).
        let slow = self.config.slow.is_some()
            && matches!(outcome, Some(Outcome::Ok | Outcome::SlowOk | Outcome::Err))
            && self.now - held.started > SLOW_AFTER_MS;
        match outcome {
            Some(Outcome::Ok | Outcome::SlowOk) => self.totals.successes += 1,
            Some(Outcome::Err) => self.totals.failures += 1,
            Some(Outcome::Ignored) => self.totals.ignored += 1,
            None => self.totals.cancelled += 1,
        }
        if held.generation != self.generation {
            return;
        }
        match (held.kind, self.state) {
            (Kind::Counted, State::Closed | State::MetricsOnly) => {
                let failed = match outcome {
                    Some(Outcome::Ok | Outcome::SlowOk) => false,
                    Some(Outcome::Err) => true,
                    _ => return,
                };
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                let mut trip = failed
                    && self
                        .consecutive_limit()
                        .is_some_and(|n| self.consecutive >= n);
                if let Some((threshold, size, min_calls)) = self.config.rate {
                    self.window.push_back(failed);
                    if self.window.len() > size as usize {
                        self.window.pop_front();
                    }
                    let failures = self.window.iter().filter(|f| **f).count();
                    // Judged on every outcome (a success too), as in
                    // Resilience4j; a window without failures never trips.
                    trip |= failures > 0
                        && self.window.len() >= min_calls as usize
                        && failures as f64 / self.window.len() as f64 >= threshold;
                }
                if let Some((threshold, size, min_calls)) = self.config.slow {
                    self.slow_window.push_back(slow);
                    if self.slow_window.len() > size as usize {
                        self.slow_window.pop_front();
                    }
                    let slows = self.slow_window.iter().filter(|s| **s).count();
                    trip |= slows > 0
                        && self.slow_window.len() >= min_calls as usize
                        && slows as f64 / self.slow_window.len() as f64 >= threshold;
                }
                if trip && self.state == State::Closed {
                    self.transition(State::Open);
                }
            }
            (Kind::Probe, State::HalfOpen) => match outcome {
                // With a slow-call policy, a slow probe is a failed probe.
                Some(Outcome::Ok | Outcome::SlowOk) if slow => self.transition(State::Open),
                Some(Outcome::Ok | Outcome::SlowOk) => {
                    self.successes += 1;
                    if self.successes >= self.config.close_after {
                        self.transition(State::Closed);
                    } else {
                        self.probes -= 1;
                    }
                }
                Some(Outcome::Err) => self.transition(State::Open),
                Some(Outcome::Ignored) | None => self.probes -= 1,
            },
            _ => {}
        }
    }

    fn force(&mut self, to: State, only_from: &[State]) {
        if self.state != to && (only_from.is_empty() || only_from.contains(&self.state)) {
            self.transition(to);
        }
    }

    fn slow_call_rate(&self) -> Option<f64> {
        self.config.slow?;
        if self.slow_window.is_empty() {
            return None;
        }
        Some(self.slow_window.iter().filter(|s| **s).count() as f64 / self.slow_window.len() as f64)
    }

    fn failure_rate(&self) -> Option<f64> {
        self.config.rate?;
        if self.window.is_empty() {
            return None;
        }
        Some(self.window.iter().filter(|f| **f).count() as f64 / self.window.len() as f64)
    }
}

// ----- the real breaker --------------------------------------------------------

fn build(config: &Config, clock: &FakeClock) -> CircuitBreaker {
    let mut builder = CircuitBreaker::builder()
        .clock(clock.clone())
        .fail_fast()
        .freeze_for(Duration::from_millis(config.open_ms))
        .ignore_errors(|e: &Failure| e.ignored)
        .half_open(HalfOpen::probes(config.probes).close_after(config.close_after));
    if let Some(n) = config.consecutive {
        builder = builder.consecutive_failures(n);
    }
    if let Some((threshold, size, min_calls)) = config.rate {
        builder = builder.failure_rate(
            FailureRate::new(threshold, Window::last_calls(size)).min_calls(min_calls),
        );
    }
    if let Some((threshold, size, min_calls)) = config.slow {
        builder = builder.slow_call_rate(
            SlowCallRate::new(
                Duration::from_millis(SLOW_AFTER_MS),
                threshold,
                Window::last_calls(size),
            )
            .min_calls(min_calls),
        );
    }
    builder
        .try_build()
        .expect("the generated configuration is valid")
}

fn run_outcome(outcome: Outcome) -> Result<(), Failure> {
    match outcome {
        Outcome::Ok | Outcome::SlowOk => Ok(()),
        Outcome::Err => Err(Failure { ignored: false }),
        Outcome::Ignored => Err(Failure { ignored: true }),
    }
}

fn finish(permit: OwnedPermit, outcome: Outcome) {
    match run_outcome(outcome) {
        Ok(()) => permit.success(),
        Err(error) => permit.failure(&error),
    }
}

fn check(
    model: &mut Model,
    breaker: &CircuitBreaker,
    step: usize,
    op: &Op,
) -> Result<(), TestCaseError> {
    model.refresh();
    let metrics = breaker.metrics();
    let context = format!("after step {step} ({op:?})");
    prop_assert_eq!(metrics.state, model.state, "state {}", context);
    let totals = metrics.totals;
    prop_assert_eq!(
        (
            totals.successes,
            totals.failures,
            totals.ignored,
            totals.rejected,
            totals.cancelled
        ),
        (
            model.totals.successes,
            model.totals.failures,
            model.totals.ignored,
            model.totals.rejected,
            model.totals.cancelled
        ),
        "totals {}",
        context
    );
    let probes = if model.state == State::HalfOpen {
        model.probes
    } else {
        0
    };
    prop_assert_eq!(metrics.probes_in_flight, probes, "probes {}", context);
    if model.consecutive_limit().is_some() && model.config.consecutive.is_some() {
        prop_assert_eq!(
            metrics.consecutive_failures,
            Some(model.consecutive),
            "consecutive {}",
            context
        );
    }
    match (metrics.slow_call_rate, model.slow_call_rate()) {
        (Some(real), Some(expected)) => {
            prop_assert!(
                (real - expected).abs() < 1e-9,
                "slow rate {real} vs {expected} {context}"
            )
        }
        (real, expected) => prop_assert_eq!(real, expected, "slow rate {}", context),
    }
    match (metrics.failure_rate, model.failure_rate()) {
        (Some(real), Some(expected)) => {
            prop_assert!(
                (real - expected).abs() < 1e-9,
                "rate {real} vs {expected} {context}"
            )
        }
        (real, expected) => prop_assert_eq!(real, expected, "rate {}", context),
    }
    Ok(())
}

fn run(config: Config, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = FakeClock::new();
    let breaker = build(&config, &clock);
    let mut model = Model::new(config);
    let mut held: Vec<(OwnedPermit, Held)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Call(outcome) => {
                let expected = model.admit();
                let result = block_on(breaker.execute(|| async {
                    if *outcome == Outcome::SlowOk {
                        // The call takes longer than the slow-call threshold.
                        clock.advance(Duration::from_millis(SLOW_AFTER_MS + 1));
                    }
                    run_outcome(*outcome)
                }));
                // The operation (and its slowness) only runs if admitted.
                if *outcome == Outcome::SlowOk && expected.is_some() {
                    model.now += SLOW_AFTER_MS + 1;
                }
                match expected {
                    Some(admitted) => {
                        prop_assert!(
                            !matches!(&result, Err(e) if e.is_rejected()),
                            "step {step}: the model let the call through, the breaker rejected it"
                        );
                        model.record(admitted, Some(*outcome));
                    }
                    None => prop_assert!(
                        matches!(&result, Err(e) if e.is_rejected()),
                        "step {step}: the model rejected the call, the breaker ran it"
                    ),
                }
            }
            Op::Begin => {
                let expected = model.admit();
                let permit = block_on(breaker.acquire_owned());
                match (permit, expected) {
                    (Ok(permit), Some(admitted)) => held.push((permit, admitted)),
                    (Err(_), None) => {}
                    (permit, expected) => {
                        return Err(TestCaseError::fail(format!(
                            "step {step}: breaker admitted {}, model admitted {}",
                            permit.is_ok(),
                            expected.is_some()
                        )));
                    }
                }
            }
            Op::Finish(index, outcome) if !held.is_empty() => {
                let (permit, admitted) = held.remove(index % held.len());
                if *outcome == Outcome::SlowOk {
                    clock.advance(Duration::from_millis(SLOW_AFTER_MS + 1));
                    model.now += SLOW_AFTER_MS + 1;
                }
                finish(permit, *outcome);
                model.record(admitted, Some(*outcome));
            }
            Op::Drop(index) if !held.is_empty() => {
                let (permit, admitted) = held.remove(index % held.len());
                drop(permit);
                model.record(admitted, None);
            }
            Op::Finish(..) | Op::Drop(_) => {}
            Op::Advance(ms) => {
                clock.advance(Duration::from_millis(*ms));
                model.now += ms;
            }
            Op::ForceOpen => {
                breaker.force_open();
                model.force(State::ForcedOpen, &[]);
            }
            Op::Release => {
                breaker.resume();
                model.force(
                    State::Closed,
                    &[State::ForcedOpen, State::Disabled, State::MetricsOnly],
                );
            }
            Op::Disable => {
                breaker.disable();
                model.force(State::Disabled, &[]);
            }
            Op::MetricsOnly => {
                breaker.force_metrics_only();
                model.force(State::MetricsOnly, &[]);
            }
            Op::Reset => {
                breaker.reset();
                // A reset starts a new generation even from closed (calls
                // admitted before it no longer count), without an event.
                if model.state == State::Closed {
                    model.generation += 1;
                } else {
                    model.force(State::Closed, &[]);
                }
                model.consecutive = 0;
                model.window.clear();
                model.slow_window.clear();
            }
        }
        check(&mut model, &breaker, step, op)?;
    }
    // Whatever happened, once the held permits are settled and time passes,
    // a healed service closes the breaker again.
    for (permit, admitted) in held.drain(..) {
        drop(permit);
        model.record(admitted, None);
    }
    breaker.resume();
    for _ in 0..64 {
        clock.advance(Duration::from_millis(model.config.open_ms));
        let _ = block_on(breaker.execute(|| async { Ok::<_, Failure>(()) }));
        if breaker.state() == State::Closed {
            break;
        }
    }
    prop_assert_eq!(breaker.state(), State::Closed, "the breaker recovers");
    prop_assert_eq!(breaker.metrics().probes_in_flight, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 10,000 in the normal run; PROPTEST_CASES asks for more.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000),
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_breaker_agrees_with_the_model(config in config(), ops in proptest::collection::vec(op(), 1..60)) {
        run(config, ops)?;
    }
}
