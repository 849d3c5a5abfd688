//! `/drives/`: list, get, create, update, delete, resize and clone.

use axum::http::{StatusCode, header};
use serde_json::json;

use super::body::{self, Obj};
use super::list::{ListSpec, envelope};
use super::misc::{storage_limits, storage_types};
use super::reply::{ApiError, Reply};
use super::{Ctx, check_owned};
use crate::store::render;
use crate::store::{Drive, DrivePhase, State};

const SPEC: ListSpec = ListSpec {
    filtering: &[
        ("uuid", &["exact"]),
        ("name", &["exact", "contains"]),
        ("tag", &["exact"]),
    ],
    fields: &[
        "uuid",
        "name",
        "size",
        "media",
        "storage_type",
        "status",
        "mounted_on",
        "allow_multimount",
        "meta",
        "tags",
        "snapshots",
        "remote_snapshots",
        "runtime",
        "owner",
        "resource_uri",
        "affinities",
        "grantees",
        "permissions",
        "licenses",
        "jobs",
        "iops",
        "backup_scheduler",
    ],
    short: render::DRIVE_SHORT,
};

pub(crate) fn list(state: &State, ctx: &Ctx<'_>, detail: bool) -> Result<Reply, ApiError> {
    let mut mine: Vec<&Drive> = state
        .drives
        .values()
        .filter(|d| d.owner == ctx.user && d.loc == ctx.loc)
        .collect();
    mine.sort_by_key(|d| d.seq);
    envelope(
        mine.into_iter().map(|d| render::drive(state, d)).collect(),
        &ctx.req.query,
        &SPEC,
        detail,
    )
}

pub(crate) fn get(state: &State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let d = state.drives.get(id);
    check_owned(d, id, ctx, "LIST")?;
    let d = d.ok_or_else(|| ApiError::notexist(id))?;
    Ok(Reply::ok(render::drive(state, d)))
}

/// `media`: `disk` or `cdrom`.
pub(crate) fn check_media(media: &str) -> Result<(), ApiError> {
    if media == "disk" || media == "cdrom" {
        Ok(())
    } else {
        Err(ApiError::validation(
            "media",
            format!("media must be disk or cdrom, not {media:?}"),
        ))
    }
}

/// Size within the storage type's limits.
pub(crate) fn check_size(storage_type: &str, size: u64) -> Result<(), ApiError> {
    let (min, max) = storage_limits(storage_type).ok_or_else(|| {
        ApiError::validation(
            "storage_type",
            format!("storage_type must be one of {}", storage_types()),
        )
    })?;
    if size < min {
        return Err(ApiError::validation(
            "size",
            format!("Size must be at least {min}"),
        ));
    }
    if size > max {
        return Err(ApiError::validation(
            "size",
            format!("Size must be at most {max}"),
        ));
    }
    Ok(())
}

fn build(ctx: &Ctx<'_>, o: &Obj) -> Result<Drive, ApiError> {
    let name = body::req_str(o, "name")?;
    let size = body::req_u64(o, "size")?;
    let media = body::req_str(o, "media")?;
    check_media(&media)?;
    let storage_type = body::opt_str(o, "storage_type")?.unwrap_or_else(|| "dssd".to_owned());
    check_size(&storage_type, size)?;
    Ok(Drive {
        uuid: uuid::Uuid::new_v4().to_string(),
        loc: ctx.loc.to_owned(),
        owner: ctx.user.clone(),
        seq: 0,
        name,
        size,
        media,
        storage_type,
        allow_multimount: body::opt_bool(o, "allow_multimount")?.unwrap_or(false),
        meta: body::opt_meta(o, "meta")?.unwrap_or_default(),
        tags: body::opt_tags(o)?.unwrap_or_default(),
        phase: DrivePhase::Creating(ctx.now + ctx.cfg.drive_create_delay),
        detaching: Vec::new(),
    })
}

/// `POST /drives/` -> 201 `{"objects": [...]}` in `creating`.
pub(crate) fn create(state: &mut State, ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let objs = body::objects(ctx.req.body)?;
    let built = objs
        .iter()
        .map(|o| build(ctx, o))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for mut d in built {
        d.seq = state.next_seq();
        out.push(render::drive(state, &d));
        state.drives.insert(d.uuid.clone(), d);
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

/// `PUT /drives/{uuid}/`: `name`, `media`, `meta`, `tags`, `allow_multimount`; `size` and
/// `storage_type` must stay as they are (resize has its own action; the type is immutable).
pub(crate) fn update(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.drives.get(id), id, ctx, "EDIT")?;
    let o = body::object(ctx.req.body)?;
    let name = body::opt_str(&o, "name")?;
    let media = body::opt_str(&o, "media")?;
    if let Some(m) = &media {
        check_media(m)?;
    }
    let size = body::opt_u64(&o, "size")?;
    let storage_type = body::opt_str(&o, "storage_type")?;
    let meta = body::opt_meta(&o, "meta")?;
    let tags = body::opt_tags(&o)?;
    let multimount = body::opt_bool(&o, "allow_multimount")?;
    let d = state.drives.get_mut(id).ok_or_else(|| ApiError::notexist(id))?;
    if let Some(s) = size
        && s != d.size
    {
        return Err(ApiError::validation(
            "size",
            "Use action/?do=resize to change the size of a drive",
        ));
    }
    if let Some(t) = storage_type
        && t != d.storage_type
    {
        return Err(ApiError::validation(
            "storage_type",
            "storage_type cannot be changed",
        ));
    }
    if let Some(n) = name {
        d.name = n;
    }
    if let Some(m) = media {
        d.media = m;
    }
    if let Some(m) = meta {
        d.meta = m;
    }
    if let Some(t) = tags {
        d.tags = t;
    }
    if let Some(m) = multimount {
        d.allow_multimount = m;
    }
    let d = state.drives.get(id).ok_or_else(|| ApiError::notexist(id))?;
    Ok(Reply::ok(render::drive(state, d)))
}

/// `DELETE /drives/{uuid}/` -> 204; a mounted drive is deleted too (as documented) and leaves the
/// definitions of its servers.
pub(crate) fn delete(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.drives.get(id), id, ctx, "DELETE")?;
    state.remove_drive(id);
    Ok(Reply::no_content())
}

