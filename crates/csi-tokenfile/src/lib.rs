//! A credentials provider that reads the CloudSigma token from a mounted Secret file.
//!
//! The CSI controller mounts the Secret written by `ccm-csitoken` (keys `access_token`, `region`,
//! `user_email`). [`TokenFileProvider`] re-reads the token file on every call, always as one consistent
//! Secret version (it resolves the kubelet's `..data` symlink once per read), rejects empty, malformed
//! and expired tokens with an error naming the file and the reason, and falls back to legacy
//! username/password credentials whenever — and only while — no usable token is present.
//!
//! See `docs/csi.md` (section "Credentials") for the rules and their reasons.

mod error;
mod provider;
mod read;
mod token;

pub use error::{Error, Result};
pub use provider::{
    DEFAULT_REFUSED_TOKEN_HOLD, DEFAULT_TOKEN_FILE, RegionSource, Source, TokenFileConfig, TokenFileProvider,
    check_region,
};
