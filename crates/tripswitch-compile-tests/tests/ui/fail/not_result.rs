use std::sync::LazyLock;
use tripswitch::CircuitBreaker;
static B: LazyLock<CircuitBreaker> = LazyLock::new(CircuitBreaker::new);

#[tripswitch::circuit_breaker(B)]
async fn returns_a_number() -> u32 {
    1
}

#[tripswitch::circuit_breaker(B)]
async fn returns_nothing() {}

fn main() {}
