//! The crate's error type.

use std::{path::PathBuf, time::Duration};

/// Everything that can stop a benchmark run. Messages name the setting, file or step at fault and
/// never contain the client secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is unusable.
    #[error("{field}: {message}")]
    Config {
        /// The flag or setting at fault, e.g. `--nodes`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A Kubernetes request failed.
    #[error("kubernetes: {what}: {source}")]
    Kube {
        /// The step, e.g. `create node node-0001`.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The emulator refused a setup step.
    #[error("emulator: {0}")]
    Emulator(#[from] cs_emulator::Error),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation, naming the path or program.
        what: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The `ccm` process ended before the scenario did.
    #[error("the ccm exited early ({status}); its log is {log}")]
    CcmExited {
        /// The exit status as text.
        status: String,
        /// The ccm's log file.
        log: PathBuf,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the run waited.
        after: Duration,
    },
    /// A metrics text, a `/proc` file or a log line could not be understood.
    #[error("cannot parse {what}: {message}")]
    Parse {
        /// The source, e.g. `/proc/123/stat`.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// An HTTP request to the ccm's metrics endpoint failed.
    #[error("ccm metrics: {0}")]
    Http(#[from] reqwest::Error),
    /// The result of the run is not what the ccm must produce (so its figures would be meaningless).
    #[error("check failed: {0}")]
    Check(String),
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A Kubernetes error during `what`.
    pub fn kube(what: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            what: what.into(),
            source,
        }
    }

    /// An I/O error during `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// An unparsable `what`.
    pub fn parse(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Parse {
            what: what.into(),
            message: message.into(),
        }
    }
}
