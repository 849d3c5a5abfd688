//! The admin API under `/_emulator/` (unauthenticated; the emulator listens on loopback).

use std::net::Ipv4Addr;

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Req;
use super::reply::Reply;
use crate::emulator::Shared;
use crate::fault::{Fault, FaultId};
use crate::seed::Seed;
use crate::store::render;

fn error(status: StatusCode, message: impl Into<String>) -> Reply {
    Reply::json(status, json!({"error": message.into()}))
}

fn bad(message: impl Into<String>) -> Reply {
    error(StatusCode::BAD_REQUEST, message)
}

fn not_found() -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "unknown admin endpoint; GET /_emulator/ lists them",
    )
}

fn json_body<T: serde::de::DeserializeOwned>(req: &Req<'_>) -> Result<T, Reply> {
    serde_json::from_slice(req.body).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IpBody {
    ip_v4: Option<Ipv4Addr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    location: Option<String>,
    user_email: String,
}

/// Routes one admin request.
pub(crate) fn handle(shared: &Shared, segs: &[String], req: &Req<'_>) -> Reply {
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method;
    let result = match (segs.as_slice(), m) {
        ([], &Method::GET) => Ok(index(shared)),
        (["faults"], &Method::GET) => Ok(faults(shared)),
        (["faults"], &Method::POST) => inject(shared, req),
        (["faults"], &Method::DELETE) => {
            shared.faults().clear_all();
            Ok(Reply::no_content())
        }
        (["faults", id], &Method::DELETE) => match id.parse::<u64>() {
            Ok(id) if shared.faults().clear(FaultId(id)) => Ok(Reply::no_content()),
            Ok(_) => Err(error(StatusCode::NOT_FOUND, format!("no fault {id}"))),
            Err(_) => Err(bad("fault id must be a number")),
        },
        (["requests"], &Method::GET) => Ok(Reply::ok(json!(shared.log().records()))),
        (["requests"], &Method::DELETE) => {
            shared.log().reset();
            Ok(Reply::no_content())
        }
        (["counters"], &Method::GET) => Ok(Reply::ok(json!(shared.log().counts()))),
        (["seed"], &Method::POST) => seed(shared, req),
        (["tokens"], &Method::POST) => token(shared, req),
        (["servers", uuid], &Method::GET) => server(shared, uuid),
        (["servers", uuid], &Method::DELETE) => {
            if shared.delete_server(uuid) {
                Ok(Reply::no_content())
            } else {
                Err(error(StatusCode::NOT_FOUND, format!("no server {uuid}")))
            }
        }
        (["servers", uuid, "status"], &Method::POST | &Method::PUT) => {
            json_body::<StatusBody>(req).and_then(|b| {
                shared
                    .set_server_status(uuid, &b.status)
                    .map_err(|e| bad(e.to_string()))?;
                server(shared, uuid)
            })
        }
        (["servers", uuid, "nics", idx, "ip"], &Method::POST | &Method::PUT) => {
            let idx = idx
                .parse::<usize>()
                .map_err(|_| bad("NIC index must be a number"));
            idx.and_then(|idx| {
                let b = json_body::<IpBody>(req)?;
                shared
                    .set_nic_ip(uuid, idx, b.ip_v4)
                    .map_err(|e| bad(e.to_string()))?;
                server(shared, uuid)
            })
        }
        (["drives", uuid], &Method::GET) => {
            let mut state = shared.state();
            state.settle(std::time::Instant::now());
            match state.drives.get(*uuid) {
                Some(d) => Ok(Reply::ok(render::drive(&state, d))),
                None => Err(error(StatusCode::NOT_FOUND, format!("no drive {uuid}"))),
            }
        }
        _ => Err(not_found()),
    };
    result.unwrap_or_else(|r| r)
}

fn index(shared: &Shared) -> Reply {
    let b = &shared.base;
    Reply::ok(json!({
        "api": shared.config.locations.iter().map(|l| (l.clone(), json!({
            "regular": format!("{b}/{l}/api/2.0/"),
            "direct": format!("{b}/{l}/direct/api/2.0/"),
            "impersonate": format!("{b}/{l}/direct/service_provider/api/v1/user/impersonate"),
        }))).collect::<serde_json::Map<String, Value>>(),
        "oauth": format!("{b}/oauth"),
        "admin": [
            "GET /_emulator/faults", "POST /_emulator/faults", "DELETE /_emulator/faults",
            "DELETE /_emulator/faults/{id}", "GET /_emulator/requests", "DELETE /_emulator/requests",
            "GET /_emulator/counters", "POST /_emulator/seed", "POST /_emulator/tokens",
            "GET /_emulator/servers/{uuid}", "DELETE /_emulator/servers/{uuid}",
            "POST /_emulator/servers/{uuid}/status", "POST /_emulator/servers/{uuid}/nics/{index}/ip",
            "GET /_emulator/drives/{uuid}",
        ],
    }))
}

fn faults(shared: &Shared) -> Reply {
    let list: Vec<Value> = shared
        .faults()
        .list()
        .into_iter()
        .map(|(id, fault, remaining)| json!({"id": id, "fault": fault, "remaining": remaining}))
        .collect();
    Reply::ok(json!(list))
}

fn inject(shared: &Shared, req: &Req<'_>) -> Result<Reply, Reply> {
    let fault: Fault = json_body(req)?;
    fault.validate().map_err(bad)?;
    let id = shared.faults().inject(fault);
    Ok(Reply::json(StatusCode::CREATED, json!({"id": id})))
}

fn seed(shared: &Shared, req: &Req<'_>) -> Result<Reply, Reply> {
    let text = std::str::from_utf8(req.body).map_err(|_| bad("seed must be UTF-8 YAML or JSON"))?;
    let seed = Seed::from_yaml(text).map_err(|e| bad(e.to_string()))?;
    shared.load_seed(&seed).map_err(|e| bad(e.to_string()))?;
    Ok(Reply::no_content())
}

fn token(shared: &Shared, req: &Req<'_>) -> Result<Reply, Reply> {
    let b: TokenBody = json_body(req)?;
    let loc = b
        .location
        .unwrap_or_else(|| shared.config.default_location.clone());
    let token = shared
        .issue_token(&loc, &b.user_email)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Reply::ok(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": super::expires_in(shared.config.token_lifetime),
    })))
}

fn server(shared: &Shared, uuid: &str) -> Result<Reply, Reply> {
    let mut state = shared.state();
    state.settle(std::time::Instant::now());
    state
        .servers
        .get(uuid)
        .map(|s| Reply::ok(render::server(s)))
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no server {uuid}")))
}
