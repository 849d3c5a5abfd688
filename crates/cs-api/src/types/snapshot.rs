//! Drive snapshots.

use serde::{Deserialize, Serialize};

use super::common::{Extra, Meta, ResourceRef, api_enum, lenient};
use super::drive::{DriveMedia, StorageType};

api_enum! {
    /// A snapshot's `status`.
    SnapshotStatus {
        /// Being taken.
        Creating => "creating",
        /// Ready.
        Available => "available",
        /// Being cloned into a drive.
        CloningDst => "cloning_dst",
    }
}

/// A snapshot of a drive.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The snapshot's uuid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// Its name.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub name: String,
    /// The drive it was taken of.
    #[serde(default)]
    pub drive: Option<ResourceRef>,
    /// Current state (read-only).
    #[serde(default, skip_serializing)]
    pub status: SnapshotStatus,
    /// When it was taken, as the API formats it (`YYYY-MM-DD HH:MM:SS.ffffff+00:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Bytes it occupies, once known.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub allocated_size: Option<u64>,
    /// Metadata.
    #[serde(default)]
    pub meta: Meta,
    /// Tags.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub tags: Vec<ResourceRef>,
    /// Owning user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ResourceRef>,
    /// `/api/2.0/snapshots/{uuid}/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A snapshot to take (`POST /snapshots/`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewSnapshot {
    /// Uuid of the drive to snapshot.
    pub drive: String,
    /// Name of the snapshot.
    pub name: String,
    /// Metadata.
    #[serde(skip_serializing_if = "Meta::is_empty")]
    pub meta: Meta,
}

/// A new drive made from a snapshot (`POST /snapshots/{uuid}/action/?do=clone`).
///
/// The API also accepts an empty body (every value from the snapshot and its drive); this client always
/// names the drive and states its size, so that the caller decides both.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SnapshotCloneRequest {
    /// Name of the new drive.
    pub name: String,
    /// Size of the new drive in bytes; at least the size of the snapshot's source drive (the API
    /// refuses a smaller one with a 400 naming `size`).
    pub size: u64,
    /// Media of the new drive (the API defaults to the source drive's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<DriveMedia>,
    /// Storage type of the new drive (the API defaults to the source drive's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<StorageType>,
    /// Metadata of the new drive.
    #[serde(skip_serializing_if = "Meta::is_empty")]
    pub meta: Meta,
}

impl SnapshotCloneRequest {
    /// A disk named `name` of `size` bytes with the source drive's storage type and no metadata.
    pub fn new(name: impl Into<String>, size: u64) -> Self {
        Self {
            name: name.into(),
            size,
            media: None,
            storage_type: None,
            meta: Meta::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_snapshot_and_builds_a_request() {
        let s: Snapshot = serde_json::from_str(
            r#"{"uuid":"sn1","name":"daily","drive":{"uuid":"d1","resource_uri":"/api/2.0/drives/d1/"},
                "status":"available","timestamp":"2025-01-01 10:00:00.000000+00:00","allocated_size":null,
                "meta":{},"tags":[],"grantees":[]}"#,
        )
        .unwrap();
        assert_eq!(s.status, SnapshotStatus::Available);
        assert_eq!(s.drive.map(|d| d.uuid).as_deref(), Some("d1"));
        assert_eq!(s.allocated_size, None);
        let req = NewSnapshot {
            drive: "d1".into(),
            name: "x".into(),
            meta: Meta::new(),
        };
        assert_eq!(
            serde_json::to_value(req).unwrap(),
            serde_json::json!({"drive": "d1", "name": "x"})
        );
    }

    #[test]
    fn clone_request_sends_only_what_is_set() {
        let plain = SnapshotCloneRequest::new("pvc-restored", 10 << 30);
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!({"name": "pvc-restored", "size": 10_737_418_240_u64})
        );
        let full = SnapshotCloneRequest {
            media: Some(DriveMedia::Disk),
            storage_type: Some(StorageType::Nvme),
            meta: [("csi_source_snapshot", "sn1")].into_iter().collect(),
            ..plain
        };
        assert_eq!(
            serde_json::to_value(&full).unwrap(),
            serde_json::json!({"name": "pvc-restored", "size": 10_737_418_240_u64, "media": "disk",
                               "storage_type": "nvme", "meta": {"csi_source_snapshot": "sn1"}})
        );
    }
}
