//! Seeding and out-of-band changes, shared by the library handle and the admin API.

use std::net::Ipv4Addr;
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::api::misc::{CPU, MEM, storage_limits, storage_types};
use crate::api::servers::{default_extra, derived_smp};
use crate::emulator::Shared;
use crate::error::Error;
use crate::seed::{DriveSeed, NicSeed, Seed, ServerSeed};
use crate::store::{
    Drive, DrivePhase, IpConf, IpMode, Nic, NicKind, OAuthClient, Server, ServerDrive, ServerStatus, State,
    TokenKind, Vlan,
};

/// Virtio units per controller.
const UNITS: usize = 6;

impl Shared {
    fn check_location(&self, loc: &str) -> Result<(), Error> {
        if self.config.has_location(loc) {
            Ok(())
        } else {
            Err(Error::UnknownLocation(loc.to_owned()))
        }
    }

    pub(crate) fn add_oauth_client(&self, client_id: &str, secret: SecretString, sa_email: &str) {
        let mut state = self.state();
        let sa_user = state.upsert_user(sa_email, None);
        state
            .clients
            .insert(client_id.to_owned(), OAuthClient { secret, sa_user });
    }

    pub(crate) fn add_ip(&self, loc: &str, owner_email: &str, addr: Ipv4Addr) -> Result<(), Error> {
        self.check_location(loc)?;
        let mut state = self.state();
        let owner = state
            .user_uuid(owner_email)
            .ok_or_else(|| Error::UnknownUser(owner_email.to_owned()))?;
        state
            .claim_ip(addr, loc, &owner, false)
            .map_err(|m| Error::seed("ip", m))
    }

    pub(crate) fn add_drive(&self, loc: &str, owner_email: &str, seed: &DriveSeed) -> Result<String, Error> {
        self.check_location(loc)?;
        let now = Instant::now();
        let mut state = self.state();
        let owner = state
            .user_uuid(owner_email)
            .ok_or_else(|| Error::UnknownUser(owner_email.to_owned()))?;
        let uuid = seed
            .uuid
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if state.drives.contains_key(&uuid) {
            return Err(Error::seed("uuid", format!("drive {uuid} already exists")));
        }
        if seed.name.is_empty() {
            return Err(Error::seed("name", "must not be empty"));
        }
        if seed.media != "disk" && seed.media != "cdrom" {
            return Err(Error::seed(
                "media",
                format!("must be disk or cdrom, not {:?}", seed.media),
            ));
        }
        let (min, max) = storage_limits(&seed.storage_type).ok_or_else(|| {
            Error::seed(
                "storage_type",
                format!("must be one of {}, not {:?}", storage_types(), seed.storage_type),
            )
        })?;
        if seed.size < min || seed.size > max {
            return Err(Error::seed(
                "size",
                format!("must be between {min} and {max} bytes for {}", seed.storage_type),
            ));
        }
        let phase = match seed.status.as_deref() {
            None | Some("unmounted" | "mounted") => DrivePhase::Ready,
            Some("creating") => DrivePhase::Creating(now + self.config.drive_create_delay),
            Some("unavailable") => DrivePhase::Stuck("unavailable"),
            Some("uploading") => DrivePhase::Stuck("uploading"),
            Some(other) => {
                return Err(Error::seed(
                    "status",
                    format!("must be unmounted, mounted, creating, unavailable or uploading, not {other:?}"),
                ));
            }
        };
        let seq = state.next_seq();
        state.drives.insert(
            uuid.clone(),
            Drive {
                uuid: uuid.clone(),
                loc: loc.to_owned(),
                owner,
                seq,
                name: seed.name.clone(),
                size: seed.size,
                media: seed.media.clone(),
                storage_type: seed.storage_type.clone(),
                allow_multimount: false,
                meta: Default::default(),
                tags: Vec::new(),
                phase,
                detaching: Vec::new(),
            },
        );
        Ok(uuid)
    }