/// `POST /drives/{uuid}/action/?do=resize|clone` -> 202 `{"objects": [drive]}`.
pub(crate) fn action(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let Some(act) = ctx.req.param("do") else {
        return Err(ApiError::validation("do", "The action parameter do is required"));
    };
    match act {
        "resize" => resize(state, ctx, id),
        "clone" => clone(state, ctx, id),
        other => Err(ApiError::validation(
            "do",
            format!("Unsupported drive action {other:?} (the emulator supports resize, clone)"),
        )),
    }
}

fn resize(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.drives.get(id), id, ctx, "RESIZE")?;
    let o = body::object(ctx.req.body)?;
    let name = body::req_str(&o, "name")?;
    let media = body::req_str(&o, "media")?;
    check_media(&media)?;
    let size = body::req_u64(&o, "size")?;
    let d = state.drives.get(id).ok_or_else(|| ApiError::notexist(id))?;
    if let Some(busy) = d.busy_state() {
        return Err(ApiError::permission(format!(
            "Cannot resize drive {id} while it is {busy}"
        )));
    }
    let running = state
        .mounted_on(d)
        .iter()
        .any(|s| state.servers.get(s).is_some_and(|s| s.status.guest_active()));
    if running {
        return Err(ApiError::permission(
            "Cannot resize drive mounted on a running guest",
        ));
    }
    if size < d.size {
        return Err(ApiError::validation(
            "size",
            format!(
                "Cannot shrink a drive (current size {}, requested {size})",
                d.size
            ),
        ));
    }
    check_size(&d.storage_type, size)?;
    let until = ctx.now + ctx.cfg.resize_delay;
    let d = state.drives.get_mut(id).ok_or_else(|| ApiError::notexist(id))?;
    d.name = name;
    d.media = media;
    d.size = size;
    d.phase = DrivePhase::Resizing(until);
    let d = state.drives.get(id).ok_or_else(|| ApiError::notexist(id))?;
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        json!({"objects": [render::drive(state, d)]}),
    ))
}

fn clone(state: &mut State, ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    check_owned(state.drives.get(id), id, ctx, "CLONE")?;
    let o = body::object(ctx.req.body)?;
    let src = state
        .drives
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::notexist(id))?;
    if let Some(busy) = src.busy_state() {
        return Err(ApiError::permission(format!(
            "Cannot clone drive {id} while it is {busy}"
        )));
    }
    let name = body::opt_str(&o, "name")?.unwrap_or_else(|| src.name.clone());
    let media = body::opt_str(&o, "media")?.unwrap_or_else(|| src.media.clone());
    check_media(&media)?;
    let storage_type = body::opt_str(&o, "storage_type")?.unwrap_or_else(|| src.storage_type.clone());
    let size = body::opt_u64(&o, "size")?.unwrap_or(src.size);
    if size < src.size {
        return Err(ApiError::validation(
            "size",
            format!("A clone must be at least as large as its source ({})", src.size),
        ));
    }
    check_size(&storage_type, size)?;
    let until = ctx.now + ctx.cfg.clone_delay;
    let clone = Drive {
        uuid: uuid::Uuid::new_v4().to_string(),
        loc: src.loc.clone(),
        owner: ctx.user.clone(),
        seq: state.next_seq(),
        name,
        size,
        media,
        storage_type,
        allow_multimount: body::opt_bool(&o, "allow_multimount")?.unwrap_or(false),
        meta: body::opt_meta(&o, "meta")?.unwrap_or_default(),
        tags: Vec::new(),
        phase: DrivePhase::CloningDst(until),
        detaching: Vec::new(),
    };
    if let Some(src) = state.drives.get_mut(id) {
        src.phase = DrivePhase::CloningSrc(until);
    }
    let out = render::drive(state, &clone);
    state.drives.insert(clone.uuid.clone(), clone);
    Ok(Reply::json(StatusCode::ACCEPTED, json!({"objects": [out]})))
}
