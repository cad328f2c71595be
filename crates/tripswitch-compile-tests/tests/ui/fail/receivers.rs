use tripswitch::CircuitBreaker;

struct S {
    breaker: CircuitBreaker,
}

impl S {
    #[tripswitch::circuit_breaker(self.breaker)]
    async fn by_value(self) -> Result<(), String> {
        Ok(())
    }

    #[tripswitch::circuit_breaker(self.breaker)]
    async fn by_mut(&mut self) -> Result<(), String> {
        Ok(())
    }
}

#[tripswitch::circuit_breaker(CircuitBreaker::new())]
async fn mut_arg(v: &mut Vec<u8>) -> Result<(), String> {
    v.clear();
    Ok(())
}

fn main() {}
