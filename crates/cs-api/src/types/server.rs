//! Servers: the full definition, the short list item, NICs, server drives and runtime.

use std::{fmt, net::IpAddr, str::FromStr};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Extra, Meta, ResourceRef, SecretValue, api_enum, lenient};

api_enum! {
    /// A server's `status`.
    ServerStatus {
        /// Not running.
        Stopped => "stopped",
        /// Booting after `do=start`.
        Starting => "starting",
        /// Running.
        Running => "running",
        /// Going down after `do=stop` or `do=shutdown`.
        Stopping => "stopping",
        /// Paused.
        Paused => "paused",
        /// Failed on the platform side.
        Unavailable => "unavailable",
    }
}

api_enum! {
    /// The bus a drive is attached through (`device` of a server drive).
    DriveDevice {
        /// Paravirtual block device (the one to use).
        Virtio => "virtio",
        /// Emulated IDE.
        Ide => "ide",
    }
}

api_enum! {
    /// The kind of a running NIC (`runtime.interface_type`).
    InterfaceType {
        /// A public NIC (address from CloudSigma's public pools).
        Public => "public",
        /// A private (VLAN) NIC; assumed value, not confirmed by any recorded response.
        Private => "private",
    }
}

api_enum! {
    /// How a NIC's address is configured (`ip_v4_conf.conf` / `ip_v6_conf.conf`).
    IpConfMode {
        /// Address from DHCP (visible only in the runtime).
        Dhcp => "dhcp",
        /// A static IP object attached to the NIC.
        Static => "static",
        /// Configured inside the guest.
        Manual => "manual",
    }
}

