//! `/servers/`: list, get, create, update (attach/detach, NICs), delete and power actions.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use axum::http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::body::{self, Obj};
use super::list::{ListSpec, envelope};
use super::misc::{CPU, CPU_PER_SMP, MEM, SMP};
use super::reply::{ApiError, Reply};
use super::{Ctx, check_owned};
use crate::store::render;
use crate::store::{IpConf, IpMode, Nic, NicKind, Server, ServerDrive, ServerStatus, State};

const SPEC: ListSpec = ListSpec {
    filtering: &[
        ("uuid", &["exact"]),
        ("name", &["exact", "contains"]),
        ("tag", &["exact"]),
    ],
    fields: &[
        "uuid",
        "name",
        "cpu",
        "mem",
        "smp",
        "vnc_password",
        "status",
        "meta",
        "tags",
        "nics",
        "drives",
        "runtime",
        "owner",
        "resource_uri",
        "context",
        "cpu_type",
        "hypervisor",
        "cpu_model",
        "allocation_pool",
        "cpus_instead_of_cores",
        "enable_numa",
        "hv_relaxed",
        "hv_tsc",
        "auto_start",
        "is_grey",
        "pubkeys",
        "requirements",
        "grantees",
        "permissions",
        "jobs",
        "gpus",
        "epcs",
    ],
    short: render::SERVER_SHORT,
};

/// Kinds of passed-through fields.
enum Extra {
    Bool,
    OneOf(&'static [&'static str]),
    NullableStr,
    List,
}

/// Fields kept as given (validated), with their defaults.
const EXTRAS: &[(&str, Extra)] = &[
    ("context", Extra::Bool),
    ("cpu_type", Extra::OneOf(&["amd", "intel"])),
    ("hypervisor", Extra::OneOf(&["kvm"])),
    ("cpu_model", Extra::NullableStr),
    ("allocation_pool", Extra::NullableStr),
    ("cpus_instead_of_cores", Extra::Bool),
    ("enable_numa", Extra::Bool),
    ("hv_relaxed", Extra::Bool),
    ("hv_tsc", Extra::Bool),
    ("auto_start", Extra::Bool),
    ("is_grey", Extra::Bool),
    ("pubkeys", Extra::List),
    ("requirements", Extra::List),
    ("gpus", Extra::List),
    ("epcs", Extra::List),
];

/// Defaults of the passed-through fields (plus read-only lists).
pub(crate) fn default_extra() -> Map<String, Value> {
    let v = json!({
        "context": true, "cpu_type": "amd", "hypervisor": "kvm", "cpu_model": null, "allocation_pool": null,
        "cpus_instead_of_cores": false, "enable_numa": false, "hv_relaxed": false, "hv_tsc": false,
        "auto_start": false, "is_grey": false, "pubkeys": [], "requirements": [], "gpus": [], "epcs": [],
        "grantees": [], "permissions": [], "jobs": [],
    });
    v.as_object().cloned().unwrap_or_default()
}

/// vCPUs derived from the CPU (one per 2000 MHz, at least one).
pub(crate) fn derived_smp(cpu: u64) -> u64 {
    cpu.div_ceil(2000).clamp(SMP.0, SMP.1)
}

fn in_range(name: &str, v: u64, (min, max): (u64, u64)) -> Result<u64, ApiError> {
    if v < min {
        return Err(ApiError::validation(
            name,
            format!("{name} must be at least {min}"),
        ));
    }
    if v > max {
        return Err(ApiError::validation(
            name,
            format!("{name} must be at most {max}"),
        ));
    }
    Ok(v)
}

fn check_smp(cpu: u64, smp: u64) -> Result<(), ApiError> {
    in_range("smp", smp, SMP)?;
    let per = cpu / smp;
    if per < CPU_PER_SMP.0 || per > CPU_PER_SMP.1 {
        return Err(ApiError::validation(
            "smp",
            format!(
                "cpu per smp must be between {} and {} MHz (got {per})",
                CPU_PER_SMP.0, CPU_PER_SMP.1
            ),
        ));
    }
    Ok(())
}

