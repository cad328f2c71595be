//! The fleet handle: settings, connection set-up, and attaching breakers.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc};
use tripswitch::shared::SharedControl;
use tripswitch::{Builder, CircuitBreaker};

use crate::error::FleetError;
use crate::events::{FleetEvent, FleetListener};
use crate::hook::{Hook, News};
use crate::inner::{Inner, Source};
use crate::policy::{FleetOpenPeriod, FleetPolicy};
use crate::sync::{Entry, run};

/// Breakers that share their state with every other process attached to the
/// same Redis server and prefix. See the [crate documentation](crate).
///
/// A `Fleet` is a cheap handle (clone it freely). It owns one background
/// task (the only task this crate spawns): it publishes outcome counts,
/// applies the fleet's state to the local breakers, and listens for changes
/// pushed by other replicas. The task ends when the last handle is dropped;
/// the breakers then go on with their local state alone.
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
    register: mpsc::UnboundedSender<Arc<Entry>>,
    wake: Arc<Notify>,
}

impl Fleet {
    /// Settings for a fleet on the Redis server at `url`
    /// (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> FleetBuilder {
        FleetBuilder {
            url: url.into(),
            prefix: default_prefix(),
            replica: None,
            sync_interval: Duration::from_millis(100),
            command_timeout: Duration::from_millis(250),
            lease: Duration::from_secs(10),
            policy: FleetPolicy::default(),
            period: FleetOpenPeriod::default(),
            listener: None,
            strict: false,
            sentinel: None,
            cluster: None,
        }
    }

    /// Settings for a fleet on the primary that the Redis Sentinels at
    /// `sentinels` (`redis://host:port` each) name `primary`. The primary
    /// is asked for again at every (re)connection, so the fleet follows a
    /// failover: the old primary's connections end, or its writes are
    /// refused (`READONLY`), and the next connection goes to the new one.
    /// The state survives as far as Redis replicated it; what a lagging
    /// replica lost is put back by the replicas (see the crate's bounds).
    #[cfg(feature = "sentinel")]
    pub fn sentinel(
        sentinels: impl IntoIterator<Item = impl Into<String>>,
        primary: impl Into<String>,
    ) -> FleetBuilder {
        let mut builder = Fleet::builder(String::new());
        builder.sentinel = Some((
            sentinels.into_iter().map(Into::into).collect(),
            primary.into(),
        ));
        builder
    }

    /// Settings for a fleet on the Redis Cluster that `nodes`
    /// (`redis://host:port` each, one is enough) belong to. A breaker's
    /// keys share one hash tag, so each breaker's script runs on the node
    /// that owns its slot (redirections and topology changes are the redis
    /// crate's); a round sends one command per breaker, all in flight at
    /// once, instead of one pipeline. Changes are published on the node the
    /// fleet subscribes to, and a classic `PUBLISH` reaches every node.
    #[cfg(feature = "cluster")]
    pub fn cluster(nodes: impl IntoIterator<Item = impl Into<String>>) -> FleetBuilder {
        let mut builder = Fleet::builder(String::new());
        builder.cluster = Some(nodes.into_iter().map(Into::into).collect());
        builder
    }

    /// A fleet with the default settings (see [`FleetBuilder`]).
    ///
    /// # Errors
    ///
    /// See [`FleetBuilder::connect`].
    pub async fn connect(url: impl Into<String>) -> Result<Fleet, FleetError> {
        Fleet::builder(url).connect().await
    }

    /// Builds the breaker `builder` describes, named `name`, as this
    /// process's member of the fleet-wide breaker `name`.
    ///
    /// Waits (at most the command timeout) for a first sync, so that a
    /// replica that starts while the fleet is open starts open. If Redis
    /// cannot be reached the breaker starts on its local state alone.
    ///
    /// The fleet's half-open probe limit is the breaker's own
    /// [`HalfOpen::probes`](tripswitch::HalfOpen::probes); a breaker without
    /// a half-open state (the seed's) makes the fleet close straight after
    /// its open period.
    ///
    /// # Errors
    ///
    /// [`FleetError::Breaker`] if the breaker's settings are invalid,
    /// [`FleetError::Config`] if the name is empty or holds a tab, a newline
    /// or braces, [`FleetError::DuplicateName`] if this handle already has a
    /// live breaker of that name.
    pub async fn breaker(
        &self,
        name: &str,
        builder: Builder,
    ) -> Result<CircuitBreaker, FleetError> {
        check_name(name)?;
        let name: Arc<str> = name.into();
        let news = Arc::new(News::default());
        let hook = Hook {
            news: news.clone(),
            wake: self.wake.clone(),
        };
        {
            let mut attached = self
                .inner
                .attached
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            attached.retain(|(_, control)| control.as_ref().is_none_or(SharedControl::is_alive));
            if attached.iter().any(|(other, _)| **other == *name) {
                return Err(FleetError::DuplicateName(name.to_string()));
            }
            // Reserved before building, so that two concurrent calls cannot both pass.
            attached.push((name.clone(), None));
        }
        let built = builder
            .name(name.to_string())
            .shared_state(Arc::new(hook))
            .try_build();
        let breaker = match built {
            Ok(breaker) => breaker,
            Err(error) => {
                self.forget(&name);
                return Err(FleetError::Breaker(error));
            }
        };
        let control = breaker.shared_control();
        {
            let mut attached = self
                .inner
                .attached
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = attached.iter_mut().find(|(other, _)| **other == *name) {
                slot.1 = Some(control.clone());
            }
        }
        let entry = Arc::new(Entry::new(&self.inner, name, control, news));
        if self.register.send(entry.clone()).is_ok() {
            entry.first_sync(self.inner.command_timeout).await;
        }
        Ok(breaker)
    }

    fn forget(&self, name: &str) {
        self.inner
            .attached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(other, _)| &**other != name);
    }

    /// Opens the breaker `name` fleet-wide for `period`, now: an operator's
    /// order (say, during a dependency's maintenance). Every replica with
    /// such a breaker applies it within the propagation bound, whether or
    /// not this handle has one. When the period ends the fleet probes as
    /// after any open period. A breaker forced open or disabled locally
    /// ([`CircuitBreaker::force_open`](tripswitch::CircuitBreaker::force_open))
    /// is not moved: manual local states win.
    ///
    /// # Errors
    ///
    /// [`FleetError::Config`] for a name a breaker could not have or a
    /// period under 1 ms, [`FleetError::Unavailable`] if Redis did not take
    /// the order within the command timeout (nothing changed then, or the
    /// change is published anyway if only the answer was lost).
    pub async fn force_open(&self, name: &str, period: Duration) -> Result<(), FleetError> {
        check_name(name)?;
        if period < Duration::from_millis(1) {
            return Err(FleetError::config(
                "force_open period",
                format!("{period:?}"),
                "at least 1 ms",
            ));
        }
        crate::sync::force(&self.inner, name, Some(period))
            .await
            .map_err(FleetError::Unavailable)
    }

    /// Closes the breaker `name` fleet-wide, now: an operator's order (the
    /// dependency is known to be back). Every replica whose breaker the
    /// fleet holds open closes within the propagation bound; one open on
    /// its own local trip (below a quorum, during an outage) is not
    /// closed by the fleet and goes on by its own timer.
    ///
    /// # Errors
    ///
    /// As [`force_open`](Self::force_open).
    pub async fn force_close(&self, name: &str) -> Result<(), FleetError> {
        check_name(name)?;
        crate::sync::force(&self.inner, name, None)
            .await
            .map_err(FleetError::Unavailable)
    }

    /// This process's id in the fleet.
    pub fn replica_id(&self) -> &str {
        &self.inner.replica
    }

    /// Whether the last exchange with Redis succeeded.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// The last sync round that went through (`None` before the first):
    /// how long ago it ended, how long it took, how many breakers it held.
    /// While Redis answers, its age stays below
    /// `sync_interval + command_timeout`; an older one means this replica
    /// is running on its local state.
    pub fn sync_status(&self) -> Option<SyncStatus> {
        let last = *self
            .inner
            .last_round
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.map(|(ended, took, breakers)| SyncStatus {
            age: ended.elapsed(),
            took,
            breakers,
        })
    }
}

