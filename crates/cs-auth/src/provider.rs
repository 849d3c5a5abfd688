//! The provider trait every credentials source implements.

use std::{fmt, sync::Arc};

use async_trait::async_trait;

use crate::{Grant, Result};

/// A source of CloudSigma credentials. Object safe: callers hold an `Arc<dyn CredentialsProvider>`.
///
/// Implementations must be cheap to call on every request (cache internally) and must never expose
/// secret values through `Debug`, errors or logs.
#[async_trait]
pub trait CredentialsProvider: Send + Sync + fmt::Debug {
    /// Credentials for the next request, and the host they belong on.
    async fn credentials(&self) -> Result<Grant>;

    /// The API answered 401 to credentials from this provider: drop whatever is cached so the next
    /// `credentials()` call obtains fresh ones.
    async fn invalidate(&self);

    /// A short, stable, non-secret name for logs and metrics (e.g. `legacy`, `impersonation`).
    fn name(&self) -> &'static str;
}

/// A provider shared between clients and controllers.
pub type SharedProvider = Arc<dyn CredentialsProvider>;
