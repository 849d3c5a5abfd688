//! JSON representations of resources, as API 2.0 returns them.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use super::{Drive, Ip, IpMode, Nic, NicKind, Server, ServerStatus, Snapshot, State, Vlan};

/// Fields of `/servers/` short list items.
pub(crate) const SERVER_SHORT: &[&str] = &["uuid", "name", "status", "owner", "resource_uri", "runtime"];
/// Fields of `/drives/` short list items.
pub(crate) const DRIVE_SHORT: &[&str] = &["uuid", "status", "owner", "resource_uri"];
/// Fields of `/snapshots/` short list items (a guess: not documented).
pub(crate) const SNAPSHOT_SHORT: &[&str] = &["uuid", "name", "status", "drive", "owner", "resource_uri"];
/// Fields of `/ips/` short list items (a guess: not documented).
pub(crate) const IP_SHORT: &[&str] = &["uuid", "server", "owner", "resource_uri"];
/// Fields of `/vlans/` short list items (a guess: not documented).
pub(crate) const VLAN_SHORT: &[&str] = &["uuid", "owner", "resource_uri"];

/// `{uuid, resource_uri}` for a resource collection.
pub(crate) fn res_ref(collection: &str, uuid: &str) -> Value {
    json!({"uuid": uuid, "resource_uri": format!("/api/2.0/{collection}/{uuid}/")})
}

/// The owner reference.
pub(crate) fn user_ref(uuid: &str) -> Value {
    res_ref("user", uuid)
}

fn ip_ref(addr: Ipv4Addr) -> Value {
    res_ref("ips", &addr.to_string())
}

fn ip6_ref(addr: Ipv6Addr) -> Value {
    res_ref("ips", &addr.to_string())
}

fn tag_refs(tags: &[String]) -> Value {
    Value::Array(tags.iter().map(|t| res_ref("tags", t)).collect())
}