fn apply_extras(o: &Obj, extra: &mut Map<String, Value>) -> Result<(), ApiError> {
    for (name, kind) in EXTRAS {
        let Some(v) = o.get(*name) else { continue };
        let ok = match kind {
            Extra::Bool => v.is_boolean(),
            Extra::OneOf(allowed) => v.as_str().is_some_and(|s| allowed.contains(&s)),
            Extra::NullableStr => v.is_null() || v.is_string(),
            Extra::List => v.is_array(),
        };
        if !ok {
            let expected = match kind {
                Extra::Bool => "true or false".to_owned(),
                Extra::OneOf(allowed) => format!("one of {}", allowed.join(", ")),
                Extra::NullableStr => "a string or null".to_owned(),
                Extra::List => "a list".to_owned(),
            };
            return Err(ApiError::validation(name, format!("{name} must be {expected}")));
        }
        extra.insert((*name).to_owned(), v.clone());
    }
    Ok(())
}

pub(crate) fn list(state: &State, ctx: &Ctx<'_>, detail: bool) -> Result<Reply, ApiError> {
    let mut mine: Vec<&Server> = state
        .servers
        .values()
        .filter(|s| s.owner == ctx.user && s.loc == ctx.loc)
        .collect();
    mine.sort_by_key(|s| s.seq);
    envelope(
        mine.into_iter().map(render::server).collect(),
        &ctx.req.query,
        &SPEC,
        detail,
    )
}

pub(crate) fn get(state: &State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let s = state.servers.get(id);
    check_owned(s, id, ctx, "LIST")?;
    let s = s.ok_or_else(|| ApiError::notexist(id))?;
    Ok(Reply::ok(render::server(s)))
}

/// `POST /servers/`: validates every object first, then creates them all (201, `{"objects": [...]}`).
pub(crate) fn create(state: &mut State, ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let objs = body::objects(ctx.req.body)?;
    let mut reserved = Vec::new();
    let mut taken_macs = Vec::new();
    let mut built: Vec<Server> = Vec::new();
    for o in &objs {
        let mut s = build(state, ctx, o, &mut reserved, &mut taken_macs)?;
        // A drive may go into only one of the new servers unless it allows multimount.
        for sd in &s.drives {
            let dup = built.iter().any(|b| b.drives.iter().any(|d| d.drive == sd.drive));
            if dup && !state.drives.get(&sd.drive).is_some_and(|d| d.allow_multimount) {
                return Err(ApiError::permission(format!(
                    "Drive {} is already mounted and does not allow multimount",
                    sd.drive
                )));
            }
        }
        s.seq = 0;
        built.push(s);
    }
    let mut out = Vec::new();
    for mut s in built {
        s.seq = state.next_seq();
        for addr in s.nics.iter().filter_map(Nic::address) {
            state
                .claim_ip(addr, &s.loc, &s.owner, true)
                .map_err(ApiError::permission)?;
        }
        for sd in &s.drives {
            if let Some(d) = state.drives.get_mut(&sd.drive) {
                d.cancel_detach(&s.uuid);
            }
        }
        out.push(render::server(&s));
        state.servers.insert(s.uuid.clone(), s);
    }
    let location = out
        .first()
        .and_then(|o| o["resource_uri"].as_str())
        .map(str::to_owned);
    let mut reply = Reply::json(StatusCode::CREATED, json!({"objects": out}));
    if let Some(l) = location {
        reply = reply.header(header::LOCATION, format!("{}{l}", ctx.base));
    }
    Ok(reply)
}

