//! Attaching and detaching drives: a read-modify-write of the server's drive list.
//!
//! Channel order: controller 0 units 1–5 (0:0 stays for the boot disk), then controller 1 units 0–5,
//! then controller 2 — the first [`MAX_DRIVES_PER_SERVER`] channels of that sequence. A server with
//! [`MAX_DRIVES_PER_SERVER`] drives (boot disk included) or with none of those channels free is full.

use std::time::Duration;

use crate::{Client, DevChannel, DriveStatus, Error, Result, ServerDrive, path::check_id};

/// The most drives (boot disk included) this client lets a server have. virtio allows 6 units per
/// controller and many controllers; 16 keeps the device list small and leaves room for 15 volumes.
pub const MAX_DRIVES_PER_SERVER: usize = 16;

/// The channels tried for a new drive, in order: `0:1`…`0:5`, `1:0`…`1:5`, `2:0`…`2:4`.
pub fn attach_channel_order() -> impl Iterator<Item = DevChannel> {
    (0u16..)
        .flat_map(|controller| (0u16..6).map(move |unit| DevChannel { controller, unit }))
        .skip(1)
        .take(MAX_DRIVES_PER_SERVER)
}

/// The first channel of [`attach_channel_order`] no drive uses, or `None` when the server is full. Every
/// existing entry counts, whatever its device type.
pub fn pick_free_channel(drives: &[ServerDrive]) -> Option<DevChannel> {
    if drives.len() >= MAX_DRIVES_PER_SERVER {
        return None;
    }
    let used: Vec<String> = drives.iter().map(|d| d.dev_channel.trim().to_owned()).collect();
    let used_parsed: Vec<DevChannel> = drives.iter().filter_map(ServerDrive::channel).collect();
    attach_channel_order().find(|c| !used_parsed.contains(c) && !used.contains(&c.to_string()))
}

impl Client {
    /// Attaches a drive to a server as a virtio device on the first free channel and returns the
    /// server's entry for it. Already attached: returns the existing entry without a write.
    ///
    /// Reads the server, appends the drive and `PUT`s the full definition; concurrent attaches and
    /// detaches through this client are serialised per server. Full: [`Error::NoFreeChannel`]. If the
    /// answer does not list the drive (a running server that ignores drive edits):
    /// [`Error::NotApplied`]. The drive becomes `mounted` asynchronously; use
    /// [`Client::wait_for_drive_status`] to wait for it.
    pub async fn attach_drive(&self, server_uuid: &str, drive_uuid: &str) -> Result<ServerDrive> {
        let server_uuid = check_id("server uuid", server_uuid)?;
        let drive_uuid = check_id("drive uuid", drive_uuid)?;
        let _lock = self.lock_server(server_uuid).await;
        let mut server = self.get_server(server_uuid).await?;
        if let Some(existing) = server.drive(drive_uuid) {
            return Ok(existing.clone());
        }
        let channel = pick_free_channel(&server.drives).ok_or_else(|| Error::NoFreeChannel {
            server: server_uuid.to_owned(),
            drives: server.drives.len(),
            max: MAX_DRIVES_PER_SERVER,
        })?;
        server.uuid = server_uuid.to_owned();
        server.drives.push(ServerDrive::virtio(drive_uuid, channel));
        let updated = self.update_server(&server).await?;
        tracing::debug!(server = server_uuid, drive = drive_uuid, %channel, "attached drive");
        updated
            .drive(drive_uuid)
            .cloned()
            .ok_or_else(|| Error::NotApplied {
                server: server_uuid.to_owned(),
                drive: drive_uuid.to_owned(),
                operation: "attach",
            })
    }

