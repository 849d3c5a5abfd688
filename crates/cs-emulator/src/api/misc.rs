//! Locations, capabilities, profile, IPs and VLANs.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::list::{ListSpec, envelope};
use super::reply::{ApiError, Reply};
use super::{Ctx, check_owned};
use crate::store::State;
use crate::store::render;

/// Server CPU limits in MHz.
pub(crate) const CPU: (u64, u64) = (250, 80_000);
/// Server memory limits in bytes (256 MiB .. 128 GiB).
pub(crate) const MEM: (u64, u64) = (268_435_456, 137_438_953_472);
/// vCPU count limits.
pub(crate) const SMP: (u64, u64) = (1, 40);
/// MHz per vCPU limits.
pub(crate) const CPU_PER_SMP: (u64, u64) = (250, 2500);
/// Most snapshots per drive.
pub(crate) const SNAPSHOTS_PER_DRIVE: usize = 90;

/// `(storage_type, min_size, max_size, iops)`.
const STORAGE: &[(&str, u64, u64, u64)] = &[
    ("dssd", 536_870_912, 17_042_430_230_528, 10_000),
    ("nvme", 536_870_912, 4_398_046_511_104, 20_000),
    ("zadara", 1_073_741_824, 17_042_430_230_528, 1_000),
    ("local_nvme", 536_870_912, 1_099_511_627_776, 50_000),
];

/// Size limits of a storage type, `None` if the type is unknown.
pub(crate) fn storage_limits(storage_type: &str) -> Option<(u64, u64)> {
    STORAGE
        .iter()
        .find(|(t, ..)| *t == storage_type)
        .map(|(_, min, max, _)| (*min, *max))
}

/// Known storage types, for messages.
pub(crate) fn storage_types() -> String {
    STORAGE.iter().map(|(t, ..)| *t).collect::<Vec<_>>().join(", ")
}

/// `GET /capabilities/` (a bare object).
pub(crate) fn capabilities() -> Value {
    let drives: serde_json::Map<String, Value> = STORAGE
        .iter()
        .map(|(t, min, max, iops)| {
            (
                (*t).to_owned(),
                json!({"min_size": min, "max_size": max, "iops": iops}),
            )
        })
        .collect();
    json!({
        "servers": {
            "cpu": {"min": CPU.0, "max": CPU.1},
            "mem": {"min": MEM.0, "max": MEM.1},
            "smp": {"min": SMP.0, "max": SMP.1},
            "cpu_per_smp": {"min": CPU_PER_SMP.0, "max": CPU_PER_SMP.1},
        },
        "drives": drives,
        "snapshots": {"max": 1000, "max_per_drive": SNAPSHOTS_PER_DRIVE},
        "hypervisors": {"kvm": ["intel", "amd"]},
    })
}

/// Display name and country of well-known location codes.
fn location_names(code: &str) -> (&'static str, &'static str) {
    match code {
        "zrh" => ("Zurich, Switzerland", "CH"),
        "gva" => ("Geneva, Switzerland", "CH"),
        "fra" => ("Frankfurt, Germany", "DE"),
        "dus" => ("Dusseldorf, Germany", "DE"),
        "lon" => ("London, United Kingdom", "GB"),
        "cwl" => ("Cardiff, United Kingdom", "GB"),
        "tyo" => ("Tokyo, Japan", "JP"),
        "per" => ("Perth, Australia", "AU"),
        "hnl" => ("Honolulu, United States", "US"),
        "wdc" => ("Washington DC, United States", "US"),
        "sjc" => ("San Jose, United States", "US"),
        "mnl" => ("Manila, Philippines", "PH"),
        "crk" => ("Clark, Philippines", "PH"),
        "next" => ("Next (staging)", "CH"),
        _ => ("Emulated location", "ZZ"),
    }
}

