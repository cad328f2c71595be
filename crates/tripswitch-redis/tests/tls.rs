//! Feature `tls`: a fleet over `rediss://` to a private `redis-server` with
//! a TLS port and a certificate from a private CA made by the test
//! (`openssl` on the PATH). A replica process that trusts the CA
//! (`SSL_CERT_FILE`) verifies the server and joins the fleet; one that does
//! not cannot connect, and runs on its local state.
#![cfg(feature = "tls")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::redis_with;
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetOpenPeriod, FleetPolicy};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl on the PATH");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, and a server certificate it signed for localhost and 127.0.0.1.
fn certificates(dir: &Path) {
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        dir,
        &[
            &["req", "-x509", "-nodes", "-days", "1"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=tripswitch test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req", "-nodes"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
}

struct Replica {
    child: Child,
    input: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Replica {
    fn start(url: &str, trust: Option<&Path>) -> Replica {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fleet-demo"));
        command
            .args(["--replica", "east", "--redis", url, "--prefix", "tls"])
            .args(["--open-ms", "60000"])
            // TLS handshakes in a debug build on busy cores (CI builds the
            // Python package beside it): no hurry.
            .args(["--timeout-ms", "15000", "--lease-ms", "20000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        match trust {
            Some(ca) => command.env("SSL_CERT_FILE", ca),
            // Trust nothing: an empty bundle, and no directory.
            None => command
                .env("SSL_CERT_FILE", "/dev/null")
                .env("SSL_CERT_DIR", "/nonexistent"),
        };
        let mut child = command.spawn().expect("start a replica process");
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
        let mut replica = Replica {
            child,
            input,
            lines,
            seen: Vec::new(),
        };
        replica.expect("ready", Duration::from_secs(60));
        replica
    }

    fn expect(&mut self, wanted: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no line {wanted:?} within {limit:?}"));
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(wanted) {
                        return line;
                    }
                }
                Err(_) => panic!("no line {wanted:?} within {limit:?}: {:?}", self.seen),
            }
        }
    }

    fn state(&mut self) -> String {
        writeln!(self.input, "state").unwrap();
        self.expect("state", Duration::from_secs(5))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_over_tls_verifies_the_server() {
    let dir = std::env::temp_dir().join(format!("tripswitch-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    let tls_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (port, cert, key, ca) = (
        tls_port.to_string(),
        file("server.crt"),
        file("server.key"),
        file("ca.crt"),
    );
    let Some(_server) = redis_with(&[
        "--tls-port",
        &port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]) else {
        return;
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "no TLS port");
        std::thread::sleep(Duration::from_millis(10));
    }

    // Verified: the replica process trusts the test CA.
    let url = format!("rediss://localhost:{tls_port}/");
    let mut trusting = Replica::start(&url, Some(&dir.join("ca.crt")));
    // Not verified: the same server, no CA to check it against.
    let mut doubting = Replica::start(&url, None);

    // This process trips the breaker, over TLS (its own connection does not
    // verify: it cannot be given the CA without touching the environment).
    let fleet = Fleet::builder(format!("rediss://127.0.0.1:{tls_port}/#insecure"))
        .prefix("tls")
        .replica_id("test")
        .sync_interval(Duration::from_millis(20))
        .command_timeout(Duration::from_secs(3))
        .probe_lease(Duration::from_secs(10))
        .policy(FleetPolicy::default().without_failure_rate())
        .open_period(FleetOpenPeriod::fixed(Duration::from_secs(60)))
        .require_redis()
        .connect()
        .await
        .expect("a TLS connection");
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
    for _ in 0..2 {
        let _ = breaker.execute(|| async { Err::<(), &str>("down") }).await;
    }
    assert_eq!(breaker.state(), State::Open);
    trusting.expect("transition closed open", Duration::from_secs(10));
    assert_eq!(doubting.state(), "state closed", "it never reached Redis");
    let said = doubting
        .seen
        .iter()
        .find(|line| line.starts_with("fleet Unreachable"))
        .unwrap_or_else(|| panic!("said so: {:?}", doubting.seen));
    eprintln!("the replica without the CA: {said}");
    let _ = std::fs::remove_dir_all(&dir);
}