/// The last sync round that went through: see [`Fleet::sync_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncStatus {
    /// How long ago it ended.
    pub age: Duration,
    /// How long it took (its exchanges with Redis).
    pub took: Duration,
    /// How many breakers it exchanged (idle closed breakers are read back
    /// only every tenth round).
    pub breakers: usize,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("replica", &self.inner.replica)
            .field("prefix", &self.inner.prefix)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Fleet`].
///
/// | setting | default | what |
/// |---|---|---|
/// | [`prefix`](Self::prefix) | `tripswitch:` and the executable's name | key and channel prefix: fleets with different prefixes are separate |
/// | [`replica_id`](Self::replica_id) | host name, pid and 64 random bits | this process's id (quorum, probe lease) |
/// | [`sync_interval`](Self::sync_interval) | 100 ms | how often counts are published and state is read |
/// | [`command_timeout`](Self::command_timeout) | 250 ms | how long one Redis exchange may take before Redis counts as unreachable |
/// | [`probe_lease`](Self::probe_lease) | 10 s | how long one replica may hold the fleet's half-open probes |
/// | [`policy`](Self::policy) | [`FleetPolicy::default`] | when the fleet trips |
/// | [`open_period`](Self::open_period) | 5 s doubling to 60 s | how long the fleet stays open |
#[must_use = "a builder does nothing until `connect` is called"]
pub struct FleetBuilder {
    url: String,
    prefix: String,
    replica: Option<String>,
    sync_interval: Duration,
    command_timeout: Duration,
    lease: Duration,
    policy: FleetPolicy,
    period: FleetOpenPeriod,
    listener: Option<FleetListener>,
    strict: bool,
    /// Sentinel addresses and the primary's name, instead of `url`.
    sentinel: Option<(Vec<String>, String)>,
    /// Cluster nodes, instead of `url`.
    cluster: Option<Vec<String>>,
}

impl FleetBuilder {
    /// Makes [`connect`](Self::connect) fail with
    /// [`FleetError::Unavailable`] unless, within the command timeout, Redis
    /// accepts a connection and the credentials, a subscription to the
    /// change channel, and a run of the fleet's script. Without it (the
    /// default) the fleet starts degraded: every breaker on its local state,
    /// one [`FleetEvent::Unreachable`], and it joins when Redis answers.
    pub fn require_redis(mut self) -> Self {
        self.strict = true;
        self
    }

    /// The prefix of every key and of the change channel. The default,
    /// `tripswitch:` and the name of the program's executable, keeps two
    /// programs on one Redis apart; replicas of one service that run
    /// differently named executables, or two services with the same
    /// executable name, must set it (to the service's name, say).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This process's id in the fleet: it must be unique per live process
    /// (votes and the probe lease are counted per id). The default (host
    /// name, pid, 64 random bits) is.
    pub fn replica_id(mut self, id: impl Into<String>) -> Self {
        self.replica = Some(id.into());
        self
    }

    /// How often outcome counts are published and the fleet's state is read
    /// back. It bounds how late a replica learns of a change if a pushed
    /// message is lost, and how late a fleet-wide failure rate is noticed.
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// How long one exchange with Redis may take. A slower or failed
    /// exchange makes every breaker fall back to its local state.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long one replica may hold the fleet's half-open probes. If it
    /// dies (or its probes hang) the lease runs out and another replica
    /// takes the probes. Must be longer than the command timeout.
    pub fn probe_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// When the fleet trips.
    pub fn policy(mut self, policy: FleetPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long the fleet stays open.
    pub fn open_period(mut self, period: FleetOpenPeriod) -> Self {
        self.period = period;
        self
    }

    /// Listens to [`FleetEvent`]s (called on the sync task; keep it short).
    pub fn on_event(mut self, listener: impl Fn(&FleetEvent) + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Checks the settings and starts the fleet's background task. Does not
    /// wait for Redis (unless [`require_redis`](Self::require_redis)): an
    /// unreachable server only means the breakers start on their local
    /// state.
    ///
    /// # Errors
    ///
    /// [`FleetError::Url`] for a URL that cannot be parsed,
    /// [`FleetError::Config`] for a setting out of range, and
    /// [`FleetError::NoRuntime`] outside a tokio runtime,
    /// [`FleetError::Unavailable`] with [`require_redis`](Self::require_redis).
    pub async fn connect(self) -> Result<Fleet, FleetError> {
        let source = match &self.sentinel {
            #[cfg(feature = "cluster")]
            None if self.cluster.is_some() => {
                let nodes = self.cluster.clone().unwrap_or_default();
                Source::Cluster {
                    cluster: redis::cluster::ClusterClient::new(nodes.clone())
                        .map_err(FleetError::Url)?,
                    nodes: nodes
                        .iter()
                        .map(|node| redis::Client::open(node.as_str()).ok())
                        .collect(),
                }
            }
            None => {
                Source::Direct(redis::Client::open(self.url.as_str()).map_err(FleetError::Url)?)
            }
            #[cfg(feature = "sentinel")]
            Some((sentinels, primary)) => Source::Sentinel(tokio::sync::Mutex::new(
                redis::sentinel::SentinelClient::build(
                    sentinels.iter().map(String::as_str).collect(),
                    primary.clone(),
                    None,
                    redis::sentinel::SentinelServerType::Master,
                )
                .map_err(FleetError::Url)?,
            )),
            #[cfg(not(feature = "sentinel"))]
            Some(_) => unreachable!("only built with the sentinel feature"),
        };
        self.policy.validate()?;
        self.period.validate()?;
        for (setting, value) in [
            ("sync_interval", self.sync_interval),
            ("command_timeout", self.command_timeout),
        ] {
            if value < Duration::from_millis(1) {
                return Err(FleetError::config(
                    setting,
                    format!("{value:?}"),
                    "at least 1 ms",
                ));
            }
        }
        if self.lease <= self.command_timeout {
            return Err(FleetError::config(
                "probe_lease",
                format!("{:?}", self.lease),
                "longer than the command timeout",
            ));
        }
        for (setting, value) in [
            ("prefix", &self.prefix),
            ("replica_id", &self.replica.clone().unwrap_or_default()),
        ] {
            if value.contains(['\t', '\n', '{', '}']) || (setting == "prefix" && value.is_empty()) {
                return Err(FleetError::config(
                    setting,
                    format!("{value:?}"),
                    "a non-empty text without tabs, newlines or braces",
                ));
            }
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        let replica = match self.replica {
            Some(id) if !id.is_empty() => id,
            _ => default_replica_id(),
        };
        let inner = Arc::new(Inner {
            source,
            incarnation: incarnation(),
            channel: format!("{}:changes", self.prefix),
            prefix: self.prefix,
            replica,
            sync_interval: self.sync_interval,
            command_timeout: self.command_timeout,
            lease: self.lease,
            policy: self.policy,
            period: self.period,
            listener: self.listener,
            connected: AtomicBool::new(false),
            logged: Mutex::new(HashMap::new()),
            last_round: Mutex::new(None),
            attached: Mutex::new(Vec::new()),
        });
        if self.strict {
            crate::sync::check(&inner)
                .await
                .map_err(FleetError::Unavailable)?;
        }
        let (register, registrations) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        runtime.spawn(run(Arc::downgrade(&inner), registrations, wake.clone()));
        Ok(Fleet {
            inner,
            register,
            wake,
        })
    }
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("prefix", &self.prefix)
            .field("replica", &self.replica)
            .field("sync_interval", &self.sync_interval)
            .field("command_timeout", &self.command_timeout)
            .field("probe_lease", &self.lease)
            .field("policy", &self.policy)
            .field("open_period", &self.period)
            .field("require_redis", &self.strict)
            .field("sentinel", &self.sentinel)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), FleetError> {
    if name.is_empty() || name.contains(['\t', '\n', '{', '}']) {
        return Err(FleetError::config(
            "breaker name",
            format!("{name:?}"),
            "a non-empty name without tabs, newlines or braces",
        ));
    }
    Ok(())
}

/// 64 random bits, from the standard library's per-process random hash
/// keys (no extra dependency), mixed with the time and a counter.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static DRAWS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(DRAWS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A token that differs between two processes (and two fleets of one process).
fn incarnation() -> String {
    format!("{:016x}", random())
}

/// The host name (the pod's name in Kubernetes), the pid and 64 random
/// bits: two replicas never share an id, even with pid 1 in every container.
fn default_replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().replace(['\t', '\n', '{', '}'], "_"))
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}-{}-{:016x}", std::process::id(), random())
}

/// `tripswitch:` and the name of this program's executable: two programs
/// sharing a Redis do not share breakers unless they choose the same prefix.
fn default_prefix() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .map(|name| name.replace(['\t', '\n', '{', '}'], "_"))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "default".to_string());
    format!("tripswitch:{program}")
}