/// A full server definition (`GET /servers/{uuid}/`, `/servers/detail/`), also the body of a full `PUT`.
///
/// `status` and `runtime` (also of NICs and drives) are read-only and never serialized. Fields this crate
/// does not model are kept in `extra` and sent back on update.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// The server's uuid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// Its name.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub name: String,
    /// CPU in MHz.
    #[serde(default, deserialize_with = "lenient::u64")]
    pub cpu: u64,
    /// Memory in bytes.
    #[serde(default, deserialize_with = "lenient::u64")]
    pub mem: u64,
    /// Number of virtual CPUs (derived by CloudSigma from `cpu` when absent).
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub smp: Option<u64>,
    /// The VNC password (a secret: never printed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnc_password: Option<SecretValue>,
    /// Current state (read-only).
    #[serde(default, skip_serializing)]
    pub status: ServerStatus,
    /// Metadata (a `PUT` replaces the whole map).
    #[serde(default)]
    pub meta: Meta,
    /// Tags.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub tags: Vec<ResourceRef>,
    /// NICs in the order the guest sees them.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub nics: Vec<Nic>,
    /// Attached drives.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub drives: Vec<ServerDrive>,
    /// Runtime information; `None` unless running (read-only).
    #[serde(default, skip_serializing)]
    pub runtime: Option<ServerRuntime>,
    /// Owning user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ResourceRef>,
    /// `/api/2.0/servers/{uuid}/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_uri: Option<String>,
    /// Fields not modelled here (`context`, `cpu_type`, `hypervisor`, `pubkeys`, …), kept for round trips.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The short form of a server in `GET /servers/` (uuid, name, status, owner, resource URI, runtime).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ServerSummary {
    /// The server's uuid.
    #[serde(default)]
    pub uuid: String,
    /// Its name.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub name: String,
    /// Current state.
    #[serde(default)]
    pub status: ServerStatus,
    /// Owning user.
    #[serde(default)]
    pub owner: Option<ResourceRef>,
    /// `/api/2.0/servers/{uuid}/`.
    #[serde(default)]
    pub resource_uri: Option<String>,
    /// Runtime information; `None` unless running.
    #[serde(default)]
    pub runtime: Option<ServerRuntime>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A NIC of a server definition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    /// MAC address; NICs are matched by MAC on update, so a NIC without one is added as new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// NIC model, e.g. `virtio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Boot order.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub boot_order: Option<u64>,
    /// The VLAN of a private NIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<ResourceRef>,
    /// Firewall policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall_policy: Option<ResourceRef>,
    /// IPv4 configuration of a public NIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_v4_conf: Option<IpConf>,
    /// IPv6 configuration of a public NIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_v6_conf: Option<IpConf>,
    /// Runtime state; `None` unless the server runs (read-only).
    #[serde(default, skip_serializing)]
    pub runtime: Option<NicRuntime>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A NIC's IP configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IpConf {
    /// `dhcp`, `static` or `manual`.
    #[serde(default)]
    pub conf: IpConfMode,
    /// The static IP (its uuid is the address).
    #[serde(default)]
    pub ip: Option<ResourceRef>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Runtime state of a NIC (`nics[].runtime`, and the entries of `runtime.nics[]`, which also carry `mac`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NicRuntime {
    /// MAC address (present in `runtime.nics[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `public` or `private`.
    #[serde(default)]
    pub interface_type: InterfaceType,
    /// The IPv4 address in use (its uuid is the address).
    #[serde(default)]
    pub ip_v4: Option<ResourceRef>,
    /// The IPv6 address in use.
    #[serde(default)]
    pub ip_v6: Option<ResourceRef>,
    /// I/O counters, as returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<Value>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Runtime state of a running server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRuntime {
    /// When the server started (ISO-8601 with offset).
    #[serde(default)]
    pub active_since: Option<String>,
    /// Runtime state of each NIC.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub nics: Vec<NicRuntime>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A drive attached to a server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerDrive {
    /// Boot order (`null` for data drives; sent as `null`).
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub boot_order: Option<u64>,
    /// `"controller:unit"`, e.g. `"0:1"`.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub dev_channel: String,
    /// `virtio` or `ide`.
    #[serde(default)]
    pub device: DriveDevice,
    /// The drive.
    pub drive: ResourceRef,
    /// Runtime I/O counters (read-only).
    #[serde(default, skip_serializing)]
    pub runtime: Option<Value>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ServerDrive {
    /// A virtio data drive on `channel`, without boot order.
    pub fn virtio(drive_uuid: impl Into<String>, channel: DevChannel) -> Self {
        Self {
            boot_order: None,
            dev_channel: channel.to_string(),
            device: DriveDevice::Virtio,
            drive: ResourceRef::new(drive_uuid),
            runtime: None,
            extra: Extra::new(),
        }
    }

    /// The parsed `dev_channel`, if well formed.
    pub fn channel(&self) -> Option<DevChannel> {
        self.dev_channel.parse().ok()
    }
}

/// A device channel `controller:unit` (virtio: units 0–5 per controller).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevChannel {
    /// Controller number.
    pub controller: u16,
    /// Unit on the controller.
    pub unit: u16,
}

impl fmt::Display for DevChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.controller, self.unit)
    }
}

impl FromStr for DevChannel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (controller, unit) = text
            .split_once(':')
            .ok_or_else(|| format!("dev_channel `{text}` is not `controller:unit`"))?;
        let parse = |part: &str| {
            part.trim()
                .parse::<u16>()
                .map_err(|_| format!("dev_channel `{text}` is not `controller:unit`"))
        };
        Ok(Self {
            controller: parse(controller)?,
            unit: parse(unit)?,
        })
    }
}

/// One address a running server's NIC reports (from `nics[].runtime`, or `runtime.nics[]` by MAC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeAddress {
    /// The NIC's MAC, when known.
    pub mac: Option<String>,
    /// `public`, `private` or unknown.
    pub interface_type: InterfaceType,
    /// The address.
    pub ip: IpAddr,
}

impl Server {
    /// Whether `status` is `running`.
    pub fn is_running(&self) -> bool {
        self.status == ServerStatus::Running
    }

    /// The entry of `drives` for `drive_uuid`, if attached.
    pub fn drive(&self, drive_uuid: &str) -> Option<&ServerDrive> {
        self.drives.iter().find(|d| d.drive.uuid == drive_uuid)
    }

