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

/// Per time slice: successes, failures, rejections, the callers waiting on
/// the breaker (sampled once a slice) and the requests that reached the
/// service.
#[derive(Default, Clone, Copy)]
struct Slice {
    ok: u64,
    failed: u64,
    rejected: u64,
    waiting: u64,
    hits: u64,
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
    /// Every state change, with when it happened (from the breaker's events).
    transitions: Arc<Mutex<Vec<(Duration, State)>>>,
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

type Transitions = Arc<Mutex<Vec<(Duration, State)>>>;

/// A listener that records each state change and when it happened.
fn record_transitions(
    started: Instant,
    transitions: Transitions,
) -> impl Fn(&tripswitch::events::Event<'_>) + Send + Sync + 'static {
    move |event| {
        if let tripswitch::events::EventKind::Transition { to, .. } = event.kind() {
            transitions
                .lock()
                .expect("transitions")
                .push((started.elapsed(), *to));
        }
    }
}

fn seed_preset(started: Instant, transitions: Transitions) -> CircuitBreaker {
    // The seed: one failure freezes everybody (here for 2 s rather than 5 s,
    // to fit the demo), calls wait, everybody is let through at once.
    CircuitBreaker::builder()
        .name("seed preset")
        .freeze_for(Duration::from_secs(2))
        .on_error(|_| {})
        .on_event(record_transitions(started, transitions))
        .build()
}

fn tuned_preset(started: Instant, transitions: Transitions) -> CircuitBreaker {
    CircuitBreaker::standard()
        .name("tuned")
        .on_event(record_transitions(started, transitions))
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
    type Preset = fn(Instant, Transitions) -> CircuitBreaker;
    let presets: [(&str, Preset); 2] = [("seed preset", seed_preset), ("tuned", tuned_preset)];
    for (name, preset) in presets {
        let transitions = Transitions::default();
        let breaker = preset(started, Arc::clone(&transitions));
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
            transitions,
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
    let mut hits_seen = vec![0; runs.len()];
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
        for (run, hits_seen) in runs.iter().zip(&mut hits_seen) {
            let state = run.breaker.state();
            {
                let mut slices = run.slices.lock().expect("slices");
                if slices.len() <= index {
                    slices.resize(index + 1, Slice::default());
                }
                slices[index].waiting = run.breaker.metrics().waiting as u64;
                let hits = run.hits.load(Ordering::Relaxed);
                slices[index].hits += hits - *hits_seen;
                *hits_seen = hits;
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

    let panels: Vec<Panel> = runs.iter().map(|run| Panel::of(run)).collect();
    let svg = chart(&panels, options.seconds, options.clients);
    if let Some(parent) = std::path::Path::new(&options.out).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::write(&options.out, svg) {
        Ok(()) => println!("\nchart written to {}", options.out),
        Err(e) => eprintln!("\ncould not write the chart to {}: {e}", options.out),
    }
}

/// What the chart draws of one breaker.
struct Panel {
    name: &'static str,
    slices: Vec<Slice>,
    transitions: Vec<(Duration, State)>,
}

impl Panel {
    fn of(run: &Run) -> Self {
        Panel {
            name: run.name,
            slices: run.slices.lock().expect("slices").clone(),
            transitions: run.transitions.lock().expect("transitions").clone(),
        }
    }

    /// The spans (start, end, state) the breaker spent open or half-open.
    fn bands(&self, seconds: f64) -> Vec<(f64, f64, State)> {
        let mut bands = Vec::new();
        for (i, (at, state)) in self.transitions.iter().enumerate() {
            let end = self
                .transitions
                .get(i + 1)
                .map_or(seconds, |(next, _)| next.as_secs_f64());
            if matches!(state, State::Open | State::ForcedOpen | State::HalfOpen) {
                bands.push((at.as_secs_f64().min(seconds), end.min(seconds), *state));
            }
        }
        bands
    }
}

/// The phases of the service and where each starts, as fractions of the run.
const PHASES: [(f64, &str); 5] = [
    (0.0, "healthy"),
    (0.2, "failing"),
    (0.4, "down"),
    (0.6, "recovering"),
    (0.8, "healthy"),
];

/// A tick step (1, 2 or 5 times a power of ten seconds) giving at most ten ticks.
fn tick_step(seconds: f64) -> f64 {
    let mut step = 1.0;
    loop {
        for factor in [1.0, 2.0, 5.0] {
            if seconds / (step * factor) <= 10.0 {
                return step * factor;
            }
        }
        step *= 10.0;
    }
}

/// An SVG with one panel per breaker: calls per second by outcome and the
/// requests that reached the service (lines, left axis), the callers
/// waiting on the breaker (right axis), the breaker's open and half-open
/// spans (background bands), the service's phases (dashed lines, names on
/// top) and a time axis with ticks.
fn chart(panels: &[Panel], seconds: f64, clients: usize) -> String {
    let (width, panel, left, right, gap) = (940.0, 220.0, 60.0, 70.0, 80.0);
    let height = 60.0 + panels.len() as f64 * (panel + gap);
    let per_second = 1.0 / SLICE.as_secs_f64();
    let peak = panels
        .iter()
        .flat_map(|p| p.slices.iter())
        .map(|s| s.ok.max(s.failed).max(s.rejected).max(s.hits) as f64 * per_second)
        .fold(1.0, f64::max);
    let waiting_peak = (clients as f64).max(1.0);
    let plot_width = width - left - right;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="16">tripswitch demo: calls per second by outcome, requests reaching the service, callers waiting</text>
"#
    );
    let x = |t: f64| left + plot_width * (t / seconds).clamp(0.0, 1.0);
    for (i, p) in panels.iter().enumerate() {
        let top = 60.0 + i as f64 * (panel + gap);
        let bottom = top + panel;
        let y = |v: f64| bottom - panel * (v / peak).min(1.0);
        let y_waiting = |v: f64| bottom - panel * (v / waiting_peak).min(1.0);
        let bands = p.bands(seconds);
        let _ = writeln!(
            svg,
            r#"<text x="{left}" y="{}" font-size="14">{}</text>"#,
            top - 22.0,
            p.name
        );
        for &(start, end, state) in &bands {
            let fill = if state == State::HalfOpen {
                "#fbe3a6"
            } else {
                "#f8c8c8"
            };
            let w = (x(end) - x(start)).max(2.0); // a short half-open span stays visible
            let _ = writeln!(
                svg,
                r#"<rect class="band-{}" x="{:.1}" y="{top:.1}" width="{w:.1}" height="{panel}" fill="{fill}"/>"#,
                if state == State::HalfOpen {
                    "half-open"
                } else {
                    "open"
                },
                x(start)
            );
        }
        // The service's phases.
        for (k, (from, name)) in PHASES.iter().enumerate() {
            let to = PHASES.get(k + 1).map_or(1.0, |(next, _)| *next);
            if *from > 0.0 {
                let _ = writeln!(
                    svg,
                    r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top:.1}" y2="{bottom:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
                    x(from * seconds)
                );
            }
            let _ = writeln!(
                svg,
                r##"<text class="phase" x="{:.1}" y="{:.1}" text-anchor="middle" fill="#666">{name}</text>"##,
                x((from + to) / 2.0 * seconds),
                top - 6.0
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{left}" y="{top}" width="{plot_width}" height="{panel}" fill="none" stroke="#888"/>"##
        );
        // Series.
        let mut legend = vec![
            ("#2a9d3a", "ok /s", ""),
            ("#d62728", "failed /s", ""),
            ("#1f5fbf", "rejected /s", ""),
            ("#222", "reaching the service /s", "4 3"),
            ("#8e44ad", "callers waiting (right axis)", ""),
        ];
        for (series, (color, _, dash)) in legend.iter().enumerate() {
            let points: Vec<String> = p
                .slices
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let t = (k as f64 + 0.5) * SLICE.as_secs_f64();
                    let v = match series {
                        0 => y(s.ok as f64 * per_second),
                        1 => y(s.failed as f64 * per_second),
                        2 => y(s.rejected as f64 * per_second),
                        3 => y(s.hits as f64 * per_second),
                        _ => y_waiting(s.waiting as f64),
                    };
                    format!("{:.1},{v:.1}", x(t))
                })
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline class="series-{series}" fill="none" stroke="{color}" stroke-width="1.6" stroke-dasharray="{dash}" points="{}"/>"#,
                points.join(" ")
            );
        }
        if bands.iter().any(|b| b.2 != State::HalfOpen) {
            legend.push(("#e8a0a0", "open (band)", ""));
        }
        if bands.iter().any(|b| b.2 == State::HalfOpen) {
            legend.push(("#e0b040", "half-open (band)", ""));
        }
        let mut legend_x = left;
        for (color, label, _) in &legend {
            let _ = writeln!(
                svg,
                r#"<text x="{legend_x:.1}" y="{:.1}" fill="{color}">■ {label}</text>"#,
                bottom + 34.0
            );
            legend_x += 14.0 + 6.5 * label.len() as f64;
        }
        // Axes: calls per second on the left, waiting callers on the right, time below.
        let _ = writeln!(
            svg,
            r#"<text x="{0}" y="{1}" text-anchor="end">{peak:.0}/s</text><text x="{0}" y="{2}" text-anchor="end">0</text>"#,
            left - 4.0,
            top + 10.0,
            bottom
        );
        let _ = writeln!(
            svg,
            r##"<text x="{0}" y="{1}" fill="#8e44ad">{waiting_peak:.0} waiting</text><text x="{0}" y="{2}" fill="#8e44ad">0</text>"##,
            width - right + 4.0,
            top + 10.0,
            bottom
        );
        let step = tick_step(seconds);
        let mut t = 0.0;
        while t <= seconds + 1e-9 {
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{bottom:.1}" y2="{1:.1}" stroke="#888"/><text class="tick" x="{0:.1}" y="{2:.1}" text-anchor="middle">{t:.0} s</text>"##,
                x(t),
                bottom + 5.0,
                bottom + 18.0
            );
            t += step;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices(n: usize, waiting: u64) -> Vec<Slice> {
        (0..n)
            .map(|k| Slice {
                ok: 10,
                failed: k as u64 % 3,
                rejected: 1,
                waiting,
                hits: 11,
            })
            .collect()
    }

    #[test]
    fn the_chart_has_ticks_phases_waiting_callers_load_and_the_states_it_names() {
        let seconds = 16.0;
        let n = (seconds / SLICE.as_secs_f64()) as usize;
        let panels = [
            Panel {
                name: "seed preset",
                slices: slices(n, 20),
                transitions: vec![
                    (Duration::from_secs(4), State::Open),
                    (Duration::from_secs(6), State::Closed),
                ],
            },
            Panel {
                name: "tuned",
                slices: slices(n, 0),
                transitions: vec![
                    (Duration::from_secs(5), State::Open),
                    (Duration::from_millis(5250), State::HalfOpen),
                    (Duration::from_millis(5260), State::Closed),
                ],
            },
        ];
        let svg = chart(&panels, seconds, 24);
        let per_panel = |needle: &str| svg.matches(needle).count() / panels.len();
        // A time axis: 0, 2, ..., 16 s under each panel.
        assert_eq!(per_panel(r#"class="tick""#), 9, "{svg}");
        assert!(svg.contains(">16 s</text>"));
        // The five phases, named on each panel.
        assert_eq!(per_panel(r#"class="phase""#), 5);
        for name in ["failing", "down", "recovering"] {
            assert!(svg.contains(&format!(">{name}</text>")), "{name}");
        }
        // Waiting callers and the load reaching the service are series.
        assert_eq!(per_panel(r#"class="series-3""#), 1);
        assert_eq!(per_panel(r#"class="series-4""#), 1);
        assert!(svg.contains("callers waiting"));
        assert!(svg.contains("reaching the service"));
        // A 10 ms half-open span is drawn (at least 2 px) and only then named.
        assert_eq!(svg.matches(r#"class="band-half-open""#).count(), 1);
        assert_eq!(
            svg.matches("half-open (band)").count(),
            1,
            "only the tuned panel"
        );
        assert_eq!(svg.matches(r#"class="band-open""#).count(), 2);
    }

    #[test]
    fn ticks_stay_few() {
        assert_eq!(tick_step(16.0), 2.0);
        assert_eq!(tick_step(600.0), 100.0);
        assert_eq!(tick_step(5.0), 1.0);
    }
}
