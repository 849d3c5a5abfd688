//! The three HTTP requests of the impersonation flow, one attempt each, and how their answers are
//! turned into tokens or errors. Nothing here retries or caches.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use reqwest::{
    StatusCode,
    header::{ACCEPT, HeaderMap},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::debug;
use url::Url;

use crate::{
    AuthObserver, Error, Result, Step, lifetime::lifetime_from_expires_in, observer::RequestOutcome,
};

/// Grant type of the UMA ticket request (step 2).
const UMA_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:uma-ticket";
/// Audience of the RPT (step 2).
const RPT_AUDIENCE: &str = "service_provider_api";
/// Longest server message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;
/// Longest request id kept, in bytes.
const MAX_REQUEST_ID_LEN: usize = 128;
/// Response header carrying CloudSigma's request id.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// A token as issued by one of the three endpoints.
pub(crate) struct Issued {
    /// The token.
    pub(crate) token: SecretString,
    /// Its lifetime (reported `expires_in`, or the 15 min default).
    pub(crate) lifetime: Duration,
    /// When the request that produced it was sent (monotonic clock).
    pub(crate) sent_at: Instant,
    /// When the request that produced it was sent (wall clock).
    pub(crate) sent_at_wall: Timestamp,
}

/// A standard token response (steps 1-3); other fields are ignored.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<SecretString>,
    /// Kept loose: a number is expected, but a wrong type must not fail (or echo) anything.
    expires_in: Option<Value>,
}

/// Body of the impersonation request (step 3).
#[derive(Serialize)]
struct ImpersonateBody<'a> {
    user_email: &'a str,
    subject_token: &'a str,
}

/// Sends the flow's requests with one shared HTTP client.
pub(crate) struct Wire {
    http: reqwest::Client,
    token_url: Url,
    timeout: Duration,
    connect_timeout: Duration,
    observer: Arc<dyn AuthObserver>,
}

impl Wire {
    pub(crate) fn new(
        token_url: Url,
        timeout: Duration,
        connect_timeout: Duration,
        observer: Arc<dyn AuthObserver>,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .user_agent(concat!("cloudsigma-k8s/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {}", e.without_url())))?;
        Ok(Self {
            http,
            token_url,
            timeout,
            connect_timeout,
            observer,
        })
    }

    /// The Keycloak token endpoint.
    pub(crate) fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// Step 1: client-credentials grant.
    pub(crate) async fn service_account_token(
        &self,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Result<Issued> {
        let request = self
            .http
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret.expose_secret()),
            ]);
        self.exchange(Step::ServiceAccountToken, request, &[client_secret])
            .await
    }

    /// Step 2: UMA ticket grant for the service-provider API, authorised by the SA token.
    pub(crate) async fn rpt(&self, sa_token: &SecretString) -> Result<Issued> {
        let request = self
            .http
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json")
            .bearer_auth(sa_token.expose_secret())
            .form(&[("grant_type", UMA_GRANT_TYPE), ("audience", RPT_AUDIENCE)]);
        self.exchange(Step::Rpt, request, &[sa_token]).await
    }

    /// Step 3: impersonation of `user_email`, authorised by the RPT, with the SA token as subject.
    pub(crate) async fn impersonate(
        &self,
        endpoint: &Url,
        user_email: &str,
        sa_token: &SecretString,
        rpt: &SecretString,
    ) -> Result<Issued> {
        let body = ImpersonateBody {
            user_email,
            subject_token: sa_token.expose_secret(),
        };
        let request = self
            .http
            .post(endpoint.clone())
            .header(ACCEPT, "application/json")
            .bearer_auth(rpt.expose_secret())
            .json(&body);
        self.exchange(Step::Impersonate, request, &[sa_token, rpt]).await
    }

    /// Sends one request and interprets the answer; records the outcome with the observer.
    async fn exchange(
        &self,
        step: Step,
        request: reqwest::RequestBuilder,
        secrets: &[&SecretString],
    ) -> Result<Issued> {
        let sent_at = Instant::now();
        let sent_at_wall = Timestamp::now();
        let result = self
            .exchange_once(step, request, secrets, sent_at, sent_at_wall)
            .await;
        let outcome = match &result {
            Ok(_) => RequestOutcome::Success,
            Err(Error::Timeout { .. }) => RequestOutcome::Timeout,
            Err(Error::Transport { .. }) => RequestOutcome::Transport,
            Err(e) if e.status() == Some(200) => RequestOutcome::InvalidResponse,
            Err(_) => RequestOutcome::HttpError,
        };
        self.observer.token_request(step, outcome);
        result
    }

    async fn exchange_once(
        &self,
        step: Step,
        request: reqwest::RequestBuilder,
        secrets: &[&SecretString],
        sent_at: Instant,
        sent_at_wall: Timestamp,
    ) -> Result<Issued> {
        let response = request.send().await.map_err(|e| self.transport_error(step, e))?;
        let status = response.status();
        let request_id = request_id(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(step, e))?;
        debug!(
            step = step.as_str(),
            status = status.as_u16(),
            request_id = request_id.as_deref().unwrap_or("-"),
            elapsed_ms = u64::try_from(sent_at.elapsed().as_millis()).unwrap_or(u64::MAX),
            "CloudSigma auth endpoint answered"
        );
        if status != StatusCode::OK {
            return Err(Error::Impersonation {
                step,
                status: Some(status.as_u16()),
                request_id,
                message: server_message(&body, status, secrets),
                attempts: 1,
            });
        }
        let invalid = |message: String| Error::Impersonation {
            step,
            status: Some(200),
            request_id: request_id.clone(),
            message,
            attempts: 1,
        };
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            invalid(format!(
                "the 200 answer is not a JSON token response ({:?} error at line {} column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let token = match parsed.access_token {
            Some(token) if !token.expose_secret().trim().is_empty() => token,
            _ => return Err(invalid("the 200 answer has no access_token".into())),
        };
        let expires_in = parsed.expires_in.as_ref().and_then(expires_in_secs);
        Ok(Issued {
            token,
            lifetime: lifetime_from_expires_in(expires_in),
            sent_at,
            sent_at_wall,
        })
    }

    fn transport_error(&self, step: Step, error: reqwest::Error) -> Error {
        let error = error.without_url();
        if error.is_timeout() {
            let timeout = if error.is_connect() {
                self.connect_timeout
            } else {
                self.timeout
            };
            Error::Timeout {
                step,
                timeout,
                attempts: 1,
            }
        } else {
            Error::Transport {
                step,
                message: error_chain(&error),
                attempts: 1,
            }
        }
    }
}

