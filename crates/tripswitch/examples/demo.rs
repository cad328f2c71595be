//! The tripswitch demo: a flaky HTTP service on loopback goes healthy →
//! failing → down → recovering → healthy, while many concurrent clients call
//! it through two breakers side by side — the seed's preset and a tuned one.
//! A live progress line runs while it plays; at the end it prints a summary
//! table and writes an SVG chart of calls per second by outcome and the
//! breakers' states over time.
//!
//! ```sh
//! cargo run --example demo                 # about 16 seconds
//! cargo run --example demo -- --help
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tripswitch::policy::{FailureRate, Window};
use tripswitch::{Backoff, CircuitBreaker, Error, HalfOpen, Outcome, State};

const HELP: &str = "\
tripswitch demo: a flaky HTTP service behind two circuit breakers, side by side

USAGE:
    cargo run --example demo -- [OPTIONS]

OPTIONS:
    --seconds <N>   length of the run (default 16; phases scale with it)
    --clients <N>   concurrent clients per breaker (default 24)
    --out <PATH>    where to write the SVG chart (default target/tripswitch-demo.svg)
    -h, --help      this help

The service's phases: healthy, 50% failing, down (every call fails after
80 ms), recovering (10% failing), healthy again.";

struct Options {
    seconds: f64,
    clients: usize,
    out: String,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        seconds: 16.0,
        clients: 24,
        out: "target/tripswitch-demo.svg".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--seconds" => {
                options.seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            "--clients" => {
                options.clients = value("--clients")?
                    .parse()
                    .map_err(|e| format!("--clients: {e}"))?
            }
            "--out" => options.out = value("--out")?,
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if !(2.0..=600.0).contains(&options.seconds) || options.clients == 0 {
        return Err("--seconds must be 2 to 600 and --clients at least 1".into());
    }
    Ok(options)
}

/// The service's phase at a point of the run, as a fraction of its length.
fn phase(progress: f64) -> (&'static str, u64) {
    match progress {
        p if p < 0.2 => ("healthy", 0),
        p if p < 0.4 => ("failing", 50),
        p if p < 0.6 => ("down", 100),
        p if p < 0.8 => ("recovering", 10),
        _ => ("healthy", 0),
    }
}

