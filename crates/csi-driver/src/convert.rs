//! CloudSigma objects to CSI messages, and the metadata that marks the driver's objects.

use std::collections::HashMap;

use cs_api::{Drive, Meta, ServerDrive, Snapshot as CsSnapshot, SnapshotStatus, StorageType};

use crate::{
    DRIVER_NAME, TOPOLOGY_KEY,
    csi::{Snapshot, Topology, Volume},
    sizes::to_i64,
    source::ContentSource,
};

/// Meta key holding the CSI name of a drive or snapshot made by this driver.
pub const META_NAME: &str = "csi_name";
/// Meta key holding the driver name ([`DRIVER_NAME`]) on every object this driver made.
pub const META_DRIVER: &str = "csi_driver";
/// Meta keys for the PVC/PV the volume was made for (from the provisioner's `--extra-create-metadata`).
pub const META_PVC_NAME: &str = "pvc_name";
/// See [`META_PVC_NAME`].
pub const META_PVC_NAMESPACE: &str = "pvc_namespace";
/// See [`META_PVC_NAME`].
pub const META_PV_NAME: &str = "pv_name";

/// `publish_context` key: the drive's channel on the server, `controller:unit` (e.g. `0:2`).
pub const CONTEXT_DEV_CHANNEL: &str = "devChannel";
/// `publish_context` key: the drive uuid.
pub const CONTEXT_DRIVE_UUID: &str = "driveUuid";
/// `publish_context` key: the bus, `virtio`.
pub const CONTEXT_DEVICE: &str = "device";
/// `volume_context` key: the drive's storage type.
pub const CONTEXT_STORAGE_TYPE: &str = "storageType";

/// The meta map of a new drive or snapshot named `name` by the CO.
pub fn driver_meta(name: &str) -> Meta {
    let mut meta = Meta::new();
    meta.insert(META_NAME.to_owned(), name.to_owned());
    meta.insert(META_DRIVER.to_owned(), DRIVER_NAME.to_owned());
    meta
}

/// Whether this driver made the object carrying `meta`.
pub fn is_ours(meta: &Meta) -> bool {
    meta.get(META_DRIVER).map(String::as_str) == Some(DRIVER_NAME)
}

/// Whether `meta` marks an object this driver made for the CSI name `name`.
pub fn has_csi_name(meta: &Meta, name: &str) -> bool {
    is_ours(meta) && meta.get(META_NAME).map(String::as_str) == Some(name)
}

/// The topology of every volume in `region`.
pub fn region_topology(region: &str) -> Topology {
    Topology {
        segments: HashMap::from([(TOPOLOGY_KEY.to_owned(), region.to_owned())]),
    }
}

/// The storage type of a drive, `dssd` when the API did not say.
pub fn storage_type(drive: &Drive) -> StorageType {
    drive.storage_type.clone().unwrap_or(StorageType::Dssd)
}

/// The CSI volume for a drive: id = drive uuid, capacity = drive size, the region as topology, the
/// storage type as volume context, the snapshot or volume it was made from (recorded in its meta) as
/// content source — a pure function of the drive, so it never changes for a volume.
pub fn volume(drive: &Drive, region: &str) -> Volume {
    Volume {
        capacity_bytes: to_i64(drive.size),
        volume_id: drive.uuid.clone(),
        volume_context: HashMap::from([(
            CONTEXT_STORAGE_TYPE.to_owned(),
            storage_type(drive).as_str().to_owned(),
        )]),
        content_source: ContentSource::from_meta(&drive.meta).map(|s| s.to_csi()),
        accessible_topology: vec![region_topology(region)],
    }
}

/// The `publish_context` for a drive attached as `entry`.
pub fn publish_context(drive_uuid: &str, entry: &ServerDrive) -> HashMap<String, String> {
    HashMap::from([
        (
            CONTEXT_DEV_CHANNEL.to_owned(),
            entry.dev_channel.trim().to_owned(),
        ),
        (CONTEXT_DRIVE_UUID.to_owned(), drive_uuid.to_owned()),
        (CONTEXT_DEVICE.to_owned(), entry.device.as_str().to_owned()),
    ])
}