/// `expires_in` as whole seconds: a non-negative number, or a string holding one.
fn expires_in_secs(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            // Truncation of a fractional or huge value is intended; negatives mean "unknown".
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.min(u64::MAX as f64) as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The request id header, when it is short printable ASCII.
fn request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(REQUEST_ID_HEADER)?.to_str().ok()?.trim();
    let printable = value.bytes().all(|b| b.is_ascii_graphic());
    (!value.is_empty() && value.len() <= MAX_REQUEST_ID_LEN && printable).then(|| value.to_owned())
}

/// An error and its sources, joined with `: `.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The server's explanation of a non-200 answer, from known fields only: OAuth `error` and
/// `error_description`, or CloudSigma `error_type`, `error_message` and `error_point` (array or single
/// object). Any other body is not shown. Secrets of the request are removed, control characters
/// replaced, and the text truncated.
pub(crate) fn server_message(body: &[u8], status: StatusCode, secrets: &[&SecretString]) -> String {
    let known = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| known_fields(&v));
    let text = known.unwrap_or_else(|| {
        let reason = status.canonical_reason().unwrap_or("unexpected status");
        if body.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason} (body of {} bytes not shown)", body.len())
        }
    });
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate(&scrub(&cleaned, secrets), MAX_MESSAGE_CHARS)
}

fn known_fields(value: &Value) -> Option<String> {
    match value {
        Value::Object(o) => oauth_error(o).or_else(|| cloudsigma_error(o)),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|item| item.as_object().and_then(cloudsigma_error))
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        _ => None,
    }
}

fn non_empty_str<'a>(o: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn oauth_error(o: &serde_json::Map<String, Value>) -> Option<String> {
    let error = non_empty_str(o, "error")?;
    Some(match non_empty_str(o, "error_description") {
        Some(description) => format!("{error}: {description}"),
        None => error.to_owned(),
    })
}

fn cloudsigma_error(o: &serde_json::Map<String, Value>) -> Option<String> {
    let kind = non_empty_str(o, "error_type");
    let message = non_empty_str(o, "error_message");
    let mut text = match (kind, message) {
        (Some(k), Some(m)) => format!("{k}: {m}"),
        (Some(k), None) => k.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => return None,
    };
    if let Some(point) = non_empty_str(o, "error_point") {
        text.push_str(&format!(" (field {point})"));
    }
    Some(text)
}

