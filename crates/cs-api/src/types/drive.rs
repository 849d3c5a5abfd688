//! Drives: the full definition, the short list item, create and clone requests.

use serde::{Deserialize, Serialize};

use super::common::{Extra, Meta, ResourceRef, api_enum, lenient};

api_enum! {
    /// A drive's `status`.
    DriveStatus {
        /// Being created; becomes `unmounted`.
        Creating => "creating",
        /// Ready and in no server definition.
        Unmounted => "unmounted",
        /// In at least one server's drive list (even a stopped server's).
        Mounted => "mounted",
        /// Being resized.
        Resizing => "resizing",
        /// Source of a running clone.
        CloningSrc => "cloning_src",
        /// Target of a running clone.
        CloningDst => "cloning_dst",
        /// An upload is in progress.
        Uploading => "uploading",
        /// Failed.
        Unavailable => "unavailable",
    }
}

impl DriveStatus {
    /// `mounted` or `unmounted`: no operation is in progress on the drive.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Mounted | Self::Unmounted)
    }
}

api_enum! {
    /// A drive's `media`.
    DriveMedia {
        /// A disk.
        Disk => "disk",
        /// A CD-ROM image.
        Cdrom => "cdrom",
    }
}

api_enum! {
    /// A drive's `storage_type` (immutable after create).
    StorageType {
        /// Distributed SSD (the default).
        Dssd => "dssd",
        /// Scale-out magnetic storage.
        Zadara => "zadara",
        /// NVMe.
        Nvme => "nvme",
        /// Local, ephemeral NVMe.
        LocalNvme => "local_nvme",
    }
}

/// A full drive definition (`GET /drives/{uuid}/`, `/drives/detail/`); also the body of update and resize.
///
/// `status`, `mounted_on`, `runtime` and `snapshots` are read-only and never serialized; unknown fields
/// are kept in `extra` and sent back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Drive {
    /// The drive's uuid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// Its name.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub name: String,
    /// Size in bytes.
    #[serde(default, deserialize_with = "lenient::u64")]
    pub size: u64,
    /// `disk` or `cdrom`.
    #[serde(default)]
    pub media: DriveMedia,
    /// Storage type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<StorageType>,
    /// Current state (read-only).
    #[serde(default, skip_serializing)]
    pub status: DriveStatus,
    /// Servers whose definition lists the drive (read-only).
    #[serde(default, deserialize_with = "lenient::null_default", skip_serializing)]
    pub mounted_on: Vec<ResourceRef>,
    /// Whether several servers may attach it.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub allow_multimount: bool,
    /// Metadata.
    #[serde(default)]
    pub meta: Meta,
    /// Tags.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub tags: Vec<ResourceRef>,
    /// Snapshots of the drive (read-only).
    #[serde(default, deserialize_with = "lenient::null_default", skip_serializing)]
    pub snapshots: Vec<ResourceRef>,
    /// Runtime information (read-only).
    #[serde(default, skip_serializing)]
    pub runtime: Option<DriveRuntime>,
    /// Owning user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ResourceRef>,
    /// `/api/2.0/drives/{uuid}/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    /// Fields not modelled here, kept for round trips.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Drive {
    /// Whether `mounted_on` lists `server_uuid`.
    pub fn is_mounted_on(&self, server_uuid: &str) -> bool {
        self.mounted_on.iter().any(|r| r.uuid == server_uuid)
    }
}