/// The CSI snapshot for a CloudSigma snapshot; `size_bytes` is the source drive's size when known (the
/// smallest volume it can be restored to), else 0 ("unknown").
pub fn snapshot(snapshot: &CsSnapshot, source_size: Option<u64>) -> Snapshot {
    Snapshot {
        size_bytes: source_size.map(to_i64).unwrap_or(0),
        snapshot_id: snapshot.uuid.clone(),
        source_volume_id: snapshot
            .drive
            .as_ref()
            .map(|d| d.uuid.clone())
            .unwrap_or_default(),
        creation_time: snapshot.timestamp.as_deref().and_then(parse_timestamp),
        ready_to_use: snapshot.status == SnapshotStatus::Available,
        group_snapshot_id: String::new(),
    }
}

/// Parses CloudSigma's `YYYY-MM-DD HH:MM:SS.ffffff+00:00` (or RFC 3339) into a protobuf timestamp.
pub fn parse_timestamp(text: &str) -> Option<prost_types::Timestamp> {
    let text = text.trim();
    let iso = match text.split_once(' ') {
        Some((date, time)) => format!("{date}T{time}"),
        None => text.to_owned(),
    };
    let ts: jiff::Timestamp = iso.parse().ok()?;
    // Protobuf wants 0 <= nanos < 1e9; jiff's parts of a time before 1970 are both negative.
    let (seconds, nanos) = match ts.subsec_nanosecond() {
        n if n < 0 => (ts.as_second() - 1, n + 1_000_000_000),
        n => (ts.as_second(), n),
    };
    Some(prost_types::Timestamp { seconds, nanos })
}

#[cfg(test)]
mod tests {
    use cs_api::{DevChannel, ResourceRef};

    use super::*;

    #[test]
    fn a_drive_becomes_a_volume_in_the_region() {
        let drive = Drive {
            uuid: "d-1".into(),
            size: 10 << 30,
            storage_type: Some(StorageType::Nvme),
            meta: driver_meta("pvc-1"),
            ..Drive::default()
        };
        let v = volume(&drive, "zrh");
        assert_eq!((v.volume_id.as_str(), v.capacity_bytes), ("d-1", 10 << 30));
        assert_eq!(v.volume_context[CONTEXT_STORAGE_TYPE], "nvme");
        assert_eq!(v.accessible_topology[0].segments[TOPOLOGY_KEY], "zrh");
        assert_eq!(v.content_source, None);
        let mut restored = drive.clone();
        ContentSource::Snapshot("sn-1".into()).record(&mut restored.meta);
        assert_eq!(
            volume(&restored, "zrh").content_source,
            Some(ContentSource::Snapshot("sn-1".into()).to_csi())
        );
        assert!(has_csi_name(&drive.meta, "pvc-1") && !has_csi_name(&drive.meta, "pvc-2"));
        let mut foreign = drive.meta.clone();
        foreign.insert(META_DRIVER.into(), "other.driver".into());
        assert!(!is_ours(&foreign) && !has_csi_name(&foreign, "pvc-1"));
        assert_eq!(
            volume(&Drive::default(), "zrh").volume_context[CONTEXT_STORAGE_TYPE],
            "dssd"
        );
    }

    #[test]
    fn publish_context_names_channel_drive_and_bus() {
        let entry = ServerDrive::virtio(
            "d-1",
            DevChannel {
                controller: 0,
                unit: 2,
            },
        );
        let ctx = publish_context("d-1", &entry);
        assert_eq!(ctx[CONTEXT_DEV_CHANNEL], "0:2");
        assert_eq!(ctx[CONTEXT_DRIVE_UUID], "d-1");
        assert_eq!(ctx[CONTEXT_DEVICE], "virtio");
    }

    #[test]
    fn snapshots_carry_source_time_and_readiness() {
        let s = CsSnapshot {
            uuid: "s-1".into(),
            drive: Some(ResourceRef::new("d-1")),
            status: SnapshotStatus::Available,
            timestamp: Some("2025-01-01 10:00:00.250000+00:00".into()),
            ..CsSnapshot::default()
        };
        let c = snapshot(&s, Some(5 << 30));
        assert_eq!(
            (c.snapshot_id.as_str(), c.source_volume_id.as_str()),
            ("s-1", "d-1")
        );
        assert!(c.ready_to_use);
        assert_eq!(c.size_bytes, 5 << 30);
        assert_eq!(
            c.creation_time,
            Some(prost_types::Timestamp {
                seconds: 1_735_725_600,
                nanos: 250_000_000
            })
        );
        let creating = CsSnapshot {
            status: SnapshotStatus::Creating,
            ..s
        };
        assert!(!snapshot(&creating, None).ready_to_use);
        assert_eq!(
            parse_timestamp("2025-01-01T10:00:00Z").map(|t| t.seconds),
            Some(1_735_725_600)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
