//! CloudSigma credentials: the `CredentialsProvider` trait and its providers.
//!
//! Every component that talks to CloudSigma (the CCM node controller, the CSI token provisioner and the
//! CSI controller) obtains credentials through this crate: legacy username/password, a static bearer
//! token, or a token impersonating the cluster owner obtained through the Keycloak client-credentials,
//! UMA and service-provider impersonation flow, cached per user and region. It knows OAuth and the
//! impersonation endpoint and nothing of servers or drives.

mod credentials;
mod error;
mod provider;
mod simple;

pub use credentials::{ApiHost, Credentials, Grant};
pub use error::{Error, Result};
pub use provider::{CredentialsProvider, SharedProvider};
pub use simple::{StaticTokenProvider, UsernamePasswordProvider};