    pub(crate) fn add_server(
        &self,
        loc: &str,
        owner_email: &str,
        seed: &ServerSeed,
    ) -> Result<String, Error> {
        self.check_location(loc)?;
        let now = Instant::now();
        let mut state = self.state();
        let owner = state
            .user_uuid(owner_email)
            .ok_or_else(|| Error::UnknownUser(owner_email.to_owned()))?;
        let uuid = seed
            .uuid
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if state.servers.contains_key(&uuid) {
            return Err(Error::seed("uuid", format!("server {uuid} already exists")));
        }
        if seed.name.is_empty() {
            return Err(Error::seed("name", "must not be empty"));
        }
        if seed.cpu < CPU.0 || seed.cpu > CPU.1 {
            return Err(Error::seed(
                "cpu",
                format!("must be between {} and {} MHz", CPU.0, CPU.1),
            ));
        }
        if seed.mem < MEM.0 || seed.mem > MEM.1 {
            return Err(Error::seed(
                "mem",
                format!("must be between {} and {} bytes", MEM.0, MEM.1),
            ));
        }
        let status = ServerStatus::parse(&seed.status)
            .ok_or_else(|| Error::seed("status", format!("must be one of {}", ServerStatus::NAMES)))?;
        let nics = seed_nics(&mut state, loc, &owner, &seed.nics)?;
        let drives = seed_drives(&state, loc, &owner, &seed.drives)?;
        // Validation done: commit addresses and VLANs.
        for (i, nic) in seed.nics.iter().enumerate() {
            match nic {
                NicSeed::Public {
                    ip_v4: Some(addr), ..
                } => {
                    state
                        .claim_ip(*addr, loc, &owner, false)
                        .map_err(|m| Error::seed(format!("nics[{i}].ip_v4"), m))?;
                }
                NicSeed::Vlan { vlan } if !state.vlans.contains_key(vlan) => {
                    let seq = state.next_seq();
                    state.vlans.insert(
                        vlan.clone(),
                        Vlan {
                            uuid: vlan.clone(),
                            loc: loc.to_owned(),
                            owner: owner.clone(),
                            seq,
                        },
                    );
                }
                _ => {}
            }
        }
        let seq = state.next_seq();
        let mut server = Server {
            uuid: uuid.clone(),
            loc: loc.to_owned(),
            owner,
            seq,
            name: seed.name.clone(),
            cpu: seed.cpu,
            mem: seed.mem,
            smp: derived_smp(seed.cpu),
            vnc_password: "emulator".to_owned(),
            status: ServerStatus::Stopped,
            transition: None,
            active_since: None,
            meta: seed.meta.clone(),
            tags: Vec::new(),
            nics,
            drives,
            extra: default_extra(),
        };
        let at = now + self.config.server_transition_delay;
        match status {
            ServerStatus::Starting => server.transition(ServerStatus::Starting, ServerStatus::Running, at),
            ServerStatus::Stopping => server.transition(ServerStatus::Stopping, ServerStatus::Stopped, at),
            other => server.set_status(other),
        }
        state.servers.insert(uuid.clone(), server);
        Ok(uuid)
    }

    pub(crate) fn load_seed(&self, seed: &Seed) -> Result<(), Error> {
        let loc_of = |l: &Option<String>| l.clone().unwrap_or_else(|| self.config.default_location.clone());
        for u in &seed.users {
            if u.email.trim().is_empty() {
                return Err(Error::seed("users[].email", "must not be empty"));
            }
            self.state().upsert_user(&u.email, Some(u.password.clone()));
        }
        for c in &seed.oauth_clients {
            self.add_oauth_client(
                &c.client_id,
                SecretString::from(c.client_secret.expose_secret().to_owned()),
                &c.service_account_email,
            );
        }
        for (i, d) in seed.drives.iter().enumerate() {
            self.add_drive(&loc_of(&d.location), &d.owner, &d.seed)
                .map_err(|e| prefix(e, &format!("drives[{i}]")))?;
        }
        for (i, s) in seed.servers.iter().enumerate() {
            self.add_server(&loc_of(&s.location), &s.owner, &s.seed)
                .map_err(|e| prefix(e, &format!("servers[{i}]")))?;
        }
        Ok(())
    }

    pub(crate) fn set_server_status(&self, uuid: &str, status: &str) -> Result<(), Error> {
        let st = ServerStatus::parse(status)
            .ok_or_else(|| Error::seed("status", format!("must be one of {}", ServerStatus::NAMES)))?;
        let mut state = self.state();
        state.settle(Instant::now());
        let s = state.servers.get_mut(uuid).ok_or_else(|| Error::NotFound {
            kind: "server",
            uuid: uuid.to_owned(),
        })?;
        s.set_status(st);
        Ok(())
    }

    /// Returns whether the server existed.
    pub(crate) fn delete_server(&self, uuid: &str) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        state.settle(now);
        let existed = state.servers.contains_key(uuid);
        state.remove_server(uuid, &[], now + self.config.detach_delay);
        existed
    }

    pub(crate) fn set_nic_ip(&self, uuid: &str, idx: usize, ip: Option<Ipv4Addr>) -> Result<(), Error> {
        let mut state = self.state();
        state.settle(Instant::now());
        let s = state.servers.get(uuid).ok_or_else(|| Error::NotFound {
            kind: "server",
            uuid: uuid.to_owned(),
        })?;
        let (loc, owner) = (s.loc.clone(), s.owner.clone());
        let nic = s
            .nics
            .get(idx)
            .ok_or_else(|| Error::seed("nic_index", format!("server has {} NICs", s.nics.len())))?;
        let mode = match &nic.kind {
            NicKind::Vlan(_) => {
                return Err(Error::seed(
                    "nic_index",
                    "NIC is a VLAN NIC; it has no public address",
                ));
            }
            NicKind::Public(Some(IpConf {
                mode: IpMode::Static, ..
            })) => IpMode::Static,
            NicKind::Public(_) => IpMode::Dhcp,
        };
        if let Some(addr) = ip {
            if state
                .ip_holder(addr)
                .is_some_and(|(s, i)| s.uuid != uuid || i != idx)
            {
                return Err(Error::seed("ip_v4", format!("{addr} is held by another NIC")));
            }
            state
                .claim_ip(addr, &loc, &owner, true)
                .map_err(|m| Error::seed("ip_v4", m))?;
        }
        let mode = if ip.is_none() { IpMode::Dhcp } else { mode };
        if let Some(n) = state.servers.get_mut(uuid).and_then(|s| s.nics.get_mut(idx)) {
            n.kind = NicKind::Public(Some(IpConf { mode, addr: ip }));
        }
        state.release_unused_pool_ips();
        Ok(())
    }

    pub(crate) fn issue_token(&self, loc: &str, email: &str) -> Result<String, Error> {
        self.check_location(loc)?;
        let mut state = self.state();
        let user = state
            .user_uuid(email)
            .ok_or_else(|| Error::UnknownUser(email.to_owned()))?;
        let kind = TokenKind::Impersonated {
            location: loc.to_owned(),
            sa_user: None,
        };
        Ok(state.issue_token(kind, &user, None, self.config.token_lifetime, Instant::now()))
    }
}

