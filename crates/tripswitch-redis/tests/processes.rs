//! Replicas in separate processes (the `fleet-demo` binary in replica mode)
//! sharing one breaker with this test process through a real `redis-server`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::redis;
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetOpenPeriod, FleetPolicy};

/// A replica process and the lines it prints.
struct Process {
    child: Child,
    input: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn start(url: &str, prefix: &str, name: &str, open_ms: u64, lease_ms: u64) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleet-demo"))
            .args(["--replica", name, "--redis", url, "--prefix", prefix])
            .args(["--open-ms", &open_ms.to_string()])
            .args(["--lease-ms", &lease_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a replica process");
        let output = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let input = child.stdin.take().unwrap();
        let mut process = Process {
            child,
            input,
            lines,
        };
        process.expect("ready", Duration::from_secs(10));
        process
    }

    fn send(&mut self, command: &str) {
        writeln!(self.input, "{command}").unwrap();
    }

    /// Waits for a line starting with `wanted`; returns it.
    fn expect(&mut self, wanted: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no line {wanted:?} within {limit:?}"));
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(wanted) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line {wanted:?} within {limit:?}"),
            }
        }
    }

    /// Sends `command` and returns its `result` line.
    fn call(&mut self, command: &str) -> String {
        self.send(command);
        self.expect("result", Duration::from_secs(5))
    }

    fn state(&mut self) -> String {
        self.send("state");
        self.expect("state", Duration::from_secs(5))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn this_process(url: &str, prefix: &str, open: Duration) -> (Fleet, CircuitBreaker) {
    let fleet = Fleet::builder(url)
        .prefix(prefix)
        .replica_id("test")
        .sync_interval(Duration::from_millis(20))
        .command_timeout(Duration::from_millis(150))
        .policy(FleetPolicy::default().without_failure_rate())
        .open_period(FleetOpenPeriod::fixed(open))
        .connect()
        .await
        .unwrap();
    let breaker = fleet
        .breaker(
            "inventory",
            CircuitBreaker::builder()
                .consecutive_failures(2)
                .half_open(HalfOpen::probes(1))
                .fail_fast(),
        )
        .await
        .unwrap();
    (fleet, breaker)
}

async fn trip(breaker: &CircuitBreaker) {
    for _ in 0..2 {
        let _ = breaker.execute(|| async { Err::<(), &str>("down") }).await;
    }
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_freeze_together_and_close_together() {
    let Some(server) = redis() else { return };
    let url = server.url();
    let mut east = Process::start(&url, "procs", "east", 300, 2000);
    let mut west = Process::start(&url, "procs", "west", 300, 2000);
    assert_eq!(east.call("ok"), "result ok");
    let (_fleet, breaker) = this_process(&url, "procs", Duration::from_millis(300)).await;

    trip(&breaker).await;
    east.expect("transition closed open", Duration::from_secs(3));
    west.expect("transition closed open", Duration::from_secs(3));
    assert_eq!(west.call("ok"), "result rejected");

    // After the period, west's calls make it the fleet's prober; its
    // success closes the breaker everywhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while west.call("ok") != "result ok" {
        assert!(Instant::now() < deadline, "west never got through");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    east.expect("transition open closed", Duration::from_secs(3));
    let closed = Instant::now();
    while breaker.state() != State::Closed {
        assert!(
            closed.elapsed() < Duration::from_secs(3),
            "this process closes too"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(east.state(), "state closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_probe_does_not_block_the_fleet() {
    let Some(server) = redis() else { return };
    let url = server.url();
    let lease = Duration::from_millis(800);
    let mut east = Process::start(&url, "killed", "east", 200, 800);
    let mut west = Process::start(&url, "killed", "west", 200, 800);
    let (_fleet, breaker) = this_process(&url, "killed", Duration::from_millis(200)).await;
    trip(&breaker).await;
    east.expect("transition closed open", Duration::from_secs(3));
    west.expect("transition closed open", Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // East wants through: it takes the fleet's probe, which hangs.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        east.send("hang");
        let line = east.expect("", Duration::from_secs(5));
        if line == "started" {
            break;
        }
        assert!(Instant::now() < deadline, "east never got the probe");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let probing = Instant::now();
    // East dies mid-probe.
    east.child.kill().unwrap();
    east.child.wait().unwrap();

    // West is refused while east's lease lasts, then takes over and closes the fleet.
    let deadline = Instant::now() + Duration::from_secs(5);
    while west.call("ok") != "result ok" {
        assert!(Instant::now() < deadline, "west never took over");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took_over = probing.elapsed();
    assert!(
        took_over >= lease - Duration::from_millis(200),
        "not before east's lease ran out: {took_over:?}"
    );
    eprintln!("west took over the probes {took_over:?} after east died (lease {lease:?})");
    let closed = Instant::now();
    while breaker.state() != State::Closed {
        assert!(
            closed.elapsed() < Duration::from_secs(3),
            "the fleet closes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Issue 15: the operator's CLI (`fleet-demo --force-open` / `--force-close`)
/// opens and closes a breaker for a replica in another process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_forces_a_breaker_from_the_command_line() {
    let Some(server) = redis() else { return };
    let url = server.url();
    let mut east = Process::start(&url, "cli", "east", 300, 2000);
    assert_eq!(east.call("ok"), "result ok");
    let order = |flag: &str, extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_fleet-demo"))
            .args(["--redis", &url, "--prefix", "cli", flag, "inventory"])
            .args(extra)
            .output()
            .expect("run the operator's command");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let said = order("--force-open", &["--open-ms", "60000"]);
    assert!(said.contains("opened fleet-wide"), "{said}");
    east.expect("transition closed open", Duration::from_secs(3));
    assert_eq!(east.call("ok"), "result rejected");
    let said = order("--force-close", &[]);
    assert!(said.contains("closed fleet-wide"), "{said}");
    east.expect("transition open closed", Duration::from_secs(3));
    assert_eq!(east.call("ok"), "result ok");
}
