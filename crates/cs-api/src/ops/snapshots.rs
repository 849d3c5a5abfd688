//! Snapshots: create, list (optionally by drive), get, delete, and clone into a new drive.

use serde_json::Value;

use super::single_object;
use crate::{
    Client, Drive, Error, NewSnapshot, Pager, Result, Snapshot, SnapshotCloneRequest,
    path::{ApiPath, Method, check_id},
};

impl Client {
    /// Takes a snapshot (`201`, status `creating` → `available`). Not retried on 5xx (not idempotent).
    pub async fn create_snapshot(&self, snapshot: &NewSnapshot) -> Result<Snapshot> {
        check_id("snapshot drive uuid", &snapshot.drive)?;
        let path = ApiPath::new("snapshots/", &["snapshots"]);
        let answer: Value = self
            .send_json(Method::Post, &path, &serde_json::json!({ "objects": [snapshot] }))
            .await?;
        single_object("POST", &path, answer)
    }

    /// Every snapshot (full objects), or only those of `drive_uuid`.
    pub async fn list_snapshots(&self, drive_uuid: Option<&str>) -> Result<Vec<Snapshot>> {
        let mut path = ApiPath::new("snapshots/detail/", &["snapshots", "detail"]);
        if let Some(drive) = drive_uuid {
            path = path.with_query("drive", check_id("drive uuid", drive)?);
        }
        Pager::new(self.clone(), Some(path)).collect_all().await
    }

    /// One snapshot.
    pub async fn get_snapshot(&self, uuid: &str) -> Result<Snapshot> {
        let uuid = check_id("snapshot uuid", uuid)?;
        self.get_json(&ApiPath::new("snapshots/{uuid}/", &["snapshots", uuid]))
            .await
    }

    /// Makes a new drive from a snapshot (`POST /snapshots/{uuid}/action/?do=clone`, `202`); the drive
    /// starts in `cloning_dst` and becomes `unmounted` when the copy is done (see
    /// [`Client::wait_for_drive`]). A size below the source drive's is refused by the API
    /// ([`Error::BadRequest`] naming `size`); an unknown snapshot is [`Error::NotFound`], another
    /// account's or one still `creating` is [`Error::Forbidden`]. The answer may be the documented
    /// `{"objects": [drive]}` or a bare drive object. Not retried on 5xx (not idempotent): after an
    /// ambiguous failure look the drive up by name.
    pub async fn clone_snapshot(&self, uuid: &str, request: &SnapshotCloneRequest) -> Result<Drive> {
        let uuid = check_id("snapshot uuid", uuid)?;
        if request.name.is_empty() {
            return Err(Error::InvalidArgument(
                "name of the drive cloned from a snapshot is empty".into(),
            ));
        }
        if request.size == 0 {
            return Err(Error::InvalidArgument(
                "size of the drive cloned from a snapshot is zero".into(),
            ));
        }
        let path = ApiPath::new(
            "snapshots/{uuid}/action/?do=clone",
            &["snapshots", uuid, "action"],
        )
        .with_query("do", "clone");
        let answer: Value = self.send_json(Method::Post, &path, request).await?;
        single_object("POST", &path, answer)
    }

    /// Deletes a snapshot (`204`).
    pub async fn delete_snapshot(&self, uuid: &str) -> Result<()> {
        let uuid = check_id("snapshot uuid", uuid)?;
        self.send_no_content(
            Method::Delete,
            &ApiPath::new("snapshots/{uuid}/", &["snapshots", uuid]),
        )
        .await
    }
}