fn prefix(e: Error, at: &str) -> Error {
    match e {
        Error::InvalidSeed { field, message } => Error::InvalidSeed {
            field: format!("{at}.{field}"),
            message,
        },
        Error::UnknownUser(u) => Error::seed(format!("{at}.owner"), format!("unknown user {u}")),
        Error::UnknownLocation(l) => Error::seed(format!("{at}.location"), format!("unknown location {l}")),
        other => other,
    }
}

fn seed_nics(state: &mut State, loc: &str, owner: &str, seeds: &[NicSeed]) -> Result<Vec<Nic>, Error> {
    let mut out: Vec<Nic> = Vec::new();
    for (i, n) in seeds.iter().enumerate() {
        let mac = loop {
            let m = state.new_mac();
            if !out.iter().any(|n| n.mac == m) {
                break m;
            }
        };
        let (kind, ip_v6, ip_v6_conf) = match n {
            NicSeed::Public { ip_v4, ip_v6 } => {
                if let Some(addr) = ip_v4 {
                    if let Some(ip) = state.ips.get(addr)
                        && (ip.owner != owner || ip.loc != loc)
                    {
                        return Err(Error::seed(
                            format!("nics[{i}].ip_v4"),
                            format!("{addr} belongs to another account"),
                        ));
                    }
                    if state.ip_holder(*addr).is_some() || out.iter().any(|n| n.address() == Some(*addr)) {
                        return Err(Error::seed(
                            format!("nics[{i}].ip_v4"),
                            format!("{addr} is already in use"),
                        ));
                    }
                }
                let v6conf = if ip_v6.is_some() {
                    json!({"conf": "dhcp", "ip": null})
                } else {
                    Value::Null
                };
                (
                    NicKind::Public(Some(IpConf {
                        mode: IpMode::Dhcp,
                        addr: *ip_v4,
                    })),
                    *ip_v6,
                    v6conf,
                )
            }
            NicSeed::Vlan { vlan } => {
                if vlan.is_empty() {
                    return Err(Error::seed(format!("nics[{i}].vlan"), "must not be empty"));
                }
                if let Some(v) = state.vlans.get(vlan)
                    && (v.owner != owner || v.loc != loc)
                {
                    return Err(Error::seed(
                        format!("nics[{i}].vlan"),
                        format!("VLAN {vlan} belongs to another account"),
                    ));
                }
                (NicKind::Vlan(vlan.clone()), None, Value::Null)
            }
        };
        out.push(Nic {
            mac,
            model: "virtio".to_owned(),
            boot_order: None,
            firewall_policy: None,
            kind,
            ip_v6_conf,
            ip_v6,
        });
    }
    Ok(out)
}

fn seed_drives(state: &State, loc: &str, owner: &str, uuids: &[String]) -> Result<Vec<ServerDrive>, Error> {
    let mut out = Vec::new();
    for (i, uuid) in uuids.iter().enumerate() {
        let at = format!("drives[{i}]");
        let d = state.drives.get(uuid).filter(|d| d.loc == loc).ok_or_else(|| {
            Error::seed(
                &at,
                format!("drive {uuid} does not exist in {loc} (seed drives before servers)"),
            )
        })?;
        if d.owner != owner {
            return Err(Error::seed(
                &at,
                format!("drive {uuid} belongs to another account"),
            ));
        }
        if !d.allow_multimount && !state.mounted_on(d).is_empty() {
            return Err(Error::seed(
                &at,
                format!("drive {uuid} is already mounted on another server"),
            ));
        }
        if uuids[..i].contains(uuid) {
            return Err(Error::seed(&at, format!("drive {uuid} is listed twice")));
        }
        out.push(ServerDrive {
            drive: uuid.clone(),
            dev_channel: format!("{}:{}", i / UNITS, i % UNITS),
            device: "virtio".to_owned(),
            boot_order: (i == 0).then_some(1),
        });
    }
    Ok(out)
}