/// A drive's `runtime` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DriveRuntime {
    /// Whether snapshots can be taken.
    #[serde(default)]
    pub is_snapshotable: Option<bool>,
    /// Bytes used by the drive's snapshots.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub snapshots_allocated_size: Option<u64>,
    /// Storage type as the runtime reports it.
    #[serde(default)]
    pub storage_type: Option<StorageType>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The short form of a drive in `GET /drives/` (uuid, status, owner, resource URI).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct DriveSummary {
    /// The drive's uuid.
    #[serde(default)]
    pub uuid: String,
    /// Current state.
    #[serde(default)]
    pub status: DriveStatus,
    /// Owning user.
    #[serde(default)]
    pub owner: Option<ResourceRef>,
    /// `/api/2.0/drives/{uuid}/`.
    #[serde(default)]
    pub resource_uri: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A drive to create (`POST /drives/`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewDrive {
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// `disk` or `cdrom`.
    pub media: DriveMedia,
    /// Storage type (API default `dssd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<StorageType>,
    /// Allow attaching to several servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_multimount: Option<bool>,
    /// Metadata.
    #[serde(skip_serializing_if = "Meta::is_empty")]
    pub meta: Meta,
}

impl NewDrive {
    /// A disk of `size` bytes with the API's default storage type.
    pub fn disk(name: impl Into<String>, size: u64) -> Self {
        Self {
            name: name.into(),
            size,
            media: DriveMedia::Disk,
            storage_type: None,
            allow_multimount: None,
            meta: Meta::new(),
        }
    }
}

/// Overrides for a clone (`POST /drives/{uuid}/action/?do=clone`); every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CloneDrive {
    /// Name of the new drive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Media of the new drive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<DriveMedia>,
    /// Size in bytes (at least the source's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Storage type of the new drive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_type: Option<StorageType>,
    /// Metadata of the new drive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_detail_drive_with_nulls_and_unknown_fields() {
        let d: Drive = serde_json::from_str(
            r#"{"uuid":"d1","name":"pvc-1","size":10737418240,"media":"disk","storage_type":"dssd",
                "status":"mounted","mounted_on":[{"uuid":"s1","resource_uri":"/api/2.0/servers/s1/"}],
                "allow_multimount":false,"meta":{},"tags":[],"snapshots":[],"remote_snapshots":[],
                "runtime":{"is_snapshotable":true,"snapshots_allocated_size":0,"storage_type":"dssd",
                           "is_ephemeral":false},
                "owner":{"uuid":"u1","resource_uri":"/api/2.0/user/u1/"},"resource_uri":"/api/2.0/drives/d1/",
                "affinities":[],"jobs":[],"licenses":[],"iops":null,"backup_scheduler":null}"#,
        )
        .unwrap();
        assert_eq!(d.size, 10 * 1024 * 1024 * 1024);
        assert_eq!(d.status, DriveStatus::Mounted);
        assert!(d.is_mounted_on("s1") && !d.is_mounted_on("s2"));
        assert_eq!(d.storage_type, Some(StorageType::Dssd));
        assert_eq!(d.runtime.as_ref().and_then(|r| r.is_snapshotable), Some(true));
        assert!(d.extra.contains_key("affinities") && d.extra.contains_key("remote_snapshots"));
        let body = serde_json::to_value(&d).unwrap();
        assert!(body.get("status").is_none() && body.get("mounted_on").is_none());
        assert_eq!(body["size"], 10_737_418_240_u64);
        assert_eq!(body["name"], "pvc-1");
    }

    #[test]
    fn unknown_status_and_string_size_are_kept() {
        let d: Drive = serde_json::from_str(
            r#"{"uuid":"d","status":"migrating","size":"536870912","mounted_on":null,"media":"floppy"}"#,
        )
        .unwrap();
        assert_eq!(d.status, DriveStatus::Unknown("migrating".into()));
        assert!(!d.status.is_ready());
        assert_eq!(d.media, DriveMedia::Unknown("floppy".into()));
        assert_eq!(d.size, 536_870_912);
        let cloning: DriveStatus = serde_json::from_str("\"cloning_dst\"").unwrap();
        assert_eq!(cloning, DriveStatus::CloningDst);
    }

    #[test]
    fn create_request_has_the_documented_shape() {
        let mut d = NewDrive::disk("pvc-1234", 10_737_418_240);
        d.storage_type = Some(StorageType::Dssd);
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"name": "pvc-1234", "size": 10_737_418_240_u64, "media": "disk", "storage_type": "dssd"})
        );
        assert_eq!(
            serde_json::to_value(CloneDrive::default()).unwrap(),
            serde_json::json!({})
        );
    }
}
