//! The CSI Controller service: volumes are CloudSigma drives, nodes are CloudSigma servers.

use std::{collections::HashMap, time::Duration};

use cs_api::{
    Client, CloneDrive, Drive, DriveMedia, DriveStatus, ListFilter, NewDrive, NewSnapshot, ServerStatus,
    SnapshotCloneRequest, SnapshotStatus, StorageType,
};
use tonic::{Request, Response, Status};
use tracing::{info, warn};

use crate::{
    Error, Result, TOPOLOGY_KEY,
    convert::{self, META_PV_NAME, META_PVC_NAME, META_PVC_NAMESPACE},
    csi::{
        self, ControllerExpandVolumeRequest, ControllerExpandVolumeResponse,
        ControllerGetCapabilitiesRequest, ControllerGetCapabilitiesResponse, ControllerGetVolumeRequest,
        ControllerGetVolumeResponse, ControllerModifyVolumeRequest, ControllerModifyVolumeResponse,
        ControllerPublishVolumeRequest, ControllerPublishVolumeResponse, ControllerServiceCapability,
        ControllerUnpublishVolumeRequest, ControllerUnpublishVolumeResponse, CreateSnapshotRequest,
        CreateSnapshotResponse, CreateVolumeRequest, CreateVolumeResponse, DeleteSnapshotRequest,
        DeleteSnapshotResponse, DeleteVolumeRequest, DeleteVolumeResponse, GetCapacityRequest,
        GetCapacityResponse, ListSnapshotsRequest, ListSnapshotsResponse, ListVolumesRequest,
        ListVolumesResponse, TopologyRequirement, ValidateVolumeCapabilitiesRequest,
        ValidateVolumeCapabilitiesResponse,
        controller_server::Controller,
        controller_service_capability::{self, rpc::Type as Rpc},
        list_snapshots_response, list_volumes_response, validate_volume_capabilities_response,
        volume_capability::AccessType,
    },
    locks::KeyedLocks,
    paging,
    sizes::{self, SizeLimits, to_i64},
    source::{self, ContentSource},
    validate::{self, is_cloud_uuid},
};

/// The StorageClass parameter choosing the drive's storage type.
pub const PARAM_STORAGE_TYPE: &str = "storage_type";
/// Prefix of parameters the Kubernetes sidecars add (`csi.storage.k8s.io/pvc/name`, …); accepted.
const K8S_PARAM_PREFIX: &str = "csi.storage.k8s.io/";
/// The most snapshots CloudSigma keeps per drive (`/capabilities/` `snapshots.max_per_drive`).
pub const MAX_SNAPSHOTS_PER_DRIVE: usize = 90;

/// Tunables of the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerOptions {
    /// Volume size rules.
    pub sizes: SizeLimits,
    /// How long CreateVolume waits for a new drive (also one restored from a snapshot or cloned) to
    /// become ready (default 2 min). When it runs out the call answers UNAVAILABLE; the CO's retry finds
    /// the drive by name and waits again.
    pub create_timeout: Duration,
    /// How long ControllerUnpublishVolume waits for the drive to be detached (default 2 min).
    pub detach_timeout: Duration,
    /// How long ControllerExpandVolume waits for a resize to finish (default 2 min).
    pub resize_timeout: Duration,
    /// How long a call waits for another call on the same volume/node/name to finish before it
    /// answers ABORTED (default 60 s).
    pub lock_wait: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            sizes: SizeLimits::default(),
            create_timeout: Duration::from_secs(120),
            detach_timeout: Duration::from_secs(120),
            resize_timeout: Duration::from_secs(120),
            lock_wait: Duration::from_secs(60),
        }
    }
}

/// The controller service over one CloudSigma client (one account, one region).
#[derive(Debug)]
pub struct ControllerService {
    client: Client,
    region: String,
    options: ControllerOptions,
    locks: KeyedLocks,
}

/// Storage types a volume may use (`local_nvme` is ephemeral and refused).
const STORAGE_TYPES: [StorageType; 3] = [StorageType::Dssd, StorageType::Nvme, StorageType::Zadara];

/// The parsed `parameters` of CreateVolume.
#[derive(Debug, PartialEq, Eq)]
struct VolumeParameters {
    storage_type: StorageType,
    /// PVC/PV metadata for the drive's meta.
    k8s_meta: Vec<(&'static str, String)>,
}

impl VolumeParameters {
    fn parse(parameters: &HashMap<String, String>) -> Result<Self> {
        let mut storage_type = StorageType::Dssd;
        let mut k8s_meta = Vec::new();
        for (key, value) in parameters {
            if key == PARAM_STORAGE_TYPE {
                storage_type = StorageType::from(value.trim());
                if !STORAGE_TYPES.contains(&storage_type) {
                    return Err(Error::InvalidArgument(format!(
                        "parameter {PARAM_STORAGE_TYPE}={value:?} is not supported; use dssd (default), nvme \
                         or zadara (local_nvme is ephemeral)"
                    )));
                }
            } else if let Some(rest) = key.strip_prefix(K8S_PARAM_PREFIX) {
                let meta_key = match rest {
                    "pvc/name" => Some(META_PVC_NAME),
                    "pvc/namespace" => Some(META_PVC_NAMESPACE),
                    "pv/name" => Some(META_PV_NAME),
                    _ => None,
                };
                if let Some(meta_key) = meta_key {
                    k8s_meta.push((meta_key, value.clone()));
                }
            } else {
                return Err(Error::InvalidArgument(format!(
                    "unknown parameter {key:?}; supported: {PARAM_STORAGE_TYPE}"
                )));
            }
        }
        k8s_meta.sort();
        Ok(Self {
            storage_type,
            k8s_meta,
        })
    }
}

impl ControllerService {
    /// A controller for the account behind `client`, creating volumes in `region` (the topology value).
    pub fn new(client: Client, region: impl Into<String>, options: ControllerOptions) -> Result<Self> {
        options.sizes.validate()?;
        let region = region.into();
        if region.trim().is_empty() {
            return Err(Error::InvalidArgument("the controller's region is empty".into()));
        }
        Ok(Self {
            client,
            region,
            options,
            locks: KeyedLocks::default(),
        })
    }

