//! Keeps a fresh impersonated CloudSigma token in the tenant cluster for the CSI driver.
//!
//! The CCM writes Secret `cloudsigma-csi/cloudsigma-token` (type Opaque; keys `access_token`,
//! `region`, `user_email`, `expires_at`) so the CSI driver needs no CloudSigma credentials of its own.
//!
//! - [`schedule`]: when to check again and when a stored token must be replaced — pure functions of
//!   the stored token's expiry, the time, the interval, the margin and the jitter.
//! - [`secret`]: the Secret's format and how a live Secret compares with it (pure).
//! - [`TokenSource`] / [`ImpersonationSource`]: where tokens come from (cs-auth's shared cache).
//! - [`CsiTokenController`]: watches the one Secret and writes it only when something changes.
//! - [`Metrics`]: what happened, for the binary's Prometheus registry.
//!
//! A binary builds it like this (the impersonation client is the one the node controller uses):
//!
//! ```no_run
//! # async fn start(kube: kube::Client, auth: cs_auth::ImpersonationClient) -> ccm_csitoken::Result<()> {
//! use std::sync::Arc;
//! use ccm_csitoken::{Config, CsiTokenController, ImpersonationSource, Metrics};
//!
//! let metrics = Metrics::new();
//! let mut registry = prometheus_client::registry::Registry::default();
//! metrics.register(&mut registry);
//! let source = ImpersonationSource::new(auth, "tenant@example.com", "zrh")?;
//! let controller = CsiTokenController::new(kube, Config::default(), Arc::new(source), metrics)?;
//! tokio::spawn(controller.run(async { let _ = tokio::signal::ctrl_c().await; }));
//! # Ok(()) }
//! ```
//!
//! See `docs/csi-token.md` for the Secret format, the schedule, failure behaviour and RBAC.

mod config;
mod controller;
mod error;
mod metrics;
pub mod schedule;
pub mod secret;
mod source;

pub use config::{
    Config, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN, DEFAULT_JITTER, DEFAULT_MARGIN, DEFAULT_MIN_DELAY,
    DEFAULT_NAMESPACE, DEFAULT_PROPAGATION, DEFAULT_REFRESH_INTERVAL, DEFAULT_SECRET_NAME, EVENT_REPORTER,
};
pub use controller::{CsiTokenController, Written};
pub use error::{Error, FailureReason, Result, reason_of_auth_error};
pub use metrics::{Metrics, ReasonLabel};
pub use schedule::{Backoff, Schedule};
pub use source::{ImpersonationSource, IssuedToken, TokenSource};