    /// Detaches a drive from a server and waits (up to `timeout`) until the drive is no longer mounted on
    /// it: `mounted_on` no longer lists the server and the status is `unmounted` (or `mounted` on other
    /// servers of a multi-mount drive). A drive that vanished counts as detached. Not attached: no write,
    /// only the wait (an earlier detach may still be completing).
    pub async fn detach_drive(&self, server_uuid: &str, drive_uuid: &str, timeout: Duration) -> Result<()> {
        let server_uuid = check_id("server uuid", server_uuid)?;
        let drive_uuid = check_id("drive uuid", drive_uuid)?;
        {
            let _lock = self.lock_server(server_uuid).await;
            let mut server = self.get_server(server_uuid).await?;
            if server.drive(drive_uuid).is_some() {
                server.uuid = server_uuid.to_owned();
                server.drives.retain(|d| d.drive.uuid != drive_uuid);
                let updated = self.update_server(&server).await?;
                if updated.drive(drive_uuid).is_some() {
                    return Err(Error::NotApplied {
                        server: server_uuid.to_owned(),
                        drive: drive_uuid.to_owned(),
                        operation: "detach",
                    });
                }
                tracing::debug!(
                    server = server_uuid,
                    drive = drive_uuid,
                    "detached drive; waiting for it"
                );
            }
        }
        let wanted = format!("detached from server {server_uuid}");
        self.poll_drive(drive_uuid, &wanted, timeout, |drive| match drive {
            None => Some(Ok(())),
            Some(d) if !d.is_mounted_on(server_uuid) => {
                let settled = match d.status {
                    DriveStatus::Unmounted => true,
                    DriveStatus::Mounted => !d.mounted_on.is_empty(),
                    _ => false,
                };
                settled.then_some(Ok(()))
            }
            Some(_) => None,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(channel: &str, uuid: &str) -> ServerDrive {
        let mut d = ServerDrive::virtio(
            uuid,
            DevChannel {
                controller: 0,
                unit: 0,
            },
        );
        d.dev_channel = channel.to_owned();
        d
    }

    #[test]
    fn order_keeps_0_0_for_boot_and_has_the_documented_length() {
        let order: Vec<String> = attach_channel_order().map(|c| c.to_string()).collect();
        assert_eq!(order.len(), MAX_DRIVES_PER_SERVER);
        assert_eq!(&order[..7], ["0:1", "0:2", "0:3", "0:4", "0:5", "1:0", "1:1"]);
        assert_eq!(order.last().map(String::as_str), Some("2:4"));
        assert!(!order.contains(&"0:0".to_owned()));
        assert!(attach_channel_order().all(|c| c.unit <= 5));
    }

    #[test]
    fn picks_the_first_unused_channel() {
        assert_eq!(
            pick_free_channel(&[]).map(|c| c.to_string()).as_deref(),
            Some("0:1")
        );
        let drives = [entry("0:0", "boot"), entry("0:1", "a"), entry("0:3", "b")];
        assert_eq!(
            pick_free_channel(&drives).map(|c| c.to_string()).as_deref(),
            Some("0:2")
        );
        let drives = [entry("0:0", "boot"), entry(" 0:1", "a"), entry("0:2", "b")];
        assert_eq!(
            pick_free_channel(&drives).map(|c| c.to_string()).as_deref(),
            Some("0:3")
        );
    }

    #[test]
    fn refuses_when_full() {
        let mut drives = vec![entry("0:0", "boot")];
        for (i, c) in attach_channel_order().take(MAX_DRIVES_PER_SERVER - 1).enumerate() {
            drives.push(entry(&c.to_string(), &format!("d{i}")));
        }
        assert_eq!(drives.len(), MAX_DRIVES_PER_SERVER);
        assert_eq!(pick_free_channel(&drives), None);
        // Fewer drives but every candidate taken (odd layout without a boot disk at 0:0).
        let all: Vec<ServerDrive> = attach_channel_order()
            .take(MAX_DRIVES_PER_SERVER - 1)
            .map(|c| entry(&c.to_string(), "x"))
            .collect();
        assert_eq!(
            pick_free_channel(&all).map(|c| c.to_string()).as_deref(),
            Some("2:4")
        );
    }
}
