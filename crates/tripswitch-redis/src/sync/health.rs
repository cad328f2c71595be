//! Whether Redis is reachable: said through events and metrics once per
//! change (an outage, then the first round that goes through).

use std::sync::atomic::Ordering;

use super::Failure;
use crate::events::FleetEvent;
use crate::inner::Inner;

/// Whether Redis is reachable, as last said through events.
#[derive(Default)]
pub(super) struct Health {
    /// `Unreachable` was said and no round succeeded since.
    unreachable: bool,
}

/// Redis cannot be reached: say so once.
pub(super) fn lost(fleet: &Inner, health: &mut Health, error: Failure) {
    fleet.connected.store(false, Ordering::Release);
    crate::export::connected(fleet, false);
    // A breaker the fleet holds open stays open until the fleet's deadline
    // (plus grace), then goes on by itself; one still held when Redis is
    // back follows the fleet again (a close made meanwhile included).
    if !health.unreachable {
        health.unreachable = true;
        fleet.emit(FleetEvent::Unreachable { error });
    }
}

/// A round went through: Redis is reachable (said once after an outage).
pub(super) fn reached(fleet: &Inner, health: &mut Health) {
    fleet.connected.store(true, Ordering::Release);
    crate::export::connected(fleet, true);
    crate::export::synced(fleet);
    if health.unreachable {
        health.unreachable = false;
        fleet.emit(FleetEvent::Reconnected);
    }
}