    /// The region volumes are created in.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The capabilities this controller advertises.
    pub fn capabilities() -> Vec<Rpc> {
        vec![
            Rpc::CreateDeleteVolume,
            Rpc::PublishUnpublishVolume,
            Rpc::ListVolumes,
            Rpc::ListVolumesPublishedNodes,
            Rpc::ExpandVolume,
            Rpc::CreateDeleteSnapshot,
            Rpc::ListSnapshots,
            Rpc::CloneVolume,
        ]
    }

    async fn lock(&self, key: String, what: String) -> Result<crate::locks::KeyGuard<'_>> {
        self.locks.lock(&key, &what, self.options.lock_wait).await
    }

    /// Every drive this driver made (complete, paged listing).
    async fn our_drives(&self) -> Result<Vec<Drive>> {
        let drives = self
            .client
            .list_drives_detail(&ListFilter::all())
            .await
            .map_err(|e| Error::cloud("listing drives", e))?;
        Ok(drives
            .into_iter()
            .filter(|d| convert::is_ours(&d.meta) && d.media == DriveMedia::Disk)
            .collect())
    }

    /// The drive made for CSI name `name`, if any.
    async fn find_volume_by_name(&self, name: &str) -> Result<Option<Drive>> {
        let mut matches: Vec<Drive> = self
            .our_drives()
            .await?
            .into_iter()
            .filter(|d| convert::has_csi_name(&d.meta, name))
            .collect();
        match matches.len() {
            0 | 1 => Ok(matches.pop()),
            n => Err(Error::Internal(format!(
                "{n} drives carry the CSI name {name:?} ({}); delete the extra ones",
                matches
                    .iter()
                    .map(|d| d.uuid.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The drive of `volume_id`, or NOT_FOUND.
    async fn get_volume(&self, volume_id: &str) -> Result<Drive> {
        if !is_cloud_uuid(volume_id) {
            return Err(Error::NotFound(format!("volume {volume_id} does not exist")));
        }
        match self.client.get_drive(volume_id).await {
            Ok(drive) => Ok(drive),
            Err(e) if e.is_not_found() => Err(Error::NotFound(format!("volume {volume_id} does not exist"))),
            Err(e) => Err(Error::cloud(format!("reading volume {volume_id}"), e)),
        }
    }

    /// Waits until the drive is ready (`unmounted`/`mounted`); a drive that failed is an error.
    async fn wait_ready(&self, uuid: &str, what: &str) -> Result<Drive> {
        let drive = self
            .client
            .wait_for_drive(uuid, "ready", self.options.create_timeout, |d| {
                d.status.is_ready() || d.status == DriveStatus::Unavailable
            })
            .await
            .map_err(|e| Error::cloud(format!("waiting for {what} (drive {uuid}) to become ready"), e))?;
        if drive.status == DriveStatus::Unavailable {
            return Err(Error::Internal(format!(
                "drive {uuid} of {what} failed (status unavailable)"
            )));
        }
        Ok(drive)
    }

    fn check_topology(&self, requirement: Option<&TopologyRequirement>) -> Result<()> {
        let Some(requirement) = requirement else {
            return Ok(());
        };
        for topology in requirement.requisite.iter().chain(&requirement.preferred) {
            if let Some(key) = topology.segments.keys().find(|k| *k != TOPOLOGY_KEY) {
                return Err(Error::InvalidArgument(format!(
                    "unknown topology key {key:?}; this driver uses only {TOPOLOGY_KEY}"
                )));
            }
        }
        let reachable = |t: &csi::Topology| t.segments.get(TOPOLOGY_KEY).is_none_or(|r| *r == self.region);
        if !requirement.requisite.is_empty() && !requirement.requisite.iter().any(reachable) {
            let asked: Vec<&str> = requirement
                .requisite
                .iter()
                .filter_map(|t| t.segments.get(TOPOLOGY_KEY).map(String::as_str))
                .collect();
            return Err(Error::ResourceExhausted(format!(
                "this driver creates volumes in region {} only; the requisite topology asks for {}",
                self.region,
                asked.join(", ")
            )));
        }
        Ok(())
    }

    /// CreateVolume: idempotent by name, optionally from a snapshot or another volume (see `docs/csi.md`).
    pub async fn create_volume(&self, req: CreateVolumeRequest) -> Result<CreateVolumeResponse> {
        validate::name("name", &req.name)?;
        validate::capabilities("volume_capabilities", &req.volume_capabilities)?;
        let params = VolumeParameters::parse(&req.parameters)?;
        let source = ContentSource::from_request(req.volume_content_source.as_ref())?;
        if let Some(source) = &source
            && !is_cloud_uuid(source.id())
        {
            return Err(Error::NotFound(format!("source {source} does not exist")));
        }
        self.check_topology(req.accessibility_requirements.as_ref())?;
        let range = req.capacity_range.as_ref();
        // Checks the range for every request, also those whose size the source decides.
        let size = self.options.sizes.volume_bytes(range)?;
        let _guard = self
            .lock(
                format!("name/{}", req.name),
                format!("volume name {:?}", req.name),
            )
            .await?;

        if let Some(existing) = self.find_volume_by_name(&req.name).await? {
            let existing_source = ContentSource::from_meta(&existing.meta);
            if existing_source != source {
                return Err(Error::AlreadyExists(format!(
                    "volume {:?} already exists as drive {} made from {}, not from {}",
                    req.name,
                    existing.uuid,
                    source::describe(existing_source.as_ref()),
                    source::describe(source.as_ref())
                )));
            }
            if !sizes::satisfies(existing.size, range) {
                return Err(Error::AlreadyExists(format!(
                    "volume {:?} already exists as drive {} with {} bytes, which does not satisfy the requested \
                     capacity range (required {}, limit {})",
                    req.name,
                    existing.uuid,
                    existing.size,
                    range.map_or(0, |r| r.required_bytes),
                    range.map_or(0, |r| r.limit_bytes)
                )));
            }
            let existing_type = convert::storage_type(&existing);
            if existing_type != params.storage_type {
                return Err(Error::AlreadyExists(format!(
                    "volume {:?} already exists as drive {} of storage type {existing_type}, not {}",
                    req.name, existing.uuid, params.storage_type
                )));
            }
            let drive = if existing.status.is_ready() {
                existing
            } else {
                self.wait_ready(&existing.uuid, &format!("volume {:?}", req.name))
                    .await?
            };
            return Ok(CreateVolumeResponse {
                volume: Some(convert::volume(&drive, &self.region)),
            });
        }

        let mut meta = convert::driver_meta(&req.name);
        for (key, value) in &params.k8s_meta {
            meta.insert((*key).to_owned(), value.clone());
        }
        let created = match &source {
            None => {
                let new = NewDrive {
                    name: req.name.clone(),
                    size,
                    media: DriveMedia::Disk,
                    storage_type: Some(params.storage_type.clone()),
                    allow_multimount: None,
                    meta,
                };
                let created =
                    self.client.create_drive(&new).await.map_err(|e| {
                        Error::cloud(format!("creating the drive of volume {:?}", req.name), e)
                    })?;
                info!(volume = %created.uuid, name = %req.name, size, storage_type = %params.storage_type, "created drive");
                created
            }
            Some(source) => {
                let source_size = self.source_size(source).await?;
                let size = self.size_from_source(range, source, source_size)?;
                source.record(&mut meta);
                let context = format!("making volume {:?} from {source}", req.name);
                let made = match source {
                    ContentSource::Snapshot(id) => {
                        let request = SnapshotCloneRequest {
                            name: req.name.clone(),
                            size,
                            media: Some(DriveMedia::Disk),
                            storage_type: Some(params.storage_type.clone()),
                            meta,
                        };
                        self.client.clone_snapshot(id, &request).await
                    }
                    ContentSource::Volume(id) => {
                        let request = CloneDrive {
                            name: Some(req.name.clone()),
                            media: Some(DriveMedia::Disk),
                            size: Some(size),
                            storage_type: Some(params.storage_type.clone()),
                            meta: Some(meta),
                        };
                        self.client.clone_drive(id, &request).await
                    }
                };
                let created = made.map_err(|e| clone_error(context, e))?;
                info!(volume = %created.uuid, name = %req.name, %source, size, storage_type = %params.storage_type, "cloned drive");
                created
            }
        };
        let drive = self
            .wait_ready(&created.uuid, &format!("volume {:?}", req.name))
            .await?;
        Ok(CreateVolumeResponse {
            volume: Some(convert::volume(&drive, &self.region)),
        })
    }

    /// The smallest size a volume made from `source` may have (the size of the source drive), or `None`
    /// when the snapshot's drive is gone and only the API knows. NOT_FOUND for a missing source;
    /// UNAVAILABLE for a snapshot that is not `available` yet or a volume that is busy.
    async fn source_size(&self, source: &ContentSource) -> Result<Option<u64>> {
        match source {
            ContentSource::Snapshot(id) => {
                let snapshot = match self.client.get_snapshot(id).await {
                    Ok(s) => s,
                    Err(e) if e.is_not_found() => {
                        return Err(Error::NotFound(format!("source snapshot {id} does not exist")));
                    }
                    Err(e) => return Err(Error::cloud(format!("reading source snapshot {id}"), e)),
                };
                if snapshot.status != SnapshotStatus::Available {
                    return Err(Error::Unavailable(format!(
                        "source snapshot {id} is {}, not available yet; try again when it is ready",
                        snapshot.status
                    )));
                }
                Ok(self.source_size_of_snapshot(&snapshot).await)
            }
            ContentSource::Volume(id) => {
                let drive = self.get_volume(id).await.map_err(|e| match e {
                    Error::NotFound(_) => Error::NotFound(format!("source volume {id} does not exist")),
                    other => other,
                })?;
                if !drive.status.is_ready() {
                    return Err(Error::Unavailable(format!(
                        "source volume {id} is {}; try again when it is done",
                        drive.status
                    )));
                }
                Ok(Some(drive.size))
            }
        }
    }

    /// The size of a volume made from `source`: the requested size, at least the source size, rounded
    /// and bounded as for every volume; OUT_OF_RANGE when `limit_bytes` is below the source size.
    /// Without a capacity range the volume gets the source's size (rounded up to whole GiB).
    fn size_from_source(
        &self,
        range: Option<&csi::CapacityRange>,
        source: &ContentSource,
        source_size: Option<u64>,
    ) -> Result<u64> {
        let Some(source_size) = source_size else {
            return self.options.sizes.volume_bytes(range);
        };
        let required = range.map_or(0, |r| r.required_bytes.max(0).unsigned_abs());
        let limit = range.map_or(0, |r| r.limit_bytes.max(0).unsigned_abs());
        if limit > 0 && limit < source_size {
            return Err(Error::OutOfRange(format!(
                "capacity_range.limit_bytes ({limit}) is smaller than {source} ({source_size} bytes); a volume \
                 made from it needs at least that much"
            )));
        }
        let range = csi::CapacityRange {
            required_bytes: to_i64(required.max(source_size)),
            limit_bytes: to_i64(limit),
        };
        self.options.sizes.volume_bytes(Some(&range))
    }

    /// DeleteVolume: unknown ids are OK; attached drives and drives with snapshots are refused.
    pub async fn delete_volume(&self, req: DeleteVolumeRequest) -> Result<DeleteVolumeResponse> {
        let id = validate::required("volume_id", &req.volume_id)?;
        if !is_cloud_uuid(id) {
            return Ok(DeleteVolumeResponse {});
        }
        let _guard = self.lock(format!("volume/{id}"), format!("volume {id}")).await?;
        let drive = match self.client.get_drive(id).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(DeleteVolumeResponse {}),
            Err(e) => return Err(Error::cloud(format!("reading volume {id}"), e)),
        };
        if !drive.mounted_on.is_empty() || drive.status == DriveStatus::Mounted {
            return Err(Error::FailedPrecondition(format!(
                "volume {id} is attached to server(s) {}; unpublish it before deleting",
                servers_of(&drive)
            )));
        }
        if !drive.snapshots.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "volume {id} has {} snapshot(s) ({}); CloudSigma snapshots belong to their drive, so delete them \
                 first",
                drive.snapshots.len(),
                drive
                    .snapshots
                    .iter()
                    .map(|s| s.uuid.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if !drive.status.is_ready() {
            return Err(Error::Unavailable(format!(
                "volume {id} is {}; try again when it is done",
                drive.status
            )));
        }
        match self.client.delete_drive(id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(Error::cloud(format!("deleting volume {id}"), e)),
        }
        info!(volume = %id, "deleted drive");
        Ok(DeleteVolumeResponse {})
    }

    /// ControllerPublishVolume: attach the drive to the server named by `node_id` (hot-plug).
    pub async fn publish_volume(
        &self,
        req: ControllerPublishVolumeRequest,
    ) -> Result<ControllerPublishVolumeResponse> {
        let volume_id = validate::required("volume_id", &req.volume_id)?;
        let node_id = validate::required("node_id", &req.node_id)?;
        let capability = req
            .volume_capability
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("volume_capability is required".into()))?;
        if let Some(problem) = validate::capability_problem(capability) {
            return Err(Error::InvalidArgument(format!("volume_capability: {problem}")));
        }
        if req.readonly {
            return Err(Error::InvalidArgument(
                "readonly publishing is not supported (PUBLISH_READONLY is not advertised)".into(),
            ));
        }
        if !is_cloud_uuid(volume_id) {
            return Err(Error::NotFound(format!("volume {volume_id} does not exist")));
        }
        if !is_cloud_uuid(node_id) {
            return Err(Error::NotFound(format!(
                "node {node_id} does not exist (node ids are server uuids)"
            )));
        }
        // Node first, then volume, in every operation holding both: no lock-order inversion.
        let _node = self
            .lock(format!("node/{node_id}"), format!("node {node_id}"))
            .await?;
        let _volume = self
            .lock(format!("volume/{volume_id}"), format!("volume {volume_id}"))
            .await?;
        let drive = self.get_volume(volume_id).await?;
        let server = match self.client.get_server(node_id).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => {
                return Err(Error::NotFound(format!(
                    "node {node_id} does not exist (no such server)"
                )));
            }
            Err(e) => return Err(Error::cloud(format!("reading node {node_id}"), e)),
        };
        if let Some(entry) = server.drive(volume_id) {
            return Ok(ControllerPublishVolumeResponse {
                publish_context: convert::publish_context(volume_id, entry),
            });
        }
        let elsewhere: Vec<&str> = drive
            .mounted_on
            .iter()
            .map(|r| r.uuid.as_str())
            .filter(|uuid| *uuid != node_id)
            .collect();
        if !elsewhere.is_empty() && !drive.allow_multimount {
            return Err(Error::FailedPrecondition(format!(
                "volume {volume_id} is attached to node {}; it can be attached to one node at a time",
                elsewhere.join(", ")
            )));
        }
        if !drive.status.is_ready() {
            return Err(Error::Unavailable(format!(
                "volume {volume_id} is {}; try again when it is done",
                drive.status
            )));
        }
        let entry = self
            .client
            .attach_drive(node_id, volume_id)
            .await
            .map_err(|e| Error::cloud(format!("attaching volume {volume_id} to node {node_id}"), e))?;
        info!(volume = %volume_id, node = %node_id, channel = %entry.dev_channel, "attached drive");
        Ok(ControllerPublishVolumeResponse {
            publish_context: convert::publish_context(volume_id, &entry),
        })
    }

    /// ControllerUnpublishVolume: detach and wait until the drive is no longer mounted on the node.
    pub async fn unpublish_volume(
        &self,
        req: ControllerUnpublishVolumeRequest,
    ) -> Result<ControllerUnpublishVolumeResponse> {
        let volume_id = validate::required("volume_id", &req.volume_id)?;
        let node_id = req.node_id.as_str();
        // A volume or node that cannot exist is detached.
        if !is_cloud_uuid(volume_id) || (!node_id.is_empty() && !is_cloud_uuid(node_id)) {
            return Ok(ControllerUnpublishVolumeResponse {});
        }
        let _node = match node_id {
            "" => None,
            node => Some(self.lock(format!("node/{node}"), format!("node {node}")).await?),
        };
        let _volume = self
            .lock(format!("volume/{volume_id}"), format!("volume {volume_id}"))
            .await?;
        let drive = match self.client.get_drive(volume_id).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(ControllerUnpublishVolumeResponse {}),
            Err(e) => return Err(Error::cloud(format!("reading volume {volume_id}"), e)),
        };
        let servers: Vec<String> = if node_id.is_empty() {
            drive.mounted_on.iter().map(|r| r.uuid.clone()).collect()
        } else {
            vec![node_id.to_owned()]
        };
        for server in servers {
            match self
                .client
                .detach_drive(&server, volume_id, self.options.detach_timeout)
                .await
            {
                Ok(()) => {}
                // The server is gone: nothing is attached to it any more.
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(Error::cloud(
                        format!("detaching volume {volume_id} from node {server}"),
                        e,
                    ));
                }
            }
            info!(volume = %volume_id, node = %server, "drive detached");
        }
        Ok(ControllerUnpublishVolumeResponse {})
    }

    /// ValidateVolumeCapabilities: confirms the capabilities when every one is supported.
    pub async fn validate_volume_capabilities(
        &self,
        req: ValidateVolumeCapabilitiesRequest,
    ) -> Result<ValidateVolumeCapabilitiesResponse> {
        let volume_id = validate::required("volume_id", &req.volume_id)?;
        if req.volume_capabilities.is_empty() {
            return Err(Error::InvalidArgument("volume_capabilities is required".into()));
        }
        self.get_volume(volume_id).await?;
        let problems: Vec<String> = req
            .volume_capabilities
            .iter()
            .filter_map(validate::capability_problem)
            .collect();
        if !problems.is_empty() {
            return Ok(ValidateVolumeCapabilitiesResponse {
                confirmed: None,
                message: problems.join("; "),
            });
        }
        Ok(ValidateVolumeCapabilitiesResponse {
            confirmed: Some(validate_volume_capabilities_response::Confirmed {
                volume_context: req.volume_context,
                volume_capabilities: req.volume_capabilities,
                parameters: req.parameters,
                mutable_parameters: req.mutable_parameters,
            }),
            message: String::new(),
        })
    }

    /// ListVolumes: the drives this driver made, in uuid order, with the servers they are attached to.
    pub async fn list_volumes(&self, req: ListVolumesRequest) -> Result<ListVolumesResponse> {
        paging::check(&req.starting_token, req.max_entries)?;
        let drives = self.our_drives().await?;
        let (page, next_token) =
            paging::page(drives, |d| d.uuid.as_str(), &req.starting_token, req.max_entries)?;
        let entries = page
            .iter()
            .map(|d| list_volumes_response::Entry {
                volume: Some(convert::volume(d, &self.region)),
                status: Some(list_volumes_response::VolumeStatus {
                    published_node_ids: d.mounted_on.iter().map(|r| r.uuid.clone()).collect(),
                    volume_condition: None,
                }),
            })
            .collect();
        Ok(ListVolumesResponse { entries, next_token })
    }

    /// ControllerExpandVolume: offline resize (the drive must not be attached to a running server).
    pub async fn expand_volume(
        &self,
        req: ControllerExpandVolumeRequest,
    ) -> Result<ControllerExpandVolumeResponse> {
        let volume_id = validate::required("volume_id", &req.volume_id)?;
        let range = req
            .capacity_range
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("capacity_range is required".into()))?;
        if !is_cloud_uuid(volume_id) {
            return Err(Error::NotFound(format!("volume {volume_id} does not exist")));
        }
        let size = self.options.sizes.volume_bytes(Some(range))?;
        let node_expansion_required = !matches!(
            req.volume_capability
                .as_ref()
                .and_then(|c| c.access_type.as_ref()),
            Some(AccessType::Block(_))
        );
        let _guard = self
            .lock(format!("volume/{volume_id}"), format!("volume {volume_id}"))
            .await?;
        let drive = self.get_volume(volume_id).await?;
        if drive.size >= size {
            return Ok(ControllerExpandVolumeResponse {
                capacity_bytes: to_i64(drive.size),
                node_expansion_required,
            });
        }
        let mut running = Vec::new();
        for server in &drive.mounted_on {
            match self.client.get_server(&server.uuid).await {
                Ok(s) if s.status == ServerStatus::Stopped => {}
                Ok(s) => running.push(format!("{} ({})", s.uuid, s.status)),
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(Error::cloud(
                        format!("reading node {} of volume {volume_id}", server.uuid),
                        e,
                    ));
                }
            }
        }
        if !running.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "volume {volume_id} is attached to node(s) {} that are not stopped; CloudSigma cannot resize a \
                 drive mounted on a running guest, so this driver expands volumes offline only: unpublish the \
                 volume (stop the pod using it) and retry",
                running.join(", ")
            )));
        }
        if !drive.status.is_ready() {
            return Err(Error::Unavailable(format!(
                "volume {volume_id} is {}; try again when it is done",
                drive.status
            )));
        }
        self.client
            .resize_drive(volume_id, size)
            .await
            .map_err(|e| Error::cloud(format!("resizing volume {volume_id} to {size} bytes"), e))?;
        let resized = self
            .client
            .wait_for_drive(volume_id, "resized", self.options.resize_timeout, |d| {
                d.status.is_ready() && d.size >= size
            })
            .await
            .map_err(|e| Error::cloud(format!("waiting for volume {volume_id} to be resized"), e))?;
        info!(volume = %volume_id, from = drive.size, to = resized.size, "resized drive");
        Ok(ControllerExpandVolumeResponse {
            capacity_bytes: to_i64(resized.size),
            node_expansion_required,
        })
    }

    /// The snapshot this driver made under CSI name `name`, if any.
    async fn find_snapshot_by_name(&self, name: &str) -> Result<Option<cs_api::Snapshot>> {
        let all = self
            .client
            .list_snapshots(None)
            .await
            .map_err(|e| Error::cloud("listing snapshots", e))?;
        Ok(all.into_iter().find(|s| convert::has_csi_name(&s.meta, name)))
    }

    /// The size of the drive a snapshot was taken of, when the drive still exists.
    async fn source_size_of_snapshot(&self, snapshot: &cs_api::Snapshot) -> Option<u64> {
        let drive = snapshot.drive.as_ref()?;
        self.client.get_drive(&drive.uuid).await.ok().map(|d| d.size)
    }

    /// CreateSnapshot: idempotent by name; `ready_to_use` once CloudSigma reports it `available`.
    pub async fn create_snapshot(&self, req: CreateSnapshotRequest) -> Result<CreateSnapshotResponse> {
        validate::name("name", &req.name)?;
        let source = validate::required("source_volume_id", &req.source_volume_id)?;
        if !req.parameters.is_empty() {
            let keys: Vec<&str> = req.parameters.keys().map(String::as_str).collect();
            return Err(Error::InvalidArgument(format!(
                "snapshot parameters are not supported (got {})",
                keys.join(", ")
            )));
        }
        let _guard = self
            .lock(
                format!("snapshot-name/{}", req.name),
                format!("snapshot name {:?}", req.name),
            )
            .await?;
        if let Some(existing) = self.find_snapshot_by_name(&req.name).await? {
            let existing_source = existing
                .drive
                .as_ref()
                .map(|d| d.uuid.as_str())
                .unwrap_or_default();
            if existing_source != source {
                return Err(Error::AlreadyExists(format!(
                    "snapshot {:?} already exists ({}) for volume {existing_source}, not {source}",
                    req.name, existing.uuid
                )));
            }
            let size = self.source_size_of_snapshot(&existing).await;
            return Ok(CreateSnapshotResponse {
                snapshot: Some(convert::snapshot(&existing, size)),
            });
        }
        let drive = self.get_volume(source).await.map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound(format!("source volume {source} does not exist")),
            other => other,
        })?;
        if drive.snapshots.len() >= MAX_SNAPSHOTS_PER_DRIVE {
            return Err(Error::ResourceExhausted(format!(
                "volume {source} already has {} snapshots, the most CloudSigma keeps per drive",
                drive.snapshots.len()
            )));
        }
        let new = NewSnapshot {
            drive: source.to_owned(),
            name: req.name.clone(),
            meta: convert::driver_meta(&req.name),
        };
        let created = self
            .client
            .create_snapshot(&new)
            .await
            .map_err(|e| Error::cloud(format!("snapshotting volume {source}"), e))?;
        info!(snapshot = %created.uuid, volume = %source, name = %req.name, "created snapshot");
        Ok(CreateSnapshotResponse {
            snapshot: Some(convert::snapshot(&created, Some(drive.size))),
        })
    }

    /// DeleteSnapshot: unknown ids are OK.
    pub async fn delete_snapshot(&self, req: DeleteSnapshotRequest) -> Result<DeleteSnapshotResponse> {
        let id = validate::required("snapshot_id", &req.snapshot_id)?;
        if !is_cloud_uuid(id) {
            return Ok(DeleteSnapshotResponse {});
        }
        let _guard = self
            .lock(format!("snapshot/{id}"), format!("snapshot {id}"))
            .await?;
        match self.client.delete_snapshot(id).await {
            Ok(()) => info!(snapshot = %id, "deleted snapshot"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(Error::cloud(format!("deleting snapshot {id}"), e)),
        }
        Ok(DeleteSnapshotResponse {})
    }

    /// ListSnapshots: by id, by source volume, or every snapshot this driver made; paged like ListVolumes.
    pub async fn list_snapshots(&self, req: ListSnapshotsRequest) -> Result<ListSnapshotsResponse> {
        paging::check(&req.starting_token, req.max_entries)?;
        let snapshot_id = req.snapshot_id.as_str();
        let source = req.source_volume_id.as_str();
        let snapshots: Vec<cs_api::Snapshot> = if !snapshot_id.is_empty() {
            if !is_cloud_uuid(snapshot_id) {
                Vec::new()
            } else {
                match self.client.get_snapshot(snapshot_id).await {
                    Ok(s) => vec![s],
                    Err(e) if e.is_not_found() => Vec::new(),
                    Err(e) => return Err(Error::cloud(format!("reading snapshot {snapshot_id}"), e)),
                }
            }
        } else if !source.is_empty() {
            if !is_cloud_uuid(source) {
                Vec::new()
            } else {
                match self.client.list_snapshots(Some(source)).await {
                    Ok(list) => list,
                    Err(e) if e.is_not_found() => Vec::new(),
                    Err(e) => return Err(Error::cloud(format!("listing snapshots of volume {source}"), e)),
                }
            }
        } else {
            let all = self
                .client
                .list_snapshots(None)
                .await
                .map_err(|e| Error::cloud("listing snapshots", e))?;
            all.into_iter().filter(|s| convert::is_ours(&s.meta)).collect()
        };
        let snapshots: Vec<cs_api::Snapshot> = snapshots
            .into_iter()
            .filter(|s| source.is_empty() || s.drive.as_ref().is_some_and(|d| d.uuid == source))
            .collect();
        let (page, next_token) = paging::page(
            snapshots,
            |s| s.uuid.as_str(),
            &req.starting_token,
            req.max_entries,
        )?;
        let mut sizes: HashMap<String, Option<u64>> = HashMap::new();
        let mut entries = Vec::with_capacity(page.len());
        for snapshot in &page {
            let drive = snapshot
                .drive
                .as_ref()
                .map(|d| d.uuid.clone())
                .unwrap_or_default();
            let size = match sizes.get(&drive) {
                Some(size) => *size,
                None => {
                    let size = self.source_size_of_snapshot(snapshot).await;
                    sizes.insert(drive, size);
                    size
                }
            };
            entries.push(list_snapshots_response::Entry {
                snapshot: Some(convert::snapshot(snapshot, size)),
            });
        }
        Ok(ListSnapshotsResponse { entries, next_token })
    }
}