fn build(
    state: &State,
    ctx: &Ctx<'_>,
    o: &Obj,
    reserved: &mut Vec<Ipv4Addr>,
    taken_macs: &mut Vec<String>,
) -> Result<Server, ApiError> {
    let name = body::req_str(o, "name")?;
    let cpu = in_range("cpu", body::req_u64(o, "cpu")?, CPU)?;
    let mem = in_range("mem", body::req_u64(o, "mem")?, MEM)?;
    let vnc_password = body::req_str(o, "vnc_password")?;
    let smp = match body::opt_u64(o, "smp")? {
        Some(n) => {
            check_smp(cpu, n)?;
            n
        }
        None => derived_smp(cpu),
    };
    let mut extra = default_extra();
    apply_extras(o, &mut extra)?;
    let nics = match o.get("nics").filter(|v| !v.is_null()) {
        Some(v) => plan_nics(state, ctx.loc, &ctx.user, None, &[], v, reserved, taken_macs)?,
        None => Vec::new(),
    };
    let drives = match o.get("drives").filter(|v| !v.is_null()) {
        Some(v) => plan_drives(state, ctx, None, &[], v)?,
        None => Vec::new(),
    };
    Ok(Server {
        uuid: uuid::Uuid::new_v4().to_string(),
        loc: ctx.loc.to_owned(),
        owner: ctx.user.clone(),
        seq: 0,
        name,
        cpu,
        mem,
        smp,
        vnc_password,
        status: ServerStatus::Stopped,
        transition: None,
        active_since: None,
        meta: body::opt_meta(o, "meta")?.unwrap_or_default(),
        tags: body::opt_tags(o)?.unwrap_or_default(),
        nics,
        drives,
        extra,
    })
}

/// `PUT /servers/{uuid}/`: fields absent from the body are kept. While the guest is active only
/// `name`, `meta`, `tags`, `drives` and `nics` change (other edits are silently ignored, as documented);
/// with `strict_hotplug`, drive and NIC changes are refused instead.
pub(crate) fn update(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.servers.get(id), id, ctx, "EDIT")?;
    let old = state
        .servers
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::notexist(id))?;
    let o = body::object(ctx.req.body)?;
    let live = old.status.guest_active();
    let mut new = old.clone();
    if let Some(name) = body::opt_str(&o, "name")? {
        new.name = name;
    }
    if let Some(meta) = body::opt_meta(&o, "meta")? {
        new.meta = meta;
    }
    if let Some(tags) = body::opt_tags(&o)? {
        new.tags = tags;
    }
    let cpu = body::opt_u64(&o, "cpu")?
        .map(|c| in_range("cpu", c, CPU))
        .transpose()?;
    let mem = body::opt_u64(&o, "mem")?
        .map(|m| in_range("mem", m, MEM))
        .transpose()?;
    let smp = body::opt_u64(&o, "smp")?;
    let vnc = body::opt_str(&o, "vnc_password")?;
    let mut extra = new.extra.clone();
    apply_extras(&o, &mut extra)?;
    let eff_cpu = cpu.unwrap_or(old.cpu);
    if let Some(n) = smp {
        check_smp(eff_cpu, n)?;
    }
    if !live {
        new.cpu = eff_cpu;
        new.mem = mem.unwrap_or(old.mem);
        new.smp = smp.unwrap_or(if cpu.is_some() {
            derived_smp(eff_cpu)
        } else {
            old.smp
        });
        if let Some(v) = vnc {
            new.vnc_password = v;
        }
        new.extra = extra;
    }
    if let Some(v) = o.get("nics") {
        let v = if v.is_null() { &Value::Array(Vec::new()) } else { v };
        new.nics = plan_nics(
            state,
            ctx.loc,
            &ctx.user,
            Some(id),
            &old.nics,
            v,
            &mut Vec::new(),
            &mut Vec::new(),
        )?;
    }
    if let Some(v) = o.get("drives") {
        let v = if v.is_null() { &Value::Array(Vec::new()) } else { v };
        new.drives = plan_drives(state, ctx, Some(id), &old.drives, v)?;
    }
    if live && ctx.cfg.strict_hotplug && (new.nics != old.nics || new.drives != old.drives) {
        return Err(ApiError::permission(format!(
            "Cannot change drives or NICs of server {id} while it is {} (strict hot-plug mode)",
            old.status.as_str()
        )));
    }
    for addr in new.nics.iter().filter_map(Nic::address) {
        state
            .claim_ip(addr, &new.loc, &new.owner, true)
            .map_err(ApiError::permission)?;
    }
    let detach_at = ctx.now + ctx.cfg.detach_delay;
    for sd in &old.drives {
        if !new.drives.iter().any(|d| d.drive == sd.drive)
            && let Some(d) = state.drives.get_mut(&sd.drive)
        {
            d.start_detach(id, detach_at);
        }
    }
    for sd in &new.drives {
        if let Some(d) = state.drives.get_mut(&sd.drive) {
            d.cancel_detach(id);
        }
    }
    let out = render::server(&new);
    state.servers.insert(id.to_owned(), new);
    state.release_unused_pool_ips();
    Ok(Reply::ok(out))
}

