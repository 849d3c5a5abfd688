//! The crate's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong when starting, configuring or seeding the emulator.
///
/// Variants carry names, uuids, paths and field names, never passwords, secrets or tokens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value is unusable.
    #[error("invalid configuration: {field}: {message}")]
    Config {
        /// The `Config` field at fault.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A seed (or an out-of-band change) names a user that does not exist.
    #[error("unknown user {0}")]
    UnknownUser(String),
    /// A location that is not configured.
    #[error("unknown location {0}")]
    UnknownLocation(String),
    /// A resource that does not exist.
    #[error("no {kind} with uuid {uuid}")]
    NotFound {
        /// `server`, `drive`, ...
        kind: &'static str,
        /// The uuid that was looked up.
        uuid: String,
    },
    /// A seed entry (or an out-of-band change) is invalid; `field` names the offending field.
    #[error("invalid seed: {field}: {message}")]
    InvalidSeed {
        /// The offending field, e.g. `servers[1].nics[0].ip_v4`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A seed file could not be read.
    #[error("cannot read seed file {path}: {source}")]
    SeedRead {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A seed document could not be parsed as YAML or JSON.
    #[error("cannot parse seed {origin}: {message}")]
    SeedParse {
        /// The file name, or `input`.
        origin: String,
        /// The parser's message (it names the field and position).
        message: String,
    },
}

impl Error {
    pub(crate) fn seed(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidSeed {
            field: field.into(),
            message: message.into(),
        }
    }
}
