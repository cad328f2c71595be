//! Two processes, one breaker: the runnable example of a fleet-wide breaker.
//!
//! ```text
//! cargo run -p tripswitch-redis --bin fleet-demo -- [--redis redis://127.0.0.1:6379/]
//! ```
//!
//! It starts two copies of itself as replicas (`east` and `west`), each with
//! its own breaker named `inventory` attached to the same Redis, and drives
//! them: east's calls fail until its breaker trips; west, which saw no
//! failure, freezes too; after the fleet's open period one replica probes,
//! and both close again. Every line a replica prints is shown with the time.
//!
//! With `--replica NAME` it is one replica, driven through its standard
//! input (the tests use this too): `ok`, `fail` and `hang` run a call that
//! succeeds, fails, or never ends (it prints `started` once it runs);
//! `state` prints the breaker's state; `quit` ends it. Transitions are
//! printed as `transition FROM TO`, fleet events as `fleet EVENT`.
//!
//! With `--force-open BREAKER` (for `--open-ms`) or `--force-close BREAKER`
//! it is an operator's tool: it opens or closes that breaker for every
//! replica of the fleet under `--prefix`, and exits.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tripswitch::events::EventKind;
use tripswitch::{CircuitBreaker, HalfOpen};
use tripswitch_redis::{Fleet, FleetOpenPeriod, FleetPolicy};

const HELP: &str =
    "usage: fleet-demo [--redis URL] [--prefix P] [--replica NAME [--open-ms N] [--lease-ms N] [--timeout-ms N]]
       fleet-demo --redis URL --prefix P --force-open BREAKER [--open-ms N]
       fleet-demo --redis URL --prefix P --force-close BREAKER";

struct Args {
    redis: String,
    prefix: String,
    replica: Option<String>,
    open: Duration,
    lease: Duration,
    /// The replica's command timeout.
    timeout: Duration,
    /// An operator's order: `(breaker, open)`: open for `--open-ms`, or close.
    force: Option<(String, bool)>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        redis: std::env::var("TRIPSWITCH_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_string()),
        prefix: format!("fleet-demo-{}", std::process::id()),
        replica: None,
        open: Duration::from_secs(1),
        lease: Duration::from_secs(2),
        timeout: Duration::from_millis(150),
        force: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--redis" => args.redis = value()?,
            "--prefix" => args.prefix = value()?,
            "--replica" => args.replica = Some(value()?),
            "--open-ms" => args.open = millis(&value()?)?,
            "--lease-ms" => args.lease = millis(&value()?)?,
            "--timeout-ms" => args.timeout = millis(&value()?)?,
            "--force-open" => args.force = Some((value()?, true)),
            "--force-close" => args.force = Some((value()?, false)),
            "-h" | "--help" => return Err(HELP.to_string()),
            other => return Err(format!("unknown argument {other}\n{HELP}")),
        }
    }
    Ok(args)
}

fn millis(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("not a number of milliseconds: {text}"))
}

fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Some((breaker, open)) = &args.force {
        return operator(&args, breaker, *open);
    }
    match &args.replica {
        Some(name) => replica(&args, name),
        None => conductor(&args),
    }
}

/// `--force-open` / `--force-close`: an operator's order to the whole fleet.
fn operator(args: &Args, breaker: &str, open: bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let done = runtime.block_on(async {
        let fleet = Fleet::builder(args.redis.clone())
            .prefix(args.prefix.clone())
            .command_timeout(Duration::from_secs(2))
            .probe_lease(Duration::from_secs(10))
            .connect()
            .await?;
        if open {
            fleet.force_open(breaker, args.open).await
        } else {
            fleet.force_close(breaker).await
        }
    });
    match done {
        Ok(()) if open => say(format!("{breaker}: opened fleet-wide for {:?}", args.open)),
        Ok(()) => say(format!("{breaker}: closed fleet-wide")),
        Err(error) => {
            eprintln!("{breaker}: {error}");
            std::process::exit(1);
        }
    }
}

/// Prints one line at once (the parent reads line by line).
fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

