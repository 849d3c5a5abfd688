//! The CloudSigma CSI Identity and Controller services.
//!
//! Volumes are CloudSigma drives (`media: disk`), the volume id is the drive uuid and the node id is the
//! server uuid. [`ControllerService`] implements the CSI v1 Controller RPCs over a [`cs_api::Client`];
//! [`IdentityService`] the Identity RPCs; [`endpoint`] binds the Unix socket and serves both.
//! `docs/csi.md` documents parameters, limits, error mapping and deviations.

mod controller;
pub mod convert;
pub mod endpoint;
mod error;
mod identity;
pub mod locks;
pub mod paging;
pub mod sizes;
pub mod source;
pub mod validate;

/// The CSI v1 protocol (`csi.v1`), generated from the vendored `proto/csi.proto` (CSI spec v1.9.0).
#[allow(missing_docs, clippy::all, clippy::pedantic, rust_2018_idioms)]
pub mod csi {
    tonic::include_proto!("csi.v1");
}

pub use controller::{ControllerOptions, ControllerService, MAX_SNAPSHOTS_PER_DRIVE, PARAM_STORAGE_TYPE};
pub use error::{Error, Result, cloud_code};
pub use identity::IdentityService;

/// The driver name reported by GetPluginInfo and stored on every drive and snapshot the driver makes.
pub const DRIVER_NAME: &str = "csi.cloudsigma.com";

/// The topology segment key; its value is the region (location code) the volumes live in.
pub const TOPOLOGY_KEY: &str = "topology.cloudsigma.com/region";
