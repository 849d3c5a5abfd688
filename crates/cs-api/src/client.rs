//! The HTTP core: credentials per request, host choice, timeouts, retries, 401 handling, tracing and the
//! observer hook.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use backon::{BackoffBuilder, ExponentialBuilder};
use cs_auth::{ApiHost, Credentials, SharedProvider};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secrecy::ExposeSecret;
use serde::{Serialize, de::DeserializeOwned};
use tokio::time::Instant;
use tracing::{Instrument, field::Empty};

use crate::{
    ApiFailure, ClientOptions, Endpoints, Error, Outcome, Result,
    error::describe_json_error,
    path::{ApiPath, Method},
};

/// Response header carrying the request id.
const REQUEST_ID: &str = "x-request-id";

/// A CloudSigma API 2.0 client. Cheap to clone (shared connection pool and settings).
///
/// Every request asks the credentials provider for a [`cs_auth::Grant`] and goes to the base URL of the
/// grant's host (regular or `direct.`).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    provider: SharedProvider,
    options: ClientOptions,
    server_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.endpoints)
            .field("provider", &self.inner.provider.name())
            .field("options", &self.inner.options)
            .finish()
    }
}

/// A successful response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) request_id: Option<String>,
}

/// Whether a failed attempt of `method` may be repeated. Idempotent methods: every retryable error.
/// POST: only a 503 `concurrency` rejection (the API refused it, nothing happened).
pub(crate) fn should_retry(method: Method, error: &Error) -> bool {
    if method.is_idempotent() {
        return error.is_retryable();
    }
    matches!(error, Error::Conflict(f) if f.error_type.as_deref() == Some("concurrency"))
}

/// The delay before the next attempt: the backoff step, or the server's `Retry-After` if longer (capped).
pub(crate) fn retry_delay(backoff: Duration, error: &Error, cap: Duration) -> Duration {
    let asked = error
        .api_failure()
        .and_then(|f| f.retry_after)
        .map_or(Duration::ZERO, |d| d.min(cap));
    backoff.max(asked)
}

/// Longest header value kept (request id, `Retry-After`); longer ones are dropped.
const MAX_HEADER_TEXT: usize = 128;

fn header_text(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s.len() <= MAX_HEADER_TEXT)
}

