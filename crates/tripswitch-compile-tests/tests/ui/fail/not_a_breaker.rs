#[tripswitch::circuit_breaker(42)]
async fn wrong_breaker() -> Result<(), String> {
    Ok(())
}

#[tripswitch::circuit_breaker]
async fn no_breaker() -> Result<(), String> {
    Ok(())
}

fn main() {}
