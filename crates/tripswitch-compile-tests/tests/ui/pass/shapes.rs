use std::sync::{Arc, LazyLock};
use tripswitch::CircuitBreaker;

static STATIC: LazyLock<CircuitBreaker> = LazyLock::new(CircuitBreaker::new);

#[tripswitch::circuit_breaker(STATIC)]
async fn plain() -> Result<(), String> {
    Ok(())
}

#[tripswitch::circuit_breaker(&*STATIC)]
async fn by_reference(x: u8, (a, b): (u8, u8), mut v: Vec<u8>) -> std::io::Result<usize> {
    v.push(x + a + b);
    Ok(v.len())
}

static SHARED: LazyLock<Arc<CircuitBreaker>> = LazyLock::new(|| Arc::new(CircuitBreaker::new()));

#[tripswitch::circuit_breaker(SHARED.clone())]
async fn through_an_arc(value: u8) -> Result<u8, ()> {
    Ok(value)
}

#[tripswitch::circuit_breaker(STATIC)]
async fn generic<T: Clone + Send>(value: T) -> Result<T, String> {
    Ok(value)
}

fn main() {
    let _: fn() -> _ = plain;
    let _ = by_reference;
    let _ = through_an_arc;
    let _ = generic::<u8>;
}
