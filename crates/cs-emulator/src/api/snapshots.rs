//! `/snapshots/`: list (with `?drive=`), get, create, update, delete.

use axum::http::{StatusCode, header};
use serde_json::json;

use super::body::{self, Obj};
use super::list::{ListSpec, envelope};
use super::misc::SNAPSHOTS_PER_DRIVE;
use super::reply::{ApiError, Reply};
use super::{Ctx, check_owned};
use crate::store::render;
use crate::store::{Snapshot, State};

const SPEC: ListSpec = ListSpec {
    filtering: &[
        ("uuid", &["exact"]),
        ("name", &["exact", "contains"]),
        ("tag", &["exact"]),
        ("drive", &["exact"]),
    ],
    fields: &[
        "uuid",
        "name",
        "drive",
        "status",
        "timestamp",
        "allocated_size",
        "meta",
        "tags",
        "owner",
        "resource_uri",
        "grantees",
        "permissions",
    ],
    short: render::SNAPSHOT_SHORT,
};

pub(crate) fn list(state: &State, ctx: &Ctx<'_>, detail: bool) -> Result<Reply, ApiError> {
    let mut mine: Vec<&Snapshot> = state
        .snapshots
        .values()
        .filter(|s| s.owner == ctx.user && s.loc == ctx.loc)
        .collect();
    mine.sort_by_key(|s| s.seq);
    envelope(
        mine.into_iter().map(render::snapshot).collect(),
        &ctx.req.query,
        &SPEC,
        detail,
    )
}

pub(crate) fn get(state: &State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let s = state.snapshots.get(id);
    check_owned(s, id, ctx, "LIST")?;
    let s = s.ok_or_else(|| ApiError::notexist(id))?;
    Ok(Reply::ok(render::snapshot(s)))
}

fn build(state: &State, ctx: &Ctx<'_>, o: &Obj, pending: &[Snapshot]) -> Result<Snapshot, ApiError> {
    let drive = body::ref_uuid(
        o.get("drive")
            .ok_or_else(|| ApiError::validation("drive", "drive is required"))?,
        "drive",
    )?;
    let d = match state.drives.get(&drive) {
        Some(d) if d.loc == ctx.loc => d,
        _ => {
            return Err(ApiError::validation(
                "drive",
                format!("Drive {drive} does not exist"),
            ));
        }
    };
    if d.owner != ctx.user {
        return Err(ApiError::not_yours(&ctx.user, "SNAPSHOT", &drive));
    }
    if let Some(busy) = d.busy_state()
        && busy != "cloning_src"
    {
        return Err(ApiError::permission(format!(
            "Cannot snapshot drive {drive} while it is {busy}"
        )));
    }
    let count = state.snapshots.values().filter(|s| s.drive == drive).count()
        + pending.iter().filter(|s| s.drive == drive).count();
    if count >= SNAPSHOTS_PER_DRIVE {
        return Err(ApiError::validation(
            "drive",
            format!("Drive {drive} already has {SNAPSHOTS_PER_DRIVE} snapshots"),
        ));
    }
    let timestamp = jiff::Timestamp::now();
    Ok(Snapshot {
        uuid: uuid::Uuid::new_v4().to_string(),
        loc: ctx.loc.to_owned(),
        owner: ctx.user.clone(),
        seq: 0,
        name: body::opt_str(o, "name")?.unwrap_or_else(|| render::snapshot_time(timestamp)),
        drive,
        meta: body::opt_meta(o, "meta")?.unwrap_or_default(),
        tags: body::opt_tags(o)?.unwrap_or_default(),
        timestamp,
        ready_at: Some(ctx.now + ctx.cfg.snapshot_delay),
        allocated_size: None,
    })
}

/// `POST /snapshots/` -> 201 `{"objects": [...]}` in `creating`.
pub(crate) fn create(state: &mut State, ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let objs = body::objects(ctx.req.body)?;
    let mut built = Vec::new();
    for o in &objs {
        let s = build(state, ctx, o, &built)?;
        built.push(s);
    }
    let mut out = Vec::new();
    for mut s in built {
        s.seq = state.next_seq();
        out.push(render::snapshot(&s));
        state.snapshots.insert(s.uuid.clone(), s);
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

/// `PUT /snapshots/{uuid}/`: `name`, `meta`, `tags`.
pub(crate) fn update(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.snapshots.get(id), id, ctx, "EDIT")?;
    let o = body::object(ctx.req.body)?;
    let name = body::opt_str(&o, "name")?;
    let meta = body::opt_meta(&o, "meta")?;
    let tags = body::opt_tags(&o)?;
    let s = state
        .snapshots
        .get_mut(id)
        .ok_or_else(|| ApiError::notexist(id))?;
    if let Some(n) = name {
        s.name = n;
    }
    if let Some(m) = meta {
        s.meta = m;
    }
    if let Some(t) = tags {
        s.tags = t;
    }
    Ok(Reply::ok(render::snapshot(s)))
}

/// `DELETE /snapshots/{uuid}/` -> 204.
pub(crate) fn delete(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.snapshots.get(id), id, ctx, "DELETE")?;
    state.snapshots.remove(id);
    Ok(Reply::no_content())
}
