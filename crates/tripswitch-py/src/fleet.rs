//! Fleet-wide breakers through Redis, with the same keys and script as the
//! Rust replicas (this is `tripswitch-redis` itself).

use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::{PyConnectionError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tripswitch_redis::{FleetOpenPeriod, FleetPolicy};

use crate::config;
use crate::core::Core;

/// The runtime the fleets' background tasks run on: one worker thread,
/// started with the first fleet.
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("tripswitch-fleet")
                .enable_all()
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| PyRuntimeError::new_err("tripswitch: could not start the fleet's runtime"))
}

fn seconds(value: f64, setting: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{setting} must be a finite number of seconds >= 0, not {value}"
        ))
    })
}

/// A connection to a fleet: breakers of the same name in every replica
/// (Rust or Python) share one state.
#[pyclass(frozen, module = "tripswitch._native", name = "Fleet")]
pub(crate) struct Fleet {
    fleet: tripswitch_redis::Fleet,
}

#[pymethods]
impl Fleet {
    /// Connects (see `tripswitch.Fleet.connect`).
    #[staticmethod]
    #[pyo3(signature = (url, *, prefix=None, replica_id=None, sync_interval=None, command_timeout=None, probe_lease=None, quorum=None, failure_rate=None, open_for=None, require_redis=false))]
    #[allow(clippy::too_many_arguments)]
    fn connect(
        py: Python<'_>,
        url: String,
        prefix: Option<String>,
        replica_id: Option<String>,
        sync_interval: Option<f64>,
        command_timeout: Option<f64>,
        probe_lease: Option<f64>,
        quorum: Option<u32>,
        failure_rate: Option<(f64, u64)>,
        open_for: Option<f64>,
        require_redis: bool,
    ) -> PyResult<Self> {
        let mut builder = tripswitch_redis::Fleet::builder(url);
        if let Some(prefix) = prefix {
            builder = builder.prefix(prefix);
        }
        if let Some(id) = replica_id {
            builder = builder.replica_id(id);
        }
        if let Some(s) = sync_interval {
            builder = builder.sync_interval(seconds(s, "sync_interval")?);
        }
        if let Some(s) = command_timeout {
            builder = builder.command_timeout(seconds(s, "command_timeout")?);
        }
        if let Some(s) = probe_lease {
            builder = builder.probe_lease(seconds(s, "probe_lease")?);
        }
        let mut policy = FleetPolicy::default();
        if let Some(q) = quorum {
            policy = policy.quorum(q);
        }
        policy = match failure_rate {
            Some((rate, min_calls)) => policy.failure_rate(rate, min_calls),
            None => policy.without_failure_rate(),
        };
        builder = builder.policy(policy);
        if let Some(s) = open_for {
            builder = builder.open_period(FleetOpenPeriod::fixed(seconds(s, "open_for")?));
        }
        if require_redis {
            builder = builder.require_redis();
        }
        let runtime = runtime()?;
        let fleet = py
            .detach(|| runtime.block_on(builder.connect()))
            .map_err(|e| PyConnectionError::new_err(e.to_string()))?;
        Ok(Self { fleet })
    }

    /// Attaches a breaker named `name`, built from the package's settings dict.
    fn breaker(&self, py: Python<'_>, name: String, config: &Bound<'_, PyDict>) -> PyResult<Core> {
        let built = config::builder(config)?;
        let listener = built.listener;
        if built.freezes.is_some() {
            return Err(PyValueError::new_err(
                "a fleet breaker's open period is timed (open_for=...): a Python freeze function cannot run in the other replicas",
            ));
        }
        let runtime = runtime()?;
        let fleet = &self.fleet;
        let breaker = py
            .detach(|| {
                runtime.block_on(async {
                    let _guard = tokio::runtime::Handle::current();
                    fleet.breaker(&name, built.builder).await
                })
            })
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Core::new(breaker, None, listener))
    }

    /// This replica's id in the fleet.
    #[getter]
    fn replica_id(&self) -> &str {
        self.fleet.replica_id()
    }

    /// Whether the last exchange with Redis went through.
    fn is_connected(&self) -> bool {
        self.fleet.is_connected()
    }

    /// Opens `name` for every replica of the fleet for `seconds`.
    fn force_open(&self, py: Python<'_>, name: String, seconds_open: f64) -> PyResult<()> {
        let period = seconds(seconds_open, "seconds")?;
        let runtime = runtime()?;
        py.detach(|| runtime.block_on(self.fleet.force_open(&name, period)))
            .map_err(|e| PyConnectionError::new_err(e.to_string()))
    }

    /// Closes `name` for every replica of the fleet.
    fn force_close(&self, py: Python<'_>, name: String) -> PyResult<()> {
        let runtime = runtime()?;
        py.detach(|| runtime.block_on(self.fleet.force_close(&name)))
            .map_err(|e| PyConnectionError::new_err(e.to_string()))
    }
}
