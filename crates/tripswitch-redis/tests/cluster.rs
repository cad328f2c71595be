//! Feature `cluster`: a fleet on a private three-node Redis Cluster
//! (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster
//! create`), with breakers whose slots live on different nodes.
#![cfg(feature = "cluster")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RedisServer, eventually, redis_with};
use tripswitch::{CircuitBreaker, HalfOpen, State};
use tripswitch_redis::{Fleet, FleetOpenPeriod, FleetPolicy};

async fn ask<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut connection).await
}

async fn cluster() -> Option<Vec<RedisServer>> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(redis_with(&[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])?);
    }
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success(), "redis-cli --cluster create");
    let started = Instant::now();
    for node in &nodes {
        loop {
            let info: String = ask(node.port, &["CLUSTER", "INFO"]).await.unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the cluster is not ok"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Some(nodes)
}

async fn replica(node: &RedisServer, id: &str, names: &[&str]) -> (Fleet, Vec<CircuitBreaker>) {
    let fleet = Fleet::cluster([node.url()])
        .prefix("cluster")
        .replica_id(id)
        .sync_interval(Duration::from_millis(20))
        .command_timeout(Duration::from_secs(2))
        .probe_lease(Duration::from_secs(10))
        .policy(FleetPolicy::default().without_failure_rate())
        .open_period(FleetOpenPeriod::fixed(Duration::from_secs(60)))
        .require_redis()
        .connect()
        .await
        .expect("the cluster");
    let mut breakers = Vec::new();
    for name in names {
        breakers.push(
            fleet
                .breaker(
                    name,
                    CircuitBreaker::builder()
                        .consecutive_failures(2)
                        .half_open(HalfOpen::probes(1))
                        .fail_fast(),
                )
                .await
                .unwrap(),
        );
    }
    (fleet, breakers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_a_cluster_spreads_breakers_over_its_nodes() {
    let Some(nodes) = cluster().await else { return };
    let names = ["db", "cache", "queue", "search", "payments", "mail"];
    // Each replica knows a different node to start from.
    let (_a, a) = replica(&nodes[0], "a", &names).await;
    let (b_fleet, b) = replica(&nodes[1], "b", &names).await;
    for breaker in &a {
        for _ in 0..2 {
            let _ = breaker.execute(|| async { Err::<(), &str>("down") }).await;
        }
    }
    eventually(Duration::from_secs(10), "every breaker opens on b", || {
        b.iter().all(|breaker| breaker.state() == State::Open)
    })
    .await;
    // The states live on more than one node.
    let mut holding = 0;
    for node in &nodes {
        let keys: Vec<String> = ask(node.port, &["KEYS", "cluster:*:state"]).await.unwrap();
        if !keys.is_empty() {
            holding += 1;
        }
    }
    assert!(
        holding >= 2,
        "the breakers are spread over {holding} node(s)"
    );
    // An operator's order goes to the right node too.
    b_fleet.force_close("payments").await.unwrap();
    eventually(Duration::from_secs(10), "payments closes on a", || {
        a[4].state() == State::Closed
    })
    .await;
}
