//! The CloudSigma side: the emulator (in this process) with one tenant account holding N running
//! servers, each with one public NIC, and the service account the ccm impersonates the tenant with.

use std::{collections::BTreeMap, net::Ipv4Addr};

use cs_emulator::{Config, Emulator, NicSeed, ServerSeed};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// The location of the servers (and the ccm's `--region`).
pub const REGION: &str = "zrh";
/// The tenant cluster's owner, whose account holds the servers.
pub const USER: &str = "owner@bench.example.com";
/// The OAuth client of the service account that impersonates [`USER`].
pub const CLIENT_ID: &str = "ccm-bench-client";
/// That client's service account.
pub const SERVICE_ACCOUNT: &str = "service-account@bench.example.com";
/// Server CPU, MHz.
pub const CPU_MHZ: u64 = 2000;
/// Server memory, MiB.
pub const MEM_MIB: u64 = 4096;

/// Emulator route of the servers listing the ccm uses (impersonated tokens go to the direct host).
pub const ROUTE_LIST: &str = "GET /direct/api/2.0/servers/detail/";
/// Emulator route of a single server GET.
pub const ROUTE_GET: &str = "GET /direct/api/2.0/servers/{uuid}/";
/// Emulator route of the Keycloak token endpoint (client credentials and the UMA ticket).
pub const ROUTE_TOKEN: &str = "POST /oauth/token";
/// Emulator route of the impersonation endpoint.
pub const ROUTE_IMPERSONATE: &str = "POST /direct/service_provider/api/v1/user/impersonate";

/// One server of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its name, also the Node name.
    pub name: String,
    /// Its uuid.
    pub uuid: String,
    /// Its public address now.
    pub ip: Ipv4Addr,
}

/// The emulator with the account and its servers.
pub struct Fleet {
    emulator: Emulator,
    client_secret: SecretString,
    servers: Vec<Server>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("base_url", &self.emulator.base_url())
            .field("servers", &self.servers.len())
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// The public address of server `i` (0-based) in address block `block` (0 = initial, 1 = changed):
/// `185.(10+block).(i / 250).(i % 250 + 1)`, global unicast (so the ccm reports it as `ExternalIP`) and
/// outside the emulator's DHCP pool. Up to 64 000 servers.
pub fn public_ip(i: usize, block: u8) -> Result<Ipv4Addr> {
    let hi = u8::try_from(i / 250).map_err(|_| Error::Config {
        field: "--nodes",
        message: format!("at most 64000 servers are supported, server index {i} is too large"),
    })?;
    let lo = (i % 250) as u8 + 1;
    Ok(Ipv4Addr::new(185, 10 + block, hi, lo))
}

/// The name of server (and Node) `i`.
pub fn server_name(i: usize) -> String {
    format!("bench-node-{i:05}")
}

impl Fleet {
    /// Starts an emulator on 127.0.0.1 and seeds `n` running servers named [`server_name`] with the
    /// addresses of [`public_ip`] block 0.
    pub async fn start(n: usize) -> Result<Self> {
        let emulator = Emulator::start_with(Config::default()).await?;
        let client_secret = SecretString::from(format!("bench-{}", uuid::Uuid::new_v4().simple()));
        emulator.add_user(USER, &format!("pw-{}", uuid::Uuid::new_v4().simple()));
        emulator.add_oauth_client(CLIENT_ID, client_secret.expose_secret(), SERVICE_ACCOUNT);
        let mut servers = Vec::with_capacity(n);
        for i in 0..n {
            let name = server_name(i);
            let ip = public_ip(i, 0)?;
            let uuid = emulator.try_add_server(
                REGION,
                USER,
                ServerSeed {
                    name: name.clone(),
                    cpu: CPU_MHZ,
                    mem: MEM_MIB << 20,
                    nics: vec![NicSeed::Public {
                        ip_v4: Some(ip),
                        ip_v6: None,
                    }],
                    ..ServerSeed::default()
                },
            )?;
            servers.push(Server { name, uuid, ip });
        }
        Ok(Self {
            emulator,
            client_secret,
            servers,
        })
    }

