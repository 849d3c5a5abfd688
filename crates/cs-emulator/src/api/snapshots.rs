//! `/snapshots/`: list (with `?drive=`), get, create, update, delete, and the clone action (a new drive
//! from a snapshot).

use axum::http::{StatusCode, header};
use serde_json::json;

use super::body::{self, Obj};
use super::drives::{check_media, check_size};
use super::list::{ListSpec, envelope};
use super::misc::SNAPSHOTS_PER_DRIVE;
use super::reply::{ApiError, Reply};
use super::{Ctx, check_owned};
use crate::store::render;
use crate::store::{Drive, DrivePhase, Snapshot, State};

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

/// `POST /snapshots/{uuid}/action/?do=clone` -> 202 `{"objects": [new drive]}` in `cloning_dst`.
pub(crate) fn action(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    match ctx.req.param("do") {
        None => Err(ApiError::validation("do", "The action parameter do is required")),
        Some("clone") => clone(state, ctx, id),
        Some(other) => Err(ApiError::validation(
            "do",
            format!("Unsupported snapshot action {other:?} (the emulator supports clone)"),
        )),
    }
}

/// A new drive holding the snapshot's data, owned by the caller. Overrides as for a drive clone:
/// `name` (default: the snapshot's name), `media` and `storage_type` (default: the source drive's),
/// `size` (default: the source drive's; never smaller), `meta`, `allow_multimount`. The snapshot must be
/// `available` (403 otherwise); it and its drive keep their states.
fn clone(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.snapshots.get(id), id, ctx, "CLONE")?;
    let o = body::object(ctx.req.body)?;
    let snap = state.snapshots.get(id).ok_or_else(|| ApiError::notexist(id))?;
    if snap.ready_at.is_some() {
        return Err(ApiError::permission(format!(
            "Cannot clone snapshot {id} while it is creating"
        )));
    }
    // Deleting a drive deletes its snapshots, so the source drive exists while the snapshot does.
    let src = state
        .drives
        .get(&snap.drive)
        .ok_or_else(|| ApiError::notexist(id))?;
    let name = body::opt_str(&o, "name")?.unwrap_or_else(|| snap.name.clone());
    let media = body::opt_str(&o, "media")?.unwrap_or_else(|| src.media.clone());
    check_media(&media)?;
    let storage_type = body::opt_str(&o, "storage_type")?.unwrap_or_else(|| src.storage_type.clone());
    let size = body::opt_u64(&o, "size")?.unwrap_or(src.size);
    if size < src.size {
        return Err(ApiError::validation(
            "size",
            format!(
                "A clone must be at least as large as the snapshot's source drive ({} bytes)",
                src.size
            ),
        ));
    }
    check_size(&storage_type, size)?;
    let allow_multimount = body::opt_bool(&o, "allow_multimount")?.unwrap_or(false);
    let meta = body::opt_meta(&o, "meta")?.unwrap_or_default();
    let drive = Drive {
        uuid: uuid::Uuid::new_v4().to_string(),
        loc: ctx.loc.to_owned(),
        owner: ctx.user.clone(),
        seq: state.next_seq(),
        name,
        size,
        media,
        storage_type,
        allow_multimount,
        meta,
        tags: Vec::new(),
        phase: DrivePhase::CloningDst(ctx.now + ctx.cfg.clone_delay),
        detaching: Vec::new(),
    };
    let out = render::drive(state, &drive);
    state.drives.insert(drive.uuid.clone(), drive);
    Ok(Reply::json(StatusCode::ACCEPTED, json!({"objects": [out]})))
}
