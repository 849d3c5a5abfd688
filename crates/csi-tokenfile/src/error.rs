//! Why the token file (or one of its neighbours) cannot be used right now.

use std::{io, path::PathBuf};

use jiff::Timestamp;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A state of the mounted Secret that makes its token unusable, or a configuration error.
///
/// Messages name the file and the reason, never the token or any part of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The provider is configured incorrectly.
    #[error("invalid token-file configuration: {0}")]
    Config(String),
    /// The file does not exist (the Secret is not mounted yet, or has no such key).
    #[error("token file {path} does not exist")]
    Missing {
        /// The file that was looked for.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("token file {path} cannot be read: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's explanation.
        reason: String,
    },
    /// The file is empty or holds only whitespace.
    #[error("token file {path} is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than any token could be.
    #[error("token file {path} is larger than {limit} bytes; it cannot hold a single token")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The size limit.
        limit: usize,
    },
    /// The content is not UTF-8 text.
    #[error("token file {path} is not UTF-8 text")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The trimmed content has characters no bearer token can carry (inner whitespace, control or
    /// non-ASCII characters): a half-written file, several values, or not a token at all.
    #[error(
        "token file {path} does not hold a single token: it contains whitespace, control or non-ASCII \
         characters"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The token is a JWT whose `exp` claim lies in the past.
    #[error(
        "the token in {path} expired at {expired_at} ({ago_secs} s ago); waiting for the Secret to be refreshed"
    )]
    Expired {
        /// The file.
        path: PathBuf,
        /// The token's `exp` claim.
        expired_at: Timestamp,
        /// How long ago that was, in whole seconds.
        ago_secs: i64,
    },
    /// The API refused this very token (HTTP 401) and the file has not changed since.
    #[error("the CloudSigma API refused the token in {path} (HTTP 401); waiting for the file to change")]
    Refused {
        /// The file.
        path: PathBuf,
    },
    /// The Secret's `region` file names another region than the one this process serves.
    #[error(
        "the region file {path} says {file_region:?} but this process serves region {serving:?}; a token \
         for another region is useless here (restart to change regions)"
    )]
    RegionChanged {
        /// The region file.
        path: PathBuf,
        /// What the file says now.
        file_region: String,
        /// The region this process was started for.
        serving: String,
    },
    /// A neighbour file (`region`) holds an unusable value.
    #[error("{path} holds an invalid value: {reason}")]
    InvalidNeighbour {
        /// The file.
        path: PathBuf,
        /// Why it is invalid (never the value of a secret).
        reason: String,
    },
    /// No region is known: no override and no readable region file.
    #[error(
        "no CloudSigma region: no region override is set and the region file {path} is not usable ({reason})"
    )]
    NoRegion {
        /// The region file that was looked for.
        path: PathBuf,
        /// Why it was not usable.
        reason: String,
    },
}

impl Error {
    /// A short, stable label for logs and metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Missing { .. } => "missing",
            Self::Unreadable { .. } => "unreadable",
            Self::Empty { .. } => "empty",
            Self::TooLarge { .. } => "too_large",
            Self::NotUtf8 { .. } => "not_utf8",
            Self::Malformed { .. } => "malformed",
            Self::Expired { .. } => "expired",
            Self::Refused { .. } => "refused",
            Self::RegionChanged { .. } => "region_changed",
            Self::InvalidNeighbour { .. } => "invalid_neighbour",
            Self::NoRegion { .. } => "no_region",
        }
    }

    /// Classifies an I/O error from opening or reading `path`.
    pub(crate) fn from_io(path: PathBuf, error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::NotFound => Self::Missing { path },
            _ => Self::Unreadable {
                path,
                reason: error.to_string(),
            },
        }
    }
}