    /// The servers, in creation order.
    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// The emulator.
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// The OAuth client secret the ccm needs (give it through the environment, never on a command line).
    pub fn client_secret(&self) -> &SecretString {
        &self.client_secret
    }

    /// The ccm flags that point it at this emulator with impersonation of [`USER`].
    pub fn ccm_args(&self) -> Vec<String> {
        let e = &self.emulator;
        [
            "--region",
            REGION,
            "--impersonation-enabled",
            "--oauth-url",
            &e.oauth_url(),
            "--client-id",
            CLIENT_ID,
            "--user-email",
            USER,
            "--api-url",
            &e.api_url_template(),
            "--direct-api-url",
            &e.direct_api_url_template(),
            "--impersonation-url",
            &e.direct_url_template(),
            // The emulator serves plain http on 127.0.0.1.
            "--allow-insecure-http",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    /// Gives the servers at `indexes` a new address from block 1, as the platform's DHCP would.
    pub fn change_ips(&mut self, indexes: &[usize]) -> Result<()> {
        for &i in indexes {
            let server = self.servers.get_mut(i).ok_or_else(|| Error::Config {
                field: "--change-percent",
                message: format!("server index {i} does not exist"),
            })?;
            let ip = public_ip(i, 1)?;
            self.emulator.try_set_nic_ip(&server.uuid, 0, Some(ip))?;
            server.ip = ip;
        }
        Ok(())
    }

    /// Requests served so far by route template (section 5 of docs/emulator.md).
    pub fn route_counts(&self) -> BTreeMap<String, u64> {
        self.emulator.route_counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_global_and_outside_the_dhcp_pool() {
        let a = public_ip(0, 0).unwrap();
        let b = public_ip(999, 0).unwrap();
        let c = public_ip(999, 1).unwrap();
        assert_eq!(a, Ipv4Addr::new(185, 10, 0, 1));
        assert_eq!(b, Ipv4Addr::new(185, 10, 3, 250));
        assert_eq!(c, Ipv4Addr::new(185, 11, 3, 250));
        assert!(!a.is_private() && !a.is_loopback() && !a.is_documentation());
        let err = public_ip(64_000, 0).unwrap_err();
        assert!(err.to_string().contains("--nodes"), "{err}");
    }

    #[tokio::test]
    async fn seeds_the_account_and_changes_one_percent_of_the_addresses() {
        let mut fleet = Fleet::start(200).await.unwrap();
        assert_eq!(fleet.servers().len(), 200);
        let uuid = fleet.servers()[7].uuid.clone();
        let json = fleet.emulator().server_json(&uuid).unwrap();
        assert_eq!(json["name"], "bench-node-00007");
        assert_eq!(json["status"], "running");
        assert_eq!(json["runtime"]["nics"][0]["ip_v4"]["uuid"], "185.10.0.8");

        fleet.change_ips(&[0, 100]).unwrap();
        let json = fleet.emulator().server_json(&fleet.servers()[100].uuid).unwrap();
        assert_eq!(json["runtime"]["nics"][0]["ip_v4"]["uuid"], "185.11.0.101");
        assert_eq!(fleet.servers()[100].ip, Ipv4Addr::new(185, 11, 0, 101));
        assert_eq!(
            fleet.servers()[1].ip,
            Ipv4Addr::new(185, 10, 0, 2),
            "others unchanged"
        );
    }

    #[tokio::test]
    async fn the_client_secret_stays_out_of_debug_output_and_flags() {
        let fleet = Fleet::start(1).await.unwrap();
        let secret = fleet.client_secret().expose_secret().to_owned();
        assert!(!format!("{fleet:?}").contains(&secret));
        assert!(!fleet.ccm_args().iter().any(|a| a.contains(&secret)));
    }
}
