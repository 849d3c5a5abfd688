//! Seed data: the structs used by `Emulator::add_*` and by seed files (YAML or JSON).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// A server to seed. `Default`: running, 2000 MHz, 2 GiB, named `server`, no NICs, no drives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSeed {
    /// Server name.
    pub name: String,
    /// CPU in MHz.
    pub cpu: u64,
    /// Memory in bytes.
    pub mem: u64,
    /// `running`, `stopped`, `paused`, `unavailable`, or `starting`/`stopping` (these complete after the
    /// server transition delay).
    pub status: String,
    /// NICs in guest order.
    pub nics: Vec<NicSeed>,
    /// Drive uuids (of the same owner and location), attached in order as virtio `0:0`, `0:1`, ...; the
    /// first one gets `boot_order` 1.
    pub drives: Vec<String>,
    /// `meta` map.
    pub meta: BTreeMap<String, String>,
    /// Fixed uuid; `None` = random.
    pub uuid: Option<String>,
}

impl Default for ServerSeed {
    fn default() -> Self {
        ServerSeed {
            name: "server".to_owned(),
            cpu: 2000,
            mem: 2 * 1024 * 1024 * 1024,
            status: "running".to_owned(),
            nics: Vec::new(),
            drives: Vec::new(),
            meta: BTreeMap::new(),
            uuid: None,
        }
    }
}

/// A NIC to seed. In YAML: `{type: public, ip_v4: 203.0.113.10}` or `{type: vlan, vlan: <uuid>}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NicSeed {
    /// A public NIC with DHCP configuration; `ip_v4`/`ip_v6` are its leases, shown in the runtime while
    /// the server runs (`None` = no address). A seeded IPv4 address becomes an IP of the owner (`/ips/`).
    Public {
        /// IPv4 lease.
        #[serde(default)]
        ip_v4: Option<Ipv4Addr>,
        /// IPv6 lease.
        #[serde(default)]
        ip_v6: Option<Ipv6Addr>,
    },
    /// A private NIC on a VLAN (created for the owner if it does not exist); no IP in the runtime.
    Vlan {
        /// VLAN uuid.
        vlan: String,
    },
}

/// A drive to seed. `Default`: 10 GiB `disk` on `dssd`, named `drive`, ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveSeed {
    /// Drive name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// `disk` or `cdrom`.
    pub media: String,
    /// `dssd`, `nvme`, `zadara` or `local_nvme`.
    pub storage_type: String,
    /// `None`, `unmounted` or `mounted`: ready (mounted-ness follows server definitions); `creating`:
    /// becomes ready after the drive creation delay; `unavailable` / `uploading`: stays so.
    pub status: Option<String>,
    /// Fixed uuid; `None` = random.
    pub uuid: Option<String>,
}

impl Default for DriveSeed {
    fn default() -> Self {
        DriveSeed {
            name: "drive".to_owned(),
            size: 10 * 1024 * 1024 * 1024,
            media: "disk".to_owned(),
            storage_type: "dssd".to_owned(),
            status: None,
            uuid: None,
        }
    }
}

/// A user (account) of a seed file. Its password never appears in Debug output.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// Account email (the Basic-auth user name).
    pub email: String,
    /// Basic-auth password.
    pub password: SecretString,
}

/// A Keycloak client of a seed file. Its secret never appears in Debug output.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientSeed {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: SecretString,
    /// Email of the client's service-account user (created without a password if missing).
    pub service_account_email: String,
}

/// A seed with its owner and location (`None` = the default location).
#[derive(Clone, Debug, PartialEq)]
pub struct Placed<T> {
    /// Owner email.
    pub owner: String,
    /// Location code; `None` = default location.
    pub location: Option<String>,
    /// The resource.
    pub seed: T,
}

/// A whole seed document: users, OAuth clients, drives, then servers (applied in that order).
///
/// Server and drive entries are the `ServerSeed` / `DriveSeed` fields plus `owner` (email) and an
/// optional `location`.
#[derive(Clone, Debug, Default)]
pub struct Seed {
    /// Users.
    pub users: Vec<UserSeed>,
    /// OAuth clients.
    pub oauth_clients: Vec<OAuthClientSeed>,
    /// Drives.
    pub drives: Vec<Placed<DriveSeed>>,
    /// Servers.
    pub servers: Vec<Placed<ServerSeed>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    #[serde(default)]
    users: Vec<UserSeed>,
    #[serde(default)]
    oauth_clients: Vec<OAuthClientSeed>,
    #[serde(default)]
    drives: Vec<Value>,
    #[serde(default)]
    servers: Vec<Value>,
}

