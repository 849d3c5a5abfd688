//! Volume content sources: a volume restored from a snapshot or cloned from another volume, and how the
//! source is remembered in the drive's meta (so that a repeated CreateVolume can compare it and every
//! answer for the volume echoes it).

use std::fmt;

use cs_api::Meta;

use crate::{
    Error, Result,
    csi::{VolumeContentSource, volume_content_source},
};

/// Meta key holding the snapshot a volume was restored from.
pub const META_SOURCE_SNAPSHOT: &str = "csi_source_snapshot";
/// Meta key holding the volume a volume was cloned from.
pub const META_SOURCE_VOLUME: &str = "csi_source_volume";

/// Where the data of a new volume comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentSource {
    /// Restore from this snapshot id (a CloudSigma snapshot uuid).
    Snapshot(String),
    /// Clone this volume id (a CloudSigma drive uuid).
    Volume(String),
}

impl ContentSource {
    /// The source of a CreateVolume request: `None` without one; INVALID_ARGUMENT for an empty id or a
    /// source of a kind this driver does not know.
    pub fn from_request(source: Option<&VolumeContentSource>) -> Result<Option<Self>> {
        let Some(source) = source else {
            return Ok(None);
        };
        match &source.r#type {
            Some(volume_content_source::Type::Snapshot(s)) => {
                non_empty("volume_content_source.snapshot.snapshot_id", &s.snapshot_id)
                    .map(|id| Some(Self::Snapshot(id)))
            }
            Some(volume_content_source::Type::Volume(v)) => {
                non_empty("volume_content_source.volume.volume_id", &v.volume_id)
                    .map(|id| Some(Self::Volume(id)))
            }
            None => Err(Error::InvalidArgument(
                "volume_content_source names neither a snapshot nor a volume; those are the sources this \
                 driver supports"
                    .into(),
            )),
        }
    }

    /// The source recorded in a drive's meta, if any.
    pub fn from_meta(meta: &Meta) -> Option<Self> {
        if let Some(id) = meta.get(META_SOURCE_SNAPSHOT) {
            return Some(Self::Snapshot(id.clone()));
        }
        meta.get(META_SOURCE_VOLUME).map(|id| Self::Volume(id.clone()))
    }

    /// Records the source in a new drive's meta.
    pub fn record(&self, meta: &mut Meta) {
        let (key, id) = match self {
            Self::Snapshot(id) => (META_SOURCE_SNAPSHOT, id),
            Self::Volume(id) => (META_SOURCE_VOLUME, id),
        };
        meta.insert(key.to_owned(), id.clone());
    }

    /// The snapshot or volume id.
    pub fn id(&self) -> &str {
        match self {
            Self::Snapshot(id) | Self::Volume(id) => id,
        }
    }

    /// The CSI message for `Volume.content_source`.
    pub fn to_csi(&self) -> VolumeContentSource {
        let r#type = match self {
            Self::Snapshot(id) => {
                volume_content_source::Type::Snapshot(volume_content_source::SnapshotSource {
                    snapshot_id: id.clone(),
                })
            }
            Self::Volume(id) => volume_content_source::Type::Volume(volume_content_source::VolumeSource {
                volume_id: id.clone(),
            }),
        };
        VolumeContentSource { r#type: Some(r#type) }
    }
}

impl fmt::Display for ContentSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Snapshot(id) => write!(f, "snapshot {id}"),
            Self::Volume(id) => write!(f, "volume {id}"),
        }
    }
}

/// How a (possibly absent) source reads in messages.
pub fn describe(source: Option<&ContentSource>) -> String {
    source.map_or_else(|| "no content source".to_owned(), ToString::to_string)
}

fn non_empty(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        Err(Error::InvalidArgument(format!("{field} is required")))
    } else {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_source(id: &str) -> VolumeContentSource {
        ContentSource::Snapshot(id.into()).to_csi()
    }

    #[test]
    fn request_sources_are_parsed_and_empty_ids_refused() {
        assert_eq!(ContentSource::from_request(None).unwrap(), None);
        assert_eq!(
            ContentSource::from_request(Some(&snapshot_source("sn-1"))).unwrap(),
            Some(ContentSource::Snapshot("sn-1".into()))
        );
        let volume = ContentSource::Volume("d-1".into()).to_csi();
        assert_eq!(
            ContentSource::from_request(Some(&volume)).unwrap(),
            Some(ContentSource::Volume("d-1".into()))
        );
        let e = ContentSource::from_request(Some(&snapshot_source(""))).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("snapshot_id"),
            "{e}"
        );
        let e = ContentSource::from_request(Some(&VolumeContentSource { r#type: None })).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    #[test]
    fn the_source_round_trips_through_the_drive_meta() {
        for source in [
            ContentSource::Snapshot("sn-1".into()),
            ContentSource::Volume("d-1".into()),
        ] {
            let mut meta = Meta::new();
            assert_eq!(ContentSource::from_meta(&meta), None);
            source.record(&mut meta);
            assert_eq!(ContentSource::from_meta(&meta).as_ref(), Some(&source));
            assert_eq!(
                ContentSource::from_request(Some(&source.to_csi())).unwrap(),
                Some(source.clone())
            );
        }
        assert_eq!(
            describe(Some(&ContentSource::Snapshot("sn-1".into()))),
            "snapshot sn-1"
        );
        assert_eq!(describe(None), "no content source");
    }
}
