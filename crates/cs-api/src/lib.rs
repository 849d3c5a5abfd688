//! A typed client for CloudSigma API 2.0.
//!
//! Builds base URLs for locations (including the `direct.{loc}` host an impersonated token must use),
//! sends requests with credentials from any `cs-auth` provider, decodes servers, drives, snapshots, IPs,
//! locations and capabilities, pages through every list, maps error bodies to one typed error, and
//! retries idempotent requests on transient failures.
