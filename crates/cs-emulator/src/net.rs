//! The listener: one task accepting connections, one per connection, and the request entry point
//! (route, log, faults, dispatch).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower_service::Service as _;

use crate::api::reply::{ApiError, Reply};
use crate::api::{self, Req};
use crate::emulator::Shared;
use crate::fault::{FaultAction, default_error_type};
use crate::log::{HostKind, LogGuard, RequestRecord};
use crate::route;

/// Largest request body read.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Lets a handler close its own connection without answering.
#[derive(Clone, Default)]
struct ConnKill(Arc<Notify>);

/// Accepts connections until `shutdown` changes or its sender is dropped.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let router = Router::new().fallback(handle).with_state(shared);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, router.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, router: Router, mut shutdown: watch::Receiver<bool>) {
    let kill = ConnKill::default();
    let kill_for_requests = kill.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(kill_for_requests.clone());
        let mut router = router.clone();
        async move { router.call(req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        res = conn => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = kill.0.notified() => tracing::debug!("connection closed by a fault"),
        _ = shutdown.changed() => {}
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Result<Response, Infallible> {
    let (parts, body) = req.into_parts();
    let kill = parts.extensions.get::<ConnKill>().cloned();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let parsed = route::parse(method.as_str(), &path, &shared.config);
    let mut guard = LogGuard::begin(
        shared.clone(),
        RequestRecord {
            method: method.to_string(),
            path: path.clone(),
            query: parts.uri.query().map(str::to_owned),
            route: parsed.route.clone(),
            location: parsed.location.clone(),
            host: parsed.host,
            user: None,
            status: 0,
            duration: std::time::Duration::ZERO,
            fault: None,
        },
    );
    if parsed.host != HostKind::Admin {
        let fault = shared.faults().take(method.as_str(), &path, &parsed.route);
        if let Some((id, action)) = fault {
            guard.set_fault(id);
            match action {
                FaultAction::Delay(d) => tokio::time::sleep(d).await,
                FaultAction::Status {
                    status,
                    error_type,
                    delay,
                } => {
                    tokio::time::sleep(delay).await;
                    let reply = fault_reply(parsed.host, status, error_type.as_deref());
                    guard.finish(status, None);
                    return Ok(with_request_id(reply).into_response());
                }
                FaultAction::CloseConnection => {
                    if let Some(k) = kill {
                        k.0.notify_one();
                    }
                    // The connection task drops this future (and the socket); the guard logs status 0.
                    return Ok(std::future::pending::<Response>().await);
                }
            }
        }
    }
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            let reply: Reply = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "validation",
                "Request body too large",
            )
            .into();
            guard.finish(reply.status.as_u16(), None);
            return Ok(reply.into_response());
        }
    };
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).unwrap_or_default();
    let req = Req {
        method: &method,
        headers: &parts.headers,
        query,
        body: &body,
    };
    let (reply, user) = api::dispatch(&shared, &parsed, &req);
    guard.finish(reply.status.as_u16(), user);
    let reply = if parsed.host == HostKind::Admin {
        reply
    } else {
        with_request_id(reply)
    };
    Ok(reply.into_response())
}

fn with_request_id(reply: Reply) -> Reply {
    reply.header(
        HeaderName::from_static("x-request-id"),
        uuid::Uuid::new_v4().to_string(),
    )
}

/// The answer of a `Status` fault: an OAuth error on the token endpoint, an error array elsewhere.
fn fault_reply(host: HostKind, status: u16, error_type: Option<&str>) -> Reply {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = "fault injected by the emulator";
    if host == HostKind::Oauth {
        let error = error_type.unwrap_or(if status >= 500 {
            "server_error"
        } else {
            "invalid_request"
        });
        return Reply::json(code, json!({"error": error, "error_description": message}));
    }
    let error_type = error_type.unwrap_or_else(|| default_error_type(status));
    ApiError::new(code, error_type, message).into()
}