async fn start_service(
    started: Instant,
    length: Duration,
) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().route(
        "/",
        get(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            async move {
                let (name, failing) = phase(started.elapsed().as_secs_f64() / length.as_secs_f64());
                if name == "down" {
                    tokio::time::sleep(Duration::from_millis(80)).await;
                }
                if n.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 100 < failing {
                    (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                } else {
                    (StatusCode::OK, "ok")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (address, hits)
}

/// Per time slice: successes, failures, rejections, and the breaker's state.
#[derive(Default, Clone, Copy)]
struct Slice {
    ok: u64,
    failed: u64,
    rejected: u64,
    state: Option<State>,
}

struct Run {
    name: &'static str,
    breaker: CircuitBreaker,
    slices: Mutex<Vec<Slice>>,
    ok: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    waited_ms: AtomicU64,
    hits: Arc<AtomicU64>,
}

const SLICE: Duration = Duration::from_millis(250);

impl Run {
    fn count(&self, started: Instant, outcome: usize) {
        let index = (started.elapsed().as_secs_f64() / SLICE.as_secs_f64()) as usize;
        let mut slices = self.slices.lock().expect("slices");
        if slices.len() <= index {
            slices.resize(index + 1, Slice::default());
        }
        let slice = &mut slices[index];
        match outcome {
            0 => slice.ok += 1,
            1 => slice.failed += 1,
            _ => slice.rejected += 1,
        }
    }
}

async fn client_loop(
    run: Arc<Run>,
    address: std::net::SocketAddr,
    started: Instant,
    until: Instant,
) {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = format!("http://{address}/").parse().expect("uri");
    while Instant::now() < until {
        let asked = Instant::now();
        let result = run
            .breaker
            .execute_classified(
                |r: &Result<StatusCode, String>| match r {
                    Ok(status) if status.is_server_error() => Outcome::Failure,
                    Ok(_) => Outcome::Success,
                    Err(_) => Outcome::Failure,
                },
                || {
                    let request = hyper::Request::get(uri.clone())
                        .body(Empty::new())
                        .expect("request");
                    let call = client.request(request);
                    async move { call.await.map(|r| r.status()).map_err(|e| e.to_string()) }
                },
            )
            .await;
        let took = asked.elapsed();
        if took > Duration::from_millis(150) {
            run.waited_ms
                .fetch_add(took.as_millis() as u64, Ordering::Relaxed);
        }
        let outcome = match result {
            Ok(status) if !status.is_server_error() => 0,
            Err(Error::Rejected(_)) => 2,
            _ => 1,
        };
        [&run.ok, &run.failed, &run.rejected][outcome].fetch_add(1, Ordering::Relaxed);
        run.count(started, outcome);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn seed_preset() -> CircuitBreaker {
    // The seed: one failure freezes everybody (here for 2 s rather than 5 s,
    // to fit the demo), calls wait, everybody is let through at once.
    CircuitBreaker::builder()
        .name("seed preset")
        .freeze_for(Duration::from_secs(2))
        .on_error(|_| {})
        .build()
}

fn tuned_preset() -> CircuitBreaker {
    CircuitBreaker::builder()
        .name("tuned")
        .failure_rate(FailureRate::new(0.3, Window::last_calls(40)).min_calls(20))
        .backoff(
            Backoff::exponential(Duration::from_millis(250), Duration::from_secs(2))
                .jitter(0.2)
                .jitter_seed(7),
        )
        .half_open(
            HalfOpen::probes(3)
                .close_after(3)
                .max_duration(Duration::from_secs(1)),
        )
        .fail_fast()
        .try_build()
        .expect("valid settings")
}

#[tokio::main]
async fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let length = Duration::from_secs_f64(options.seconds);
    let started = Instant::now();
    let until = started + length;

    let mut runs = Vec::new();
    for (name, breaker) in [("seed preset", seed_preset()), ("tuned", tuned_preset())] {
        let (address, hits) = start_service(started, length).await;
        let run = Arc::new(Run {
            name,
            breaker,
            slices: Mutex::new(Vec::new()),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
            hits,
        });
        for _ in 0..options.clients {
            tokio::spawn(client_loop(Arc::clone(&run), address, started, until));
        }
        runs.push(run);
    }

    println!(
        "tripswitch demo: {} clients per breaker for {:.0} s; the service goes",
        options.clients, options.seconds
    );
    println!("healthy → 50% failing → down → recovering → healthy.\n");
    let mut ticker = tokio::time::interval(SLICE);
    while Instant::now() < until + Duration::from_millis(300) {
        ticker.tick().await;
        let elapsed = started.elapsed();
        let index = (elapsed.as_secs_f64() / SLICE.as_secs_f64()) as usize;
        let (phase_name, _) = phase((elapsed.as_secs_f64() / options.seconds).min(0.999));
        let mut line = format!(
            "\r[{:>5.1}s {:<10}]",
            elapsed.as_secs_f64().min(options.seconds),
            phase_name
        );
        for run in &runs {
            let state = run.breaker.state();
            {
                let mut slices = run.slices.lock().expect("slices");
                if slices.len() <= index {
                    slices.resize(index + 1, Slice::default());
                }
                slices[index].state = Some(state);
            }
            let _ = write!(
                line,
                " | {}: {:<11} ok {:>5} failed {:>5} rejected {:>5}",
                run.name,
                state.to_string(),
                run.ok.load(Ordering::Relaxed),
                run.failed.load(Ordering::Relaxed),
                run.rejected.load(Ordering::Relaxed),
            );
        }
        print!("{line}");
        let _ = std::io::stdout().flush();
    }
    println!("\n");

    println!(
        "{:<13} {:>9} {:>9} {:>9} {:>9} {:>12} {:>16}",
        "breaker", "calls", "ok", "failed", "rejected", "server hits", "time waiting"
    );
    for run in &runs {
        let (ok, failed, rejected) = (
            run.ok.load(Ordering::Relaxed),
            run.failed.load(Ordering::Relaxed),
            run.rejected.load(Ordering::Relaxed),
        );
        println!(
            "{:<13} {:>9} {:>9} {:>9} {:>9} {:>12} {:>15.1}s",
            run.name,
            ok + failed + rejected,
            ok,
            failed,
            rejected,
            run.hits.load(Ordering::Relaxed),
            run.waited_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }
    println!(
        "\nfailed = calls that reached the service and got a 5xx; rejected = calls the breaker answered itself."
    );
    println!(
        "The seed preset makes callers wait and lets the whole herd back in after each freeze;"
    );
    println!(
        "the tuned preset fails fast, probes with three calls and backs off while the service is down."
    );

    let svg = chart(&runs, options.seconds);
    if let Some(parent) = std::path::Path::new(&options.out).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::write(&options.out, svg) {
        Ok(()) => println!("\nchart written to {}", options.out),
        Err(e) => eprintln!("\ncould not write the chart to {}: {e}", options.out),
    }
}

/// An SVG with one panel per breaker: calls per second by outcome (lines)
/// over the breaker's state (background bands).
fn chart(runs: &[Arc<Run>], seconds: f64) -> String {
    let (width, panel, margin) = (900.0, 220.0, 50.0);
    let height = margin + runs.len() as f64 * (panel + margin);
    let per_second = 1.0 / SLICE.as_secs_f64();
    let peak = runs
        .iter()
        .flat_map(|run| run.slices.lock().expect("slices").clone())
        .map(|s| (s.ok.max(s.failed).max(s.rejected)) as f64 * per_second)
        .fold(1.0, f64::max);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{margin}" y="24" font-size="16">tripswitch demo: calls per second by outcome, breaker state behind (red open, amber half-open)</text>
"#
    );
    let plot_width = width - 2.0 * margin;
    for (i, run) in runs.iter().enumerate() {
        let top = margin + i as f64 * (panel + margin) + 10.0;
        let slices = run.slices.lock().expect("slices").clone();
        let n = ((seconds / SLICE.as_secs_f64()).ceil() as usize).max(1);
        let x = |k: usize| margin + plot_width * k as f64 / n as f64;
        let y = |v: f64| top + panel - panel * v / peak;
        let _ = writeln!(
            svg,
            r#"<text x="{margin}" y="{}" font-size="14">{}</text>"#,
            top - 6.0,
            run.name
        );
        for (k, slice) in slices.iter().enumerate().take(n) {
            let fill = match slice.state {
                Some(State::Open | State::ForcedOpen) => "#f8c8c8",
                Some(State::HalfOpen) => "#fbe3a6",
                _ => continue,
            };
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{panel}" fill="{fill}"/>"#,
                x(k),
                x(k + 1) - x(k)
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{margin}" y="{top}" width="{plot_width}" height="{panel}" fill="none" stroke="#888"/>"##
        );
        for (series, color, label) in [
            (0, "#2a9d3a", "ok"),
            (1, "#d62728", "failed"),
            (2, "#1f5fbf", "rejected"),
        ] {
            let points: Vec<String> = slices
                .iter()
                .enumerate()
                .take(n)
                .map(|(k, s)| {
                    let v = [s.ok, s.failed, s.rejected][series] as f64 * per_second;
                    format!("{:.1},{:.1}", (x(k) + x(k + 1)) / 2.0, y(v))
                })
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
                points.join(" ")
            );
            let legend_x = width - margin - 230.0 + series as f64 * 80.0;
            let _ = writeln!(
                svg,
                r#"<text x="{legend_x}" y="{}" fill="{color}">■ {label}</text>"#,
                top - 6.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{:.0}/s</text><text x="{}" y="{}" text-anchor="end">0</text>"#,
            margin - 4.0,
            top + 10.0,
            peak,
            margin - 4.0,
            top + panel
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{seconds:.0} s</text>"#,
            width - margin,
            top + panel + 14.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
