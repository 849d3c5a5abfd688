//! The narrow view of CloudSigma the node controllers need, so they can be driven by any client.

use async_trait::async_trait;

use crate::ServerFacts;

/// Why a CloudSigma lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// A direct GET of the server answered 404 with `error_type` `notexist`: the server is gone.
    #[error("server {uuid} does not exist (404 notexist)")]
    NotFound {
        /// The server UUID asked for.
        uuid: String,
    },
    /// The credentials were refused (401).
    #[error("CloudSigma refused the credentials: {0}")]
    Unauthorized(String),
    /// Permission denied (403), e.g. a server of another account.
    #[error("CloudSigma denied permission: {0}")]
    Forbidden(String),
    /// A transient failure: 5xx, 503 concurrency, rate limiting, timeout, connection error.
    #[error("CloudSigma unavailable: {0}")]
    Unavailable(String),
    /// Anything else (unexpected status, undecodable answer, no credentials).
    #[error("CloudSigma request failed: {0}")]
    Other(String),
}

impl CloudError {
    /// A low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Unavailable(_) => "unavailable",
            Self::Other(_) => "other",
        }
    }
}

/// The CloudSigma operations the node controllers use.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// Every server of the account with full details (the implementation pages until complete).
    async fn list_servers(&self) -> Result<Vec<ServerFacts>, CloudError>;
    /// One server by UUID, with a direct GET. `CloudError::NotFound` only on a confirmed 404 `notexist`.
    async fn get_server(&self, uuid: &str) -> Result<ServerFacts, CloudError>;
}
