//! # tripswitch for Python
//!
//! The extension module `tripswitch._native` behind the Python package
//! `tripswitch` (`python/tripswitch`): the Rust breaker with synchronous
//! admission and recording, waits bridged to asyncio, freezes run by a
//! Python freeze function on the caller's event loop, and fleet-wide state
//! through `tripswitch-redis`. The Python API and its documentation are in
//! `python/tripswitch/__init__.py`; build it with maturin (see the README's
//! Python section).
#![forbid(unsafe_code)]

use pyo3::prelude::*;

mod bridge;
mod config;
mod core;
mod fleet;

/// The module `tripswitch._native`.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<core::Core>()?;
    module.add_class::<core::Permit>()?;
    module.add_class::<core::Freeze>()?;
    module.add_class::<bridge::Poller>()?;
    module.add_class::<bridge::Waiter>()?;
    module.add_function(wrap_pyfunction!(bridge::_resolve, module)?)?;
    module.add_class::<fleet::Fleet>()?;
    module.add_function(wrap_pyfunction!(core::_register, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