impl Seed {
    /// Reads a seed file: JSON when the name ends in `.json`, YAML otherwise (YAML also reads JSON).
    pub fn from_path(path: &Path) -> Result<Seed, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::SeedRead {
            path: path.to_owned(),
            source,
        })?;
        let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Seed::parse(&text, json, &path.display().to_string())
    }

    /// Parses a seed document from YAML (or JSON, which YAML reads too).
    pub fn from_yaml(text: &str) -> Result<Seed, Error> {
        Seed::parse(text, false, "input")
    }

    /// Parses a seed document from JSON.
    pub fn from_json(text: &str) -> Result<Seed, Error> {
        Seed::parse(text, true, "input")
    }

    fn parse(text: &str, json: bool, origin: &str) -> Result<Seed, Error> {
        let parse_err = |message: String| Error::SeedParse {
            origin: origin.to_owned(),
            message,
        };
        let raw: RawSeed = if json {
            serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?
        } else {
            serde_yaml::from_str(text).map_err(|e| parse_err(e.to_string()))?
        };
        let drives = raw
            .drives
            .into_iter()
            .enumerate()
            .map(|(i, v)| placed(v, &format!("drives[{i}]")))
            .collect::<Result<_, _>>()
            .map_err(parse_err)?;
        let servers = raw
            .servers
            .into_iter()
            .enumerate()
            .map(|(i, v)| placed(v, &format!("servers[{i}]")))
            .collect::<Result<_, _>>()
            .map_err(parse_err)?;
        Ok(Seed {
            users: raw.users,
            oauth_clients: raw.oauth_clients,
            drives,
            servers,
        })
    }
}

/// Splits `owner` and `location` off an entry and reads the rest as `T` (unknown fields rejected).
fn placed<T: serde::de::DeserializeOwned>(v: Value, at: &str) -> Result<Placed<T>, String> {
    let Value::Object(mut map) = v else {
        return Err(format!("{at}: expected a mapping"));
    };
    let owner = match map.remove("owner") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(format!("{at}.owner: expected an email string")),
        None => return Err(format!("{at}.owner: missing (the owner's email)")),
    };
    let location = match map.remove("location") {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(_) => return Err(format!("{at}.location: expected a location code")),
    };
    let seed = serde_json::from_value(Value::Object(map)).map_err(|e| format!("{at}: {e}"))?;
    Ok(Placed {
        owner,
        location,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const YAML: &str = r#"
users:
  - email: user@example.com
    password: hunter2-demo
oauth_clients:
  - client_id: demo
    client_secret: s3cret-demo
    service_account_email: sa@example.com
drives:
  - owner: user@example.com
    uuid: d0000000-0000-4000-8000-000000000001
    name: boot
    size: 1073741824
servers:
  - owner: user@example.com
    location: zrh
    name: web
    status: stopped
    nics:
      - type: public
        ip_v4: 203.0.113.10
      - type: vlan
        vlan: v1
    drives: [d0000000-0000-4000-8000-000000000001]
"#;

    #[test]
    fn parses_yaml_with_defaults() {
        let s = Seed::from_yaml(YAML).unwrap();
        assert_eq!(s.users[0].email, "user@example.com");
        assert_eq!(s.users[0].password.expose_secret(), "hunter2-demo");
        assert_eq!(s.drives[0].seed.size, 1073741824);
        assert_eq!(s.drives[0].seed.media, "disk");
        assert_eq!(s.drives[0].location, None);
        let srv = &s.servers[0];
        assert_eq!(srv.location.as_deref(), Some("zrh"));
        assert_eq!(srv.seed.cpu, 2000);
        assert_eq!(srv.seed.status, "stopped");
        assert_eq!(
            srv.seed.nics,
            vec![
                NicSeed::Public {
                    ip_v4: Some(Ipv4Addr::new(203, 0, 113, 10)),
                    ip_v6: None
                },
                NicSeed::Vlan { vlan: "v1".into() }
            ]
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Seed::from_yaml(YAML).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2-demo"), "{dbg}");
        assert!(!dbg.contains("s3cret-demo"), "{dbg}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Seed::from_yaml("servers:\n  - owner: a@b\n    nmae: x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("servers[0]") && e.contains("nmae"), "{e}");
        let e = Seed::from_yaml("servers:\n  - name: x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("servers[0].owner"), "{e}");
        let e = Seed::from_yaml("userz: []\n").unwrap_err().to_string();
        assert!(e.contains("userz"), "{e}");
        let e = Seed::from_json(r#"{"servers":[{"owner":"a","nics":[{"type":"wifi"}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("wifi"), "{e}");
        let e = Seed::from_yaml("drives:\n  - owner: a\n    size: big\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("drives[0]"), "{e}");
    }
}