/// `DELETE /servers/{uuid}/[?recurse=all_drives|disks|cdroms]`: only stopped (or unavailable) servers.
pub(crate) fn delete(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.servers.get(id), id, ctx, "DELETE")?;
    let s = state.servers.get(id).ok_or_else(|| ApiError::notexist(id))?;
    if !matches!(s.status, ServerStatus::Stopped | ServerStatus::Unavailable) {
        return Err(ApiError::permission(format!(
            "Cannot delete server {id} while it is {}; stop it first",
            s.status.as_str()
        )));
    }
    let media: Option<&[&str]> = match ctx.req.param("recurse") {
        None => None,
        Some("all_drives") => Some(&["disk", "cdrom"]),
        Some("disks") => Some(&["disk"]),
        Some("cdroms") => Some(&["cdrom"]),
        Some(other) => {
            return Err(ApiError::validation(
                "recurse",
                format!("recurse must be all_drives, disks or cdroms, not {other:?}"),
            ));
        }
    };
    let doomed: Vec<String> = match media {
        None => Vec::new(),
        Some(m) => s
            .drives
            .iter()
            .filter(|sd| {
                state
                    .drives
                    .get(&sd.drive)
                    .is_some_and(|d| m.contains(&d.media.as_str()))
            })
            .map(|sd| sd.drive.clone())
            .collect(),
    };
    state.remove_server(id, &doomed, ctx.now + ctx.cfg.detach_delay);
    Ok(Reply::no_content())
}

/// `POST /servers/{uuid}/action/?do=start|stop|shutdown` -> 202.
pub(crate) fn action(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let Some(act) = ctx.req.param("do") else {
        return Err(ApiError::validation("do", "The action parameter do is required"));
    };
    let act = act.to_owned();
    body::parse(ctx.req.body)?;
    check_owned(state.servers.get(id), id, ctx, &act.to_ascii_uppercase())?;
    let s = state.servers.get_mut(id).ok_or_else(|| ApiError::notexist(id))?;
    let at = ctx.now + ctx.cfg.server_transition_delay;
    let refuse = |s: &Server| {
        Err(ApiError::permission(format!(
            "Cannot {act} server {id} while it is {}",
            s.status.as_str()
        )))
    };
    match act.as_str() {
        "start" => match s.status {
            ServerStatus::Stopped => s.transition(ServerStatus::Starting, ServerStatus::Running, at),
            _ => return refuse(s),
        },
        "stop" => match s.status {
            ServerStatus::Running | ServerStatus::Paused | ServerStatus::Starting => {
                s.transition(ServerStatus::Stopping, ServerStatus::Stopped, at)
            }
            _ => return refuse(s),
        },
        "shutdown" => match s.status {
            ServerStatus::Running => s.transition(ServerStatus::Stopping, ServerStatus::Stopped, at),
            _ => return refuse(s),
        },
        other => {
            return Err(ApiError::validation(
                "do",
                format!("Unsupported server action {other:?} (the emulator supports start, stop, shutdown)"),
            ));
        }
    }
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        json!({"action": act, "result": "success", "uuid": id}),
    ))
}

