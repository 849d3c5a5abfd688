//! Request handling: virtual-host dispatch, authentication, and the API 2.0 resources.

pub(crate) mod admin;
mod body;
mod drives;
mod impersonate;
mod list;
pub(crate) mod misc;
mod oauth;
pub(crate) mod reply;
pub(crate) mod servers;
mod snapshots;

use std::time::Instant;

use axum::http::{HeaderMap, Method, StatusCode, header};
use base64::Engine as _;

use crate::config::Config;
use crate::emulator::Shared;
use crate::log::HostKind;
use crate::route::{ApiTarget, Parsed, Res, Target};
use crate::store::{Drive, Ip, Server, Snapshot, State, TokenKind, Vlan};
use reply::{ApiError, Reply};

/// The parts of a request the handlers need.
pub(crate) struct Req<'a> {
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: &'a [u8],
}

impl Req<'_> {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `expires_in` in whole seconds, rounded up: a sub-second test lifetime reads as 1, never as 0 (which
/// clients treat as "unknown, assume 15 minutes").
pub(crate) fn expires_in(lifetime: std::time::Duration) -> u64 {
    u64::try_from(lifetime.as_millis().div_ceil(1000)).unwrap_or(u64::MAX)
}

/// What an authenticated API handler sees.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) base: &'a str,
    pub(crate) loc: &'a str,
    /// Uuid of the user the request acts as.
    pub(crate) user: String,
    pub(crate) now: Instant,
    pub(crate) req: &'a Req<'a>,
}

/// Answers one request; returns the reply and the email of the user it acted as.
pub(crate) fn dispatch(shared: &Shared, parsed: &Parsed, req: &Req<'_>) -> (Reply, Option<String>) {
    let loc = parsed
        .location
        .as_deref()
        .unwrap_or(&shared.config.default_location);
    match &parsed.target {
        Target::NotFound(why) => (ApiError::no_route(why).into(), None),
        Target::Token => (oauth::token(shared, req), None),
        Target::Impersonate => impersonate::handle(shared, loc, req),
        Target::Admin(segs) => (admin::handle(shared, segs, req), None),
        Target::Api(target) => api(shared, parsed.host, loc, target, req),
    }
}

/// `Accept` must allow JSON; `?format=json` overrides it.
pub(crate) fn accepts_json(req: &Req<'_>) -> bool {
    if let Some(f) = req.param("format") {
        return f == "json";
    }
    let Some(accept) = req.headers.get(header::ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else { return false };
    accept.split(',').any(|part| {
        let media = part
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        matches!(media.as_str(), "application/json" | "application/*" | "*/*" | "")
    })
}

fn api(
    shared: &Shared,
    host: HostKind,
    loc: &str,
    target: &ApiTarget,
    req: &Req<'_>,
) -> (Reply, Option<String>) {
    if !accepts_json(req) {
        return (ApiError::not_acceptable().into(), None);
    }
    if *req.method == Method::OPTIONS {
        let allow = allowed(target);
        return (
            Reply {
                status: StatusCode::OK,
                body: None,
                headers: vec![(header::ALLOW, allow.to_owned())],
            },
            None,
        );
    }
    let now = Instant::now();
    let mut state = shared.state();
    state.settle(now);
    let user = match authenticate(&state, req.headers, host, loc, now) {
        Ok(u) => u,
        Err(e) => return (e.into(), None),
    };
    let email = state.email_of(&user);
    let ctx = Ctx {
        cfg: &shared.config,
        base: &shared.base,
        loc,
        user,
        now,
        req,
    };
    let m = req.method;
    let result = match target {
        ApiTarget::List(r) if *m == Method::GET => list(&state, &ctx, *r, false),
        ApiTarget::Detail(r) if *m == Method::GET => list(&state, &ctx, *r, true),
        ApiTarget::Item(r, id) if *m == Method::GET => get(&state, &ctx, *r, id),
        ApiTarget::List(Res::Servers) if *m == Method::POST => servers::create(&mut state, &ctx),
        ApiTarget::Item(Res::Servers, id) if *m == Method::PUT => servers::update(&mut state, &ctx, id),
        ApiTarget::Item(Res::Servers, id) if *m == Method::DELETE => servers::delete(&mut state, &ctx, id),
        ApiTarget::Action(Res::Servers, id) if *m == Method::POST => servers::action(&mut state, &ctx, id),
        ApiTarget::List(Res::Drives) if *m == Method::POST => drives::create(&mut state, &ctx),
        ApiTarget::Item(Res::Drives, id) if *m == Method::PUT => drives::update(&mut state, &ctx, id),
        ApiTarget::Item(Res::Drives, id) if *m == Method::DELETE => drives::delete(&mut state, &ctx, id),
        ApiTarget::Action(Res::Drives, id) if *m == Method::POST => drives::action(&mut state, &ctx, id),
        ApiTarget::List(Res::Snapshots) if *m == Method::POST => snapshots::create(&mut state, &ctx),
        ApiTarget::Item(Res::Snapshots, id) if *m == Method::PUT => snapshots::update(&mut state, &ctx, id),
        ApiTarget::Item(Res::Snapshots, id) if *m == Method::DELETE => {
            snapshots::delete(&mut state, &ctx, id)
        }
        ApiTarget::Action(Res::Snapshots, id) if *m == Method::POST => {
            snapshots::action(&mut state, &ctx, id)
        }
        ApiTarget::Locations if *m == Method::GET => Ok(misc::locations(&ctx)),
        ApiTarget::Capabilities if *m == Method::GET => Ok(Reply::ok(misc::capabilities())),
        ApiTarget::Profile if *m == Method::GET => misc::profile(&state, &ctx),
        _ => Err(ApiError::method_not_allowed(m.as_str(), allowed(target))),
    };
    (result.unwrap_or_else(Reply::from), email)
}

fn allowed(target: &ApiTarget) -> &'static str {
    match target {
        ApiTarget::List(Res::Servers | Res::Drives | Res::Snapshots) => "GET, POST, OPTIONS",
        ApiTarget::Item(Res::Servers | Res::Drives | Res::Snapshots, _) => "GET, PUT, DELETE, OPTIONS",
        ApiTarget::Action(Res::Servers | Res::Drives | Res::Snapshots, _) => "POST, OPTIONS",
        ApiTarget::Action(..) => "OPTIONS",
        _ => "GET, OPTIONS",
    }
}