fn replica(args: &Args, name: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let fleet = Fleet::builder(args.redis.clone())
            .prefix(args.prefix.clone())
            .replica_id(name)
            .sync_interval(Duration::from_millis(20))
            .command_timeout(args.timeout)
            .probe_lease(args.lease)
            .policy(FleetPolicy::default().without_failure_rate())
            .open_period(FleetOpenPeriod::fixed(args.open))
            .on_event(|event| say(format!("fleet {event:?}")))
            .connect()
            .await
            .expect("fleet settings");
        let breaker = fleet
            .breaker(
                "inventory",
                CircuitBreaker::standard()
                    .consecutive_failures(2)
                    .half_open(HalfOpen::probes(1))
                    .on_event(|event| {
                        if let EventKind::Transition { from, to, .. } = event.kind() {
                            say(format!("transition {from} {to}"));
                        }
                    }),
            )
            .await
            .expect("breaker settings");
        say("ready");

        // Standard input is read on a thread of its own: a blocking read
        // must not hold up the fleet's task.
        let (lines, mut commands) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(command) = commands.recv().await {
            match command.trim() {
                "ok" | "fail" => {
                    let fail = command.trim() == "fail";
                    let result = breaker
                        .execute(|| async move { if fail { Err("down") } else { Ok(()) } })
                        .await;
                    say(match result {
                        Ok(()) => "result ok",
                        Err(error) if error.is_rejected() => "result rejected",
                        Err(_) => "result failed",
                    });
                }
                "hang" => match breaker.try_acquire_owned() {
                    Ok(permit) => {
                        say("started");
                        // The call runs for ever; only the process's end stops it.
                        tokio::spawn(async move {
                            let _probe = permit;
                            std::future::pending::<()>().await;
                        });
                    }
                    Err(_) => say("result rejected"),
                },
                "state" => say(format!("state {}", breaker.state())),
                "quit" => break,
                other => say(format!("unknown command {other}")),
            }
        }
    });
}

/// A replica child process, with its output as timed lines.
struct ReplicaProcess {
    name: &'static str,
    child: Child,
    input: ChildStdin,
}

fn spawn(
    args: &Args,
    name: &'static str,
    lines: mpsc::Sender<(&'static str, String)>,
) -> ReplicaProcess {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args([
            "--replica",
            name,
            "--redis",
            &args.redis,
            "--prefix",
            &args.prefix,
        ])
        .args(["--open-ms", &args.open.as_millis().to_string()])
        .args(["--lease-ms", &args.lease.as_millis().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start a replica");
    let output = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if lines.send((name, line)).is_err() {
                break;
            }
        }
    });
    let input = child.stdin.take().expect("stdin");
    ReplicaProcess { name, child, input }
}

impl ReplicaProcess {
    fn send(&mut self, command: &str) {
        writeln!(self.input, "{command}").expect("replica's stdin");
    }
}

fn conductor(args: &Args) {
    println!(
        "fleet-demo: two replicas, one breaker `inventory`, Redis at {}",
        args.redis
    );
    let (tx, rx) = mpsc::channel();
    let mut east = spawn(args, "east", tx.clone());
    let mut west = spawn(args, "west", tx);
    let start = Instant::now();
    let show_until = |what: &mut dyn FnMut(&str, &str) -> bool, limit: Duration| -> bool {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok((name, line)) = rx.recv_timeout(left) else {
                break;
            };
            println!(
                "{:>8.1} ms  {name:<5} {line}",
                start.elapsed().as_secs_f64() * 1e3
            );
            if what(name, &line) {
                return true;
            }
        }
        false
    };
    let mut ready = 0;
    let both_ready = show_until(
        &mut |_, line| {
            if line == "ready" {
                ready += 1;
            }
            ready == 2
        },
        Duration::from_secs(10),
    );
    if !both_ready {
        eprintln!(
            "fleet-demo: the replicas did not start (is redis-server running at {}?)",
            args.redis
        );
        std::process::exit(1);
    }

    println!("-- east's dependency fails twice: east trips, and the fleet with it");
    east.send("fail");
    east.send("fail");
    show_until(
        &mut |name, line| name == "west" && line == "transition closed open",
        Duration::from_secs(5),
    );
    println!("-- west saw no failure, yet it is open: its calls are refused at once");
    west.send("ok");
    show_until(
        &mut |name, line| name == "west" && line.starts_with("result"),
        Duration::from_secs(5),
    );
    println!(
        "-- after the fleet's {:?} open period, west's next call is the fleet's one probe",
        args.open
    );
    std::thread::sleep(args.open);
    let mut closed = false;
    for _ in 0..50 {
        west.send("ok");
        if show_until(
            &mut |name, line| name == "east" && line == "transition open closed",
            Duration::from_millis(100),
        ) {
            closed = true;
            break;
        }
    }
    println!(
        "-- {}",
        if closed {
            "the probe succeeded: the fleet is closed on both replicas"
        } else {
            "the fleet did not close (see above)"
        }
    );
    for replica in [&mut east, &mut west] {
        replica.send("quit");
        let _ = replica.child.wait();
        let _ = replica.name;
    }
    if !closed {
        std::process::exit(1);
    }
}