/// Validates a `nics` list against the current NICs (`existing`, matched by MAC) and returns the new
/// list. New DHCP NICs get a pool address (recorded in `reserved` until committed).
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_nics(
    state: &State,
    loc: &str,
    owner: &str,
    server: Option<&str>,
    existing: &[Nic],
    v: &Value,
    reserved: &mut Vec<Ipv4Addr>,
    taken_macs: &mut Vec<String>,
) -> Result<Vec<Nic>, ApiError> {
    let Value::Array(items) = v else {
        return Err(ApiError::validation("nics", "nics must be a list"));
    };
    let mut out: Vec<Nic> = Vec::new();
    for item in items {
        let Value::Object(o) = item else {
            return Err(ApiError::validation("nics", "each NIC must be an object"));
        };
        let mac = body::opt_str(o, "mac")?.map(|m| m.to_ascii_lowercase());
        let old = match &mac {
            Some(m) => {
                let found = existing.iter().find(|n| n.mac == *m);
                if found.is_none() {
                    return Err(ApiError::validation(
                        "nics",
                        format!("No NIC with MAC {m} on this server"),
                    ));
                }
                if out.iter().any(|n| n.mac == *m) {
                    return Err(ApiError::validation("nics", format!("MAC {m} is listed twice")));
                }
                found
            }
            None => None,
        };
        let model = body::opt_str(o, "model")?.unwrap_or_else(|| "virtio".to_owned());
        if !["virtio", "e1000", "rtl8139"].contains(&model.as_str()) {
            return Err(ApiError::validation(
                "model",
                format!("NIC model must be virtio, e1000 or rtl8139, not {model:?}"),
            ));
        }
        let boot_order = body::opt_i64(o, "boot_order")?;
        let firewall_policy = o
            .get("firewall_policy")
            .filter(|v| !v.is_null())
            .map(|v| body::ref_uuid(v, "firewall_policy"))
            .transpose()?;
        let vlan = o
            .get("vlan")
            .filter(|v| !v.is_null())
            .map(|v| body::ref_uuid(v, "vlan"))
            .transpose()?;
        let ip_v4 = o.get("ip_v4_conf").filter(|v| !v.is_null());
        let ip_v6_conf = o.get("ip_v6_conf").cloned().unwrap_or(Value::Null);
        let kind = match (vlan, ip_v4) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "nics",
                    "A NIC is either private (vlan) or public (ip_v4_conf), not both",
                ));
            }
            (Some(vlan), None) => {
                if !ip_v6_conf.is_null() {
                    return Err(ApiError::validation("nics", "A VLAN NIC takes no ip_v6_conf"));
                }
                match state.vlans.get(&vlan) {
                    Some(v) if v.loc == loc && v.owner == owner => NicKind::Vlan(vlan),
                    Some(v) if v.loc == loc => return Err(ApiError::not_yours(owner, "EDIT", &vlan)),
                    _ => {
                        return Err(ApiError::validation(
                            "vlan",
                            format!("VLAN {vlan} does not exist"),
                        ));
                    }
                }
            }
            (None, None) => NicKind::Public(None),
            (None, Some(conf)) => {
                let conf = plan_ip_conf(state, loc, owner, server, old, conf, &out, reserved)?;
                NicKind::Public(Some(conf))
            }
        };
        let mac = match mac {
            Some(m) => m,
            None => loop {
                let m = state.new_mac();
                if !taken_macs.contains(&m) {
                    taken_macs.push(m.clone());
                    break m;
                }
            },
        };
        let ip_v6 = old
            .and_then(|n| n.ip_v6)
            .filter(|_| matches!(kind, NicKind::Public(_)));
        out.push(Nic {
            mac,
            model,
            boot_order,
            firewall_policy,
            kind,
            ip_v6_conf,
            ip_v6,
        });
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn plan_ip_conf(
    state: &State,
    loc: &str,
    owner: &str,
    server: Option<&str>,
    old: Option<&Nic>,
    conf: &Value,
    planned: &[Nic],
    reserved: &mut Vec<Ipv4Addr>,
) -> Result<IpConf, ApiError> {
    let Value::Object(c) = conf else {
        return Err(ApiError::validation("ip_v4_conf", "ip_v4_conf must be an object"));
    };
    let mode = match c.get("conf").and_then(Value::as_str) {
        Some("dhcp") => IpMode::Dhcp,
        Some("static") => IpMode::Static,
        Some("manual") => IpMode::Manual,
        _ => {
            return Err(ApiError::validation(
                "ip_v4_conf",
                "ip_v4_conf.conf must be dhcp, static or manual",
            ));
        }
    };
    match mode {
        IpMode::Manual => Ok(IpConf { mode, addr: None }),
        IpMode::Dhcp => {
            let kept = old.and_then(|n| match &n.kind {
                NicKind::Public(Some(IpConf {
                    mode: IpMode::Dhcp,
                    addr,
                })) => Some(*addr),
                _ => None,
            });
            let addr = match kept {
                Some(a) => a,
                None => {
                    let a = state
                        .pool_address(reserved)
                        .ok_or_else(|| ApiError::unavailable("No free public IPv4 address in the pool"))?;
                    reserved.push(a);
                    Some(a)
                }
            };
            Ok(IpConf { mode, addr })
        }
        IpMode::Static => {
            let ip = c
                .get("ip")
                .filter(|v| !v.is_null())
                .ok_or_else(|| ApiError::validation("ip_v4_conf", "A static ip_v4_conf needs an ip"))?;
            let text = body::ref_uuid(ip, "ip_v4_conf")?;
            let addr: Ipv4Addr = text.parse().map_err(|_| {
                ApiError::validation("ip_v4_conf", format!("{text:?} is not an IPv4 address"))
            })?;
            match state.ips.get(&addr) {
                Some(i) if i.loc == loc && i.owner == owner && !i.from_pool => {}
                Some(i) if i.loc == loc && i.owner != owner => {
                    return Err(ApiError::not_yours(owner, "EDIT", &text));
                }
                _ => {
                    return Err(ApiError::validation(
                        "ip_v4_conf",
                        format!("IP {addr} is not one of your IPs"),
                    ));
                }
            }
            let held_elsewhere = state
                .ip_holder(addr)
                .is_some_and(|(s, _)| Some(s.uuid.as_str()) != server);
            if held_elsewhere || planned.iter().any(|n| n.address() == Some(addr)) {
                return Err(ApiError::validation(
                    "ip_v4_conf",
                    format!("IP {addr} is already in use"),
                ));
            }
            Ok(IpConf {
                mode,
                addr: Some(addr),
            })
        }
    }
}

