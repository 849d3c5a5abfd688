//! The error type of this crate.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why credentials could not be obtained. Messages never contain secrets or token values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A provider is not configured correctly (a missing or invalid setting).
    #[error("invalid credentials configuration: {0}")]
    Config(String),
    /// A provider could not produce credentials right now (e.g. no usable token file).
    #[error("{provider}: credentials unavailable: {reason}")]
    Unavailable {
        /// Which provider failed.
        provider: &'static str,
        /// Why, without secret values.
        reason: String,
    },
}
