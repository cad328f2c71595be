//! What can go wrong when a fleet is set up.

use std::fmt;

/// A fleet could not be set up. (Once it runs, an unreachable Redis is not
/// an error: breakers fall back to their local state, see
/// [`FleetEvent::Unreachable`](crate::FleetEvent::Unreachable).)
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// A setting is out of range.
    Config {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// The Redis URL could not be parsed.
    Url(redis::RedisError),
    /// The breaker's own settings are invalid.
    Breaker(tripswitch::ConfigError),
    /// A breaker with this name is already part of this fleet handle.
    DuplicateName(String),
    /// `connect` was called outside a tokio runtime: the fleet's
    /// background task needs one.
    NoRuntime,
    /// With [`FleetBuilder::require_redis`](crate::FleetBuilder::require_redis):
    /// Redis could not be reached, refused the credentials, or refused a
    /// command the fleet needs, within the command timeout.
    Unavailable(String),
}

impl FleetError {
    pub(crate) fn config(
        setting: &'static str,
        value: impl Into<String>,
        allowed: &'static str,
    ) -> Self {
        FleetError::Config {
            setting,
            value: value.into(),
            allowed,
        }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Config {
                setting,
                value,
                allowed,
            } => write!(
                f,
                "invalid fleet setting `{setting}` = {value}: expected {allowed}"
            ),
            FleetError::Url(error) => write!(f, "invalid Redis URL: {error}"),
            FleetError::Breaker(error) => write!(f, "invalid breaker settings: {error}"),
            FleetError::DuplicateName(name) => {
                write!(f, "a breaker named {name:?} is already in this fleet")
            }
            FleetError::NoRuntime => {
                f.write_str("tripswitch-redis needs a tokio runtime for its background sync task")
            }
            FleetError::Unavailable(error) => {
                write!(f, "Redis is not usable by the fleet: {error}")
            }
        }
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FleetError::Url(error) => Some(error),
            FleetError::Breaker(error) => Some(error),
            _ => None,
        }
    }
}