fn list(state: &State, ctx: &Ctx<'_>, res: Res, detail: bool) -> Result<Reply, ApiError> {
    match res {
        Res::Servers => servers::list(state, ctx, detail),
        Res::Drives => drives::list(state, ctx, detail),
        Res::Snapshots => snapshots::list(state, ctx, detail),
        Res::Ips => misc::ips(state, ctx, detail),
        Res::Vlans => misc::vlans(state, ctx, detail),
    }
}

fn get(state: &State, ctx: &Ctx<'_>, res: Res, id: &str) -> Result<Reply, ApiError> {
    match res {
        Res::Servers => servers::get(state, ctx, id),
        Res::Drives => drives::get(state, ctx, id),
        Res::Snapshots => snapshots::get(state, ctx, id),
        Res::Ips => misc::ip(state, ctx, id),
        Res::Vlans => misc::vlan(state, ctx, id),
    }
}

/// Resources that belong to one user in one location.
pub(crate) trait Owned {
    fn location(&self) -> &str;
    fn owner(&self) -> &str;
}

macro_rules! owned {
    ($($t:ty),*) => {$(
        impl Owned for $t {
            fn location(&self) -> &str { &self.loc }
            fn owner(&self) -> &str { &self.owner }
        }
    )*};
}
owned!(Server, Drive, Snapshot, Vlan, Ip);

/// 404 when missing (or in another location), 403 `permission` when another user's.
pub(crate) fn check_owned<T: Owned>(
    item: Option<&T>,
    id: &str,
    ctx: &Ctx<'_>,
    perm: &str,
) -> Result<(), ApiError> {
    match item {
        Some(i) if i.location() == ctx.loc => {
            if i.owner() == ctx.user {
                Ok(())
            } else {
                Err(ApiError::not_yours(&ctx.user, perm, id))
            }
        }
        _ => Err(ApiError::notexist(id)),
    }
}

/// Resolves the caller from `Authorization` (Basic or Bearer) and the direct-host rule.
fn authenticate(
    state: &State,
    headers: &HeaderMap,
    host: HostKind,
    loc: &str,
    now: Instant,
) -> Result<String, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "Authentication credentials were not provided",
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("Malformed Authorization header"))?;
    let (scheme, cred) = value.trim().split_once(' ').unwrap_or((value, ""));
    let cred = cred.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(cred)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::unauthorized("Malformed Basic credentials"))?;
        let (email, password) = decoded
            .split_once(':')
            .ok_or_else(|| ApiError::unauthorized("Malformed Basic credentials"))?;
        return state
            .check_password(email, password)
            .ok_or_else(|| ApiError::unauthorized("Invalid email or password"));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let token = state
            .live_token(cred, now)
            .ok_or_else(|| ApiError::unauthorized("Invalid or expired token"))?;
        return match &token.kind {
            TokenKind::Impersonated { location, sa_user } => {
                if location != loc {
                    return Err(ApiError::unauthorized(&format!(
                        "Token was issued for location {location}, not {loc}"
                    )));
                }
                match host {
                    HostKind::Direct => Ok(token.user.clone()),
                    // The observed trap: on the regular host the token acts as the service account.
                    _ => sa_user
                        .clone()
                        .ok_or_else(|| ApiError::unauthorized("Token is valid on the direct host only")),
                }
            }
            TokenKind::ServiceAccount | TokenKind::Rpt => Err(ApiError::unauthorized(
                "Service-account tokens and RPTs are not API tokens; impersonate a user first",
            )),
        };
    }
    Err(ApiError::unauthorized(
        "Unsupported authorization scheme (use Basic or Bearer)",
    ))
}