/// A failed clone: CloudSigma's 400 on `size` (smaller than the source) is OUT_OF_RANGE, a vanished
/// source NOT_FOUND, anything else mapped as usual.
fn clone_error(context: String, e: cs_api::Error) -> Error {
    let on_size = matches!(&e, cs_api::Error::BadRequest(f) if f.error_point.as_deref() == Some("size"));
    if on_size {
        Error::OutOfRange(format!("{context}: {e}"))
    } else if e.is_not_found() {
        Error::NotFound(format!("{context}: the source does not exist ({e})"))
    } else {
        Error::cloud(context, e)
    }
}

/// The uuids of the servers a drive is mounted on, comma-separated (or `unknown` while detaching).
fn servers_of(drive: &Drive) -> String {
    if drive.mounted_on.is_empty() {
        "unknown (a detach is still completing)".to_owned()
    } else {
        drive
            .mounted_on
            .iter()
            .map(|r| r.uuid.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs one RPC: converts the outcome to a gRPC answer and logs failures with their code.
async fn answer<T>(
    rpc: &'static str,
    outcome: impl Future<Output = Result<T>>,
) -> Result<Response<T>, Status> {
    match outcome.await {
        Ok(response) => Ok(Response::new(response)),
        Err(error) => {
            let status = Status::from(error);
            warn!(rpc, code = ?status.code(), message = status.message(), "CSI call failed");
            Err(status)
        }
    }
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn create_volume(
        &self,
        request: Request<CreateVolumeRequest>,
    ) -> Result<Response<CreateVolumeResponse>, Status> {
        answer("CreateVolume", self.create_volume(request.into_inner())).await
    }

    async fn delete_volume(
        &self,
        request: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeResponse>, Status> {
        answer("DeleteVolume", self.delete_volume(request.into_inner())).await
    }

    async fn controller_publish_volume(
        &self,
        request: Request<ControllerPublishVolumeRequest>,
    ) -> Result<Response<ControllerPublishVolumeResponse>, Status> {
        answer(
            "ControllerPublishVolume",
            self.publish_volume(request.into_inner()),
        )
        .await
    }

    async fn controller_unpublish_volume(
        &self,
        request: Request<ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<ControllerUnpublishVolumeResponse>, Status> {
        answer(
            "ControllerUnpublishVolume",
            self.unpublish_volume(request.into_inner()),
        )
        .await
    }

    async fn validate_volume_capabilities(
        &self,
        request: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        answer(
            "ValidateVolumeCapabilities",
            self.validate_volume_capabilities(request.into_inner()),
        )
        .await
    }

    async fn list_volumes(
        &self,
        request: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesResponse>, Status> {
        answer("ListVolumes", self.list_volumes(request.into_inner())).await
    }

    async fn get_capacity(
        &self,
        _request: Request<GetCapacityRequest>,
    ) -> Result<Response<GetCapacityResponse>, Status> {
        Err(Status::unimplemented(
            "GetCapacity: CloudSigma exposes no storage quota to report (GET_CAPACITY is not advertised)",
        ))
    }

    async fn controller_get_capabilities(
        &self,
        _request: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        let capabilities = Self::capabilities()
            .into_iter()
            .map(|rpc| ControllerServiceCapability {
                r#type: Some(controller_service_capability::Type::Rpc(
                    controller_service_capability::Rpc { r#type: rpc as i32 },
                )),
            })
            .collect();
        Ok(Response::new(ControllerGetCapabilitiesResponse { capabilities }))
    }

    async fn create_snapshot(
        &self,
        request: Request<CreateSnapshotRequest>,
    ) -> Result<Response<CreateSnapshotResponse>, Status> {
        answer("CreateSnapshot", self.create_snapshot(request.into_inner())).await
    }

    async fn delete_snapshot(
        &self,
        request: Request<DeleteSnapshotRequest>,
    ) -> Result<Response<DeleteSnapshotResponse>, Status> {
        answer("DeleteSnapshot", self.delete_snapshot(request.into_inner())).await
    }

    async fn list_snapshots(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListSnapshotsResponse>, Status> {
        answer("ListSnapshots", self.list_snapshots(request.into_inner())).await
    }

    async fn controller_expand_volume(
        &self,
        request: Request<ControllerExpandVolumeRequest>,
    ) -> Result<Response<ControllerExpandVolumeResponse>, Status> {
        answer("ControllerExpandVolume", self.expand_volume(request.into_inner())).await
    }

    async fn controller_get_volume(
        &self,
        _request: Request<ControllerGetVolumeRequest>,
    ) -> Result<Response<ControllerGetVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "ControllerGetVolume: GET_VOLUME is not advertised",
        ))
    }

    async fn controller_modify_volume(
        &self,
        _request: Request<ControllerModifyVolumeRequest>,
    ) -> Result<Response<ControllerModifyVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "ControllerModifyVolume: MODIFY_VOLUME is not advertised",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parameters_choose_the_storage_type_and_keep_pvc_metadata() {
        let p = VolumeParameters::parse(&params(&[])).unwrap();
        assert_eq!(p.storage_type, StorageType::Dssd);
        let p = VolumeParameters::parse(&params(&[
            ("storage_type", "nvme"),
            ("csi.storage.k8s.io/pvc/name", "data"),
            ("csi.storage.k8s.io/pvc/namespace", "db"),
            ("csi.storage.k8s.io/pv/name", "pvc-1"),
            ("csi.storage.k8s.io/fstype", "ext4"),
        ]))
        .unwrap();
        assert_eq!(p.storage_type, StorageType::Nvme);
        assert_eq!(
            p.k8s_meta,
            [
                (META_PV_NAME, "pvc-1".to_owned()),
                (META_PVC_NAME, "data".to_owned()),
                (META_PVC_NAMESPACE, "db".to_owned())
            ]
        );
        let e = VolumeParameters::parse(&params(&[("storage_type", "local_nvme")])).unwrap_err();
        assert!(e.to_string().contains("storage_type=\"local_nvme\""), "{e}");
        let e = VolumeParameters::parse(&params(&[("iops", "100")])).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("\"iops\""),
            "{e}"
        );
    }

    fn failure(error_type: &str, point: Option<&str>, message: &str) -> Box<cs_api::ApiFailure> {
        Box::new(cs_api::ApiFailure {
            method: "POST",
            route: "snapshots/{uuid}/action/?do=clone",
            status: 400,
            error_type: Some(error_type.into()),
            error_point: point.map(Into::into),
            error_message: Some(message.into()),
            details: Vec::new(),
            request_id: Some("req-1".into()),
            retry_after: None,
        })
    }

    #[test]
    fn clone_refusals_map_to_csi_codes() {
        let too_small = cs_api::Error::BadRequest(failure(
            "validation",
            Some("size"),
            "A clone must be at least as large as its source",
        ));
        let e = clone_error("making volume \"v\" from snapshot s".into(), too_small);
        assert_eq!(e.code(), tonic::Code::OutOfRange);
        assert!(
            e.to_string().contains("at least as large") && e.to_string().contains("snapshot s"),
            "{e}"
        );
        let other = cs_api::Error::BadRequest(failure("validation", Some("name"), "bad name"));
        assert_eq!(
            clone_error("x".into(), other).code(),
            tonic::Code::InvalidArgument
        );
        let gone = cs_api::Error::NotFound(failure("notexist", None, "Object does not exist"));
        assert_eq!(clone_error("x".into(), gone).code(), tonic::Code::NotFound);
        let busy = cs_api::Error::Forbidden(failure(
            "permission",
            None,
            "Cannot clone drive d while it is creating",
        ));
        assert_eq!(
            clone_error("x".into(), busy).code(),
            tonic::Code::FailedPrecondition
        );
    }

    #[test]
    fn advertised_capabilities_are_known_and_consistent() {
        let caps = ControllerService::capabilities();
        assert!(
            caps.contains(&Rpc::PublishUnpublishVolume),
            "published nodes need publish/unpublish"
        );
        assert!(!caps.contains(&Rpc::GetCapacity) && !caps.contains(&Rpc::PublishReadonly));
        assert!(
            caps.contains(&Rpc::CloneVolume) && caps.contains(&Rpc::CreateDeleteSnapshot),
            "snapshots imply restore support; cloning uses the same path"
        );
        assert_eq!(crate::DRIVER_NAME, "csi.cloudsigma.com");
    }
}