/// `GET /locations/`: every configured location, with this emulator's URLs.
pub(crate) fn locations(ctx: &Ctx<'_>) -> Reply {
    let objects: Vec<Value> = ctx
        .cfg
        .locations
        .iter()
        .map(|code| {
            let (name, country) = location_names(code);
            json!({
                "id": code.to_ascii_uppercase(),
                "api_endpoint": format!("{}/{code}/api/2.0/", ctx.base),
                "upload_url": format!("{}/{code}/direct/api/2.0/", ctx.base),
                "websocket_url": format!("{}/{code}/direct/websocket", ctx.base.replacen("http", "ws", 1)),
                "country_code": country,
                "display_name": name,
                "default_frontend_url": format!("{}/{code}/ui/", ctx.base),
                "default_frontend_signup_url": format!("{}/{code}/ui/signup", ctx.base),
                "alternative_frontend_url": "",
                "documentation_url": "https://docs.cloudsigma.com/",
            })
        })
        .collect();
    let n = objects.len();
    Reply::ok(json!({"meta": {"limit": 0, "offset": 0, "total_count": n}, "objects": objects}))
}

/// `GET /profile/` (a bare object).
pub(crate) fn profile(state: &State, ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let email = state
        .email_of(&ctx.user)
        .ok_or_else(|| ApiError::notexist(&ctx.user))?;
    Ok(Reply::ok(json!({
        "uuid": ctx.user,
        "email": email,
        "first_name": "",
        "last_name": "",
        "key_auth": false,
        "api_https_only": false,
        "meta": {},
        "resource_uri": "/api/2.0/profile/",
    })))
}

const IP_SPEC: ListSpec = ListSpec {
    filtering: &[("uuid", &["exact"])],
    fields: &[
        "uuid",
        "server",
        "gateway",
        "netmask",
        "nameservers",
        "meta",
        "owner",
        "resource_uri",
        "tags",
    ],
    short: render::IP_SHORT,
};

/// `GET /ips/` and `/ips/detail/`: the caller's addresses in this location.
pub(crate) fn ips(state: &State, ctx: &Ctx<'_>, detail: bool) -> Result<Reply, ApiError> {
    let mut mine: Vec<_> = state
        .ips
        .values()
        .filter(|i| i.owner == ctx.user && i.loc == ctx.loc)
        .collect();
    mine.sort_by_key(|i| i.seq);
    envelope(
        mine.into_iter().map(|i| render::ip(state, i)).collect(),
        &ctx.req.query,
        &IP_SPEC,
        detail,
    )
}

/// `GET /ips/{address}/`.
pub(crate) fn ip(state: &State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let item = id.parse::<Ipv4Addr>().ok().and_then(|a| state.ips.get(&a));
    check_owned(item, id, ctx, "LIST")?;
    let ip = item.ok_or_else(|| ApiError::notexist(id))?;
    Ok(Reply::ok(render::ip(state, ip)))
}

const VLAN_SPEC: ListSpec = ListSpec {
    filtering: &[("uuid", &["exact"])],
    fields: &[
        "uuid",
        "servers",
        "meta",
        "owner",
        "resource_uri",
        "tags",
        "subscription",
    ],
    short: render::VLAN_SHORT,
};

/// `GET /vlans/` and `/vlans/detail/`.
pub(crate) fn vlans(state: &State, ctx: &Ctx<'_>, detail: bool) -> Result<Reply, ApiError> {
    let mut mine: Vec<_> = state
        .vlans
        .values()
        .filter(|v| v.owner == ctx.user && v.loc == ctx.loc)
        .collect();
    mine.sort_by_key(|v| v.seq);
    envelope(
        mine.into_iter().map(|v| render::vlan(state, v)).collect(),
        &ctx.req.query,
        &VLAN_SPEC,
        detail,
    )
}

/// `GET /vlans/{uuid}/`.
pub(crate) fn vlan(state: &State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let item = state.vlans.get(id);
    check_owned(item, id, ctx, "LIST")?;
    let v = item.ok_or_else(|| ApiError::notexist(id))?;
    Ok(Reply::ok(render::vlan(state, v)))
}