/// Validates a `drives` list and returns the new server-drive list.
fn plan_drives(
    state: &State,
    ctx: &Ctx<'_>,
    server: Option<&str>,
    existing: &[ServerDrive],
    v: &Value,
) -> Result<Vec<ServerDrive>, ApiError> {
    let Value::Array(items) = v else {
        return Err(ApiError::validation("drives", "drives must be a list"));
    };
    let mut out: Vec<ServerDrive> = Vec::new();
    let mut channels: BTreeMap<(String, String), String> = BTreeMap::new();
    for item in items {
        let Value::Object(o) = item else {
            return Err(ApiError::validation("drives", "each drive must be an object"));
        };
        let uuid = body::ref_uuid(
            o.get("drive")
                .ok_or_else(|| ApiError::validation("drive", "drive is required"))?,
            "drive",
        )?;
        let device = body::req_str(o, "device")?;
        let dev_channel = body::req_str(o, "dev_channel")?;
        validate_channel(&device, &dev_channel)?;
        let boot_order = body::opt_i64(o, "boot_order")?;
        if let Some(other) = channels.insert((device.clone(), dev_channel.clone()), uuid.clone()) {
            return Err(ApiError::validation(
                "dev_channel",
                format!("{device} channel {dev_channel} is used by both {other} and {uuid}"),
            ));
        }
        if out.iter().any(|d| d.drive == uuid) {
            return Err(ApiError::validation(
                "drives",
                format!("Drive {uuid} is listed twice"),
            ));
        }
        let drive = match state.drives.get(&uuid) {
            Some(d) if d.loc == ctx.loc => d,
            _ => {
                return Err(ApiError::validation(
                    "drives",
                    format!("Drive {uuid} does not exist"),
                ));
            }
        };
        if drive.owner != ctx.user {
            return Err(ApiError::not_yours(&ctx.user, "ATTACH", &uuid));
        }
        let already_here = existing.iter().any(|d| d.drive == uuid);
        if !already_here {
            if let Some(busy) = drive.busy_state()
                && busy != "cloning_src"
            {
                return Err(ApiError::permission(format!(
                    "Drive {uuid} cannot be attached while it is {busy}"
                )));
            }
            let elsewhere: Vec<String> = state
                .mounted_on(drive)
                .into_iter()
                .filter(|s| Some(s.as_str()) != server)
                .collect();
            if let Some(other) = elsewhere.first()
                && !drive.allow_multimount
            {
                return Err(ApiError::permission(format!(
                    "Drive {uuid} is already mounted on server {other} and does not allow multimount"
                )));
            }
        }
        out.push(ServerDrive {
            drive: uuid,
            dev_channel,
            device,
            boot_order,
        });
    }
    Ok(out)
}

