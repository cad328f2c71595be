//! What the fleet handle and its sync task share: where Redis is, the
//! fleet's settings, its connection flag and last round, and how it tells
//! of events (kept apart from `fleet.rs` so that the handle, the sync task
//! and the metrics export all import it, and not one another).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tripswitch::shared::SharedControl;

use crate::conn::Conn;
use crate::events::{FleetEvent, FleetListener};
use crate::policy::{FleetOpenPeriod, FleetPolicy};

/// Where the fleet's Redis is.
pub(crate) enum Source {
    /// One server, by URL.
    Direct(redis::Client),
    /// The primary that Sentinel names, asked again at every connection.
    #[cfg(feature = "sentinel")]
    Sentinel(tokio::sync::Mutex<redis::sentinel::SentinelClient>),
    /// A Redis Cluster: commands routed by slot (every key of a breaker
    /// shares its hash tag), the subscription on any node.
    #[cfg(feature = "cluster")]
    Cluster {
        cluster: redis::cluster::ClusterClient,
        nodes: Vec<Option<redis::Client>>,
    },
}

impl Source {
    /// A client for the server to talk to now.
    async fn client(&self) -> redis::RedisResult<redis::Client> {
        match self {
            Source::Direct(client) => Ok(client.clone()),
            #[cfg(feature = "sentinel")]
            Source::Sentinel(sentinel) => sentinel.lock().await.async_get_client().await,
            #[cfg(feature = "cluster")]
            Source::Cluster { nodes, .. } => nodes[0].clone().ok_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no node"))
            }),
        }
    }

    /// A new connection for commands.
    pub(crate) async fn connection(&self) -> redis::RedisResult<Conn> {
        match self {
            #[cfg(feature = "cluster")]
            Source::Cluster { cluster, .. } => {
                Ok(Conn::Cluster(cluster.get_async_connection().await?))
            }
            _ => Ok(Conn::Single(
                self.client()
                    .await?
                    .get_multiplexed_async_connection()
                    .await?,
            )),
        }
    }

    /// A new connection for the change channel. On a Cluster any node
    /// will do (a classic PUBLISH reaches every node): the first that answers.
    pub(crate) async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        match self {
            #[cfg(feature = "cluster")]
            Source::Cluster { nodes, .. } => {
                let mut failed = None;
                for node in nodes.iter().flatten() {
                    match node.get_async_pubsub().await {
                        Ok(pubsub) => return Ok(pubsub),
                        Err(error) => failed = Some(error),
                    }
                }
                Err(failed.unwrap_or_else(|| {
                    redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no node"))
                }))
            }
            _ => self.client().await?.get_async_pubsub().await,
        }
    }
}

/// At most one warning a minute per error code.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Settings shared by the fleet handle and its sync task.
pub(crate) struct Inner {
    pub(crate) source: Source,
    pub(crate) prefix: String,
    pub(crate) channel: String,
    pub(crate) replica: String,
    /// Tells this process's running totals from those of an earlier process
    /// with the same replica id.
    pub(crate) incarnation: String,
    pub(crate) sync_interval: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) lease: Duration,
    pub(crate) policy: FleetPolicy,
    pub(crate) period: FleetOpenPeriod,
    pub(crate) listener: Option<FleetListener>,
    pub(crate) connected: AtomicBool,
    /// The last sync round that went through: when it ended, how long it
    /// took, how many breakers it held.
    pub(crate) last_round: Mutex<Option<(Instant, Duration, usize)>>,
    /// When each error code was last logged, and how many were not since.
    pub(crate) logged: Mutex<HashMap<String, (Option<Instant>, u64)>>,
    /// The breakers attached through this handle (for duplicate names);
    /// `None` while one is being built.
    pub(crate) attached: Mutex<Vec<(Arc<str>, Option<SharedControl>)>>,
}

impl Inner {
    /// Whether a warning about `code` may be logged now (one a minute per
    /// code), and how many were held back since the last one.
    fn may_log(&self, code: String) -> Option<u64> {
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (last, held) = logged.entry(code).or_insert((None, 0));
        if last.is_none_or(|last| now.duration_since(last) >= LOG_EVERY) {
            let unsaid = *held;
            *last = Some(now);
            *held = 0;
            Some(unsaid)
        } else {
            *held += 1;
            None
        }
    }

    /// How much longer than the fleet says a local breaker is held open, so
    /// that the sync task (not the local timer) ends a fleet period while
    /// Redis answers; and the longest a dead Redis can keep it open beyond
    /// the fleet's own deadline.
    pub(crate) fn grace(&self) -> Duration {
        self.sync_interval * 2 + self.command_timeout
    }

    pub(crate) fn emit(&self, event: FleetEvent) {
        // A `tracing` subscriber is user code: one that panics loses its
        // line, never the sync task (which would leave every breaker on its
        // local state for good). Nothing reports the panic: the report
        // would go to the same subscriber.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.log(&event)));
        if let Some(listener) = &self.listener {
            let call = std::panic::AssertUnwindSafe(|| listener(&event));
            if std::panic::catch_unwind(call).is_err() {
                let _ = std::panic::catch_unwind(|| {
                    tracing::error!("tripswitch-redis: the fleet event listener panicked");
                });
            }
        }
    }

    /// The `tracing` line of a fleet event.
    fn log(&self, event: &FleetEvent) {
        match event {
            FleetEvent::Unreachable { error } => tracing::warn!(
                replica = %self.replica,
                %error,
                "tripswitch-redis: Redis unreachable; breakers fall back to their local state"
            ),
            FleetEvent::Reconnected => tracing::info!(
                replica = %self.replica,
                "tripswitch-redis: Redis reachable again; breaker state resynced"
            ),
            FleetEvent::Opened { breaker, remaining } => tracing::info!(
                replica = %self.replica,
                breaker = %breaker,
                ?remaining,
                "tripswitch-redis: the fleet opened the breaker"
            ),
            FleetEvent::ProbesGranted { breaker } => tracing::info!(
                replica = %self.replica,
                breaker = %breaker,
                "tripswitch-redis: this replica runs the fleet's probes"
            ),
            FleetEvent::Closed { breaker } => tracing::info!(
                replica = %self.replica,
                breaker = %breaker,
                "tripswitch-redis: the fleet closed the breaker"
            ),
            FleetEvent::SyncFailed {
                breaker,
                error,
                advice,
            } => {
                let code = error.split_whitespace().next().unwrap_or("").to_string();
                if let Some(unsaid) = self.may_log(code) {
                    tracing::warn!(
                        replica = %self.replica,
                        breaker = %breaker,
                        %error,
                        unsaid,
                        "tripswitch-redis: Redis refused this breaker's sync ({advice}); \
                         it runs on its local state"
                    );
                }
            }
            FleetEvent::SettingsDiffer {
                breaker,
                ours,
                fleet,
            } => tracing::warn!(
                replica = %self.replica,
                breaker = %breaker,
                %ours,
                %fleet,
                "tripswitch-redis: this breaker's fleet settings differ from the fleet's; \
                 the fleet's apply ({})",
                crate::script::SETTINGS
            ),
            FleetEvent::SyncRecovered { breaker } => tracing::info!(
                replica = %self.replica,
                breaker = %breaker,
                "tripswitch-redis: the breaker syncs again"
            ),
            FleetEvent::StateRepaired { breaker, what } => tracing::warn!(
                replica = %self.replica,
                breaker = %breaker,
                "tripswitch-redis: {what}; it was put back from this replica's copy"
            ),
        }
    }
}
