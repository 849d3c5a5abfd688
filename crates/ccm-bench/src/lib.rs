//! `make bench`: the real `ccm` binary against the genuine kube-apiserver and the CloudSigma emulator,
//! measured as ratios against floors taken in the same run (see docs/performance.md).
//!
//! - [`fleet`]: the emulator (in this process) with N servers in one account.
//! - [`nodes`]: kubelet-style Node registration, expected results, checks.
//! - [`floor`]: the minimal client making the same 2N writes.
//! - [`ccm`]: the ccm as a child process (metrics, `/proc` usage, JSON log timeline).
//! - [`apiserver`]: the apiserver's request counters, per phase.
//! - [`scenario`]: one run for one N; [`report`]: the tables and goals.

pub mod apiserver;
pub mod ccm;
mod error;
pub mod fleet;
pub mod floor;
pub mod nodes;
pub mod procstat;
pub mod prom;
pub mod report;
pub mod scenario;
pub mod stats;

pub use error::{Error, Result};
