//! Drives: create, get, list, update, delete, resize, clone, and waiting for a state.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde_json::Value;
use tokio::time::Instant;

use super::single_object;
use crate::{
    Client, CloneDrive, Drive, DriveStatus, DriveSummary, Error, ListFilter, NewDrive, Pager, Result,
    path::{ApiPath, Method, check_id},
};

impl Client {
    /// Creates a drive (`201`, status `creating` → `unmounted`). Not retried on 5xx (not idempotent):
    /// after an ambiguous failure look it up by name.
    pub async fn create_drive(&self, drive: &NewDrive) -> Result<Drive> {
        if drive.name.is_empty() {
            return Err(Error::InvalidArgument("drive name is empty".into()));
        }
        if drive.size == 0 {
            return Err(Error::InvalidArgument("drive size is zero".into()));
        }
        let path = ApiPath::new("drives/", &["drives"]);
        let answer: Value = self
            .send_json(Method::Post, &path, &serde_json::json!({ "objects": [drive] }))
            .await?;
        single_object("POST", &path, answer)
    }

    /// One drive; [`Error::NotFound`] when it does not exist.
    pub async fn get_drive(&self, uuid: &str) -> Result<Drive> {
        let uuid = check_id("drive uuid", uuid)?;
        self.get_json(&ApiPath::new("drives/{uuid}/", &["drives", uuid]))
            .await
    }

    /// Every drive matching `filter` in the short form (uuid, status, owner); pages through the whole list.
    pub async fn list_drives(&self, filter: &ListFilter) -> Result<Vec<DriveSummary>> {
        let path = filter.apply(ApiPath::new("drives/", &["drives"]))?;
        Pager::new(self.clone(), path).collect_all().await
    }

    /// Every drive matching `filter` with its full definition; pages through the whole list.
    pub async fn list_drives_detail(&self, filter: &ListFilter) -> Result<Vec<Drive>> {
        self.drive_pages(filter)?.collect_all().await
    }

    /// Full drive definitions page by page (or as a stream via [`Pager::into_stream`]).
    pub fn drive_pages(&self, filter: &ListFilter) -> Result<Pager<Drive>> {
        let path = filter.apply(ApiPath::new("drives/detail/", &["drives", "detail"]))?;
        Ok(Pager::new(self.clone(), path))
    }

    /// Replaces a drive's definition (a full `PUT` of what was read, modified).
    pub async fn update_drive(&self, drive: &Drive) -> Result<Drive> {
        let uuid = check_id("drive uuid", &drive.uuid)?;
        self.send_json(
            Method::Put,
            &ApiPath::new("drives/{uuid}/", &["drives", uuid]),
            drive,
        )
        .await
    }

    /// Deletes a drive (`204`). A retried DELETE whose first attempt went through answers
    /// [`Error::NotFound`]; callers that want "gone" should treat it as success.
    pub async fn delete_drive(&self, uuid: &str) -> Result<()> {
        let uuid = check_id("drive uuid", uuid)?;
        self.send_no_content(Method::Delete, &ApiPath::new("drives/{uuid}/", &["drives", uuid]))
            .await
    }

    /// Resizes a drive to `new_size` bytes: reads it and posts its full definition with the new size
    /// (the API requires at least name, media and size). `202`, status `resizing`. A drive mounted on a
    /// running server is refused with [`Error::Forbidden`] (no online expansion).
    pub async fn resize_drive(&self, uuid: &str, new_size: u64) -> Result<Drive> {
        if new_size == 0 {
            return Err(Error::InvalidArgument("new drive size is zero".into()));
        }
        let mut drive = self.get_drive(uuid).await?;
        drive.size = new_size;
        let path = ApiPath::new("drives/{uuid}/action/?do=resize", &["drives", uuid, "action"])
            .with_query("do", "resize");
        let answer: Value = self.send_json(Method::Post, &path, &drive).await?;
        single_object("POST", &path, answer)
    }

    /// Clones a drive (`202`); the new drive starts in `cloning_dst`.
    pub async fn clone_drive(&self, uuid: &str, options: &CloneDrive) -> Result<Drive> {
        let uuid = check_id("drive uuid", uuid)?;
        let path = ApiPath::new("drives/{uuid}/action/?do=clone", &["drives", uuid, "action"])
            .with_query("do", "clone");
        let answer: Value = self.send_json(Method::Post, &path, options).await?;
        single_object("POST", &path, answer)
    }

    /// Polls the drive until its status is `status`; returns the drive then.
    pub async fn wait_for_drive_status(
        &self,
        uuid: &str,
        status: DriveStatus,
        timeout: Duration,
    ) -> Result<Drive> {
        let wanted = status.to_string();
        self.wait_for_drive(uuid, &wanted, timeout, |d| d.status == status)
            .await
    }

    /// Polls the drive until `done` holds; `wanted` describes the condition in the timeout error.
    ///
    /// Polls with exponential backoff and jitter (`poll_min` … `poll_max` of the options), never past the
    /// deadline. A non-retryable error (e.g. 404) ends the wait with that error.
    pub async fn wait_for_drive(
        &self,
        uuid: &str,
        wanted: &str,
        timeout: Duration,
        done: impl Fn(&Drive) -> bool,
    ) -> Result<Drive> {
        self.poll_drive(uuid, wanted, timeout, |drive| {
            drive.filter(|d| done(d)).map(|d| Ok(d.clone()))
        })
        .await
    }

    /// The polling loop. `check` sees `Some(drive)`, or `None` when the drive is gone (404), and returns
    /// `Some(result)` to stop; a 404 that `check` does not stop on ends the wait with the 404.
    pub(crate) async fn poll_drive<T>(
        &self,
        uuid: &str,
        wanted: &str,
        timeout: Duration,
        mut check: impl FnMut(Option<&Drive>) -> Option<Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let deadline = started + timeout;
        let options = self.options();
        let mut delays = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(options.poll_min)
            .with_max_delay(options.poll_max)
            .without_max_times()
            .build();
        let mut last_status = DriveStatus::default();
        loop {
            let seen = match self.get_drive(uuid).await {
                Ok(drive) => {
                    last_status = drive.status.clone();
                    check(Some(&drive))
                }
                Err(e) if e.is_not_found() => match check(None) {
                    Some(result) => Some(result),
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            };
            if let Some(result) = seen {
                return result;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::WaitTimeout {
                    drive: uuid.to_owned(),
                    wanted: wanted.to_owned(),
                    waited: now - started,
                    last_status,
                });
            }
            let step = delays.next().unwrap_or(options.poll_max);
            tokio::time::sleep(step.min(deadline - now)).await;
        }
    }
}
