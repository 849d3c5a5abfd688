//! CloudSigma credentials: the `CredentialsProvider` trait and its providers.
//!
//! Every component that talks to CloudSigma (the CCM node controller, the CSI token provisioner and the
//! CSI controller) obtains credentials through this crate: legacy username/password, a static bearer
//! token, or a token impersonating the cluster owner obtained through the Keycloak client-credentials,
//! UMA and service-provider impersonation flow, cached per user and region. It knows OAuth and the
//! impersonation endpoint and nothing of servers or drives.
//!
//! - [`UsernamePasswordProvider`], [`StaticTokenProvider`]: fixed credentials.
//! - [`ImpersonationClient`]: the three-step flow and the per-(user, region) token cache; cheap to
//!   clone, share one per process. [`ImpersonatedProvider`]: one user and region of it.
//! - [`FallbackProvider`]: impersonation first, legacy credentials while it fails.
//! - [`AuthObserver`] / [`AuthCounters`]: what happened, for metrics.
//!
//! See `docs/auth.md` for the flow, the caching rule, retries and the fallback behaviour.

mod client;
mod config;
mod credentials;
mod endpoints;
mod error;
mod fallback;
mod impersonated;
mod lifetime;
mod observer;
mod provider;
mod retry;
mod service;
mod simple;
mod transport;
mod wire;

pub use client::{ImpersonatedToken, ImpersonationClient};
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_EXPIRY_BUFFER, DEFAULT_IMPERSONATION_URL, DEFAULT_MAX_CACHED_TOKENS,
    DEFAULT_OAUTH_URL, DEFAULT_TIMEOUT, ImpersonationConfig, RetryPolicy,
};
pub use credentials::{ApiHost, Credentials, Grant};
pub use endpoints::{REGION_PLACEHOLDER, validate_region};
pub use error::{Error, Result, Step};
pub use fallback::{DEFAULT_PROBE_INTERVAL, FallbackProvider};
pub use impersonated::ImpersonatedProvider;
pub use lifetime::{DEFAULT_TOKEN_LIFETIME, lifetime_from_expires_in, refresh_after};
pub use observer::{
    AuthCounters, AuthCountersSnapshot, AuthObserver, CacheLookup, FallbackPath, NoopObserver, OutcomeCounts,
    RequestOutcome, all_outcomes,
};
pub use provider::{CredentialsProvider, SharedProvider};
pub use simple::{StaticTokenProvider, UsernamePasswordProvider};
pub use transport::{CredentialUrl, PlainHttpRefused, check_plain_http, is_plain_http};
