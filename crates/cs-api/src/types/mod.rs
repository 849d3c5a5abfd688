//! The typed CloudSigma resources. Every struct tolerates unknown fields (kept in `extra`) and the
//! documented `null`s; statuses are enums that keep unknown values in `Unknown(String)`.

mod common;
mod drive;
mod misc;
mod server;
mod snapshot;

pub(crate) use common::lenient;
pub use common::{Extra, Meta, ResourceRef, SecretValue};
pub use drive::{
    CloneDrive, Drive, DriveMedia, DriveRuntime, DriveStatus, DriveSummary, NewDrive, StorageType,
};
pub use misc::{
    ActionResult, Capabilities, DriveSizeLimits, Ip, Location, Range, ServerCapabilities,
    SnapshotCapabilities,
};
pub use server::{
    DevChannel, DriveDevice, InterfaceType, IpConf, IpConfMode, Nic, NicRuntime, RuntimeAddress, Server,
    ServerDrive, ServerRuntime, ServerStatus, ServerSummary,
};
pub use snapshot::{NewSnapshot, Snapshot, SnapshotCloneRequest, SnapshotStatus};