/// `2025-01-01T10:00:00+00:00`.
pub(crate) fn iso_time(ts: jiff::Timestamp) -> String {
    format!("{}+00:00", ts.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// `2025-01-01 10:00:00.123456+00:00` (snapshot timestamps).
pub(crate) fn snapshot_time(ts: jiff::Timestamp) -> String {
    format!("{}+00:00", ts.strftime("%Y-%m-%d %H:%M:%S%.6f"))
}

fn zero_io() -> Value {
    json!({"bytes_recv": 0, "bytes_sent": 0, "packets_recv": 0, "packets_sent": 0})
}

/// The NIC `runtime` while the server runs: public NICs show their address, VLAN NICs are `private`
/// with no address.
fn nic_runtime(nic: &Nic) -> Value {
    match &nic.kind {
        NicKind::Public(_) => json!({
            "interface_type": "public",
            "io": zero_io(),
            "ip_v4": nic.address().map(ip_ref),
            "ip_v6": nic.ip_v6.map(ip6_ref),
        }),
        NicKind::Vlan(_) => {
            json!({"interface_type": "private", "io": zero_io(), "ip_v4": null, "ip_v6": null})
        }
    }
}

fn nic_json(nic: &Nic, running: bool) -> Value {
    let (vlan, ip_v4_conf) = match &nic.kind {
        NicKind::Vlan(v) => (res_ref("vlans", v), Value::Null),
        NicKind::Public(None) => (Value::Null, Value::Null),
        NicKind::Public(Some(conf)) => {
            let ip = match conf.mode {
                IpMode::Static => conf.addr.map(ip_ref).unwrap_or(Value::Null),
                IpMode::Dhcp | IpMode::Manual => Value::Null,
            };
            (Value::Null, json!({"conf": conf.mode.as_str(), "ip": ip}))
        }
    };
    json!({
        "boot_order": nic.boot_order,
        "firewall_policy": nic.firewall_policy.as_deref().map(|f| res_ref("fwpolicies", f)),
        "ip_v4_conf": ip_v4_conf,
        "ip_v6_conf": nic.ip_v6_conf,
        "mac": nic.mac,
        "model": nic.model,
        "runtime": if running { nic_runtime(nic) } else { Value::Null },
        "vlan": vlan,
    })
}

/// The full server object.
pub(crate) fn server(s: &Server) -> Value {
    let running = s.status == ServerStatus::Running;
    let runtime = if running {
        let nics: Vec<Value> = s
            .nics
            .iter()
            .map(|n| {
                let mut r = nic_runtime(n);
                if let Some(o) = r.as_object_mut() {
                    o.insert("mac".into(), Value::String(n.mac.clone()));
                }
                r
            })
            .collect();
        json!({"active_since": s.active_since.map(iso_time), "nics": nics})
    } else {
        Value::Null
    };
    let drives: Vec<Value> = s
        .drives
        .iter()
        .map(|d| {
            json!({
                "boot_order": d.boot_order,
                "dev_channel": d.dev_channel,
                "device": d.device,
                "drive": res_ref("drives", &d.drive),
                "runtime": if running {
                    json!({"io": {"bytes_read": 0, "bytes_written": 0, "count_flush": 0, "count_read": 0,
                                  "count_written": 0, "total_time_ns": 0}})
                } else {
                    Value::Null
                },
            })
        })
        .collect();
    let mut obj = s.extra.clone();
    for (k, v) in [
        ("uuid", json!(s.uuid)),
        ("name", json!(s.name)),
        ("cpu", json!(s.cpu)),
        ("mem", json!(s.mem)),
        ("smp", json!(s.smp)),
        ("vnc_password", json!(s.vnc_password)),
        ("status", json!(s.status.as_str())),
        ("meta", json!(s.meta)),
        ("tags", tag_refs(&s.tags)),
        (
            "nics",
            Value::Array(s.nics.iter().map(|n| nic_json(n, running)).collect()),
        ),
        ("drives", Value::Array(drives)),
        ("runtime", runtime),
        ("owner", user_ref(&s.owner)),
        ("resource_uri", json!(format!("/api/2.0/servers/{}/", s.uuid))),
    ] {
        obj.insert(k.to_owned(), v);
    }
    Value::Object(obj)
}

/// `mounted`/`unmounted` for ready drives, the phase name otherwise.
pub(crate) fn drive_status(state: &State, d: &Drive) -> &'static str {
    d.busy_state().unwrap_or(if state.mounted_on(d).is_empty() {
        "unmounted"
    } else {
        "mounted"
    })
}

/// The full drive object.
pub(crate) fn drive(state: &State, d: &Drive) -> Value {
    let mounted_on: Vec<Value> = state
        .mounted_on(d)
        .iter()
        .map(|s| res_ref("servers", s))
        .collect();
    let mut snaps: Vec<&Snapshot> = state.snapshots.values().filter(|s| s.drive == d.uuid).collect();
    snaps.sort_by_key(|s| s.seq);
    json!({
        "affinities": [],
        "allow_multimount": d.allow_multimount,
        "backup_scheduler": null,
        "grantees": [],
        "iops": null,
        "jobs": [],
        "licenses": [],
        "media": d.media,
        "meta": d.meta,
        "mounted_on": mounted_on,
        "name": d.name,
        "owner": user_ref(&d.owner),
        "permissions": [],
        "remote_snapshots": [],
        "resource_uri": format!("/api/2.0/drives/{}/", d.uuid),
        "runtime": {
            "is_snapshotable": true,
            "snapshots_allocated_size": 0,
            "storage_type": d.storage_type,
        },
        "size": d.size,
        "snapshots": snaps.iter().map(|s| res_ref("snapshots", &s.uuid)).collect::<Vec<_>>(),
        "status": drive_status(state, d),
        "storage_type": d.storage_type,
        "tags": tag_refs(&d.tags),
        "uuid": d.uuid,
    })
}

/// The full snapshot object.
pub(crate) fn snapshot(s: &Snapshot) -> Value {
    json!({
        "allocated_size": s.allocated_size,
        "drive": res_ref("drives", &s.drive),
        "grantees": [],
        "meta": s.meta,
        "name": s.name,
        "owner": user_ref(&s.owner),
        "permissions": [],
        "resource_uri": format!("/api/2.0/snapshots/{}/", s.uuid),
        "status": if s.ready_at.is_some() { "creating" } else { "available" },
        "tags": tag_refs(&s.tags),
        "timestamp": snapshot_time(s.timestamp),
        "uuid": s.uuid,
    })
}

/// The full IP object; `server` is the server whose NIC holds the address now.
pub(crate) fn ip(state: &State, ip: &Ip) -> Value {
    let [a, b, c, _] = ip.addr.octets();
    json!({
        "gateway": Ipv4Addr::new(a, b, c, 1).to_string(),
        "meta": {},
        "nameservers": ["192.0.2.53", "192.0.2.54"],
        "netmask": 24,
        "owner": user_ref(&ip.owner),
        "resource_uri": format!("/api/2.0/ips/{}/", ip.addr),
        "server": state.ip_holder(ip.addr).map(|(s, _)| res_ref("servers", &s.uuid)),
        "subscription": null,
        "tags": [],
        "uuid": ip.addr.to_string(),
    })
}

/// The full VLAN object; `servers` are the servers with a NIC on it.
pub(crate) fn vlan(state: &State, v: &Vlan) -> Value {
    let mut servers: Vec<&Server> = state
        .servers
        .values()
        .filter(|s| s.nics.iter().any(|n| n.kind == NicKind::Vlan(v.uuid.clone())))
        .collect();
    servers.sort_by_key(|s| s.seq);
    json!({
        "meta": {},
        "owner": user_ref(&v.owner),
        "resource_uri": format!("/api/2.0/vlans/{}/", v.uuid),
        "servers": servers.iter().map(|s| res_ref("servers", &s.uuid)).collect::<Vec<_>>(),
        "subscription": null,
        "tags": [],
        "uuid": v.uuid,
    })
}

/// Keeps only `fields` of an object.
pub(crate) fn project(v: &Value, fields: &[&str]) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| fields.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}
