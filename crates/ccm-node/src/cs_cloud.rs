//! [`Cloud`] over the typed CloudSigma client.

use std::net::IpAddr;

use async_trait::async_trait;
use cs_api::{ListFilter, NicRuntime, Server, ServerStatus};
use serde::Deserialize;

use crate::{
    NicFacts, PowerState, ServerFacts,
    cloud::{Cloud, CloudError},
};

/// The node controllers' view of a `cs_api::Client`.
#[derive(Debug, Clone)]
pub struct CsCloud {
    client: cs_api::Client,
}

impl CsCloud {
    /// Wraps a client (whose credentials decide the account and host).
    pub fn new(client: cs_api::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Cloud for CsCloud {
    async fn list_servers(&self) -> Result<Vec<ServerFacts>, CloudError> {
        // Page by page, decoded straight into the few fields the facts need: unknown fields are skipped
        // while decoding, and no full definition of 1000 servers is ever held (that set the ccm's peak
        // memory at N = 1000, docs/performance.md).
        let mut pages = self
            .client
            .server_pages_as::<ListedServer>(&ListFilter::all())
            .map_err(cloud_error)?;
        let mut facts = Vec::new();
        while let Some(page) = pages.next_page().await.map_err(cloud_error)? {
            facts.extend(page.objects.into_iter().map(ListedServer::into_facts));
        }
        Ok(facts)
    }

    async fn get_server(&self, uuid: &str) -> Result<ServerFacts, CloudError> {
        match self.client.get_server(uuid).await {
            Ok(server) => Ok(server_facts(&server)),
            // Only a 404 that says `notexist` confirms the server is gone; any other 404 (a proxy, a
            // wrong base URL) is an error like any other.
            Err(e) if e.is_not_found() && e.error_type() == Some("notexist") => Err(CloudError::NotFound {
                uuid: uuid.to_owned(),
            }),
            Err(e) => Err(cloud_error(e)),
        }
    }
}

/// The fields of a listed server that node decisions read; everything else in the (large) detail
/// objects is skipped while decoding. Absent or `null` values decode as empty.
#[derive(Deserialize)]
struct ListedServer {
    uuid: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    cpu: Option<u64>,
    #[serde(default)]
    mem: Option<u64>,
    #[serde(default)]
    nics: Option<Vec<ListedNic>>,
    #[serde(default)]
    runtime: Option<ListedRuntime>,
}

#[derive(Deserialize)]
struct ListedNic {
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    vlan: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    runtime: Option<ListedNicRuntime>,
}

#[derive(Deserialize)]
struct ListedRuntime {
    #[serde(default)]
    nics: Option<Vec<ListedNicRuntime>>,
}

#[derive(Deserialize)]
struct ListedNicRuntime {
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    ip_v4: Option<ListedRef>,
    #[serde(default)]
    ip_v6: Option<ListedRef>,
}

#[derive(Deserialize)]
struct ListedRef {
    uuid: String,
}

impl ListedServer {
    fn into_facts(self) -> ServerFacts {
        let top = self.runtime.and_then(|r| r.nics).unwrap_or_default();
        let nics = self
            .nics
            .unwrap_or_default()
            .iter()
            .map(|nic| nic_facts(nic.vlan.is_some(), nic.mac.as_deref(), nic.runtime.as_ref(), &top))
            .collect();
        ServerFacts {
            uuid: self.uuid.to_ascii_lowercase(),
            name: self.name.unwrap_or_default(),
            cpu_mhz: self.cpu.unwrap_or_default(),
            mem_bytes: self.mem.unwrap_or_default(),
            power: power_of(self.status.as_deref().unwrap_or_default()),
            nics,
        }
    }
}

/// A NIC runtime entry as either decoding (lean listing, full definition) holds it.
trait RuntimeIps {
    /// The entry's MAC address.
    fn mac(&self) -> Option<&str>;
    /// The IPv4 and IPv6 references (the uuid of an IP is its address).
    fn ips(&self) -> (Option<&str>, Option<&str>);
}

impl RuntimeIps for ListedNicRuntime {
    fn mac(&self) -> Option<&str> {
        self.mac.as_deref()
    }
    fn ips(&self) -> (Option<&str>, Option<&str>) {
        (
            self.ip_v4.as_ref().map(|i| i.uuid.as_str()),
            self.ip_v6.as_ref().map(|i| i.uuid.as_str()),
        )
    }
}

impl RuntimeIps for NicRuntime {
    fn mac(&self) -> Option<&str> {
        self.mac.as_deref()
    }
    fn ips(&self) -> (Option<&str>, Option<&str>) {
        (
            self.ip_v4.as_ref().map(|i| i.uuid.as_str()),
            self.ip_v6.as_ref().map(|i| i.uuid.as_str()),
        )
    }
}

fn power_of(status: &str) -> PowerState {
    match status {
        "running" => PowerState::Running,
        "stopped" => PowerState::Stopped,
        _ => PowerState::Other,
    }
}

/// A NIC's facts: the addresses of its own runtime, or else of the server-level runtime entry with the
/// same MAC (compared case-insensitively). Unparseable addresses and a v6 value in the v4 slot (or the
/// reverse) count as absent.
fn nic_facts<R: RuntimeIps>(vlan: bool, mac: Option<&str>, own: Option<&R>, top: &[R]) -> NicFacts {
    let runtime = own.or_else(|| {
        let mac = mac?;
        top.iter()
            .find(|r| r.mac().is_some_and(|m| m.eq_ignore_ascii_case(mac)))
    });
    let (v4, v6) = runtime.map_or((None, None), RuntimeIps::ips);
    NicFacts {
        vlan,
        ipv4: match v4.and_then(|s| s.parse::<IpAddr>().ok()) {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        },
        ipv6: match v6.and_then(|s| s.parse::<IpAddr>().ok()) {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        },
    }
}

fn cloud_error(e: cs_api::Error) -> CloudError {
    let text = e.to_string();
    match e {
        cs_api::Error::Unauthorized(_) | cs_api::Error::Credentials(_) => CloudError::Unauthorized(text),
        cs_api::Error::Forbidden(_) => CloudError::Forbidden(text),
        ref other if other.is_retryable() => CloudError::Unavailable(text),
        _ => CloudError::Other(text),
    }
}

/// The facts node decisions need from a full server definition.
pub fn server_facts(s: &Server) -> ServerFacts {
    let top: &[NicRuntime] = s.runtime.as_ref().map(|r| r.nics.as_slice()).unwrap_or_default();
    let nics = s
        .nics
        .iter()
        .map(|nic| nic_facts(nic.vlan.is_some(), nic.mac.as_deref(), nic.runtime.as_ref(), top))
        .collect();
    ServerFacts {
        uuid: s.uuid.to_ascii_lowercase(),
        name: s.name.clone(),
        cpu_mhz: s.cpu,
        mem_bytes: s.mem,
        power: match s.status {
            ServerStatus::Running => PowerState::Running,
            ServerStatus::Stopped => PowerState::Stopped,
            _ => PowerState::Other,
        },
        nics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_from_the_documented_running_server() {
        let json = r#"{
          "uuid": "5F0C7B7E-0000-4000-8000-000000000001", "name": "worker-a", "status": "running",
          "cpu": 2000, "smp": 1, "mem": 2147483648, "vnc_password": "x", "meta": {}, "tags": [],
          "drives": [],
          "nics": [
            {"mac": "22:aa:bb:cc:dd:ee", "model": "virtio", "vlan": null,
             "ip_v4_conf": {"conf": "dhcp", "ip": null}, "ip_v6_conf": null,
             "runtime": {"interface_type": "public",
                         "ip_v4": {"uuid": "203.0.113.7", "resource_uri": "/api/2.0/ips/203.0.113.7/"},
                         "ip_v6": null}},
            {"mac": "22:aa:bb:cc:dd:ff", "model": "virtio", "vlan": {"uuid": "v-1", "resource_uri": "/api/2.0/vlans/v-1/"},
             "ip_v4_conf": null, "ip_v6_conf": null, "runtime": null},
            {"mac": "22:aa:bb:cc:dd:00", "model": "virtio", "vlan": null, "ip_v4_conf": {"conf": "dhcp", "ip": null},
             "ip_v6_conf": null, "runtime": null}
          ],
          "runtime": {"active_since": "2025-01-01T10:00:00+00:00",
                      "nics": [{"mac": "22:aa:bb:cc:dd:00", "interface_type": "public",
                                "ip_v4": {"uuid": "198.51.100.4"}, "ip_v6": {"uuid": "2001:db8::4"}}]}
        }"#;
        let server: Server = serde_json::from_str(json).unwrap();
        let f = server_facts(&server);
        let listed: ListedServer = serde_json::from_str(json).unwrap();
        assert_eq!(
            listed.into_facts(),
            f,
            "the lean listing decodes to the same facts as the full type"
        );
        assert_eq!(f.uuid, "5f0c7b7e-0000-4000-8000-000000000001");
        assert_eq!(f.power, PowerState::Running);
        assert_eq!((f.cpu_mhz, f.mem_bytes), (2000, 2_147_483_648));
        assert_eq!(f.nics.len(), 3);
        assert_eq!(
            f.nics[0],
            NicFacts {
                vlan: false,
                ipv4: Some("203.0.113.7".parse().unwrap()),
                ipv6: None
            }
        );
        assert_eq!(
            f.nics[1],
            NicFacts {
                vlan: true,
                ipv4: None,
                ipv6: None
            }
        );
        assert_eq!(
            f.nics[2],
            NicFacts {
                vlan: false,
                ipv4: Some("198.51.100.4".parse().unwrap()),
                ipv6: Some("2001:db8::4".parse().unwrap())
            }
        );
    }
}