    /// Every IPv4/IPv6 address the runtime reports, NIC by NIC in definition order.
    ///
    /// Reads `nics[].runtime` and falls back to the `runtime.nics[]` entry with the same MAC (and then to
    /// `runtime.nics[]` entries matching no NIC). Values that are not IP addresses are skipped. No
    /// classification happens here: the caller decides what is internal or external.
    pub fn runtime_addresses(&self) -> Vec<RuntimeAddress> {
        let top: &[NicRuntime] = self
            .runtime
            .as_ref()
            .map(|r| r.nics.as_slice())
            .unwrap_or_default();
        let mut used = vec![false; top.len()];
        let mut sources: Vec<(Option<String>, &NicRuntime)> = Vec::new();
        for nic in &self.nics {
            let by_mac = nic.mac.as_ref().and_then(|mac| {
                top.iter()
                    .position(|r| r.mac.as_ref().is_some_and(|m| m.eq_ignore_ascii_case(mac)))
            });
            if let Some(i) = by_mac {
                used[i] = true;
            }
            match (&nic.runtime, by_mac) {
                (Some(runtime), _) => sources.push((nic.mac.clone(), runtime)),
                (None, Some(i)) => sources.push((nic.mac.clone(), &top[i])),
                (None, None) => {}
            }
        }
        for (runtime, seen) in top.iter().zip(&used) {
            if !seen {
                sources.push((runtime.mac.clone(), runtime));
            }
        }
        let mut out = Vec::new();
        for (mac, runtime) in sources {
            for ip in [&runtime.ip_v4, &runtime.ip_v6].into_iter().flatten() {
                if let Ok(ip) = ip.uuid.parse::<IpAddr>() {
                    out.push(RuntimeAddress {
                        mac: mac.clone(),
                        interface_type: runtime.interface_type.clone(),
                        ip,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The composed running server of the fact sheet, plus unknown fields and documented nulls.
    pub(crate) const RUNNING: &str = r#"{
      "uuid": "5f0c7b7e-0000-4000-8000-000000000001",
      "name": "worker-a", "status": "running",
      "cpu": 2000, "smp": 1, "mem": 2147483648, "vnc_password": "vnc-secret-1",
      "meta": {"cluster": "demo"}, "tags": [],
      "drives": [{"boot_order": 1, "dev_channel": "0:0", "device": "virtio",
                  "drive": {"uuid": "d1", "resource_uri": "/api/2.0/drives/d1/"}, "runtime": null}],
      "nics": [{"mac": "22:aa:bb:cc:dd:ee", "model": "virtio", "vlan": null,
                "ip_v4_conf": {"conf": "dhcp", "ip": null}, "ip_v6_conf": null,
                "runtime": {"interface_type": "public",
                            "ip_v4": {"uuid": "203.0.113.7", "resource_uri": "/api/2.0/ips/203.0.113.7/"},
                            "ip_v6": null}},
               {"mac": "22:aa:bb:cc:dd:ff", "model": "virtio",
                "vlan": {"uuid": "v1", "resource_uri": "/api/2.0/vlans/v1/"},
                "ip_v4_conf": null, "ip_v6_conf": null, "runtime": null}],
      "runtime": {"active_since": "2025-01-01T10:00:00+00:00",
                  "nics": [{"mac": "22:aa:bb:cc:dd:ee", "interface_type": "public",
                            "ip_v4": {"uuid": "203.0.113.7", "resource_uri": "/api/2.0/ips/203.0.113.7/"},
                            "ip_v6": null},
                           {"mac": "22:aa:bb:cc:dd:ff", "interface_type": "private",
                            "ip_v4": {"uuid": "10.0.0.5"}, "ip_v6": null}]},
      "owner": {"uuid": "u1", "resource_uri": "/api/2.0/user/u1/"},
      "resource_uri": "/api/2.0/servers/5f0c7b7e-0000-4000-8000-000000000001/",
      "context": true, "cpu_type": "amd", "hypervisor": "kvm", "cpu_model": null,
      "jobs": [], "brand_new_field": {"x": 1}
    }"#;

    #[test]
    fn decodes_the_documented_running_server() {
        let s: Server = serde_json::from_str(RUNNING).unwrap();
        assert_eq!(s.name, "worker-a");
        assert_eq!(s.status, ServerStatus::Running);
        assert_eq!((s.cpu, s.mem, s.smp), (2000, 2_147_483_648, Some(1)));
        assert_eq!(
            s.drives[0].channel(),
            Some(DevChannel {
                controller: 0,
                unit: 0
            })
        );
        assert_eq!(s.drives[0].device, DriveDevice::Virtio);
        assert_eq!(
            s.nics[0].ip_v4_conf.as_ref().map(|c| &c.conf),
            Some(&IpConfMode::Dhcp)
        );
        assert_eq!(s.nics[1].vlan.as_ref().map(|v| v.uuid.as_str()), Some("v1"));
        assert_eq!(s.extra.get("brand_new_field"), Some(&serde_json::json!({"x": 1})));
        assert_eq!(s.extra.get("cpu_model"), Some(&Value::Null));
        let ips: Vec<String> = s.runtime_addresses().iter().map(|a| a.ip.to_string()).collect();
        assert_eq!(ips, ["203.0.113.7", "10.0.0.5"]);
        assert_eq!(s.runtime_addresses()[1].interface_type, InterfaceType::Private);
    }

    #[test]
    fn stopped_server_with_nulls_decodes() {
        let s: Server = serde_json::from_str(
            r#"{"uuid":"s","name":"n","status":"stopped","cpu":"1000","mem":536870912,
                "runtime":null,"nics":null,"drives":null,"meta":null,"tags":null,"smp":null}"#,
        )
        .unwrap();
        assert_eq!(s.status, ServerStatus::Stopped);
        assert!(s.runtime.is_none() && s.nics.is_empty() && s.drives.is_empty());
        assert_eq!(s.cpu, 1000);
        assert!(s.runtime_addresses().is_empty());
        let odd: Server = serde_json::from_str(r#"{"uuid":"s","status":"migrating"}"#).unwrap();
        assert_eq!(odd.status, ServerStatus::Unknown("migrating".into()));
    }

    #[test]
    fn full_put_body_round_trips_unknown_fields_without_read_only_state() {
        let s: Server = serde_json::from_str(RUNNING).unwrap();
        let body = serde_json::to_value(&s).unwrap();
        assert_eq!(body["brand_new_field"], serde_json::json!({"x": 1}));
        assert_eq!(body["context"], Value::Bool(true));
        assert_eq!(body["vnc_password"], "vnc-secret-1");
        assert_eq!(body["nics"][0]["mac"], "22:aa:bb:cc:dd:ee");
        assert_eq!(body["drives"][0]["drive"]["uuid"], "d1");
        assert_eq!(body["drives"][0]["dev_channel"], "0:0");
        assert!(body.get("status").is_none() && body.get("runtime").is_none());
        assert!(body["nics"][0].get("runtime").is_none());
        // Decoding what we send gives the same definition back.
        let again: Server = serde_json::from_value(body).unwrap();
        assert_eq!(
            again.nics,
            s.nics
                .iter()
                .cloned()
                .map(|n| Nic { runtime: None, ..n })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn debug_hides_the_vnc_password() {
        let s: Server = serde_json::from_str(RUNNING).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("vnc-secret-1"), "{debug}");
        assert!(debug.contains("worker-a"));
    }

    #[test]
    fn new_virtio_drive_entry_has_the_documented_shape() {
        let d = ServerDrive::virtio(
            "dd",
            DevChannel {
                controller: 1,
                unit: 3,
            },
        );
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"boot_order": null, "dev_channel": "1:3", "device": "virtio", "drive": {"uuid": "dd"}})
        );
        assert!("x".parse::<DevChannel>().is_err());
        assert!("0:a".parse::<DevChannel>().is_err());
        assert_eq!(
            "2:5".parse::<DevChannel>(),
            Ok(DevChannel {
                controller: 2,
                unit: 5
            })
        );
    }

    #[test]
    fn short_list_item_decodes() {
        let s: ServerSummary = serde_json::from_str(
            r#"{"uuid":"a","name":"n","status":"starting","owner":{"uuid":"u"},"resource_uri":"/x/","runtime":null}"#,
        )
        .unwrap();
        assert_eq!(s.status, ServerStatus::Starting);
    }
}
