//! IPs, locations, capabilities and action results.

use std::{collections::BTreeMap, net::IpAddr};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    common::{Extra, Meta, ResourceRef, lenient},
    drive::StorageType,
};

/// An IP address object (`/ips/`); its `uuid` is the address itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ip {
    /// The address (`"203.0.113.7"`).
    #[serde(default)]
    pub uuid: String,
    /// The server using it.
    #[serde(default)]
    pub server: Option<ResourceRef>,
    /// Gateway.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Prefix length.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub netmask: Option<u64>,
    /// DNS servers.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub nameservers: Vec<String>,
    /// Metadata.
    #[serde(default)]
    pub meta: Meta,
    /// Tags.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub tags: Vec<ResourceRef>,
    /// Owning user.
    #[serde(default)]
    pub owner: Option<ResourceRef>,
    /// `/api/2.0/ips/{address}/`.
    #[serde(default)]
    pub resource_uri: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Ip {
    /// The address, when the uuid parses as one.
    pub fn address(&self) -> Option<IpAddr> {
        self.uuid.parse().ok()
    }
}

/// A location (`/locations/`); every field is a string the API may omit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Upper-case code, e.g. `ZRH`.
    #[serde(default)]
    pub id: Option<String>,
    /// The API base URL.
    #[serde(default)]
    pub api_endpoint: Option<String>,
    /// The upload URL (the `direct.` host).
    #[serde(default)]
    pub upload_url: Option<String>,
    /// The websocket URL.
    #[serde(default)]
    pub websocket_url: Option<String>,
    /// Country code.
    #[serde(default)]
    pub country_code: Option<String>,
    /// Human-readable name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Other fields (`default_frontend_url`, `documentation_url`, …).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `{min, max}` range in `/capabilities/`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Lower bound.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub min: Option<u64>,
    /// Upper bound.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub max: Option<u64>,
}

/// Server limits in `/capabilities/`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCapabilities {
    /// CPU range in MHz.
    #[serde(default)]
    pub cpu: Option<Range>,
    /// Memory range in bytes.
    #[serde(default)]
    pub mem: Option<Range>,
    /// vCPU count range.
    #[serde(default)]
    pub smp: Option<Range>,
    /// MHz per vCPU.
    #[serde(default)]
    pub cpu_per_smp: Option<Range>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Snapshot limits in `/capabilities/`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotCapabilities {
    /// Maximum snapshots in the account.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub max: Option<u64>,
    /// Maximum snapshots per drive.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub max_per_drive: Option<u64>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Size limits of one storage type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriveSizeLimits {
    /// Smallest size in bytes.
    pub min_size: Option<u64>,
    /// Largest size in bytes.
    pub max_size: Option<u64>,
}

/// The account's limits (`GET /capabilities/`, a bare object).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Server limits.
    #[serde(default)]
    pub servers: Option<ServerCapabilities>,
    /// Drive limits keyed by storage type (`dssd`, `nvme`, `zadara`, …), as returned.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub drives: Extra,
    /// Snapshot limits.
    #[serde(default)]
    pub snapshots: Option<SnapshotCapabilities>,
    /// Hypervisors and their CPU types, e.g. `{"kvm": ["intel", "amd"]}`.
    #[serde(default, deserialize_with = "lenient::null_default")]
    pub hypervisors: BTreeMap<String, Vec<String>>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Capabilities {
    /// Size limits of `storage_type`, when the capabilities list it.
    pub fn drive_size_limits(&self, storage_type: &StorageType) -> Option<DriveSizeLimits> {
        let entry = self.drives.get(storage_type.as_str())?.as_object()?;
        let number = |key: &str| match entry.get(key) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Some(DriveSizeLimits {
            min_size: number("min_size"),
            max_size: number("max_size"),
        })
    }
}

/// The body of a `202` server action (`{"action": "start", "result": "success", "uuid": …}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// The action.
    #[serde(default)]
    pub action: Option<String>,
    /// The result, e.g. `success`.
    #[serde(default)]
    pub result: Option<String>,
    /// The object acted on.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Other fields.
    #[serde(flatten)]
    pub extra: Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ip_location_and_capabilities() {
        let ip: Ip = serde_json::from_str(
            r#"{"uuid":"94.26.101.149","server":null,"gateway":"94.26.101.1","netmask":24,
                "nameservers":["8.8.8.8"],"meta":{},"owner":{"uuid":"u"},"resource_uri":"/api/2.0/ips/94.26.101.149/"}"#,
        )
        .unwrap();
        assert_eq!(
            ip.address().map(|a| a.to_string()).as_deref(),
            Some("94.26.101.149")
        );
        assert_eq!(ip.netmask, Some(24));

        let loc: Location = serde_json::from_str(
            r#"{"id":"ZRH","api_endpoint":"https://zrh.cloudsigma.com/api/2.0/",
                "upload_url":"https://direct.zrh.cloudsigma.com/api/2.0/","documentation_url":"x"}"#,
        )
        .unwrap();
        assert_eq!(loc.id.as_deref(), Some("ZRH"));
        assert!(loc.extra.contains_key("documentation_url"));

        let caps: Capabilities = serde_json::from_str(
            r#"{"servers":{"cpu":{"min":250,"max":100000},"mem":{"min":268435456,"max":"137438953472"}},
                "drives":{"dssd":{"min_size":536870912,"max_size":17592186044416,"iops":{}},"note":"x"},
                "snapshots":{"max":100,"max_per_drive":90},"hypervisors":{"kvm":["intel","amd"]}}"#,
        )
        .unwrap();
        assert_eq!(
            caps.servers.as_ref().and_then(|s| s.mem).and_then(|m| m.max),
            Some(137_438_953_472)
        );
        assert_eq!(
            caps.drive_size_limits(&StorageType::Dssd),
            Some(DriveSizeLimits {
                min_size: Some(536_870_912),
                max_size: Some(17_592_186_044_416)
            })
        );
        assert_eq!(caps.drive_size_limits(&StorageType::Zadara), None);
        assert_eq!(caps.snapshots.and_then(|s| s.max_per_drive), Some(90));
        assert_eq!(caps.hypervisors["kvm"], ["intel", "amd"]);
    }
}
