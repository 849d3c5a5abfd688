//! The Keycloak token endpoint: `client_credentials` and UMA tickets (RPT).

use std::time::Instant;

use axum::http::{Method, StatusCode, header};
use base64::Engine as _;
use secrecy::ExposeSecret;
use serde_json::json;

use super::reply::Reply;
use super::{Req, expires_in};
use crate::emulator::Shared;
use crate::store::TokenKind;

/// The only UMA audience served.
pub(crate) const AUDIENCE: &str = "service_provider_api";
const UMA_GRANT: &str = "urn:ietf:params:oauth:grant-type:uma-ticket";
const BAD_CLIENT: &str = "Invalid client or Invalid client credentials";

/// `POST {oauth}/realms/cloudsigma/protocol/openid-connect/token` (form-encoded).
pub(crate) fn token(shared: &Shared, req: &Req<'_>) -> Reply {
    if *req.method != Method::POST {
        return Reply::oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Use POST")
            .header(header::ALLOW, "POST");
    }
    let form_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Reply::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(req.body) else {
        return Reply::oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Malformed form body");
    };
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let now = Instant::now();
    let mut state = shared.state();
    state.settle(now);
    let cfg = &shared.config;
    match get("grant_type") {
        None => Reply::oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing form parameter: grant_type",
        ),
        Some("client_credentials") => {
            let (id, secret) = match client_from_basic(req).or_else(|| {
                get("client_id").map(|id| (id.to_owned(), get("client_secret").map(str::to_owned)))
            }) {
                Some(c) => c,
                None => {
                    return Reply::oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Missing parameter: client_id",
                    );
                }
            };
            let Some(client) = state.clients.get(&id) else {
                return Reply::oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", BAD_CLIENT);
            };
            let Some(secret) = secret else {
                return Reply::oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "Client secret not provided in request",
                );
            };
            if client.secret.expose_secret() != secret {
                return Reply::oauth_error(StatusCode::UNAUTHORIZED, "unauthorized_client", BAD_CLIENT);
            }
            let sa = client.sa_user.clone();
            let token = state.issue_token(
                TokenKind::ServiceAccount,
                &sa,
                Some(&id),
                cfg.sa_token_lifetime,
                now,
            );
            token_reply(&token, expires_in(cfg.sa_token_lifetime), "profile email")
        }
        Some(UMA_GRANT) => {
            let bearer = req
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().split_once(' '))
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_owned());
            let sa = bearer
                .as_deref()
                .and_then(|t| state.live_token(t, now))
                .filter(|t| t.kind == TokenKind::ServiceAccount)
                .map(|t| (t.user.clone(), t.client_id.clone()));
            let Some((user, client_id)) = sa else {
                return Reply::oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "Missing, invalid or expired service-account bearer token",
                );
            };
            match get("audience") {
                Some(AUDIENCE) => {}
                Some(_) => {
                    return Reply::oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Unknown audience",
                    );
                }
                None => {
                    return Reply::oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Missing parameter: audience",
                    );
                }
            }
            let token = state.issue_token(TokenKind::Rpt, &user, client_id.as_deref(), cfg.rpt_lifetime, now);
            let mut reply = token_reply(&token, expires_in(cfg.rpt_lifetime), "");
            if let Some(o) = reply.body.as_mut().and_then(|b| b.as_object_mut()) {
                o.insert("upgraded".into(), json!(false));
            }
            reply
        }
        Some(_) => Reply::oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant_type (client_credentials and uma-ticket are served)",
        ),
    }
}

/// Client id and secret from an `Authorization: Basic` header (client_secret_basic).
fn client_from_basic(req: &Req<'_>) -> Option<(String, Option<String>)> {
    let v = req.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, cred) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(cred.trim())
            .ok()?,
    )
    .ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), Some(secret.to_owned())))
}

fn token_reply(token: &str, expires_in: u64, scope: &str) -> Reply {
    Reply::ok(json!({
        "access_token": token,
        "expires_in": expires_in,
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": scope,
    }))
    .header(header::CACHE_CONTROL, "no-store")
}