/// `controller:unit`; ide allows 0:0, 0:1, 1:0, 1:1; virtio controllers 0..=203 with units 0..=5.
pub(crate) fn validate_channel(device: &str, channel: &str) -> Result<(), ApiError> {
    let parsed = channel
        .split_once(':')
        .and_then(|(c, u)| Some((c.parse::<u32>().ok()?, u.parse::<u32>().ok()?)))
        .filter(|_| channel.bytes().all(|b| b.is_ascii_digit() || b == b':'));
    let Some((c, u)) = parsed else {
        return Err(ApiError::validation(
            "dev_channel",
            format!("dev_channel {channel:?} must look like 0:1"),
        ));
    };
    let ok = match device {
        "ide" => c <= 1 && u <= 1,
        "virtio" => c <= 203 && u <= 5,
        other => {
            return Err(ApiError::validation(
                "device",
                format!("device must be virtio or ide, not {other:?}"),
            ));
        }
    };
    if !ok {
        return Err(ApiError::validation(
            "dev_channel",
            format!("dev_channel {channel} is out of range for {device} (ide: 0:0-1:1, virtio: 0-203:0-5)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels() {
        assert!(validate_channel("virtio", "0:0").is_ok());
        assert!(validate_channel("virtio", "203:5").is_ok());
        assert!(validate_channel("ide", "1:1").is_ok());
        for (dev, ch, point) in [
            ("virtio", "0:6", "dev_channel"),
            ("virtio", "204:0", "dev_channel"),
            ("ide", "0:2", "dev_channel"),
            ("ide", "2:0", "dev_channel"),
            ("virtio", "0-1", "dev_channel"),
            ("virtio", "+1:1", "dev_channel"),
            ("virtio", "a:b", "dev_channel"),
            ("scsi", "0:0", "device"),
        ] {
            assert_eq!(
                validate_channel(dev, ch).unwrap_err().point.as_deref(),
                Some(point),
                "{dev} {ch}"
            );
        }
    }

    #[test]
    fn smp_derivation() {
        assert_eq!(derived_smp(1000), 1);
        assert_eq!(derived_smp(2000), 1);
        assert_eq!(derived_smp(2001), 2);
        assert_eq!(derived_smp(80_000), 40);
    }
}
