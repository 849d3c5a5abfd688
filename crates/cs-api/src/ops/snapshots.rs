//! Snapshots: create, list (optionally by drive), get, delete.

use serde_json::Value;

use super::single_object;
use crate::{
    Client, NewSnapshot, Pager, Result, Snapshot,
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