impl Client {
    /// Builds a client. Fails when an option is invalid or the HTTP stack cannot be initialised.
    pub fn new(endpoints: Endpoints, provider: SharedProvider, options: ClientOptions) -> Result<Self> {
        options.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {}", e.without_url())))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints,
                provider,
                options,
                server_locks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The base URLs in use.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// The settings in use.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Sends a request with retries (see the crate docs for the policy) and returns a 2xx reply.
    pub(crate) async fn send(&self, method: Method, path: &ApiPath, body: Option<&[u8]>) -> Result<Reply> {
        let options = &self.inner.options;
        let mut backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(options.backoff_min)
            .with_max_delay(options.backoff_max)
            .with_max_times(options.max_attempts.saturating_sub(1) as usize)
            .build();
        let mut attempt: u32 = 0;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            let error = match self.attempt(method, path, body, attempt).await {
                Ok(reply) => return Ok(reply),
                Err(error) => error,
            };
            if matches!(error, Error::Unauthorized(_)) && !reauthenticated {
                reauthenticated = true;
                tracing::info!(
                    method = method.as_str(),
                    route = path.route,
                    provider = self.inner.provider.name(),
                    "CloudSigma answered 401; invalidating cached credentials and retrying once"
                );
                self.inner.provider.invalidate().await;
                continue;
            }
            if !should_retry(method, &error) {
                return Err(error);
            }
            let Some(step) = backoff.next() else {
                return Err(error);
            };
            let delay = retry_delay(step, &error, options.backoff_max);
            tracing::warn!(
                method = method.as_str(),
                route = path.route,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying CloudSigma request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: credentials, URL, HTTP exchange, classification.
    async fn attempt(
        &self,
        method: Method,
        path: &ApiPath,
        body: Option<&[u8]>,
        attempt: u32,
    ) -> Result<Reply> {
        let grant = self
            .inner
            .provider
            .credentials()
            .await
            .map_err(Error::Credentials)?;
        let url = path.url(self.inner.endpoints.for_host(grant.host))?;
        let host = match grant.host {
            ApiHost::Regular => "regular",
            ApiHost::Direct => "direct",
        };
        let span = tracing::debug_span!(
            "cloudsigma_request",
            method = method.as_str(),
            route = path.route,
            host,
            attempt,
            status = Empty,
            elapsed_ms = Empty,
            request_id = Empty,
        );
        let timeout = self.inner.options.timeout;
        let mut request = self
            .inner
            .http
            .request(method.to_reqwest(), url)
            .header(ACCEPT, "application/json")
            .timeout(timeout);
        request = match &grant.credentials {
            Credentials::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
            Credentials::Bearer { token } => request.bearer_auth(token.expose_secret()),
        };
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let (m, route) = (method.as_str(), path.route);
        async move {
            let started = Instant::now();
            let result = exchange(request).await;
            let elapsed = started.elapsed();
            let outcome = match &result {
                Ok((status, _, _)) => Outcome::Status(*status),
                Err(e) if e.is_timeout() => Outcome::Timeout,
                Err(_) => Outcome::Transport,
            };
            self.inner.options.observer.observe(m, route, outcome, elapsed);
            let span = tracing::Span::current();
            span.record("status", tracing::field::display(outcome));
            span.record("elapsed_ms", elapsed.as_millis() as u64);
            let (status, headers, bytes) = match result {
                Ok(parts) => parts,
                Err(e) if e.is_timeout() => {
                    tracing::debug!("CloudSigma request timed out");
                    return Err(Error::Timeout {
                        method: m,
                        route,
                        timeout,
                    });
                }
                Err(e) => {
                    let source = e.without_url();
                    tracing::debug!(error = %source, "CloudSigma request failed");
                    return Err(Error::Transport {
                        method: m,
                        route,
                        source,
                    });
                }
            };
            let request_id = header_text(&headers, REQUEST_ID);
            if let Some(id) = &request_id {
                span.record("request_id", id.as_str());
            }
            tracing::debug!("CloudSigma request finished");
            if (200..300).contains(&status) {
                return Ok(Reply {
                    status,
                    body: bytes,
                    request_id,
                });
            }
            let retry_after = header_text(&headers, RETRY_AFTER)
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            Err(Error::from_status(ApiFailure::from_body(
                m,
                route,
                status,
                &bytes,
                request_id,
                retry_after,
            )))
        }
        .instrument(span)
        .await
    }

    /// GET and decode.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &ApiPath) -> Result<T> {
        let reply = self.send(Method::Get, path, None).await?;
        decode(Method::Get, path, &reply)
    }

    /// Send a JSON body and decode the JSON answer.
    pub(crate) async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &ApiPath,
        body: &B,
    ) -> Result<T> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode the request body: {e}")))?;
        let reply = self.send(method, path, Some(&bytes)).await?;
        decode(method, path, &reply)
    }

    /// Send a request whose answer has no useful body (DELETE → 204).
    pub(crate) async fn send_no_content(&self, method: Method, path: &ApiPath) -> Result<()> {
        self.send(method, path, None).await.map(|_| ())
    }

