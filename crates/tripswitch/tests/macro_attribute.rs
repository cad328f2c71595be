//! The `#[circuit_breaker]` attribute's behaviour. Its compile-time checks
//! (trybuild) are in `crates/tripswitch-compile-tests`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::time::Instant;
use tripswitch::{CircuitBreaker, Error};

static BREAKER: LazyLock<CircuitBreaker> = LazyLock::new(|| {
    CircuitBreaker::builder()
        .freeze_for(Duration::from_secs(2))
        .build()
});
static RUNS: AtomicU32 = AtomicU32::new(0);

#[tripswitch::circuit_breaker(BREAKER)]
async fn flaky(name: String) -> Result<String, std::io::Error> {
    if RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(std::io::Error::other("first run fails"));
    }
    Ok(format!("hello {name}"))
}

#[tokio::test(start_paused = true)]
async fn the_decorated_function_freezes_waits_and_retries_like_execute() {
    let start = Instant::now();
    let greeting = flaky("world".to_string()).await;
    assert_eq!(greeting.unwrap(), "hello world");
    assert_eq!(RUNS.load(Ordering::SeqCst), 2, "the body ran twice");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

struct Client {
    breaker: Arc<CircuitBreaker>,
}

impl Client {
    #[tripswitch::circuit_breaker(self.breaker)]
    async fn get(&self, path: &str, attempt: u32) -> Result<usize, String> {
        if attempt == 0 {
            Err(format!("no {path}"))
        } else {
            Ok(path.len())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn methods_and_arc_breakers_work_and_errors_keep_their_type() {
    let client = Client {
        breaker: Arc::new(
            CircuitBreaker::builder()
                .freeze_for(Duration::from_millis(5))
                .build(),
        ),
    };
    assert_eq!(client.get("/a", 1).await, Ok(2));
    let error: Error<String> = client.get("/b", 0).await.unwrap_err();
    assert_eq!(error, Error::Inner("no /b".to_string()));
}
