//! `POST /{loc}/direct/service_provider/api/v1/user/impersonate`.

use std::time::Instant;

use axum::http::{Method, header};
use serde_json::json;

use super::reply::{ApiError, Reply};
use super::{Req, accepts_json, body};
use crate::emulator::Shared;
use crate::store::TokenKind;

/// Exchanges an RPT plus the service-account token for an API token of `user_email` in `loc`.
pub(crate) fn handle(shared: &Shared, loc: &str, req: &Req<'_>) -> (Reply, Option<String>) {
    match impersonate(shared, loc, req) {
        Ok((reply, email)) => (reply, Some(email)),
        Err(e) => (e.into(), None),
    }
}

fn impersonate(shared: &Shared, loc: &str, req: &Req<'_>) -> Result<(Reply, String), ApiError> {
    if *req.method != Method::POST {
        return Err(ApiError::method_not_allowed(req.method.as_str(), "POST"));
    }
    if !accepts_json(req) {
        return Err(ApiError::not_acceptable());
    }
    let now = Instant::now();
    let mut state = shared.state();
    state.settle(now);
    let bearer = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let rpt = bearer
        .as_deref()
        .and_then(|t| state.live_token(t, now))
        .filter(|t| t.kind == TokenKind::Rpt)
        .map(|t| (t.user.clone(), t.client_id.clone()))
        .ok_or_else(|| {
            ApiError::unauthorized("A valid RPT (UMA ticket for service_provider_api) is required")
        })?;
    let o = body::object(req.body)?;
    let email = body::req_str(&o, "user_email")?;
    let subject = body::req_str(&o, "subject_token")?;
    let subject_ok = state
        .live_token(&subject, now)
        .is_some_and(|t| t.kind == TokenKind::ServiceAccount && t.client_id == rpt.1 && t.user == rpt.0);
    if !subject_ok {
        return Err(ApiError::unauthorized(
            "subject_token must be a live service-account token of the client that obtained the RPT",
        ));
    }
    let Some(target) = state.user_uuid(&email) else {
        let mut e = ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "notexist",
            format!("User with email {email} does not exist"),
        );
        e.point = Some("user_email".into());
        return Err(e);
    };
    let lifetime = shared.config.token_lifetime;
    let kind = TokenKind::Impersonated {
        location: loc.to_owned(),
        sa_user: Some(rpt.0.clone()),
    };
    let token = state.issue_token(kind, &target, rpt.1.as_deref(), lifetime, now);
    let sa_email = state.email_of(&rpt.0).unwrap_or_default();
    let reply = Reply::ok(
        json!({"access_token": token, "token_type": "Bearer", "expires_in": super::expires_in(lifetime)}),
    )
    .header(header::CACHE_CONTROL, "no-store");
    Ok((reply, sa_email))
}