    /// Serialises read-modify-write updates of one server's definition within this client.
    pub(crate) async fn lock_server(&self, server_uuid: &str) -> ServerLock {
        let mutex = {
            let mut locks = self
                .inner
                .server_locks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            locks.entry(server_uuid.to_owned()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        ServerLock {
            client: self.clone(),
            uuid: server_uuid.to_owned(),
            guard: Some(guard),
        }
    }
}

/// Holds a server's update lock; removes the map entry when nobody else waits for it.
pub(crate) struct ServerLock {
    client: Client,
    uuid: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for ServerLock {
    fn drop(&mut self) {
        let mut locks = self
            .client
            .inner
            .server_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // References: the map's and the one inside our guard. More means someone is waiting.
        if locks.get(&self.uuid).is_some_and(|m| Arc::strong_count(m) <= 2) {
            locks.remove(&self.uuid);
        }
        self.guard.take();
    }
}

async fn exchange(request: reqwest::RequestBuilder) -> reqwest::Result<(u16, HeaderMap, Vec<u8>)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    Ok((status, headers, body.to_vec()))
}

/// Decodes a success body; an empty body is a decode error for calls that expect one.
pub(crate) fn decode<T: DeserializeOwned>(method: Method, path: &ApiPath, reply: &Reply) -> Result<T> {
    let fail = |reason: String| Error::Decode {
        method: method.as_str(),
        route: path.route,
        status: reply.status,
        reason,
        request_id: reply.request_id.clone(),
    };
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return Err(fail("the body is empty".into()));
    }
    serde_json::from_slice(&reply.body).map_err(|e| fail(describe_json_error(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, error_type: Option<&str>, retry_after: Option<u64>) -> Error {
        Error::from_status(ApiFailure {
            method: "GET",
            route: "r",
            status,
            error_type: error_type.map(str::to_owned),
            error_point: None,
            error_message: None,
            details: Vec::new(),
            request_id: None,
            retry_after: retry_after.map(Duration::from_secs),
        })
    }

    #[test]
    fn idempotent_requests_retry_transient_errors_only() {
        for status in [500, 502, 503, 504, 429] {
            for method in [Method::Get, Method::Put, Method::Delete] {
                assert!(
                    should_retry(method, &api(status, None, None)),
                    "{method:?} {status}"
                );
            }
        }
        for status in [400, 401, 402, 403, 404, 405, 501] {
            assert!(!should_retry(Method::Get, &api(status, None, None)), "{status}");
        }
        let timeout = Error::Timeout {
            method: "GET",
            route: "r",
            timeout: Duration::from_secs(1),
        };
        assert!(should_retry(Method::Get, &timeout));
        assert!(!should_retry(Method::Post, &timeout));
    }

    #[test]
    fn post_retries_only_a_concurrency_rejection() {
        assert!(should_retry(Method::Post, &api(503, Some("concurrency"), None)));
        assert!(!should_retry(Method::Post, &api(503, None, None)));
        assert!(!should_retry(Method::Post, &api(500, None, None)));
        assert!(!should_retry(Method::Post, &api(504, None, None)));
        assert!(!should_retry(Method::Post, &api(429, None, None)));
    }

    #[test]
    fn retry_after_extends_but_never_exceeds_the_cap() {
        let cap = Duration::from_secs(5);
        let step = Duration::from_millis(200);
        assert_eq!(retry_delay(step, &api(503, None, None), cap), step);
        assert_eq!(
            retry_delay(step, &api(503, None, Some(2)), cap),
            Duration::from_secs(2)
        );
        assert_eq!(retry_delay(step, &api(429, None, Some(600)), cap), cap);
    }

    #[test]
    fn decode_reports_empty_and_malformed_bodies() {
        let path = ApiPath::new("servers/{uuid}/", &["servers", "x"]);
        let reply = |body: &str| Reply {
            status: 200,
            body: body.as_bytes().to_vec(),
            request_id: Some("r1".into()),
        };
        let e = decode::<serde_json::Value>(Method::Get, &path, &reply("")).unwrap_err();
        assert!(
            matches!(e, Error::Decode { .. }) && e.to_string().contains("empty"),
            "{e}"
        );
        assert_eq!(e.request_id(), Some("r1"));
        let e = decode::<crate::Server>(Method::Get, &path, &reply("<html>")).unwrap_err();
        assert_eq!(e.metric_label(), "decode");
        assert!(e.to_string().contains("servers/{uuid}/"), "{e}");
    }
}
