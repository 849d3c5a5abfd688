//! In-memory state: accounts, tokens and per-user resources, with lazily applied timed transitions.

mod auth;
mod model;
pub(crate) mod render;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::Instant;

pub(crate) use auth::{OAuthClient, Token, TokenKind, User};
pub(crate) use model::{
    Drive, DrivePhase, IpConf, IpMode, Nic, NicKind, Server, ServerDrive, ServerStatus, Snapshot, Vlan,
};

/// An IPv4 address owned by a user (`/ips/`). Its uuid is the address itself.
#[derive(Clone, Debug)]
pub(crate) struct Ip {
    pub(crate) addr: Ipv4Addr,
    pub(crate) loc: String,
    pub(crate) owner: String,
    /// Handed out by the DHCP pool: released when the NIC holding it goes away.
    pub(crate) from_pool: bool,
    pub(crate) seq: u64,
}

/// Documentation ranges the DHCP pool hands out, in order (RFC 5737 TEST-NET-2 then TEST-NET-1).
const POOL: [[u8; 3]; 2] = [[198, 51, 100], [192, 0, 2]];

/// Everything the emulator knows. Guarded by one mutex in `Shared`.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) users: BTreeMap<String, User>,
    emails: BTreeMap<String, String>,
    pub(crate) clients: BTreeMap<String, OAuthClient>,
    pub(crate) tokens: HashMap<String, Token>,
    pub(crate) servers: BTreeMap<String, Server>,
    pub(crate) drives: BTreeMap<String, Drive>,
    pub(crate) snapshots: BTreeMap<String, Snapshot>,
    pub(crate) ips: BTreeMap<Ipv4Addr, Ip>,
    pub(crate) vlans: BTreeMap<String, Vlan>,
    seq: u64,
}

impl State {
    /// A creation sequence number (lists are ordered by it).
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Applies every timed transition that is due at `now`, and forgets expired tokens.
    pub(crate) fn settle(&mut self, now: Instant) {
        for s in self.servers.values_mut() {
            if let Some((to, at)) = s.transition
                && at <= now
            {
                s.set_status(to);
            }
        }
        for d in self.drives.values_mut() {
            d.settle(now);
        }
        for s in self.snapshots.values_mut() {
            if let Some(at) = s.ready_at
                && at <= now
            {
                s.ready_at = None;
                s.allocated_size = Some(0);
            }
        }
        self.tokens.retain(|_, t| t.expires_at > now);
    }

    /// A fresh MAC address, unique among all NICs.
    pub(crate) fn new_mac(&self) -> String {
        loop {
            let b: [u8; 5] = rand::random();
            let mac = format!(
                "22:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                b[0], b[1], b[2], b[3], b[4]
            );
            if !self.servers.values().any(|s| s.nics.iter().any(|n| n.mac == mac)) {
                return mac;
            }
        }
    }

    /// The server and NIC index currently holding `addr` (static configuration or DHCP lease).
    pub(crate) fn ip_holder(&self, addr: Ipv4Addr) -> Option<(&Server, usize)> {
        self.servers.values().find_map(|s| {
            s.nics
                .iter()
                .position(|n| n.address() == Some(addr))
                .map(|i| (s, i))
        })
    }

    /// A free address of the DHCP pool, skipping `reserved`.
    pub(crate) fn pool_address(&self, reserved: &[Ipv4Addr]) -> Option<Ipv4Addr> {
        POOL.iter()
            .flat_map(|[a, b, c]| (10..=250).map(move |d| Ipv4Addr::new(*a, *b, *c, d)))
            .find(|ip| !self.ips.contains_key(ip) && !reserved.contains(ip) && self.ip_holder(*ip).is_none())
    }

    /// Records `addr` as an IP of `owner` in `loc` unless it exists; fails if another user (or location)
    /// holds it.
    pub(crate) fn claim_ip(
        &mut self,
        addr: Ipv4Addr,
        loc: &str,
        owner: &str,
        from_pool: bool,
    ) -> Result<(), String> {
        if let Some(ip) = self.ips.get(&addr) {
            if ip.owner != owner || ip.loc != loc {
                return Err(format!("IP {addr} belongs to another account or location"));
            }
            return Ok(());
        }
        let seq = self.next_seq();
        self.ips.insert(
            addr,
            Ip {
                addr,
                loc: loc.to_owned(),
                owner: owner.to_owned(),
                from_pool,
                seq,
            },
        );
        Ok(())
    }

    /// Forgets pool addresses no NIC holds any more.
    pub(crate) fn release_unused_pool_ips(&mut self) {
        let held: Vec<Ipv4Addr> = self
            .servers
            .values()
            .flat_map(|s| s.nics.iter().filter_map(Nic::address))
            .collect();
        self.ips.retain(|addr, ip| !ip.from_pool || held.contains(addr));
    }

    /// Uuids of the servers whose definition lists `drive`, in creation order.
    pub(crate) fn servers_with_drive(&self, drive: &str) -> Vec<String> {
        let mut v: Vec<&Server> = self
            .servers
            .values()
            .filter(|s| s.drives.iter().any(|d| d.drive == drive))
            .collect();
        v.sort_by_key(|s| s.seq);
        v.into_iter().map(|s| s.uuid.clone()).collect()
    }

    /// Servers listing `drive` plus servers it is still detaching from (the `mounted_on` list).
    pub(crate) fn mounted_on(&self, drive: &Drive) -> Vec<String> {
        let mut v = self.servers_with_drive(&drive.uuid);
        for (srv, _) in &drive.detaching {
            if !v.contains(srv) {
                v.push(srv.clone());
            }
        }
        v
    }

    /// Deletes a drive: out of every server definition, with its snapshots.
    pub(crate) fn remove_drive(&mut self, uuid: &str) {
        self.drives.remove(uuid);
        for s in self.servers.values_mut() {
            s.drives.retain(|d| d.drive != uuid);
        }
        self.snapshots.retain(|_, s| s.drive != uuid);
    }

    /// Deletes a server; its drives (those not in `delete_drives`) detach after `detach_at`.
    pub(crate) fn remove_server(&mut self, uuid: &str, delete_drives: &[String], detach_at: Instant) {
        let Some(server) = self.servers.remove(uuid) else {
            return;
        };
        for sd in &server.drives {
            if delete_drives.contains(&sd.drive) {
                self.remove_drive(&sd.drive);
            } else if let Some(d) = self.drives.get_mut(&sd.drive) {
                d.start_detach(uuid, detach_at);
            }
        }
        self.release_unused_pool_ips();
    }
}
