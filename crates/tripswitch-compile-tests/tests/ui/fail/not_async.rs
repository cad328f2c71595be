use std::sync::LazyLock;
use tripswitch::CircuitBreaker;
static B: LazyLock<CircuitBreaker> = LazyLock::new(CircuitBreaker::new);

#[tripswitch::circuit_breaker(B)]
fn not_async() -> Result<(), String> {
    Ok(())
}

fn main() {}
