//! Fleet-wide [`tripswitch`] breakers: breakers of the same name in many
//! processes share one state through Redis, and no call ever waits on Redis.
//!
//! ```no_run
//! use std::time::Duration;
//! use tripswitch::{CircuitBreaker, HalfOpen};
//! use tripswitch_redis::{Fleet, FleetPolicy};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fleet = Fleet::builder("redis://127.0.0.1:6379/")
//!     .policy(FleetPolicy::default().quorum(2))
//!     .connect()
//!     .await?;
//! let payments = fleet
//!     .breaker(
//!         "payments",
//!         CircuitBreaker::standard()
//!             .consecutive_failures(5)
//!             .half_open(HalfOpen::probes(1)),
//!     )
//!     .await?;
//! // An ordinary breaker: calls use its local state only.
//! let answer = payments.execute(|| async { Ok::<_, std::io::Error>(42) }).await?;
//! # let _ = answer; Ok(()) }
//! ```
//!
//! # How it works
//!
//! Every process (replica) builds an ordinary [`CircuitBreaker`](tripswitch::CircuitBreaker)
//! through [`Fleet::breaker`]. Calls use that local breaker's atomics, as
//! without Redis: the closed path costs the same (see `benches/shared_store.rs`).
//! One background task per [`Fleet`] does the rest:
//!
//! - **Counts out.** Every [`sync_interval`](FleetBuilder::sync_interval)
//!   (100 ms) it publishes the calls and failures since the last sync, and
//!   at once when the local breaker trips (a *trip vote*).
//! - **Decision on the server.** One Lua script, run atomically by Redis,
//!   keeps each breaker's fleet state: closed / open / half-open, an epoch
//!   that changes on every transition, the open-until time (server time, so
//!   replicas' clocks never need to agree), the backoff step and the
//!   half-open lease. It trips the fleet on [`FleetPolicy`]: `quorum`
//!   distinct replicas that tripped, or a fleet-wide failure rate seen by
//!   `quorum` replicas. Two replicas that trip at once give one open period
//!   and one backoff step: the second finds the fleet already open.
//! - **State in.** Every transition is published on a channel; each replica
//!   applies it to its local breaker as soon as it arrives. It also reads
//!   the state back at every sync for a breaker that is open, half-open or
//!   has news, and a closed one's stored epoch every ten syncs unless a
//!   report's answer confirmed it meanwhile.
//! - **Probes.** When the fleet's open period ends, the first replica that
//!   has calls waiting (or being rejected) takes a lease on the half-open
//!   state: only it runs probes, at most the breaker's
//!   [`HalfOpen::probes`](tripswitch::HalfOpen::probes), fleet-wide. Its
//!   local result (closed, or open again) becomes the fleet's. If it dies
//!   mid-probe, the lease ([`probe_lease`](FleetBuilder::probe_lease),
//!   10 s) runs out on the server and another replica takes over.
//!
//! # Bounds
//!
//! - **Propagation.** A trip reaches the other replicas in one script call
//!   plus one pushed message (about a millisecond on a LAN; measured on
//!   loopback by `benches/shared_store.rs`, and through a link with 1 ms
//!   added round trip by `tests/scale.rs`: p50 2–10 ms, p99 4–54 ms with
//!   up to 48,700 reports a second on one server, see `BENCHMARKS.md`). A trip is sent at once on a connection of its own,
//!   and pushed changes are applied while a round is in flight, so neither
//!   waits behind a large round. Redis only drops pushed messages by ending
//!   the subscription; the replica then reconnects, reads every breaker
//!   that is not closed here at its first round, and every closed one's
//!   stored epoch (or reports to it) within ten rounds: a missed change is
//!   applied at most
//!   `10 × sync_interval + command_timeout` (1.25 s by default) after
//!   Redis can be reached again. A fleet-wide failure rate is noticed
//!   within one `sync_interval` of the calls that reach it.
//! - **Cost.** A sync round is one pipelined exchange (pipelines of at most
//!   256 commands, two in flight; a second and third exchange only while
//!   half-open probes are handed out, or for the few short reports the
//!   script sends back for a full one). Only breakers with something to say
//!   or to watch cost anything (new counts, a trip, a probe result, a fleet
//!   state that is not closed, an error to retry); a closed breaker with no
//!   calls costs one `HGET` of its epoch every ten rounds, and none while
//!   its reports confirm it. Successes to a breaker known closed, the
//!   common report, go in the script's short form, up to 32 breakers in
//!   one script call on a single server (one a call on a Cluster): one
//!   `TIME`, then an `HMGET` and an `HSET` of each breaker's hash. Other
//!   reports are a script call each. Registering a breaker is one script
//!   call for that breaker alone.
//!   **Bound and failure:** Redis runs every script on one core, so its
//!   CPU bounds a fleet: a short report costs it about 10 µs, all included
//!   (protocol, its share of the call, its two commands; 26–36 µs for a
//!   report before), measured on a shared 2-vCPU VM. One server kept up
//!   there with 5,000 breakers on each of 10 replicas with 10 % of them
//!   active in every 100 ms interval (48,700 reports a second) at half a
//!   core, within the bounds (oldest sync 237–255 ms against 350 ms,
//!   propagation p99 44–117 ms), and saturated at about 80,000–100,000
//!   reports a second (see `BENCHMARKS.md`). Past that, rounds take longer
//!   (each report then carries several intervals' calls), the age of the
//!   last sync ([`Fleet::sync_status`]) grows past the bound (about 600 ms
//!   at twice that load), a pipeline that gets no answer within the
//!   command timeout counts as Redis unreachable (the next round tries
//!   again), and calls still never wait.
//!   A breaker the fleet holds open is read at every sync, a script call
//!   each (answered right after its `HMGET`): a fleet-wide outage of every
//!   breaker costs more than every breaker being active.
//! - **Redis failure.** An exchange that fails or takes longer than
//!   [`command_timeout`](FleetBuilder::command_timeout) (250 ms) marks Redis
//!   unreachable: a [`FleetEvent::Unreachable`] and a warning are emitted
//!   within `sync_interval + command_timeout` of the failure (once per
//!   outage, not at every reconnection attempt), and each breaker goes on
//!   alone. One held open by the fleet stays open until the fleet's
//!   deadline (plus `2 × sync_interval + command_timeout`), then probes
//!   locally as usual. Calls never wait on Redis, alive or dead.
//! - **Error replies.** An error reply to one breaker's script call (a key
//!   of the wrong type, `NOPERM`, `OOM`, a Cluster `MOVED`, `READONLY`...)
//!   is that breaker's alone: the connection is kept, the other breakers go
//!   on syncing, and that breaker runs on its local state and is retried at
//!   every sync. It is said once per breaker and error code
//!   ([`FleetEvent::SyncFailed`], with what to do), logged at most once a
//!   minute per code, and [`FleetEvent::SyncRecovered`] says when it heals.
//!   A missing script (`NOSCRIPT`: a restart, `SCRIPT FLUSH`) is loaded
//!   again within the same exchange.
//! - **Recovery.** The task reconnects at every sync interval. Once a round
//!   goes through ([`FleetEvent::Reconnected`]), counts flow again and the
//!   fleet's state is applied: a breaker still held open by the fleet
//!   follows it again (a close made meanwhile included, at the first
//!   round); one that moved by itself meanwhile (its hold ran out, a local
//!   trip or probe) keeps its own state until the fleet's next transition.
//! - **Lost state.** Every script call carries the fleet state this replica
//!   last applied (its epoch, state, what is left of its open period, its
//!   backoff step). If the server's copy is missing (`FLUSHALL`, `DEL`,
//!   eviction, a restart without persistence), older than that epoch (a
//!   restart from an older snapshot, a failover to a lagging replica) or
//!   unreadable (a stray write), the script puts that state back, whole, at
//!   that epoch, and says so ([`FleetEvent::StateRepaired`]). This happens
//!   at the next sync of any replica that knew the state, connected or not
//!   in between: within one `sync_interval + command_timeout` for a state
//!   that was open or half-open; a closed one is put back (silently: an
//!   idle closed state expiring after a day is routine) within ten syncs,
//!   or at the breaker's next call. Only a state
//!   the fleet itself held is ever put back, never a replica's local trip
//!   (below a quorum, or during an outage: that one is sent as a trip vote
//!   and counts towards the quorum like any other). If no replica knew a
//!   state, the breaker starts closed, at epoch 0.
//! - **Settings.** A breaker's fleet settings (policy, window, open
//!   period, probes, lease) are stored with its state by the replica that
//!   creates it, and **the stored ones win**: every replica's counts, votes
//!   and probes are judged by them, so replicas that run different
//!   settings during a rollout still read and write the same buckets. A
//!   replica whose own settings differ is told once
//!   ([`FleetEvent::SettingsDiffer`], and a warning). New settings take
//!   effect when the state is gone (a day without a transition, or deleted).
//! - **Operators.** [`Fleet::force_open`] and [`Fleet::force_close`] (also
//!   `fleet-demo --force-open NAME` / `--force-close NAME`) change a
//!   breaker fleet-wide in one script call; every replica applies the
//!   change within the propagation bound. (Deleting the keys by hand does
//!   not reset a breaker: the replicas put a lost state back.)
//!   [`Fleet::sync_status`] tells the
//!   age of the last sync; [`FleetEvent::SyncFailed`] each breaker's error;
//!   with the `metrics` feature both are exported
//!   (`tripswitch_fleet_last_sync_seconds`, `tripswitch_fleet_connected`,
//!   `tripswitch_fleet_sync_errors_total`, `tripswitch_fleet_sync_failing`).
//! - **Building a breaker.** [`Fleet::breaker`] waits at most the command
//!   timeout for its first sync (one exchange for the new breaker alone,
//!   however many are attached).
//!
//! # Connecting
//!
//! `redis://` and, with the `tls` feature, `rediss://` URLs (the system's
//! TLS library; the server's certificate is verified against the system's
//! roots, or `SSL_CERT_FILE`; `#insecure` at the end of the URL skips
//! that). With the `sentinel` feature, `Fleet::sentinel` finds the
//! primary through Redis Sentinel at every (re)connection: when Sentinel
//! turns the old primary into a replica it cuts its clients (or our writes
//! get `READONLY`, which counts as a lost link), and the fleet reconnects to
//! the new primary within one `sync_interval + command_timeout`; until
//! then, during Sentinel's own window where both accept writes, the fleet
//! follows the old one. With the `cluster` feature, `Fleet::cluster`
//! runs on a Redis Cluster: every key of a breaker shares one hash tag, so
//! each breaker's script runs on the node that owns its slot; a round
//! sends one command per breaker (all in flight at once) instead of one
//! pipeline, and the subscription is on one node (a classic `PUBLISH`
//! reaches every node). A plain URL pointed at a Cluster node gets `MOVED`
//! replies, reported per breaker ([`FleetEvent::SyncFailed`]) with advice.
//! The scale figures in `BENCHMARKS.md` are for a single server.
//!
//! # When to use it, and when not
//!
//! Use a fleet breaker when many replicas call the same dependency the same
//! way, so that what one learns is true for all: a shared database, an
//! external API, a payment provider. The fleet then learns of an outage
//! from the first replicas that see it, sends one set of probes instead of
//! one per replica, and keeps a dependency that is down from taking
//! `replicas ×` the traffic.
//!
//! Do not use it when failures are local to a replica (its own network
//! path, its own connection pool, a zone of its own): one replica's trouble
//! would freeze everybody. A quorum above 1 limits that, at the price of a
//! slower fleet trip; a plain local breaker avoids it. Nor when the
//! dependency is per replica (a sidecar, a local cache).
//!
//! # Consistency
//!
//! The fleet state is **linearizable on the server** (one script at a time)
//! and **eventually consistent on the replicas**: a replica may let calls
//! through for up to the propagation bound after another one tripped the
//! fleet, and it keeps following its local breaker while Redis is down.
//! Fleet-wide probe limits hold while Redis is up; during an outage each
//! replica probes for itself (it cannot know what the others do).
//! Counts are published at least once, never twice: a replica sends its
//! running totals (from the last acknowledged report to now), and the
//! script remembers, per breaker and replica, the totals it last added
//! (at least twice the policy's window after that replica's last report,
//! at least a minute; at most about three times that). A report whose
//! answer was lost (a timeout while Redis was paused with it in flight) and
//! that ran anyway is not counted again by the next one, which only adds
//! what is new; a short report whose record does not match is sent again
//! in full, where that happens. **Failure:** a report retried later than
//! that memory lasts (after an outage that long) may count again the part
//! of it that had already run, in the current window.
//!
//! # On the server
//!
//! Everything the fleet keeps of a breaker is one hash,
//! `<prefix>:{<name>}:state` (the braces are a Cluster hash tag), with a
//! TTL of a day, set again by every transition and once per memory period
//! (above) while the breaker reports; changes are published on
//! `<prefix>:changes`. Its fields, all written by one Lua script
//! (`src/fleet.lua`, whose header is the reference for another client of
//! the same fleet):
//!
//! | field | holds |
//! |---|---|
//! | `state`, `epoch`, `until`, `step`, `owner`, `lease_until` | the fleet state: closed / open / half_open, its epoch, the end of the open period and of the probe lease (server ms), the backoff step, the lease holder |
//! | `cfg` | the breaker's settings that win, `probes\|lease ms\|open ms\|max open ms\|multiplier\|bucket ms\|buckets\|minimum calls\|failure rate\|quorum` |
//! | `w0` … `w9` | the count window, a ring of ten buckets: `bucket\|epoch\|calls\|failures`, a slot of another bucket or epoch counting as empty |
//! | `v:<replica>` | that replica's votes: `epoch\|last bucket with failures\|last bucket it tripped in` |
//! | `s:<replica>` | what that replica's reports added: `incarnation\|calls\|failures\|memory period` |
//! | `hk` | when the next housekeeping is due (server ms) |
//!
//! This layout is not the one of versions before it (separate keys for
//! counts, votes and records): replicas of both on one prefix share the
//! state but not the counts, so upgrade a fleet all at once or give the
//! new version another prefix.
#![forbid(unsafe_code)]

mod conn;
mod error;
mod events;
mod export;
mod fleet;
mod hook;
mod inner;
mod policy;
mod script;
mod sync;

pub use error::FleetError;
pub use events::FleetEvent;
pub use fleet::{Fleet, FleetBuilder, SyncStatus};
pub use policy::{FleetOpenPeriod, FleetPolicy};