/// Replaces every occurrence of a secret with `[REDACTED]`: as sent raw, form-urlencoded and
/// JSON-escaped (an error body may echo any of these encodings).
fn scrub(text: &str, secrets: &[&SecretString]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let raw = secret.expose_secret();
        if raw.is_empty() {
            continue;
        }
        let form: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
        let json = serde_json::to_string(raw).unwrap_or_default();
        let json = json.trim_matches('"').to_owned();
        for variant in [raw, form.as_str(), json.as_str()] {
            if !variant.is_empty() && out.contains(variant) {
                out = out.replace(variant, "[REDACTED]");
            }
        }
    }
    out
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str, status: u16) -> String {
        server_message(body.as_bytes(), StatusCode::from_u16(status).unwrap(), &[])
    }

    #[test]
    fn oauth_errors_use_error_and_description() {
        assert_eq!(
            msg(
                r#"{"error":"unauthorized_client","error_description":"Invalid client secret"}"#,
                401
            ),
            "unauthorized_client: Invalid client secret"
        );
        assert_eq!(msg(r#"{"error":"invalid_grant"}"#, 400), "invalid_grant");
    }

    #[test]
    fn cloudsigma_errors_use_type_message_and_point() {
        assert_eq!(
            msg(
                r#"[{"error_type":"permission","error_message":"Not allowed","error_point":null}]"#,
                403
            ),
            "permission: Not allowed"
        );
        assert_eq!(
            msg(
                r#"{"error_type":"validation","error_message":"bad","error_point":"user_email"}"#,
                400
            ),
            "validation: bad (field user_email)"
        );
        assert_eq!(
            msg(
                r#"[{"error_type":"a","error_message":"x"},{"error_type":"b","error_message":"y"}]"#,
                400
            ),
            "a: x; b: y"
        );
    }

    #[test]
    fn unknown_bodies_are_not_shown() {
        assert_eq!(msg("", 504), "Gateway Timeout");
        assert_eq!(
            msg("<html>upstream timed out, token=abc</html>", 504),
            "Gateway Timeout (body of 42 bytes not shown)"
        );
        assert_eq!(
            msg(r#"{"detail":"echo abc"}"#, 500),
            "Internal Server Error (body of 21 bytes not shown)"
        );
    }

    #[test]
    fn secrets_are_scrubbed_and_messages_truncated() {
        let secret = SecretString::from("tok-SECRET-1");
        let body = r#"{"error":"invalid_token","error_description":"token tok-SECRET-1 is revoked"}"#;
        let m = server_message(body.as_bytes(), StatusCode::UNAUTHORIZED, &[&secret]);
        assert_eq!(m, "invalid_token: token [REDACTED] is revoked");
        let long = format!(r#"{{"error":"x","error_description":"{}"}}"#, "é".repeat(1000));
        let m = msg(&long, 400);
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(m.ends_with('…'));
        assert_eq!(msg("{\"error\":\"a\\nb\"}", 400), "a b");
        let odd = SecretString::from("p+w/=\"q\\");
        let body = "{\"error\":\"x\",\"error_description\":\"form p%2Bw%2F%3D%22q%5C raw p+w/=\\\"q\\\\\"}";
        let m = server_message(body.as_bytes(), StatusCode::BAD_REQUEST, &[&odd]);
        assert_eq!(m, "x: form [REDACTED] raw [REDACTED]");
    }

    #[test]
    fn expires_in_is_read_leniently() {
        assert_eq!(expires_in_secs(&serde_json::json!(900)), Some(900));
        assert_eq!(expires_in_secs(&serde_json::json!(2.5)), Some(2));
        assert_eq!(expires_in_secs(&serde_json::json!("60")), Some(60));
        assert_eq!(expires_in_secs(&serde_json::json!(-1)), None);
        assert_eq!(expires_in_secs(&serde_json::json!(null)), None);
    }

    #[test]
    fn request_id_must_be_printable_and_short() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h), None);
        h.insert(REQUEST_ID_HEADER, "abc-123".parse().unwrap());
        assert_eq!(request_id(&h).as_deref(), Some("abc-123"));
        h.insert(REQUEST_ID_HEADER, "x".repeat(200).parse().unwrap());
        assert_eq!(request_id(&h), None);
    }
}
