//! A typed client for CloudSigma API 2.0.
//!
//! Builds base URLs for locations (including the `direct.{loc}` host an impersonated token must use),
//! sends requests with credentials from any `cs-auth` provider, decodes servers, drives, snapshots, IPs,
//! locations and capabilities, pages through every list, maps error bodies to one typed error, and
//! retries idempotent requests on transient failures.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cs_api::Error> {
//! use std::sync::Arc;
//! use cs_api::{Client, ClientOptions, Endpoints, ListFilter};
//! use cs_auth::UsernamePasswordProvider;
//!
//! let provider = UsernamePasswordProvider::new("me@example.com", "secret".to_owned().into())
//!     .map_err(cs_api::Error::Credentials)?;
//! let client = Client::new(Endpoints::for_location("zrh")?, Arc::new(provider), ClientOptions::default())?;
//! for server in client.list_servers_detail(&ListFilter::all()).await? {
//!     println!("{} {} {}", server.name, server.uuid, server.status);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Retry policy and error model: see `docs/cloudsigma-client.md`.

mod client;
mod endpoints;
mod error;
mod observe;
mod ops;
mod options;
mod paging;
mod path;
mod types;

pub use client::Client;
pub use endpoints::{Endpoints, LOCATIONS, REGION_PLACEHOLDER, location_host};
pub use error::{ApiFailure, Error, ErrorDetail, Result};
pub use observe::{CountKey, CountingObserver, NoopObserver, Outcome, RequestObserver};
pub use ops::{MAX_DRIVES_PER_SERVER, attach_channel_order, pick_free_channel};
pub use options::ClientOptions;
pub use paging::{ListFilter, ListMeta, Page, Pager};
pub use types::*;
